"Tests of vgsg.vocoder beyond the notebook's inline ones: original key names, receptive field, chunking, training."
import os, json, tempfile
from dataclasses import replace
from pathlib import Path
import numpy as np
import pytest
import torch
from vgsg.audio import synth_signal, wav_to_mel, HOP
from vgsg.vocoder import *

torch.set_num_threads(1)
KEYS = [Path(__file__).resolve().parent/'keys', Path(__file__).resolve().parents[2]/'shared'/'reference'/'keys']

def read_keys(name):
    "(key, shape) pairs of a keys/*.txt dump (the original's state dict), in file order."
    path = next((d/name for d in KEYS if (d/name).exists()), None)
    if path is None: pytest.skip(f'{name} not available')
    rows = [l.split('\t') for l in path.read_text().splitlines() if l and not l.startswith('#')]
    return [(k, tuple(json.loads(s.replace('(', '[').replace(',)', ']').replace(')', ']')))) for k, s, _ in rows]

@pytest.mark.parametrize('cls,fname', [(Generator, 'melgan_netG.txt'), (Discriminator, 'melgan_netD.txt')])
def test_state_dict_matches_original(cls, fname):
    with torch.device('meta'): m = cls(MELGAN_PAPER)
    ours = [(k, tuple(v.shape)) for k, v in m.state_dict().items()]
    assert ours == read_keys(fname)

def test_original_state_dict_loads():
    "A state dict with the original keys loads strictly into the paper generator and drives the output."
    sd = {k: torch.randn(s) for k, s in read_keys('melgan_netG.txt')}
    with tempfile.TemporaryDirectory() as d:
        torch.save(sd, Path(d)/'best_netG.pt')
        G = load_generator(Path(d)/'best_netG.pt')
    torch.testing.assert_close(G.state_dict()['model.24.weight_v'], sd['model.24.weight_v'])

@pytest.mark.parametrize('cfg', [MELGAN_PAPER, MELGAN_TINY])
def test_receptive_field_bounds_influence(cfg):
    "Changing one mel frame changes output samples only within `receptive_frames` frames of it."
    torch.manual_seed(0)
    G = fold_weight_norm(Generator(cfg)).eval()
    mel, t0, r = torch.rand(1, 80, 40), 20, receptive_frames(cfg)
    mel2 = mel.clone(); mel2[..., t0] += 0.5
    with torch.inference_mode(): changed = (G(mel2) - G(mel))[0, 0].abs() > 0
    idx = changed.nonzero()[:, 0]
    lo, hi = idx.min().item() / HOP, (idx.max().item() + 1) / HOP
    assert t0 - r <= lo and hi <= t0 + 1 + r, (lo, hi, r)
    assert t0 - lo > r - 3 and hi - t0 - 1 > r - 3, 'bound is needlessly loose'

def test_chunked_paper_config_matches_unchunked():
    torch.manual_seed(0)
    voc = MelGANVocoder(Generator(MELGAN_PAPER), chunk_frames=None)
    mel = wav_to_mel(synth_signal('scene', 1.5))[0]
    full = voc(mel)
    voc.chunk_frames = 24
    chunked = voc(mel)
    assert chunked.shape == full.shape == (mel.shape[-1] * HOP,)
    np.testing.assert_allclose(chunked, full, atol=1e-6, rtol=0)

def test_vocoder_file_round_trip_fp16():
    torch.manual_seed(0)
    G = Generator(MELGAN_TINY)
    mel = torch.rand(80, 30)
    with tempfile.TemporaryDirectory() as d:
        voc = MelGANVocoder.from_file(save_generator(G, Path(d)/'v.safetensors', half=True))
    ref = MelGANVocoder(G)(mel)
    np.testing.assert_allclose(voc(mel), ref, atol=5e-3)
    assert np.abs(voc(mel) - ref).max() > 0   # fp16 really was stored

