"""Sections of benchmarks/RESULTS.md: each benchmark script replaces its own named section, keeping the others."""
import datetime, os, platform, shlex, sys
from pathlib import Path

RESULTS = Path(__file__).parent / 'RESULTS.md'


def machine() -> str:
    "A one-line description of where a benchmark ran: cores, load, Python and torch, date."
    import torch
    return (f'{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), {platform.machine()}, Python '
            f'{platform.python_version()}, torch {torch.__version__}, {datetime.date.today().isoformat()}')


def md_table(rows:list, cols:list) -> list:
    "Markdown lines of a table of dicts (floats to 4 significant digits)."
    cell = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)
    return ['| ' + ' | '.join(cols) + ' |', '|' + ' --- |' * len(cols)] + ['| ' + ' | '.join(cell(r.get(c, '')) for c in cols) + ' |' for r in rows]


def write_section(key:str, # e.g. 'sampling.py: aligned'
                  title:str, lines:list, argv=None) -> Path:
    "Replace (or append) the section `key` of RESULTS.md with a title, the command, the machine and `lines`."
    argv = sys.argv if argv is None else argv
    body = [f'## {title}', '', f'`python {shlex.join(argv)}` ({machine()})', '', *lines]
    start, end = f'<!-- {key}: start -->', f'<!-- {key}: end -->'
    old = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n'
    block = '\n'.join([start, *body, end])
    new = (old[:old.index(start)] + block + old[old.index(end) + len(end):] if start in old and end in old
           else old.rstrip('\n') + '\n\n' + block + '\n')
    tmp = RESULTS.with_name(f'.RESULTS.{os.getpid()}.tmp')
    tmp.write_text(new); os.replace(tmp, RESULTS)
    return RESULTS
