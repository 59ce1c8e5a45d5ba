"""Peak memory (RSS) and wall time of vgsg's commands on large videos and long audio, new code beside the old.

Usage: nice .venv/bin/python benchmarks/memory.py [--rows generate-1080p,prepare-1080p,...] [--skip-old]
       [--old-rev REV] [--cap-gb 6] [--keep DIR]
Each row is one CLI command run as a fresh child process (the codec rows: `codec encode` then `codec decode`,
two children); its peak RSS is the child's `ru_maxrss` (from `wait4`) and its time the wall-clock time. The
"old" columns run the same command with the library of git revision `--old-rev` (the code before bounded
memory; extracted once with `git archive` into a temp folder and put first on PYTHONPATH), the "new" ones with
this working tree. Every child is capped twice so that the old code paths cannot take the machine down: its
address space is limited (RLIMIT_AS, `--cap-gb` + 2 GB) and a watchdog kills it when its RSS passes `--cap-gb`;
such a row shows "> cap (killed)". The test media are made here, in a temp folder: synthetic camera-like
H.264 videos (1920×1080 for 1.6 s and 4000×3000 for 2 s, with AAC audio) and synthetic speech-like audio of
1 min, 20 min and 1 h. The table is printed and written to benchmarks/RESULTS.md (this script's section;
rows not run this time keep their previous line).
"""
import argparse, json, os, re, resource, shutil, signal, subprocess, sys, tempfile, threading, time
from fractions import Fraction
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'RESULTS.md'
OLD_REV = '5e69ccf'           # the committed HEAD before bounded decoding, remuxing and windowed codec work
START, END = '<!-- memory.py: start -->', '<!-- memory.py: end -->'
CLI = 'import sys; from vgsg.cli import main; sys.exit(main(sys.argv[1:]))'
GB = 1 << 30

# row name: (what it runs, the medium it needs, extra CLI arguments)
ROWS = {'generate-1080p':          ('generate', 'hd', []),
        'generate-1080p-30s':      ('generate', 'hd', ['--seconds', '30']),
        'generate-4000x3000':      ('generate', 'big', []),
        'generate-4000x3000-30s':  ('generate', 'big', ['--seconds', '30']),
        'prepare-1080p':           ('prepare', 'hd', ['--features', 'resnet50']),   # the heavier extractor, in both revisions
        'codec-1min':              ('codec', 'a1', []),
        'codec-20min':             ('codec', 'a20', []),
        'codec-1h':                ('codec', 'a60', [])}
AUDIO_MINUTES = dict(a1=1, a20=20, a60=60)


# ---------------------------------------------------------------- test media
def camera_clip(path, width, height, seconds, fps=30):
    "An H.264 (B-frames, like a camera) + AAC mp4 of moving colour gradients with grain, encoded frame by frame."
    import av
    rng = np.random.default_rng(0)
    grain = rng.integers(-12, 13, (height + 64, width + 64, 1), dtype=np.int16)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    with av.open(str(path), 'w') as out:
        vs = out.add_stream('libx264', rate=fps, options={'preset': 'veryfast', 'crf': '23'})
        vs.width, vs.height, vs.pix_fmt = width, height, 'yuv420p'
        a = out.add_stream('aac', rate=44100, layout='stereo')
        for i in range(round(seconds * fps)):
            base = np.concatenate([(x + 4 * i) % 256 + 0 * y, (y + 3 * i) % 256 + 0 * x, (x + y) / 2 + 0 * x], -1)
            img = np.clip(base + grain[i % 64:i % 64 + height, i % 64:i % 64 + width], 0, 255).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(img, format='rgb24'); f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
        t = np.arange(round(seconds * 44100)) / 44100
        wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([wav, wav]), format='fltp', layout='stereo')
        af.sample_rate, af.pts = 44100, 0
        out.mux(a.encode(af)); out.mux(a.encode(None))
    return path


