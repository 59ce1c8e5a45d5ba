"Checks of vgsg.audio beyond the notebook: formats, batching, an independent librosa path, the console script."
import subprocess, sys
from pathlib import Path
import numpy as np, pytest, soundfile as sf, torch, librosa
from vgsg.audio import *


def test_reference_chain_matches_librosa_melspectrogram():
    "Our step-by-step reference equals librosa's own melspectrogram (magnitude, reflect padding) + the normalisation."
    wav = synth_signal('scene', seconds=2)
    theirs = librosa.feature.melspectrogram(y=wav, sr=SR, n_fft=N_FFT, hop_length=HOP, power=1.0, pad_mode='reflect',
                                            n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    np.testing.assert_allclose(mel_librosa(wav, trim=False), normalise(theirs), atol=1e-6)


def test_constant_padding_would_differ():
    "Reflect vs zero padding changes the edge frames: the pad mode is not a detail."
    wav = synth_signal('noise', seconds=1)
    reflect = mel_librosa(wav, trim=False)
    zero = normalise(mel_basis() @ np.abs(librosa.stft(wav, n_fft=N_FFT, hop_length=HOP, pad_mode='constant')))
    assert np.abs(reflect[:, 0] - zero[:, 0]).max() > 1e-2
    np.testing.assert_allclose(reflect[:, 5:-5], zero[:, 5:-5], atol=1e-5)


def test_batch_equals_items_and_float64_input():
    batch = np.stack([synth_signal(k, seconds=1) for k in ['chirp', 'hits', 'noise']])
    together = wav_to_mel(batch, trim=False)
    for i, wav in enumerate(batch):
        torch.testing.assert_close(together[i], wav_to_mel(wav.astype(np.float64), trim=False)[0])


def test_output_shape_for_ten_seconds():
    test = MelSpectrogram()(torch.zeros(2, N_SAMPLES))
    assert test.shape == (2, 80, 862) and test.dtype == torch.float32 and (test == 0).all()


@pytest.mark.parametrize('fmt,subtype', [('OGG', 'VORBIS'), ('MP3', 'MPEG_LAYER_III'), ('FLAC', 'PCM_16')])
def test_load_compressed_formats(tmp_path, fmt, subtype):
    wav = synth_signal('chirp', seconds=2)
    path = tmp_path / f'chirp.{fmt.lower()}'
    sf.write(path, wav, SR, format=fmt, subtype=subtype)
    got = load_audio(path, n_samples=None)
    assert abs(len(got) - len(wav)) < SR // 10
    n = min(len(got), len(wav)) - 4000
    # lossy codecs shift phase a little; compare spectrograms, not samples
    assert (wav_to_mel(got[:n])[0] - wav_to_mel(wav[:n])[0]).abs().mean() < 0.03


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / 'notes.wav'
    path.write_text('hello')
    with pytest.raises(AudioError, match='notes.wav: cannot read it as audio'):
        load_audio(path)


def test_console_script_help():
    script = Path(sys.executable).parent / 'vgsg'   # installed by setup.py's console_scripts
    out = subprocess.run([str(script), '--help'], capture_output=True, text=True)
    assert out.returncode == 0 and 'demo' in out.stdout and 'mel' in out.stdout


def test_griffin_lim_ignores_the_global_random_state():
    "The torch Griffin-Lim's phase comes from its seed only: reseeding numpy and torch changes nothing."
    spec = wav_to_mel(synth_signal('hits', seconds=1))[0]
    np.random.seed(1); torch.manual_seed(1)
    a = griffin_lim(spec, n_iter=4, seed=9)
    np.random.seed(2); torch.manual_seed(2); torch.rand(100)
    np.testing.assert_array_equal(griffin_lim(spec, n_iter=4, seed=9), a)


def test_random_phase_longer_extends_shorter():
    "Phases are drawn frame by frame, so a longer spectrogram starts with a shorter one's phases."
    np.testing.assert_array_equal(random_phase(200, 3)[:50].numpy(), random_phase(50, 3).numpy())
    assert torch.allclose(random_phase(50, 3).abs(), torch.ones(50, 513))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_griffin_lim_on_cuda_matches_cpu():
    "Same seed, same initial phase on every device: the GPU's result equals the CPU's up to float32 FFT rounding."
    specs = wav_to_mel(np.stack([synth_signal(k, seconds=2) for k in ('scene', 'chirp')]))
    cpu, gpu = griffin_lim(specs, seed=[1, 2]), griffin_lim(specs.cuda(), seed=[1, 2])
    assert np.abs(cpu - gpu).max() < 1e-2 * np.abs(cpu).max()
    l1 = lambda w: (wav_to_mel(w) - specs).abs().mean().item()
    assert abs(l1(gpu) - l1(cpu)) < 0.02 * l1(cpu)
