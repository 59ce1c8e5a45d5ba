"The `vgsg sounds` command on a small sounds folder (no packages are fetched): pack, render + prepare, refusals."
import subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf

VGSG = Path(sys.executable).parent / 'vgsg'
SR = 22050


def run(*args):
    return subprocess.run([VGSG, *map(str, args)], capture_output=True, text=True, timeout=600)


def sounds_folder(root, classes=('melee', 'gun', 'ambience'), per_split=2):
    "A folder as `vgsg sounds build` writes it: clips/*.flac and sounds.csv, recordings in every split."
    (root / 'clips').mkdir(parents=True)
    rows, rng = [], np.random.default_rng(0)
    for c in classes:
        for s in ('train', 'valid', 'test'):
            for i in range(per_split):
                clip = f'{c}_{s}_{i}'
                t = np.arange(int(0.6 * SR)) / SR
                sf.write(str(root / 'clips' / f'{clip}.flac'), (0.5 * np.sin(2 * np.pi * rng.uniform(100, 900) * t) * np.exp(-5 * t)).astype(np.float32), SR)
                rows.append(dict(clip=clip, package='fake-data', version='1', source=f'{clip}.wav', licence='GPL-2+', **{'class': c},
                                 split=s, seconds=0.6, status='ok'))
    pd.DataFrame(rows).to_csv(root / 'sounds.csv', index=False)
    return root


def test_pack_and_av(tmp_path):
    snd = sounds_folder(tmp_path / 'sounds')
    done = run('sounds', 'pack', snd, tmp_path / 'packed')
    assert done.returncode == 0, done.stderr
    assert 'packed into 3 windows' in done.stdout
    assert len(list((tmp_path / 'packed' / 'melspec_10s_22050hz').glob('*_mel.npy'))) == 3
    done = run('sounds', 'av', snd, tmp_path / 'av', '--clips-per-class', '7', '--prepare', tmp_path / 'prepared')
    assert done.returncode == 0, done.stderr
    assert 'wrote 21 semi-real clips (3 classes)' in done.stdout
    man = pd.read_csv(tmp_path / 'prepared' / 'manifest.csv')
    assert (man['status'] == 'ok').all() and set(man['split']) == {'train', 'valid', 'test'}
    clips = pd.read_csv(tmp_path / 'av' / 'clips.csv')
    for _, r in clips.iterrows():                       # a clip sounds only recordings of its own split
        assert all(f"_{r['split']}_" in rec for rec in r['recordings'].split())


def test_refusals(tmp_path):
    done = run('sounds', 'build', tmp_path / 'x', '--packages', 'ufoai-sound', '--cache', tmp_path / 'cache')
    assert done.returncode == 2 and 'ufoai-sound: held out for evaluation' in done.stderr and 'Traceback' not in done.stderr
    assert not (tmp_path / 'cache').exists()              # nothing fetched
    done = run('sounds', 'pack', tmp_path / 'nothing', tmp_path / 'out')
    assert done.returncode == 2 and 'sounds.csv' in done.stderr and 'Traceback' not in done.stderr