def long_audio(path, minutes, sr=22050, block=10):
    "A mono 16-bit wav of `minutes` of syllable-like tone bursts over noise, written `block` s at a time."
    import soundfile as sf
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), 'w', sr, 1, 'PCM_16') as f:
        for k in range(minutes * 60 // block):
            t = k * block + np.arange(block * sr) / sr
            pitch = 150 + 60 * np.sin(2 * np.pi * 0.3 * t)
            env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
            f.write((0.3 * env * np.sin(2 * np.pi * np.cumsum(pitch) / sr) + 0.01 * rng.normal(size=len(t))).astype(np.float32))
    return path


def make_media(folder, needed):
    "The media the chosen rows need, made once in `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    makers = dict(hd=lambda p: camera_clip(p, 1920, 1080, 1.6), big=lambda p: camera_clip(p, 4000, 3000, 2.0),
                  **{k: (lambda m: lambda p: long_audio(p, m))(m) for k, m in AUDIO_MINUTES.items()})
    paths = {}
    for key in needed:
        p = folder / (f'{key}.mp4' if key in ('hd', 'big') else f'{key}.wav')
        if not p.exists():
            print(f'making {p.name} ...', flush=True); makers[key](p)
        paths[key] = p
    return paths


# ---------------------------------------------------------------- one capped child
def rss_bytes(pid):
    "Current resident set size of process `pid` (0 once it is gone)."
    try:
        for line in open(f'/proc/{pid}/status'):
            if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024
    except OSError: pass
    return 0


def run_capped(args, env, cap, timeout):
    "Run `args`; returns (peak RSS bytes, wall s, how it ended: 'ok', 'killed', 'timeout' or 'failed: ...')."
    limit = int(cap + 2 * GB)
    def limits(): resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, preexec_fn=limits, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=env['RUN_DIR'])
    why, done = [], threading.Event()
    def watch():
        while not done.wait(0.05):
            if rss_bytes(proc.pid) > cap: why.append('killed')
            elif time.perf_counter() - t0 > timeout: why.append('timeout')
            else: continue
            os.kill(proc.pid, signal.SIGKILL); return
    threading.Thread(target=watch, daemon=True).start()
    log = proc.stdout.read().decode(errors='replace')
    _, status, usage = os.wait4(proc.pid, 0)
    done.set(); proc.returncode = os.waitstatus_to_exitcode(status)
    wall, peak = time.perf_counter() - t0, usage.ru_maxrss * 1024
    if why: return peak, wall, why[0]
    if re.search(r"MemoryError|bad_alloc|can't allocate memory|Cannot allocate memory|out of memory", log):
        return peak, wall, 'killed'                     # the cap, met inside (prepare reports it per clip, exit 0)
    if proc.returncode == 0 and not re.search(r'prepared 0 of|skipped', log): return peak, wall, 'ok'
    last = [l for l in log.strip().splitlines() if l.strip()][-1:] or [f'exit {proc.returncode}']
    return peak, wall, f'failed: {last[0][:100]}'


def commands(row, media, work):
    "The CLI argument lists of `row` (two for the codec rows)."
    what, key, extra = ROWS[row]
    models = str(ROOT / 'vgsg' / 'assets' / 'models')
    if what == 'generate': return [['generate', str(media[key]), '-o', str(work / 'out'), '--models', models, *extra]]
    if what == 'prepare':
        folder = work / 'videos'; folder.mkdir(exist_ok=True)
        if not (folder / media[key].name).exists(): shutil.copy(media[key], folder / media[key].name)
        return [['prepare', str(folder), str(work / 'prepared'), *extra]]
    return [['codec', 'encode', str(media[key]), '-o', str(work / 'x.vgc'), '--models', models],
            ['codec', 'decode', str(work / 'x.vgc'), '-o', str(work / 'back.wav'), '--models', models]]


def measure(row, media, lib, cap, timeout, scratch):
    "Peak RSS (max over the row's commands), total wall time and outcome of `row` with the vgsg library at `lib`."
    work = Path(tempfile.mkdtemp(dir=scratch))
    env = dict(os.environ, PYTHONPATH=str(lib), MPLBACKEND='Agg', RUN_DIR=str(work), PYTHONWARNINGS='ignore')
    peak, wall = 0, 0.
    try:
        for args in commands(row, media, work):
            p, w, how = run_capped([sys.executable, '-c', CLI, *args], env, cap, timeout)
            peak, wall = max(peak, p), wall + w
            if how != 'ok': return peak, wall, how
        return peak, wall, 'ok'
    finally: shutil.rmtree(work, ignore_errors=True)


