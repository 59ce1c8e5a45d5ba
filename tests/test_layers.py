"""The layering rule, executable: every import of every `vgsg` module (at the top or inside a function, absolute or
relative) goes to the same layer or a lower one (`vgsg.core.layers.LAYERS`), no chain of imports comes back to where it
started, and no module imports another module's private names. `python tests/test_layers.py` prints the module map
(layer → modules → lines) and the import graph."""
import ast, sys
from dataclasses import dataclass
from pathlib import Path
import pytest
from vgsg.core.layers import LAYERS, layer_of

LIB = Path(__file__).resolve().parent.parent/'vgsg'
GENERATED = {'vgsg._modidx'}   # nbdev's symbol index: data, no imports

# Imports that still run against the rule. Each says why and which step of issue 16 removes it. The list can only
# shrink: an entry that no longer occurs fails `test_known_violations_still_occur`, so remove it when it is fixed.
KNOWN_UPWARD = {}    # (importer, imported): why; empty: every import goes down the layers
KNOWN_PRIVATE = {}   # (importer, imported, name): why

@dataclass(frozen=True)
class Import:
    importer:str; imported:str; name:str|None; line:int   # `name`: what `from imported import name` takes (None: `import imported`)

def module_name(path:Path, lib:Path=LIB) -> str:
    "Dotted name of the module in file `path` of the package folder `lib`."
    parts = path.relative_to(lib.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def _is_module(name:str, lib:Path) -> bool:
    rel = Path(*name.split('.')[1:])
    return (lib/rel).with_suffix('.py').is_file() or (lib/rel/'__init__.py').is_file()

def imports_in(source:str, module:str, is_package:bool=False, lib:Path=LIB) -> list:
    "Every import of the package's own modules in `source` (module `module`), at any depth, relative ones resolved."
    top, out = module.split('.')[0], []
    pkg = module if is_package else module.rpartition('.')[0]
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Import):
            out += [Import(module, a.name, None, n.lineno) for a in n.names if a.name.split('.')[0] == top]
        elif isinstance(n, ast.ImportFrom):
            base = '.'.join(pkg.split('.')[:len(pkg.split('.')) - n.level + 1]) if n.level else ''
            target = '.'.join(p for p in (base, n.module) if p)
            if target.split('.')[0] != top: continue
            for a in n.names:   # `from vgsg import data` imports the module vgsg.data
                sub = f'{target}.{a.name}'
                out.append(Import(module, sub, None, n.lineno) if _is_module(sub, lib) else Import(module, target, a.name, n.lineno))
    return out

def library_files(lib:Path=LIB) -> dict:
    "{module name: file} of every module of the package."
    return {module_name(p, lib): p for p in sorted(lib.rglob('*.py')) if module_name(p, lib) not in GENERATED}

def all_imports(lib:Path=LIB) -> list:
    return [i for m, p in library_files(lib).items() for i in imports_in(p.read_text(), m, p.name == '__init__.py', lib)]

def upward(imports:list) -> dict:
    "{(importer, imported): [lines]} of the imports of a higher layer."
    out = {}
    for i in imports:
        if layer_of(i.imported) > layer_of(i.importer): out.setdefault((i.importer, i.imported), []).append(i.line)
    return out

def private(imports:list) -> set:
    "(importer, imported, name) of every private name taken from another module."
    return {(i.importer, i.imported, i.name) for i in imports
            if i.name and i.name.startswith('_') and not i.name.startswith('__') and i.imported != i.importer}

def graph(imports:list) -> dict:
    "{module: set of the modules it imports} (self-imports and the package's own __init__ as a parent left out)."
    g = {}
    for i in imports:
        if i.imported != i.importer and not i.importer.startswith(i.imported + '.'): g.setdefault(i.importer, set()).add(i.imported)
    return g

def cycles(g:dict) -> list:
    "The strongly connected components of more than one module (Tarjan), each sorted: the import cycles."
    index, low, stack, on, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(set(g) | {w for ws in g.values() for w in ws}):
        if v not in index: visit(v)
    return out

# ---------------------------------------------------------------------------------------------------- the rule on vgsg
def test_every_module_has_a_layer():
    for m in library_files():
        layer_of(m)   # raises ValueError naming a module the table lacks

