#!/usr/bin/env python
"""Build the documentation site from `nbs/*.ipynb` without Quarto (`make docs`).

1. **Execute** every notebook in its own process (two at a time), the way `nbdev_test` does: execnb's
   `CaptureShell`, run from `nbs/`, `IN_TEST=1`, skipping `#| eval: false` cells and cells flagged with a
   `tst_flags` flag (`slow`, `notest`). Before running, nbdev's own `add_show_docs` processor inserts a
   `show_doc(...)` cell after every exported function/class, so the API documentation is computed from the
   live objects. A failing cell does not stop the notebook (the error is shown on the page); a notebook that
   runs past its time budget is stopped there. Results are cached per notebook, keyed by the notebook, the
   library sources and this script (`--force` re-runs everything).
2. **Assemble** page sources: `#| hide` / `#| default_exp` cells are dropped, `#|` directive lines removed,
   `show_doc` outputs become markdown (signature, docstring, docments parameter table), backticked names of
   documented symbols and notebooks become links, and a notebook that failed gets a banner naming the cell.
3. **Render** with Sphinx + MyST-NB (theme Furo, MathJax vendored from PyPI, search built in) into `_docs/`.

Writes `_docs/build_report.json` (per-notebook status, times, errors) and prints a summary.
Exit status: 0 when the site was built (failed notebooks are reported, not fatal, unless `--strict`).
"""
from __future__ import annotations
import argparse, configparser, hashlib, inspect, json, os, re, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT/'docs'
WORK = ROOT/'build'/'docs'            # git-ignored scratch: executed notebooks (cache) and Sphinx sources
OUT = ROOT/'_docs'                    # the site (git-ignored; nbdev's doc_path)
EXEC_DIR, SRC_DIR, DOCTREES = WORK/'exec', WORK/'src', WORK/'doctrees'
SHOWDOC_TAG = 'nbdocs-showdoc'        # cell metadata key marking cells whose markdown output is API documentation

def cfg():
    "The project's settings.ini [DEFAULT] section"
    p = configparser.ConfigParser(); p.read(ROOT/'settings.ini')
    return p['DEFAULT']

def list_notebooks(nbs:Path) -> list[Path]:
    "Notebooks under `nbs`, sorted, skipping private (`_x`), checkpoint and `.notest`-free filtering is not applied"
    res = [p for p in nbs.rglob('*.ipynb')
           if not any(part.startswith(('_', '.')) for part in p.relative_to(nbs).parts)]
    return sorted(res, key=lambda p: (p.stem != 'index', str(p.relative_to(nbs))))

def page_name(nb:Path, nbs:Path) -> str:
    "Sphinx document name of notebook `nb` (its path under nbs/ without suffix)"
    return nb.relative_to(nbs).with_suffix('').as_posix()

# --------------------------------------------------------------------------------------------------------
# API documentation markdown (replaces nbdev's show_doc markdown while the notebook runs)
# --------------------------------------------------------------------------------------------------------
_re_module_prefix = re.compile(r'\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)')

def fmt_anno(a) -> str:
    "Short type annotation: `torch.Tensor` -> `Tensor`, `int | None` kept"
    if a is inspect.Parameter.empty: return ''
    s = a if isinstance(a, str) else inspect.formatannotation(a)
    return _re_module_prefix.sub(r'\1', s.replace("'", ''))

def fmt_default(d) -> str:
    if d is inspect.Parameter.empty: return ''
    s = d.__name__ if inspect.isfunction(d) or inspect.isclass(d) else repr(d)
    return s if len(s) <= 60 else s[:57] + '...'

def fmt_param(p:inspect.Parameter) -> str:
    pre = {p.VAR_POSITIONAL: '*', p.VAR_KEYWORD: '**'}.get(p.kind, '')
    res = pre + p.name
    if p.annotation is not p.empty: res += ':' + fmt_anno(p.annotation)
    if p.default is not p.empty: res += '=' + fmt_default(p.default)
    return res

