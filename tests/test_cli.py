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
    from vgsg.video import make_test_clip
    (videos[0].parent / 'broken.mp4').write_text('not a video')
    make_test_clip(videos[0].parent / 'silent.mp4', audio=False)      # a video without an audio track
    done = run('prepare', tmp_path / 'toy', tmp_path / 'prep', '--n-feats', '5')   # default features: see below
    assert done.returncode == 0, done.stderr
    from vgsg.features import find_weights
    assert ('features: resnet50' if find_weights('resnet50-*.pth') else 'features: pixels (no ResNet-50') in done.stdout
    assert 'prepared 16 of 18 clips' in done.stdout
    assert 'skipped' in done.stderr and 'broken' in done.stderr and 'silent' in done.stderr
    manifest = pd.read_csv(tmp_path / 'prep' / 'manifest.csv')
    assert (manifest['status'] == 'ok').sum() == 16


def test_bad_inputs_give_one_line_and_exit_2(tmp_path):
    for args, reason in [(('mel', tmp_path / 'missing.wav'), 'no such file'),
                         (('prepare', tmp_path / 'nothing', tmp_path / 'o'), 'no such folder'),
                         (('train', 'codebook', '-c', tmp_path / 'none.yaml'), 'no such config file'),
                         (('prepare', tmp_path, tmp_path / 'o', '--labels', tmp_path / 'labels.csv'), "labels.csv: no 'class' column"),
                         (('prepare', tmp_path, tmp_path / 'o', '--labels', tmp_path / 'none.csv'), 'none.csv: no such labels file'),
                         (('generate', tmp_path / 'v.mp4', '--top-x', '0'), '--top-x must be at least 1')]:
        (tmp_path / 'labels.csv').write_text('clip,kind\nv,hammer\n')
        done = run(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert reason in done.stderr and 'Traceback' not in done.stderr


def tiny_model_set(folder):
    "A model set of tiny random models (codebook, 5-feature transformer, MelGAN) in `folder`."
    import torch
    from vgsg.core.models import save_model
    from vgsg.vqgan import VQModel, tiny_codebook
    from vgsg.transformer import GPT, tiny_config
    from vgsg.vocoder import Generator, MelGANConfig
    torch.manual_seed(0)
    save_model(folder / 'codebook', VQModel(tiny_codebook))
    save_model(folder / 'transformer', GPT(tiny_config(vocab_size=tiny_codebook.n_embed, n_feats=5, feat_dim=2048)), info=dict(features='pixels'))
    save_model(folder / 'vocoder', Generator(MelGANConfig(ngf=4, n_residual_layers=1)))
    return folder


def test_generate_happy_path_and_bad_video(tmp_path):
    from vgsg.core.io import bundled
    from vgsg.video import probe
    models = tiny_model_set(tmp_path / 'models')
    (tmp_path / 'notes.mp4').write_text('not a video')
    done = run('generate', bundled('examples/toy_hammer.mp4'), tmp_path / 'notes.mp4', '-o', tmp_path / 'out',
               '--samples', '2', '--top-x', '4', '--models', models)
    assert done.returncode == 2, done.stderr
    assert 'notes.mp4' in done.stderr and '1 of 2 videos failed' in done.stderr and 'Traceback' not in done.stderr
    for k in (0, 1):
        for ext in ('mp4', 'wav', 'png'): assert (tmp_path / 'out' / f'toy_hammer_sample{k}.{ext}').exists()
    info = probe(tmp_path / 'out' / 'toy_hammer_sample0.mp4')
    assert abs(info.duration - 9.85) < 0.2
    again = ('generate', bundled('examples/toy_hammer.mp4'), '-o', tmp_path / 'out', '--samples', '1', '--top-x', '4', '--models', models)
    done = run(*again)                                   # an earlier run's files are never replaced silently
    assert done.returncode == 2 and 'toy_hammer_sample0.mp4: exists already' in done.stderr, done.stderr
    before = (tmp_path / 'out' / 'toy_hammer_sample0.wav').stat().st_mtime_ns
    done = run(*again, '--overwrite')
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'out' / 'toy_hammer_sample0.wav').stat().st_mtime_ns != before


