"""A normal (not editable) install works anywhere: build the wheel, install it into a fresh virtual environment (torch
first, as `make install` does), and from an unrelated folder run `vgsg demo` and load the bundled model set. Minutes
(the environment installs every dependency), so it runs with `make test-slow` (VGSG_SLOW_TESTS=1)."""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not os.environ.get('VGSG_SLOW_TESTS'), reason='minutes: make test-slow (VGSG_SLOW_TESTS=1)')


def sh(*args, cwd=None, env=None, timeout=1800):
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done


def test_wheel_in_a_fresh_venv(tmp_path):
    sh(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', tmp_path/'dist', ROOT)
    wheel, = (tmp_path/'dist').glob('vgsg-*.whl')
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith('codebook_small/config.yaml') for n in names) and any(n.endswith('toy_hammer.mp4') for n in names)
    sh(sys.executable, '-m', 'venv', tmp_path/'venv')
    py = tmp_path/'venv'/'bin'/'python'
    sh(py, '-m', 'pip', 'install', '-q', 'torch==2.13.0')
    sh(py, '-m', 'pip', 'install', '-q', wheel)
    work = tmp_path/'elsewhere'; work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('VGSG_DATA', 'PYTHONPATH')}
    env.update(OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    demo = sh(tmp_path/'venv'/'bin'/'vgsg', 'demo', '-o', 'out', cwd=work, env=env)
    print(demo.stdout)
    assert 'shows the class' in demo.stdout and 'samples match' in demo.stdout, demo.stdout
    assert len(list((work/'out').glob('*_sample*.mp4'))) == 4
    code = ("from vgsg.pipeline import ModelSet, Pipeline; import vgsg, pathlib; pipe = Pipeline(ModelSet.bundled()); "
            "print(pathlib.Path(vgsg.__file__).parent, type(pipe).__name__)")
    done = sh(py, '-c', code, cwd=work, env=env)
    print(done.stdout)
    assert 'site-packages' in done.stdout and 'Pipeline' in done.stdout