def signature_str(sym, nm:str) -> str:
    "One-line (or one-param-per-line when long) signature of `sym` as `nm(...) -> ret`"
    try: sig = inspect.signature(sym, eval_str=True)
    except Exception:
        try: sig = inspect.signature(sym)
        except Exception: return ('class ' if inspect.isclass(sym) else '') + nm
    ps = [fmt_param(p) for p in sig.parameters.values() if p.name != 'self']
    ret = '' if sig.return_annotation is sig.empty or inspect.isclass(sym) else ' -> ' + fmt_anno(sig.return_annotation)
    pre = 'class ' if inspect.isclass(sym) else ''
    one = f"{pre}{nm}({', '.join(ps)}){ret}"
    if len(one) <= 96: return one
    body = ''.join(f'    {p},\n' for p in ps)
    return f"{pre}{nm}(\n{body}){ret}"

def _cell_text(s) -> str:
    "Text safe inside a markdown table cell"
    return str(s).replace('\\', '\\\\').replace('|', '\\|').replace('\n', ' ').strip()

def _code(s:str) -> str: return f'`{s}`' if s and '`' not in s else s

def docments_table(sym) -> str:
    "The docments parameter table (Type / Default / Details), as nbdev's show_doc shows it; '' if no docments"
    from fastcore.docments import docments
    try: dm = docments(sym, full=True)
    except Exception: return ''
    dm.pop('self', None)
    ret = dm.pop('return', None) or {}
    empty = inspect.Parameter.empty
    if not any(v.get('docment') for v in dm.values()) and not ret.get('docment'): return ''
    rows = ['|  | **Type** | **Default** | **Details** |', '| -- | -------- | ----------- | ----------- |']
    for nm, v in dm.items():
        kind = v.get('kind')
        pre = '\\*\\*' if kind == inspect.Parameter.VAR_KEYWORD else '\\*' if kind == inspect.Parameter.VAR_POSITIONAL else ''
        rows.append(f"| {pre}{_cell_text(nm)} | {_cell_text(_code(fmt_anno(v.get('anno', empty))))} | "
                    f"{_cell_text(_code(fmt_default(v.get('default', empty))))} | {_cell_text(v.get('docment') or '')} |")
    if ret.get('anno', empty) is not empty or ret.get('docment'):
        rows.append(f"| **Returns** | {_cell_text(_code(fmt_anno(ret.get('anno', empty))))} |  | "
                    f"{_cell_text(ret.get('docment') or '')} |")
    return '\n'.join(rows)

def api_label(page:str, nm:str) -> str:
    "Sphinx label of the API entry for `nm` on `page`"
    return 'api-' + re.sub(r'[^a-z0-9]+', '-', f'{page}-{nm}'.lower()).strip('-')

def api_markdown(sym, nm:str, page:str, title_level:int=3) -> str:
    "MyST markdown for one API entry: label, heading, signature, docstring, docments table"
    doc = inspect.getdoc(sym) or ''
    if inspect.isclass(sym) and not doc: doc = inspect.getdoc(sym.__init__) or ''
    parts = [f'({api_label(page, nm)})=', '#' * title_level + f' {nm}', '',
             '::::{container} nbdocs-api', '```python', signature_str(sym, nm), '```', '']
    if doc: parts += [doc, '']
    tbl = docments_table(sym)
    if tbl: parts += [tbl, '']
    parts.append('::::')
    return '\n'.join(parts)

# --------------------------------------------------------------------------------------------------------
# Worker: execute one notebook (runs in its own process)
# --------------------------------------------------------------------------------------------------------
def docs_before_code(cells:list) -> list:
    "Put the show_doc cells nbdev inserted after an exported cell before it, in definition order"
    res, i = [], 0
    while i < len(cells):
        j = i + 1
        while j < len(cells) and getattr(cells[j], 'has_sd', False): j += 1
        res += list(reversed(cells[i+1:j])) + [cells[i]] if j > i + 1 else [cells[i]]
        i = j
    for k, c in enumerate(res): c.idx_ = k
    return res

