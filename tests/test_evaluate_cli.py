"`vgsg evaluate` end to end on a tiny prepared synthetic split with tiny random models: both modes, resume, bad input."
import contextlib, io, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import tiny_model_set

VGSG = str(Path(sys.executable).parent / 'vgsg')
QUICK = ['--isc-splits', '2', '--kid-subsets', '10']          # a 4-clip split has too few samples for the paper's 10 / 100
METRIC_COLUMNS = ['fid', 'mkl', 'isc_mean', 'isc_std', 'kid_mean', 'kid_std', 'onset_within', 'onset_offset_s',
                  'real_onset_within', 'real_onset_offset_s']


def evaluate(*args) -> tuple:
    "(exit code, stdout, stderr) of `vgsg evaluate ARGS` run in this process."
    from vgsg.cli import main
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(['evaluate', *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A prepared 2-class synthetic set (4 test clips, 5 pixel-feature frames each), a tiny model set, a tiny Melception."
    import torch
    from vgsg.data import make_toy_dataset, prepare_toy
    from vgsg.evaluate import random_melception, prepared_split, real_spec
    from vgsg.core.models import save_model
    root = tmp_path_factory.mktemp('ev')
    make_toy_dataset(root/'toy', classes=('drum', 'bell'), clips_per_class=4, seconds=2., size=16, seed=0,
                     valid=0.25, test=0.5, progress=False)
    prepare_toy(root/'toy', root/'prep', features='pixels', n_feats=5, progress=False)
    test = prepared_split(root/'prep', 'test')
    save_model(root/'mel', random_melception(np.stack([real_spec(test, i) for i in range(len(test))])))
    torch.manual_seed(0)
    return dict(prep=root/'prep', models=tiny_model_set(root/'models'), mel=root/'mel', n_test=len(test),
                out=root/'out', generate=['--models', root/'models', '--data', root/'prep', '-o', root/'out',
                                          '--samples-per-clip', '2', '--top-x', '4', '--batch-size', '2', *QUICK])


@pytest.fixture(scope='module')
def generated(setup):
    "The first `vgsg evaluate --models` run: generates 2 samples per test clip, scores them with the bundled Melception."
    return evaluate(*setup['generate'])


def samples(folder) -> dict:
    return {p: p.stat().st_mtime_ns for p in sorted(Path(folder).rglob('*_sample_*.npy'))}


def test_generate_then_score(setup, generated):
    code, out, err = generated
    assert code == 0, err
    n = setup['n_test']
    assert f'generated {2 * n} samples into' in out and '(0 clips were complete already)' in out
    assert len(samples(setup['out']/'test')) == 2 * n
    df = pd.read_csv(setup['out']/'eval.csv')
    assert len(df) == 1 and set(METRIC_COLUMNS) <= set(df.columns), df.columns
    assert np.isfinite(df[METRIC_COLUMNS].to_numpy(float)).all(), df[METRIC_COLUMNS]
    row = df.iloc[0]
    assert (row.n_fake, row.n_real, row.n_videos, row.split, row.top_k, row.n_samples) == (2 * n, n, n, 'test', 4, 2)
    assert row.models == str(setup['models']) and row.data == str(setup['prep'])
    for c in ('fid', 'mkl', 'isc_mean', 'kid_mean', 'onset_within'): assert f'\n{c} ' in '\n' + out, out   # the printed table


def test_rerun_generates_nothing_new_and_other_settings_are_refused(setup, generated):
    before = samples(setup['out']/'test')
    code, out, err = evaluate(*setup['generate'])
    assert code == 0, err
    assert f"generated 0 samples into {setup['out']/'test'} ({setup['n_test']} clips were complete already)" in out
    assert samples(setup['out']/'test') == before                       # no file written again
    df = pd.read_csv(setup['out']/'eval.csv')
    assert len(df) == 2 and np.allclose(df[METRIC_COLUMNS].iloc[0], df[METRIC_COLUMNS].iloc[1])   # same samples, same numbers
    code, out, err = evaluate(*setup['generate'][:-len(QUICK)], '--top-x', '8', *QUICK)
    assert code == 2 and len(err.splitlines()) == 1 and "other settings (old, new): {'top_k': (4, 8)}" in err, err
    assert samples(setup['out']/'test') == before and len(pd.read_csv(setup['out']/'eval.csv')) == 2


def test_score_a_samples_folder(setup, generated, tmp_path):
    "Mode 1: a copied samples root, another Melception, two metrics; eval.csv lands in the root (or in -o)."
    shutil.copytree(setup['out']/'test', tmp_path/'s'/'test')
    code, out, err = evaluate(tmp_path/'s', '--data', setup['prep'], '--melception', setup['mel'], '--metrics', 'fid,mkl')
    assert code == 0, err
    df = pd.read_csv(tmp_path/'s'/'eval.csv')
    assert {'fid', 'mkl', 'onset_within'} <= set(df.columns) and not {'isc_mean', 'kid_mean'} & set(df.columns)
    assert np.isfinite(df[['fid', 'mkl', 'onset_within']].to_numpy(float)).all() and df.n_fake[0] == 2 * setup['n_test']
    assert df.melception[0] != pd.read_csv(setup['out']/'eval.csv').melception[0]   # scored by the other Melception
    code, out, err = evaluate(tmp_path/'s'/'test', '--data', setup['prep'], '--melception', setup['mel'], *QUICK, '-o', tmp_path/'o')
    assert code == 0 and len(pd.read_csv(tmp_path/'o'/'eval.csv')) == 1, err


def test_bad_input_is_one_line_exit_2_and_writes_nothing(setup, generated, tmp_path):
    (tmp_path/'empty').mkdir()
    shutil.copytree(setup['out']/'test', tmp_path/'s'/'test')
    prep, mel = setup['prep'], ['--melception', setup['mel']]
    cases = [((tmp_path/'missing', '--data', prep), 'missing: no such samples folder'),
             ((tmp_path/'empty', '--data', prep), 'empty: no samples (expected test/cls_<target>/<clip>_sample_<k>.npy files)'),
             ((tmp_path/'s', '--data', tmp_path/'nodata'), 'nodata: no such prepared folder'),
             ((tmp_path/'s', '--data', prep, '--split', 'tset'), "tset.txt: no 'tset' split in this prepared folder"),
             ((tmp_path/'s'/'test', '--data', prep, '--split', 'train', *mel), "settings.json: these are samples of the 'test' split, not of 'train'"),
             ((tmp_path/'s', '--data', prep, *mel), 'too few for ISc over 10 splits'),
             ((tmp_path/'s', '--data', prep, '--seed', '3'), '--seed only apply with --models'),
             (('--models', tmp_path/'nomodels', '--data', prep, '-o', tmp_path/'o'), 'nomodels: no such model folder'),
             (('--models', setup['models'], '--data', prep, '-o', tmp_path/'o', '--split', 'tset'), "no 'tset' split"),
             (('--models', setup['models'], '--data', prep, '-o', tmp_path/'o', '--melception', tmp_path/'nomel'), 'nomel: no such Melception folder')]
    for args, msg in cases:
        code, out, err = evaluate(*args)
        assert code == 2 and len(err.splitlines()) == 1 and msg in err, (args, err)
    assert not (tmp_path/'o').exists() and not (tmp_path/'s'/'eval.csv').exists() and not (tmp_path/'s'/'test'/'eval.csv').exists()


def test_torchrun_shards_the_generation_and_rank_0_scores(setup, generated, tmp_path):
    "The console script under torchrun: each of two processes generates half of the batches; only rank 0 scores."
    args = [a if a != setup['out'] else tmp_path/'out' for a in setup['generate']] + ['--melception', setup['mel']]
    done = subprocess.run([str(Path(sys.executable).parent/'torchrun'), '--nproc_per_node', '2', VGSG, 'evaluate', *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('appended to') == 1 and done.stdout.count('generated ') == 1, done.stdout
    ours, one = samples(tmp_path/'out'/'test'), samples(setup['out']/'test')
    assert [p.relative_to(tmp_path/'out') for p in ours] == [p.relative_to(setup['out']) for p in one]
    assert all(np.array_equal(np.load(a), np.load(b)) for a, b in zip(ours, one))
    assert len(pd.read_csv(tmp_path/'out'/'eval.csv')) == 1