def test_generate_with_a_wrong_model_folder(tmp_path):
    from vgsg.core.io import bundled
    done = run('generate', bundled('examples/toy_hammer.mp4'), '--models', tmp_path)
    assert done.returncode == 2 and 'needs a codebook folder' in done.stderr and 'Traceback' not in done.stderr


def test_codec_round_trip(tmp_path):
    import re
    import soundfile as sf
    from vgsg.audio import synth_signal, save_wav, SR
    models = tiny_model_set(tmp_path / 'models')
    save_wav(tmp_path / 'in.wav', synth_signal('hits', 3))
    done = run('codec', 'encode', tmp_path / 'in.wav', '-o', tmp_path / 'in.vgc', '--models', models)
    assert done.returncode == 0, done.stderr
    size = (tmp_path / 'in.vgc').stat().st_size
    kbps = float(re.search(r'= ([0-9.]+) kbps', done.stdout).group(1))
    assert abs(kbps - size * 8 / 3 / 1000) < 1e-3          # bits written / seconds
    done = run('codec', 'decode', tmp_path / 'in.vgc', '-o', tmp_path / 'out.wav', '--models', models)
    assert done.returncode == 0, done.stderr
    assert sf.info(str(tmp_path / 'out.wav')).frames == 3 * SR
    (tmp_path / 'bad.vgc').write_bytes(b'VGSC' + bytes(40))
    done = run('codec', 'decode', tmp_path / 'bad.vgc', '-o', tmp_path / 'x.wav', '--models', models)
    assert done.returncode == 2 and 'bad.vgc' in done.stderr and 'Traceback' not in done.stderr


def test_demo_with_the_bundled_models(tmp_path):
    "`vgsg demo`: the bundled model set turns the example video into two mp4s with a 10-s sound track."
    import pytest
    from vgsg.cli import _have_bundled_models
    from vgsg.video import probe
    if not _have_bundled_models(): pytest.skip('no bundled model set in vgsg/assets/models')
    done = run('demo', '-o', tmp_path)
    assert done.returncode == 0, done.stderr
    from vgsg.cli import demo_video
    from vgsg.data import read_example_events
    video = demo_video()
    assert f"{video.name} shows the class {read_example_events(video)['cls']!r}" in done.stdout and 'samples match' in done.stdout
    for k in (0, 1):
        info = probe(tmp_path / f'{video.stem}_sample{k}.mp4')
        assert abs(info.duration - 9.85) < 0.2 and info.has_audio, info


def test_help_and_version_import_no_torch():
    "`vgsg --help`, `vgsg --version` and the parser of every built-in command import neither torch nor numpy."
    import time
    code = ("import sys; from vgsg.cli import parser, COMMANDS; "
            "[parser([n]) for n in list(COMMANDS)]; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert done.stdout.strip() == '[]', done.stdout + done.stderr
    t0 = time.perf_counter(); done = run('--help'); took = time.perf_counter() - t0
    assert done.returncode == 0 and 'convert' in done.stdout and 'generate' in done.stdout, done.stderr
    assert took < 3, took                                # it was ~9 s when torch came first
    done = run('--version')
    assert done.returncode == 0 and done.stdout.startswith('vgsg '), done.stderr
    done = run('convert', '--help')                      # a plugin command: its module is imported on demand
    assert done.returncode == 0 and '--kind' in done.stdout, done.stderr


def test_train_prints_its_last_line_on_rank_0_only(tmp_path, monkeypatch, capsys):
    "Under torchrun every process runs `train`; only rank 0 prints the closing line."
    import types
    import vgsg.train.trainer
    from vgsg.cli import main
    monkeypatch.setattr(vgsg.train.trainer, 'train', lambda model, cfg: types.SimpleNamespace(step=3, out=tmp_path))
    for rank, expected in (('1', ''), ('0', f'trained codebook for 3 steps; checkpoints in {tmp_path}\n')):
        monkeypatch.setenv('RANK', rank)
        assert main(['train', 'codebook']) == 0
        assert capsys.readouterr().out == expected