def test_bad_inputs_are_named():
    with pytest.raises(FileNotFoundError, match='nope.safetensors'): load_generator('nope.safetensors')
    voc = MelGANVocoder(Generator(MELGAN_TINY))
    with pytest.raises(ValueError, match='at least 4 frames'): voc(torch.rand(80, 3))
    with pytest.raises(ValueError, match=r'\(80, T\)'): voc(np.zeros((1, 2, 80, 9)))

def smoke_run(d, steps, **kw):
    clips = [synth_signal(k, 2.0, seed=i) for i, k in enumerate(('chirp', 'hits', 'scene', 'noise'))]
    cfg = replace(MELGAN_TINY, lr=1e-3)   # a higher learning rate so a few steps show
    return train_vocoder(clips, d, steps=steps, cfg=cfg, batch_size=4, progress=False, **kw)

def test_smoke_training_moves_the_losses():
    "30 tiny steps: the discriminator learns to separate, the generator's mel error falls."
    with tempfile.TemporaryDirectory() as d: _, hist = smoke_run(d, 30)
    first, last = hist[:3], hist[-10:]
    mean = lambda hs, k: float(np.mean([h[k] for h in hs]))
    assert mean(last, 'loss_d') < mean(first, 'loss_d') - 0.5
    assert mean(last, 'mel_l1') < mean(first, 'mel_l1') - 0.05
    assert all(np.isfinite(h[k]) for h in hist for k in h)

def test_resume_is_exact():
    "Training 4 steps in one go equals 2 steps, a checkpoint, and 2 resumed steps."
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        G1, _ = smoke_run(a, 4)
        smoke_run(b, 2)
        G2, hist = smoke_run(b, 4)
    assert [h['step'] for h in hist] == [3, 4]
    for (k, v1), v2 in zip(G1.state_dict().items(), G2.state_dict().values()):
        torch.testing.assert_close(v1, v2, rtol=1e-5, atol=1e-6, msg=k)

def test_metrics_rank_vocoders():
    "On a real-looking signal Griffin-Lim resynthesis scores far better than an untrained MelGAN."
    wav = synth_signal('scene', 2.0)
    mel = wav_to_mel(wav, trim=False)[0]
    gl = GriffinLimVocoder()(mel)
    torch.manual_seed(0)
    untrained = MelGANVocoder(Generator(MELGAN_TINY))(mel)
    assert mel_l1(gl, wav) < 0.5 * mel_l1(untrained, wav)
    assert spectral_convergence(gl, wav) < spectral_convergence(untrained, wav)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_training_checkpoint_and_vocoding():
    "On a GPU: train a few steps, checkpoint, load on the CPU, and vocode the same on both devices."
    with tempfile.TemporaryDirectory() as d:
        G, hist = smoke_run(d, 3, device='cuda')
        assert next(G.parameters()).is_cuda and all(np.isfinite(h['loss_g']) for h in hist)
        G_cpu = load_generator(d, device='cpu')
    mel = wav_to_mel(synth_signal('hits', 1.0))[0]
    out_gpu = MelGANVocoder(G, device='cuda', chunk_frames=16)(mel)
    np.testing.assert_allclose(out_gpu, MelGANVocoder(G_cpu)(mel), atol=1e-4)

def test_train_from_files_and_bad_file_named():
    from vgsg.audio import save_wav, AudioError
    with tempfile.TemporaryDirectory() as d:
        files = [save_wav(Path(d)/f'{k}.wav', synth_signal(k, 1.0)) for k in ('chirp', 'hits')]
        G, hist = train_vocoder(files, Path(d)/'run', steps=1, cfg=MELGAN_TINY, progress=False)
        assert len(hist) == 1 and (Path(d)/'run'/'ckpt-00000001'/'optimizers.pt').exists()
        with pytest.raises(AudioError, match='missing.wav'):
            train_vocoder(files + [Path(d)/'missing.wav'], Path(d)/'run2', steps=1, cfg=MELGAN_TINY, progress=False)