def test_no_upward_imports_beyond_the_known():
    new = {k: v for k, v in upward(all_imports()).items() if k not in KNOWN_UPWARD}
    assert not new, 'imports of a higher layer: ' + '; '.join(f'{a} → {b} (lines {ls})' for (a, b), ls in new.items())

def test_no_private_imports_beyond_the_known():
    new = private(all_imports()) - set(KNOWN_PRIVATE)
    assert not new, f'private names imported from another module: {sorted(new)}'

def test_known_violations_still_occur():
    imps = all_imports()
    gone = [k for k in KNOWN_UPWARD if k not in upward(imps)] + [k for k in KNOWN_PRIVATE if k not in private(imps)]
    assert not gone, f'fixed: remove these from the KNOWN lists in tests/test_layers.py: {gone}'

def test_no_import_cycles():
    assert cycles(graph(all_imports())) == []

def test_core_imports_nothing_above_it_and_nothing_imports_the_cli():
    imps = all_imports()
    assert not [i for i in imps if layer_of(i.importer) == 0 and layer_of(i.imported) > 0]
    assert not [i for i in imps if i.imported == 'vgsg.cli']

# ---------------------------------------------------------------------------------------------------- the checker itself
@pytest.fixture
def fake_lib(tmp_path):
    "A package `vgsg` with the modules the checks below resolve imports against."
    lib = tmp_path/'vgsg'
    for f in ('__init__.py', 'audio.py', 'cli.py', 'core/__init__.py', 'core/io.py', 'data.py'):
        (lib/f).parent.mkdir(parents=True, exist_ok=True); (lib/f).write_text('')
    return lib

def test_finds_every_kind_of_import(fake_lib):
    src = ("from .core.io import atomic_write\nimport vgsg.data\nimport numpy\n"
           "def f():\n    from vgsg.cli import main\n    from . import data\n    from ..x import y\n")
    got = imports_in(src, 'vgsg.audio', lib=fake_lib)
    assert {(i.imported, i.name, i.line) for i in got} == {('vgsg.core.io', 'atomic_write', 1), ('vgsg.data', None, 2), ('vgsg.cli', 'main', 5), ('vgsg.data', None, 6)}
    assert {(i.imported, i.name) for i in imports_in('from ..audio import _x', 'vgsg.core.io', lib=fake_lib)} == {('vgsg.audio', '_x')}
    assert upward(got) == {('vgsg.audio', 'vgsg.data'): [2, 6], ('vgsg.audio', 'vgsg.cli'): [5]}
    assert private(imports_in('from ..audio import _x', 'vgsg.core.io', lib=fake_lib)) == {('vgsg.core.io', 'vgsg.audio', '_x')}

def test_finds_cycles():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert cycles({'a': {'b'}, 'b': set()}) == []

# ---------------------------------------------------------------------------------------------------- the module map
def module_map() -> str:
    "Markdown: layer → modules → lines, then the import graph (each module's imports of other modules)."
    files, rows = library_files(), ['| layer | module | lines |', '|---|---|---|']
    for i, (layer, _) in enumerate(LAYERS):
        for m in sorted(m for m in files if layer_of(m) == i):
            rows.append(f'| {layer} | `{m}` | {len(files[m].read_text().splitlines())} |')
    total = sum(len(p.read_text().splitlines()) for p in files.values())
    rows.append(f'| | **total** | {total} |')
    g, up = graph(all_imports()), upward(all_imports())
    rows += ['', 'Import graph (⚠ = an import of a higher layer, in the KNOWN list):', '']
    for m in sorted(files, key=lambda m: (layer_of(m), m)):
        deps = sorted(g.get(m, ()), key=lambda d: (layer_of(d), d))
        if deps: rows.append(f"- `{m}` → " + ', '.join(f"`{d}`" + (' ⚠' if (m, d) in up else '') for d in deps))
    return '\n'.join(rows)

if __name__ == '__main__':
    print(module_map())
    up, pv, cy = upward(all_imports()), private(all_imports()), cycles(graph(all_imports()))
    print(f'\n{len(up)} upward imports ({len(set(up) - set(KNOWN_UPWARD))} not known), {len(pv)} private imports, {len(cy)} cycles')
    sys.exit(0)
