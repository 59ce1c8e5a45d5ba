"The same seed gives the same sound: codes and waveforms, whatever the number of samples (issue 15, item 6)."
import subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from vgsg.core.io import bundled
from vgsg.audio import griffin_lim
from vgsg.pipeline import ModelSet, Pipeline, sample_seed
from vgsg.vocoder import GriffinLimVocoder

VIDEO = bundled('examples/toy_hammer.mp4')


@pytest.fixture(scope='module')
def pipe():
    "The bundled model set, vocoded with Griffin-Lim (its random initial phase is what a seed must fix)."
    return Pipeline(ModelSet.bundled(vocoder='griffin-lim'))


def test_same_seed_same_wavs(pipe):
    a, b = [pipe.generate(VIDEO, n_samples=2, seed=11) for _ in range(2)]
    assert torch.equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.wavs, b.wavs)
    assert np.abs(a.wavs[0] - a.wavs[1]).max() > 1e-3                   # two samples of one run differ
    c = pipe.generate(VIDEO, n_samples=1, seed=12)
    assert not np.array_equal(c.wavs[0], a.wavs[0])                      # another seed, another sound


def test_sample_k_does_not_depend_on_k(pipe):
    two, three = pipe.generate(VIDEO, n_samples=2, seed=3), pipe.generate(VIDEO, n_samples=3, seed=3)
    assert torch.equal(three.codes[1], two.codes[1]) and torch.equal(three.codes[:2], two.codes)
    np.testing.assert_array_equal(three.wavs[1], two.wavs[1])
    np.testing.assert_array_equal(three.wavs[1], griffin_lim(three.specs[1], seed=sample_seed(3, 1)))   # phase from (seed, k)


def test_vocoder_batch_does_not_matter():
    specs = torch.rand(3, 80, 40)
    voc = GriffinLimVocoder(n_iter=4)
    np.testing.assert_array_equal(voc(specs, seed=[1, 2, 3])[2], voc(specs[2], seed=3))


def test_cli_generate_seed_writes_identical_wavs(tmp_path):
    vgsg = str(Path(sys.executable).parent / 'vgsg')
    for run in ('a', 'b'):
        done = subprocess.run([vgsg, 'generate', str(VIDEO), '-o', str(tmp_path / run), '--samples', '2', '--seed', '4',
                               '--vocoder', 'griffin-lim'], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    for k in (0, 1):
        first, second = [(tmp_path / run / f'toy_hammer_sample{k}.wav').read_bytes() for run in ('a', 'b')]
        assert first == second, k
    assert (tmp_path / 'a' / 'toy_hammer_sample0.wav').read_bytes() != (tmp_path / 'a' / 'toy_hammer_sample1.wav').read_bytes()