def exec_one(src:Path, out_nb:Path, out_json:Path, page:str, budget:float, flags:list[str]):
    "Execute notebook `src` like nbdev_test, keeping outputs; write it to `out_nb` and a status to `out_json`"
    t0 = time.time()
    os.environ['IN_TEST'] = '1'
    os.environ.setdefault('MPLBACKEND', 'Agg')
    from execnb.nbio import read_nb, write_nb, mk_cell
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor
    from nbdev.processors import populate_language, add_show_docs
    from nbdev.frontmatter import _fm2dict, _md2dict
    import nbdev.showdoc as sd

    # API docs as MyST markdown with the docments table (nbdev 2.4.14 + fastcore 1.14 show the signature only)
    def _repr_md(self): return api_markdown(self.sym, self.nm, page, self.title_level)
    sd.BasicMarkdownRenderer._repr_markdown_ = _repr_md

    nb = read_nb(src)
    for i, c in enumerate(nb.cells): c.metadata['nbdocs_cell'] = i   # index in the author's notebook, for reports
    fm = {}
    for c in nb.cells[:3]:
        fm.update(_fm2dict(c.source) if c.cell_type == 'raw' else _md2dict(c.source) if c.cell_type == 'markdown' else {})
    proc = NBProcessor(nb=nb, procs=[populate_language, add_show_docs])   # strips nbdev directive lines
    proc.process()
    for c in nb.cells:
        if getattr(c, 'has_sd', False): c.metadata[SHOWDOC_TAG] = True
        elif c.cell_type == 'code' and re.fullmatch(r'(\s*show_doc\(.*\)\s*;?\s*)+', c.source or '', re.S):
            c.metadata[SHOWDOC_TAG] = True
        c.metadata['nbdocs_directives'] = {k: v for k, v in (getattr(c, 'directives_', None) or {}).items()}

    errors, skipped, status = [], 0, 'ok'
    skip_exec = str(fm.get('skip_exec', '')).lower() in ('true', '1', 'yes')
    def no_eval(cell):
        if cell.cell_type != 'code' or not (cell.source or '').strip(): return True
        if 'nbdev_export' + '(' in cell.source: return True
        d = cell.directives_ or {}
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(set(flags) & d.keys())

    if not skip_exec:
        k = CaptureShell(src, mpl_format='png')
        k.run_cell('from nbdev.showdoc import show_doc')
        cwd = os.getcwd(); os.chdir(src.parent)
        try:
            for cell in nb.cells:
                if no_eval(cell):
                    if cell.cell_type == 'code': skipped += 1
                    continue
                left = budget - (time.time() - t0)
                if left < 1:
                    status = 'timeout'
                    errors.append(dict(cell=cell.metadata.get('nbdocs_cell'), ename='TimeoutError',
                                       evalue=f'time budget of {budget:.0f} s used up; later cells were not run',
                                       source=cell.source[:300]))
                    break
                k.timeout = max(1, int(left))
                k.cell(cell)
                if k.exc is not None:
                    e = k.exc
                    ename = type(e).__name__
                    if ename == 'TimeoutError': status = 'timeout'
                    msg = str(e) or (f'the notebook ran past its time budget of {budget:.0f} s (DOCS_NB_TIMEOUT)'
                                     if status == 'timeout' else '')
                    errors.append(dict(cell=cell.metadata.get('nbdocs_cell'), ename=ename, evalue=msg[:500],
                                       source=cell.source[:300], showdoc=bool(cell.metadata.get(SHOWDOC_TAG))))
                    k.exc = None
                    if status == 'timeout': break
        finally: os.chdir(cwd)
        if errors and status == 'ok': status = 'error'
    else: status = 'skipped'
    nb.cells = docs_before_code(nb.cells)   # after running: show_doc needs the definition first
    # the API entries that really rendered: (name, label) pairs, for links from other pages
    syms = [m.groups()[::-1] for c in nb.cells if c.metadata.get(SHOWDOC_TAG) for o in c.get('outputs', [])
            for m in re.finditer(r'^\((api-[\w-]+)\)=\n#+ (\S+)', ''.join(o.get('data', {}).get('text/markdown', '')), re.M)]
    for c in nb.cells: c.pop('directives_', None); c.pop('has_sd', None)
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_nb.with_suffix('.tmp')
    write_nb(nb, tmp); os.replace(tmp, out_nb)
    res = dict(page=page, status=status, errors=errors, skipped_cells=skipped, syms=syms,
               seconds=round(time.time() - t0, 1), title=fm.get('title'), description=fm.get('description'))
    out_json.write_text(json.dumps(res, indent=1))

