#!/usr/bin/env python
"""End-to-end test of the sampling interface (`make test-browser`).

1. Builds a throw-away folder with a tiny random model set (`models/`), two classes of synthetic videos (`toy/`)
   and a copy of `tests/browser/widgets_demo.ipynb`.
2. Starts JupyterLab there on 127.0.0.1 (a free port, no token, its own settings and workspace folders).
3. Runs `tests/browser/widgets.mjs` (playwright-core driving Debian's headless Chromium): open the notebook,
   run all cells, wait for the Sampler, drag the top-X slider, click Generate, wait for the new `<audio>`
   players and spectrogram `<img>`s, then draws again at the smallest and largest top-X; screenshots, a strip of
   those three draws (`topx_strip.png`) and result.json go to the output folder.
4. Stops JupyterLab (and its kernel) whatever happened.
Exit status 0 when the browser check passed.
"""
from __future__ import annotations
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PLAYWRIGHT_FROM = REPO/'docs'/'browser'/'package.json'   # node_modules/playwright-core installed by `make docs-browser-deps`
SETTINGS = {  # no news or update pop-ups over the notebook
    '@jupyterlab/apputils-extension/notification.jupyterlab-settings': dict(fetchNews='false', checkForUpdates=False)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def build_world(root:Path):
    "Tiny models, toy videos and the demo notebook (with a kernelspec, so Lab starts the kernel without asking)."
    sys.path.insert(0, str(REPO/'tests'))
    import torch
    torch.set_num_threads(1)
    from test_widgets import tiny_widget_models, toy_videos
    tiny_widget_models(root/'models'); toy_videos(root/'toy')
    nb = json.loads((HERE/'widgets_demo.ipynb').read_text())
    nb['metadata']['kernelspec'] = dict(name='python3', display_name='Python 3 (ipykernel)', language='python')
    (root/'widgets_demo.ipynb').write_text(json.dumps(nb))
    for name, value in SETTINGS.items():
        f = root/'.lab'/'settings'/name
        f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))


def start_lab(root:Path, port:int, log) -> subprocess.Popen:
    "JupyterLab serving `root` on 127.0.0.1:`port`, in its own process group (so its kernels stop with it)."
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(root/'.lab'/'settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(root/'.lab'/'workspaces'))
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--allow-root',
           '--IdentityProvider.token=', '--ServerApp.password=', f'--ServerApp.root_dir={root}',
           '--LabApp.expose_app_in_browser=True', '--ServerApp.port_retries=0']
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url:str, proc:subprocess.Popen, timeout:float=180):
    "Poll the server's /api/status until it answers."
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None: raise RuntimeError(f'JupyterLab exited with status {proc.returncode}')
        try:
            with urllib.request.urlopen(url + 'api/status', timeout=5) as r:
                if r.status == 200: return
        except OSError: time.sleep(1)
    raise TimeoutError(f'JupyterLab did not answer at {url} within {timeout:.0f} s')


def stop_lab(proc:subprocess.Popen):
    "Stop the server we started and everything in its process group (its kernel)."
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()


def strip(out:Path, names=('strip_1.png', 'strip_2.png', 'strip_3.png'), width:int=560) -> Path|None:
    "The strip frames side by side (each scaled to `width` px), as `topx_strip.png`; None if a frame is missing."
    from PIL import Image
    if not all((out/n).exists() for n in names): return None
    frames = [Image.open(out/n).convert('RGB') for n in names]
    frames = [f.resize((width, round(f.height * width / f.width)), Image.LANCZOS) for f in frames]
    canvas = Image.new('RGB', (width * len(frames) + 8 * (len(frames) - 1), max(f.height for f in frames)), 'white')
    for k, f in enumerate(frames): canvas.paste(f, (k * (width + 8), 0))
    canvas.save(out/'topx_strip.png', optimize=True)
    return out/'topx_strip.png'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(REPO/'out'/'browser'), help='screenshots, result.json and logs')
    ap.add_argument('--timeout', type=float, default=420, help='seconds for the browser part')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    args = ap.parse_args()
    out = Path(args.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    for old in ('result.json', 'jupyterlab.log'): (out/old).unlink(missing_ok=True)
    for old in out.glob('*.png'): old.unlink()
    for tool in ('node', 'chromium'):
        if not shutil.which(tool): sys.exit(f'test-browser: {tool} not found (make test-browser installs chromium; node comes with npm)')
    if not (PLAYWRIGHT_FROM.parent/'node_modules'/'playwright-core').is_dir():
        sys.exit(f'test-browser: playwright-core is not installed in {PLAYWRIGHT_FROM.parent} (run make docs-browser-deps)')
    root = Path(tempfile.mkdtemp(prefix='vgsg-browser-'))
    clock = time.perf_counter()
    build_world(root)
    print(f'test-browser: models and videos in {root} ({time.perf_counter() - clock:.1f} s)', flush=True)
    port = free_port(); url = f'http://127.0.0.1:{port}/'
    with open(out/'jupyterlab.log', 'w') as log:
        proc = start_lab(root, port, log)
        try:
            t0 = time.perf_counter()
            wait_ready(url, proc)
            print(f'test-browser: JupyterLab up at {url} ({time.perf_counter() - t0:.1f} s)', flush=True)
            env = dict(os.environ, PLAYWRIGHT_FROM=str(PLAYWRIGHT_FROM))
            done = subprocess.run(['node', str(HERE/'widgets.mjs'), url + 'lab/tree/widgets_demo.ipynb', str(out)],
                                  env=env, timeout=args.timeout + 30)
            code = done.returncode
            if path := strip(out): print(f'test-browser: top-X strip in {path}', flush=True)
        except subprocess.TimeoutExpired:
            print('test-browser: the browser check ran out of time', flush=True); code = 1
        finally:
            stop_lab(proc)
            if not args.keep: shutil.rmtree(root, ignore_errors=True)
    print(f'test-browser: {"passed" if code == 0 else "FAILED"} in {time.perf_counter() - clock:.0f} s; '
          f'screenshots and result.json in {out}', flush=True)
    sys.exit(code)


if __name__ == '__main__': main()