def old_tree(rev, scratch):
    "The library at git revision `rev`, extracted once (git archive) into a temp folder."
    folder = Path(tempfile.gettempdir()) / f'vgsg_old_{rev}'
    if not (folder / 'vgsg' / 'cli.py').exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(['git', '-C', str(ROOT), 'archive', rev, 'vgsg'], check=True, capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', str(folder)], input=archive, check=True)
    return folder


# ---------------------------------------------------------------- table
def cell(peak, wall, how):
    "Peak GB and wall s of one run, or what stopped it."
    if how == 'ok': return f'{peak / GB:.2f} GB', f'{wall:.0f} s'
    if how in ('killed', 'timeout'): return ('> cap (killed)' if how == 'killed' else 'timeout'), f'{wall:.0f} s'
    return how, f'{wall:.0f} s'


def per_audio_second(row, wall, how):
    "Codec rows: wall seconds per second of audio."
    if ROWS[row][0] != 'codec' or how != 'ok': return ''
    return f'{wall / (AUDIO_MINUTES[ROWS[row][1]] * 60) * 1000:.1f} ms'


HEADER = ['row', 'new peak RSS', 'new wall', 'new per audio s', 'old peak RSS', 'old wall', 'old per audio s']

def line(row, new, old):
    "One markdown table line."
    n = [*cell(*new), per_audio_second(row, new[1], new[2])] if new else ['not run'] * 3
    o = [*cell(*old), per_audio_second(row, old[1], old[2])] if old else ['not run'] * 3
    return '| ' + ' | '.join([row, *n, *o]) + ' |'


def write_results(lines:dict, note:str):
    "Replace this script's section of RESULTS.md, keeping the other sections and the lines of rows not run now."
    text = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n'
    old_lines = {}
    if START in text:
        before, rest = text.split(START, 1)
        section, after = rest.split(END, 1) if END in rest else (rest, '')
        for l in section.splitlines():
            if l.startswith('| ') and not l.startswith('| row') and not l.startswith('| ---'): old_lines[l.split('|')[1].strip()] = l
    else: before, after = text.rstrip('\n') + '\n\n', '\n'
    merged = {r: lines.get(r, old_lines.get(r)) for r in ROWS if r in lines or r in old_lines}
    table = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER), *merged.values()]
    body = '\n'.join(['## Memory: peak RSS and wall time per command (`benchmarks/memory.py`)', '', note, '', *table])
    RESULTS.write_text(before + START + '\n' + body + '\n' + END + after)
    return '\n'.join(table)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', default=','.join(ROWS), help=f'comma-separated subset of: {", ".join(ROWS)}')
    ap.add_argument('--skip-old', action='store_true', help='do not run the old code')
    ap.add_argument('--old-rev', default=OLD_REV, help='git revision of the old code')
    ap.add_argument('--cap-gb', type=float, default=6., help='kill a child whose RSS passes this')
    ap.add_argument('--timeout', type=float, default=3600., help='kill a child running longer than this (s)')
    ap.add_argument('--keep', help='folder for the test media (kept between runs); default: a temp folder')
    a = ap.parse_args()
    rows = [r.strip() for r in a.rows.split(',') if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad: ap.error(f'unknown rows {bad}; known: {list(ROWS)}')
    scratch = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix='vgsg_memory_'))
    media = make_media(scratch / 'media', sorted({ROWS[r][1] for r in rows}))
    old = None if a.skip_old else old_tree(a.old_rev, scratch)
    cap = int(a.cap_gb * GB)
    lines = {}
    for r in rows:
        new = measure(r, media, ROOT, cap, a.timeout, scratch)
        print(f'{r} new: {cell(*new)}', flush=True)
        was = measure(r, media, old, cap, a.timeout, scratch) if old else None
        if was: print(f'{r} old: {cell(*was)}', flush=True)
        lines[r] = line(r, new, was)
    note = (f'{os.cpu_count()} cores (shared; load average {os.getloadavg()[0]:.1f} at the end), torch threads = cores, '
            f'children niced and capped at {a.cap_gb:g} GB RSS (address space {a.cap_gb + 2:g} GB). "old" = git revision '
            f'{a.old_rev}, "new" = this working tree. Media: H.264 (B-frames) + AAC, 1920×1080 × 1.6 s and 4000×3000 × 2 s; '
            'generate uses the bundled models (`vgsg/assets/models`), prepare ResNet-50 features (`--features resnet50`); the codec rows '
            'are `codec encode` + `codec decode` of synthetic 22.05 kHz speech-like audio (wall time summed, peak the larger).')
    print(write_results(lines, note))
    if not a.keep: shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__': main()