# --------------------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------------------
_EXEC_CODE = [fmt_anno, fmt_default, fmt_param, signature_str, _cell_text, _code, docments_table, api_label,
              api_markdown, docs_before_code, exec_one]

def lib_modules(text:str, lib:str, pkg:str='') -> set[str]:
    "Modules of the library `lib` that `text` imports, dotted below it (`audio`, `core.io`); `pkg`: the package of `text`"
    res = set(re.findall(rf'(?:from|import)\s+{lib}\.([\w.]+)', text))
    parts = pkg.split('.') if pkg else []
    for dots, mod, names in re.findall(rf'from\s+(\.+|{lib}\b\.?)([\w.]*)\s+import\s+(\([\w\s,]+\)|[\w \t,]+)', text):
        base = parts[:len(parts) - len(dots) + 1] if dots.startswith('.') else []
        m = '.'.join(base + ([mod] if mod else []))
        if m: res.add(m)
        res |= {f'{m}.{n}' if m else n for n in re.findall(r'\w+', names)}   # `from . import data`: maybe modules
    return res

def module_file(lib_dir:Path, m:str) -> Path:
    "The file of module `m` (dotted below the library): `core.io` -> core/io.py, `core` -> core/__init__.py"
    p = lib_dir.joinpath(*m.split('.'))
    return p.with_suffix('.py') if p.with_suffix('.py').exists() else p/'__init__.py'

def lib_closure(nb:Path) -> list[Path]:
    "The library files a notebook depends on: the modules it imports, and theirs, transitively"
    lib = cfg().get('lib_name', 'vgsg'); lib_dir = ROOT/cfg().get('lib_path', lib)
    todo, seen = lib_modules(nb.read_text(errors='replace'), lib) | {'__init__'}, set()
    while todo:
        m = todo.pop()
        f = lib_dir/'__init__.py' if m == '__init__' else module_file(lib_dir, m)
        if m in seen or not f.exists(): continue
        pkg = m if f.name == '__init__.py' and m != '__init__' else m.rpartition('.')[0]
        seen.add(m); todo |= lib_modules(f.read_text(errors='replace'), lib, pkg)
    return sorted({lib_dir/'__init__.py' if m == '__init__' else module_file(lib_dir, m) for m in seen})

def data_deps(nb:Path, dirs=('data', 'configs', 'vgsg/assets')) -> list[Path]:
    "Bundled files (weights, media, configs) whose file or folder name the notebook or its modules mention"
    text = nb.read_text(errors='replace') + ''.join(p.read_text(errors='replace') for p in lib_closure(nb))
    res = []
    for d in dirs:
        for p in sorted((ROOT/d).rglob('*')) if (ROOT/d).is_dir() else []:
            if not p.is_file(): continue
            folder = p.parent.name if len(p.relative_to(ROOT/d).parts) > 2 else ''   # vgsg/assets/models/<name>/file
            if p.name in text or (folder and folder in text): res.append(p)
    return res

