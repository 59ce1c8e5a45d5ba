"The vgsg console script end to end on the tiny synthetic set, and its bad-input answers."
import subprocess, sys
from pathlib import Path
import pandas as pd

VGSG = str(Path(sys.executable).parent / 'vgsg')


def run(*args):
    return subprocess.run([VGSG, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_toy_then_prepare_with_a_broken_video(tmp_path):
    done = run('toy', tmp_path / 'toy', '--size', 'tiny')
    assert done.returncode == 0, done.stderr
    videos = sorted((tmp_path / 'toy').rglob('*.mp4'))
    assert len(videos) == 16
    (videos[0].parent / 'broken.mp4').write_text('not a video')
    done = run('prepare', tmp_path / 'toy', tmp_path / 'prep', '--features', 'pixels', '--n-feats', '5')
    assert done.returncode == 0, done.stderr
    assert 'prepared 16 of 17 clips' in done.stdout
    assert 'skipped' in done.stderr and 'broken' in done.stderr
    manifest = pd.read_csv(tmp_path / 'prep' / 'manifest.csv')
    assert (manifest['status'] == 'ok').sum() == 16


def test_bad_inputs_give_one_line_and_exit_2(tmp_path):
    for args, reason in [(('mel', tmp_path / 'missing.wav'), 'no such file'),
                         (('prepare', tmp_path / 'nothing', tmp_path / 'o'), 'no such folder'),
                         (('train', 'codebook', '-c', tmp_path / 'none.yaml'), 'no such config file')]:
        done = run(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert reason in done.stderr and 'Traceback' not in done.stderr
