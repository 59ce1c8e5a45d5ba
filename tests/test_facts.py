"The facts page (nbs/facts.ipynb): every 'facts §X' citation in the notebooks, the package and the tests names one of its sections, and every link to it lands on a heading."
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'

def slug(title:str) -> str:
    "The anchor GitHub and MyST give a heading: lower case, spaces to '-', other non-word characters dropped"
    return re.sub(r'[^\w\- ]', '', title.lower().replace(' ', '-'))

def headings() -> list:
    nb = json.loads((NBS / 'facts.ipynb').read_text())
    return [m.group(1).strip() for c in nb['cells'] if c['cell_type'] == 'markdown'
            for m in re.finditer(r'^#{2,3} (.+)$', ''.join(c['source']), re.M)]

SECTIONS = {m.group(1) for h in headings() if (m := re.match(r'§(\d+(?:\.\d+)*) ', h))}
SURPRISES = {m.group(1) for h in headings() if (m := re.match(r'Surprise (\d+):', h))}
ANCHORS = {slug(h) for h in headings()}
SOURCES = sorted(p for p in NBS.glob('*.ipynb') if p.name != 'facts.ipynb')

def texts():
    "(where, text, is_markdown) for every notebook cell and every .py file of vgsg/ and tests/"
    for p in SOURCES:
        for i, c in enumerate(json.loads(p.read_text())['cells']):
            yield f'{p.name} cell {i}', ''.join(c['source']), c['cell_type'] == 'markdown'
    for p in sorted((ROOT / 'vgsg').rglob('*.py')) + sorted((ROOT / 'tests').glob('*.py')):
        yield str(p.relative_to(ROOT)), p.read_text(), False

ITEM = r'(§\d+(?:\.\d+)*|surprise\s+#?\d+)'
CITE = re.compile(r'facts,?\s+' + ITEM + r'((?:(?:,|\s+and)\s+' + ITEM + r')*)')

def test_page_has_every_section():
    assert {'1', '1.1', '1.2', '1.3', '2.1', '2.2', '2.3', '3.1', '3.6', '4.1', '4.5', '5', '6', '7', '8', '9'} <= SECTIONS
    assert SURPRISES == {str(i) for i in range(1, 12)}
    assert len(ANCHORS) == len(headings()), 'two headings share an anchor'

def test_citations_name_existing_sections():
    bad = []
    for where, text, _ in texts():
        for m in CITE.finditer(text):
            for item in re.findall(ITEM, m.group(0)):
                n = re.search(r'\d+(?:\.\d+)*', item).group(0)
                if n not in (SURPRISES if item.startswith('surprise') else SECTIONS): bad.append(f'{where}: {m.group(0)!r}')
    assert not bad, 'citations of sections the facts page does not have:\n' + '\n'.join(bad)

def test_markdown_citations_are_links_that_land():
    unlinked, broken = [], []
    for where, text, md in texts():
        if not md: continue
        unlinked += [f'{where}: {m.group(0)!r}' for m in re.finditer(r'(?<!\[)facts,?\s+(?:§\d|surprise\s+#?\d)\S*', text)]
        broken += [f'{where}: #{a}' for a in re.findall(r'\]\(facts\.ipynb#([^)\s]+)\)', text) if a not in ANCHORS]
    assert not unlinked, 'cite the facts page as [facts §X.Y](facts.ipynb#anchor):\n' + '\n'.join(unlinked)
    assert not broken, 'links to anchors the facts page does not have:\n' + '\n'.join(broken)