def cache_key(nb:Path) -> str:
    "Hash of what a notebook's outputs depend on: itself, the library modules it imports, the executing code, the flags"
    h = hashlib.sha256(nb.read_bytes())
    for p in lib_closure(nb): h.update(p.name.encode()); h.update(p.read_bytes())
    for p in data_deps(nb): st = p.stat(); h.update(f'{p.relative_to(ROOT)}:{st.st_size}:{st.st_mtime_ns}'.encode())
    for f in _EXEC_CODE: h.update(inspect.getsource(f).encode())   # the code that runs notebooks, not the rest
    h.update(cfg().get('tst_flags', '').encode())
    return h.hexdigest()[:20]

def run_notebooks(nbs_dir:Path, nbs:list[Path], force:bool, workers:int, budget:float) -> dict[str, dict]:
    "Execute (or take from cache) every notebook; returns page -> status dict"
    flags = cfg().get('tst_flags', '').split()
    EXEC_DIR.mkdir(parents=True, exist_ok=True)
    def one(nb:Path):
        page = page_name(nb, nbs_dir)
        out_nb, out_json = EXEC_DIR/f'{page}.ipynb', EXEC_DIR/f'{page}.json'
        out_json.parent.mkdir(parents=True, exist_ok=True)
        key = cache_key(nb)
        if not force and out_json.exists() and out_nb.exists():
            st = json.loads(out_json.read_text())
            if st.get('key') == key and st['status'] in ('ok', 'skipped'):
                print(f"  {page:<24} {st['status']:<8} (cached)", flush=True)
                st['cached'] = True; return page, st
        out_json.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), '--exec-one', str(nb), str(out_nb), str(out_json),
               '--page', page, '--budget', str(budget), '--flags', ' '.join(flags)]
        t0 = time.time()
        try:
            p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=budget + 60)
            log = p.stdout[-4000:] + p.stderr[-4000:]
        except subprocess.TimeoutExpired as e:
            log = f'killed after {budget + 60:.0f} s'
        if out_json.exists(): st = json.loads(out_json.read_text())
        else:   # the worker died (crash, kill, import error): render the notebook unexecuted
            st = dict(page=page, status='crashed', syms=[], skipped_cells=0, seconds=round(time.time() - t0, 1),
                      errors=[dict(cell=None, ename='ExecutionFailed', evalue=log.strip()[-1500:] or 'no output', source='')])
            shutil.copy(nb, out_nb)
        st['key'], st['cached'] = key, False
        out_json.write_text(json.dumps(st, indent=1))
        print(f"  {page:<24} {st['status']:<8} {st['seconds']:6.1f} s" +
              (f"  {st['errors'][0]['ename']}: {st['errors'][0]['evalue'][:100]!r}" if st['errors'] else ''), flush=True)
        return page, st
    with ThreadPoolExecutor(workers) as ex: return dict(ex.map(one, nbs))

# ---------------- assembling page sources ----------------
_re_fence = re.compile(r'^(```|~~~)', re.M)
_re_callout = re.compile(r'^:::\s*\{\.callout-(\w+)[^}]*\}\s*$', re.M)
_callouts = dict(note='note', tip='tip', warning='warning', important='important', caution='caution')

def linkify(md:str, links:dict[str, str]) -> str:
    "Turn `` `name` `` / `` `name()` `` outside code fences into links when `name` is a documented symbol or page"
    parts = re.split(r'(^```.*?^```[ \t]*$)', md, flags=re.M | re.S)
    def sub(m):
        name, call = m.group(1), m.group(2) or ''
        tgt = links.get(name)
        return f'[`{name}{call}`]({tgt})' if tgt else m.group(0)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r'(?<![\[\w`])`([A-Za-z0-9_][\w.]*)(\(\))?`(?![\]\w`(])', sub, parts[i])
    return ''.join(parts)

def fix_markdown(md:str) -> str:
    "Quarto-isms -> MyST: callouts become admonitions"
    return _re_callout.sub(lambda m: ':::{' + _callouts.get(m.group(1), 'note') + '}', md)

