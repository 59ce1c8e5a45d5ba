#!/usr/bin/env python
"""Run the notebooks and keep their outputs in them (plots, tables, short audio), so a reader sees them unrun.

    python scripts/execute_notebooks.py               # every notebook in nbs/
    python scripts/execute_notebooks.py 04_vqgan      # only these

Cells run as `nbdev_test` runs them (working directory nbs/, IN_TEST=1; `#| eval: false` cells and cells flagged
with a `tst_flags` flag are skipped and keep no output). Kept: stdout, results and displays; dropped: stderr (progress
bars, warnings), whose text depends on the machine and the moment. A notebook that raises is left as it was and
named at the end (exit 1); one whose file would pass MAX_BYTES is left as it was too. `nbdev_clean` then tidies
the metadata (it keeps outputs: `clear_all = False` in settings.ini).
"""
import os, re, sys, subprocess, tempfile
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.process import NBProcessor
from nbdev.frontmatter import FrontmatterProc

MAX_BYTES = 1_400_000   # under the project's 1.5 MB per notebook, with room for nbdev_clean's changes
ROOT = Path(__file__).resolve().parent.parent


def skipped(cell, flags:set) -> bool:
    "True for a cell nbdev_test does not run."
    if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
    direc = getattr(cell, 'directives_', {}) or {}
    return direc.get('eval:', [''])[0].lower() == 'false' or bool(flags & direc.keys())


TEMP = re.compile(re.escape(tempfile.gettempdir()) + r'/(tmp\w{8}|pytest-of-[^/\s]+/[^/\s]+)')   # a random folder of this run

def scrubbed(text):
    "Text with this run's temporary folders written as `<tmp>` (so outputs do not change from run to run)."
    return TEMP.sub('<tmp>', ''.join(text)) if isinstance(text, (str, list)) else text

def kept(outputs:list) -> list:
    "The outputs a reader should see: everything but the stderr stream, temporary folders scrubbed."
    out = [o for o in outputs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
    for o in out:
        if 'text' in o: o['text'] = scrubbed(o['text'])
        for k in ('text/plain', 'text/html', 'text/markdown'):
            if k in o.get('data', {}): o['data'][k] = scrubbed(o['data'][k])
    return out


def execute(path:Path, flags:set) -> str:
    "Run one notebook and write its outputs into it; returns '' or why it was left as it was."
    raw = read_nb(path)
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    for c in nb.cells:
        if c.cell_type == 'code': c['outputs'] = []   # what the file held: a cell that prints nothing now shows nothing
    shell = CaptureShell(path)
    try:
        with working_directory(path.parent): shell.run_all(nb, exc_stop=True, preproc=lambda c: skipped(c, flags))
    except Exception: return shell.prettytb(fname=path).splitlines()[-1] if shell.exc else 'failed'
    ran = {c.idx_: c for c in nb.cells if c.cell_type == 'code' and not skipped(c, flags)}
    for i, cell in enumerate(raw.cells):
        if cell.cell_type != 'code': continue
        cell['outputs'] = kept(ran[i].get('outputs', [])) if i in ran else []
        cell['execution_count'] = None
    tmp = path.with_suffix('.ipynb.tmp')
    write_nb(raw, tmp)
    if tmp.stat().st_size > MAX_BYTES:
        size = tmp.stat().st_size; tmp.unlink()
        return f'outputs would make it {size:,} bytes (limit {MAX_BYTES:,})'
    tmp.replace(path)
    return ''


def main(names:list) -> int:
    os.environ['IN_TEST'] = '1'
    os.environ.setdefault('MPLBACKEND', 'Agg')
    cfg = get_config()
    flags = set(cfg.tst_flags.split())
    nbs = sorted(cfg.nbs_path.glob('*.ipynb'))
    if names: nbs = [p for p in nbs if p.stem in names]
    failed = {}
    for p in nbs:
        why = execute(p, flags)
        print(f"{p.name}: {'ok' if not why else why}", flush=True)
        if why: failed[p.name] = why
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], cwd=ROOT, check=True)
    if failed: print('left as they were:', ', '.join(failed))
    return 1 if failed else 0


if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
