"The notebooks as a reader gets them: small, with their outputs kept, and nothing in them about this machine or run."
import json, re
from pathlib import Path
import pytest

NBS = sorted((Path(__file__).resolve().parent.parent/'nbs').glob('*.ipynb'))
MACHINE = re.compile(r'/tmp/tmp\w{8}|/work/|/root/|\d+(\.\d+)? ?it/s')   # a run's temporary folders, home folders, progress bars


def outputs(path:Path) -> list:
    return [o for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]


def text_of(o:dict) -> str:
    return ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))


@pytest.mark.parametrize('path', NBS, ids=lambda p: p.stem)
def test_small_and_clean(path):
    assert path.stat().st_size < 1_500_000, f'{path.name}: {path.stat().st_size:,} bytes'
    for o in outputs(path):
        assert not (o['output_type'] == 'stream' and o.get('name') == 'stderr'), f'{path.name}: a stderr output was kept'
        assert not MACHINE.search(text_of(o)), f'{path.name}: {MACHINE.search(text_of(o))[0]!r} in an output'


def test_the_pictures_are_kept():
    "The notebooks that draw keep their figures (scripts/execute_notebooks.py, `make outputs`)."
    drawn = {p.stem for p in NBS for o in outputs(p) if 'image/png' in o.get('data', {})}
    assert {'00_audio', '04_vqgan', '07a_sample', '10_pipeline'} <= drawn, drawn