def strip_directives(src:str) -> str:
    "Drop leading `#|` directive lines (nbdev and Quarto) from a code cell"
    lines = src.splitlines()
    i = 0
    while i < len(lines) and re.match(r'\s*#\s*\|', lines[i]): i += 1
    return '\n'.join(lines[i:]).strip('\n')

_keep_mimes = ('text/html', 'image/png', 'image/jpeg', 'image/svg+xml', 'text/markdown', 'text/latex', 'text/plain')

def clean_outputs(outputs:list) -> list:
    "Keep static MIME types; an ipywidget becomes a short note (widgets need a live kernel)"
    res = []
    for o in outputs:
        if o.get('output_type') in ('display_data', 'execute_result'):
            data = o.get('data', {})
            if 'application/vnd.jupyter.widget-view+json' in data:
                data = {'text/html': ['<p class="nbdocs-widget">Interactive widget: open this notebook in Jupyter to use it.</p>']}
            o['data'] = {k: v for k, v in data.items() if k in _keep_mimes}
            if not o['data']: continue
        res.append(o)
    return res

def md_cell(src:str) -> dict: return dict(cell_type='markdown', metadata={}, source=src)

def finish_cells(cells:list) -> list:
    "Give every cell an id and keep only the first of duplicate API labels on a page"
    seen = set()
    for i, c in enumerate(cells):
        c['id'] = f'c{i:04d}'
        if c['cell_type'] == 'markdown':
            def drop_dup(m):
                if m.group(1) in seen: return ''
                seen.add(m.group(1)); return m.group(0)
            c['source'] = re.sub(r'^\(([\w-]+)\)=\n', drop_dup, c['source'], flags=re.M)
    return cells

def assemble_page(nb:dict, st:dict, page:str, links:dict, pages:list[str]) -> dict:
    "Turn an executed notebook into the page source Sphinx renders"
    cells = []
    for c in nb['cells']:
        src = ''.join(c.get('source', ''))
        d = c.get('metadata', {}).get('nbdocs_directives', {}) or {}
        if c['cell_type'] == 'raw': continue
        if c['cell_type'] == 'markdown':
            if src.strip(): cells.append(md_cell(linkify(fix_markdown(src), links)))
            continue
        if 'hide' in d or 'default_exp' in d or [a.lower() for a in d.get('include:', [])] == ['false']: continue
        if re.search(r'^\s*#\s*\|\s*hide\s*$', src, re.M): continue
        outs = clean_outputs(c.get('outputs', []))
        if 'output:' in d and d['output:'] and d['output:'][0].lower() == 'false': outs = [o for o in outs if o.get('output_type') == 'error']
        if c.get('metadata', {}).get(SHOWDOC_TAG):
            mds = [''.join(o['data']['text/markdown']) for o in outs if 'text/markdown' in o.get('data', {})]
            errs = [o for o in outs if o.get('output_type') == 'error']
            cells += [md_cell(linkify(m, links)) for m in mds]
            if errs: cells.append(dict(cell_type='code', metadata={}, source=strip_directives(src), outputs=errs, execution_count=None))
            continue
        code = strip_directives(src)
        meta = {}
        if 'echo:' in d and d['echo:'] and d['echo:'][0].lower() == 'false': meta['tags'] = ['remove-input']
        if not code.strip() and not outs: continue
        cells.append(dict(cell_type='code', metadata=meta, source=code, outputs=outs, execution_count=None))
    # a heading is needed for the page title
    if not any(c['cell_type'] == 'markdown' and re.match(r'\s*#\s+\S', ''.join(c['source'])) for c in cells[:3]):
        cells.insert(0, md_cell(f"# {st.get('title') or page}"))
    if st['status'] not in ('ok', 'skipped'):
        e = st['errors'][0] if st['errors'] else {}
        where = (f"cell {e.get('cell')} of the notebook" + (' (its API documentation)' if e.get('showdoc') else '')
                 if e.get('cell') is not None else 'start-up')
        n = len(st['errors'])
        first = (e.get('source') or '').strip().splitlines()[:1]
        msg = (f":::{{error}}\n**This notebook failed to execute during the documentation build** "
               f"({st['status']}; {n} error{'s' * (n != 1)}; the first in {where}: "
               f"`{e.get('ename', '')}: {str(e.get('evalue', ''))[:160].replace('`', '')}`"
               + (f", in the cell starting `{first[0][:80].replace('`', '')}`" if first else '') +
               "). Outputs after it may be missing; each error is shown where it happened.\n:::")
        cells.insert(1, md_cell(msg))
    if page == 'index':
        toc = '\n'.join(p for p in pages if p != 'index')
        cells.append(md_cell(f"```{{toctree}}\n:hidden:\n:caption: Notebooks\n:maxdepth: 1\n\n{toc}\n```"))
    meta = dict(nb.get('metadata', {}))
    meta.pop('widgets', None)
    meta['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    meta.setdefault('language_info', dict(name='python'))
    return dict(cells=finish_cells(cells), metadata=meta, nbformat=4, nbformat_minor=5)

_re_img = re.compile(r'!\[[^\]]*\]\(([^)\s]+)|<img[^>]+src=["\']([^"\']+)')

def copy_assets(md_sources:list[str], nbs_dir:Path, page_dir:Path, dest_dir:Path):
    "Copy local images referenced from markdown cells next to the page source"
    for md in md_sources:
        for m in _re_img.finditer(md):
            ref = m.group(1) or m.group(2)
            if re.match(r'^(\w+:|/|#|data:)', ref): continue
            src = (page_dir/ref).resolve()
            if src.is_file() and nbs_dir in src.parents:
                dst = dest_dir/src.relative_to(nbs_dir)
                dst.parent.mkdir(parents=True, exist_ok=True); shutil.copy(src, dst)

def assemble(nbs_dir:Path, nbs:list[Path], statuses:dict):
    if SRC_DIR.exists(): shutil.rmtree(SRC_DIR)
    SRC_DIR.mkdir(parents=True)
    pages = [page_name(nb, nbs_dir) for nb in nbs]
    links = {}
    lib = cfg().get('lib_name', 'vgsg')
    for page in pages:   # notebook names: `00_audio` -> its page; module names: `vgsg.audio` -> its notebook's page
        tgt = f'{Path(page).name}.ipynb' if '/' not in page else f'/{page}.ipynb'
        links.setdefault(Path(page).name, tgt)
        if statuses[page].get('module'): links.setdefault(f"{lib}.{statuses[page]['module']}", tgt)
    for page in pages:
        for s, label in (x for x in statuses[page]['syms'] if isinstance(x, (list, tuple))):
            tgt = f'#{label}'
            for alias in {s, s.split('.')[-1]} if '.' in s else {s}: links.setdefault(alias, tgt)
            mod = statuses[page].get('module')
            if mod: links.setdefault(f'{lib}.{mod}.{s}', tgt)
    for nb_path in nbs:
        page = page_name(nb_path, nbs_dir)
        nb = json.loads((EXEC_DIR/f'{page}.ipynb').read_text())
        out = assemble_page(nb, statuses[page], page, links, pages)
        dst = SRC_DIR/f'{page}.ipynb'
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(out, indent=1))
        copy_assets([''.join(c['source']) for c in out['cells'] if c['cell_type'] == 'markdown'],
                    nbs_dir, nb_path.parent, SRC_DIR)

def module_of(nb:Path) -> str|None:
    m = re.search(r'#\|\s*default_exp\s+(\S+)', nb.read_text())
    return m.group(1) if m else None

def sphinx(quiet:bool=True) -> tuple[int, str]:
    if OUT.exists(): shutil.rmtree(OUT)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-E', '-c', str(DOCS), '-d', str(DOCTREES),
           '-w', str(WORK/'sphinx-warnings.txt'), '-j', 'auto', str(SRC_DIR), str(OUT)]
    if quiet: cmd.insert(3, '-q')
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--exec-one', nargs=3, metavar=('SRC', 'OUT_NB', 'OUT_JSON'), help=argparse.SUPPRESS)
    ap.add_argument('--page', help=argparse.SUPPRESS)
    ap.add_argument('--flags', default='', help=argparse.SUPPRESS)
    ap.add_argument('--budget', type=float, default=float(os.environ.get('DOCS_NB_TIMEOUT', 300)),
                    help='seconds one notebook may run before it is stopped (default 300, env DOCS_NB_TIMEOUT)')
    ap.add_argument('--workers', type=int, default=int(os.environ.get('DOCS_WORKERS', 2)), help='notebooks run at once (2)')
    ap.add_argument('--force', action='store_true', help='re-execute every notebook (ignore the cache)')
    ap.add_argument('--strict', action='store_true', help='exit 1 when a notebook failed to execute')
    ap.add_argument('notebooks', nargs='*', help='only these notebooks (names or paths); default: all of nbs/')
    a = ap.parse_args()
    if a.exec_one:
        src, out_nb, out_json = map(Path, a.exec_one)
        return exec_one(src.resolve(), out_nb, out_json, a.page, a.budget, a.flags.split())

    t0 = time.time()
    nbs_dir = ROOT/cfg().get('nbs_path', 'nbs')
    nbs = list_notebooks(nbs_dir)
    if not nbs: sys.exit(f'no notebooks under {nbs_dir}')
    print(f'Executing {len(nbs)} notebooks ({a.workers} at a time, budget {a.budget:.0f} s each; cached ones are reused)', flush=True)
    sel = {Path(n).stem for n in a.notebooks}
    todo = [nb for nb in nbs if not sel or nb.stem in sel]
    statuses = run_notebooks(nbs_dir, todo, a.force, a.workers, a.budget)
    for nb in nbs:   # notebooks not selected: take whatever was executed last
        page = page_name(nb, nbs_dir)
        if page not in statuses:
            j = EXEC_DIR/f'{page}.json'
            if not j.exists(): statuses.update(run_notebooks(nbs_dir, [nb], False, 1, a.budget))
            else: statuses[page] = json.loads(j.read_text())
        statuses[page]['module'] = module_of(nb)
    t_exec = time.time() - t0
    print('Assembling page sources', flush=True)
    assemble(nbs_dir, nbs, statuses)
    print('Rendering the site with Sphinx', flush=True)
    t1 = time.time()
    rc, log = sphinx()
    t_sphinx = time.time() - t1
    if log.strip(): print(log[-6000:])
    if rc != 0: sys.exit(f'sphinx-build failed (exit {rc}); warnings in {WORK/"sphinx-warnings.txt"}')
    failed = {p: s for p, s in statuses.items() if s['status'] not in ('ok', 'skipped')}
    report = dict(pages=len(nbs), seconds=round(time.time() - t0, 1), exec_seconds=round(t_exec, 1),
                  sphinx_seconds=round(t_sphinx, 1), failed=sorted(failed),
                  notebooks={p: {k: v for k, v in s.items() if k != 'syms'} | {'n_api': len(s['syms'])}
                             for p, s in statuses.items()})
    (OUT/'build_report.json').write_text(json.dumps(report, indent=1))
    print(f"\nSite: {OUT/'index.html'}  ({len(nbs)} notebook pages, {report['seconds']:.0f} s: "
          f"notebooks {t_exec:.0f} s, Sphinx {t_sphinx:.0f} s)")
    if failed:
        print('\nNOTEBOOKS THAT FAILED TO EXECUTE (rendered with their errors shown):')
        for p, s in failed.items():
            e = s['errors'][0] if s['errors'] else {}
            print(f"  {p}: {s['status']}, first error in cell {e.get('cell')}: {e.get('ename')}: {str(e.get('evalue'))[:200]}")
        if a.strict: sys.exit(1)

if __name__ == '__main__': main()
