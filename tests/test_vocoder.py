"""Tests of vgsg.vocoder and vgsg.train.vocoder beyond the notebooks' inline ones: original key names, receptive field,
chunking, training through the shared Trainer (exact resume, bf16, DDP), the bundled vocoder."""
import os, json, subprocess, sys, tempfile
from dataclasses import replace
from pathlib import Path
import numpy as np
import pytest
import torch
from vgsg.audio import synth_signal, wav_to_mel, HOP
from vgsg.vocoder import *
from vgsg.train.trainer import Trainer, TrainConfig, load_checkpoint
from vgsg.core.models import save_model, load_model
from vgsg.checkpoints import read_melgan
from vgsg.train.vocoder import VocoderTask, RandomWindows, ClipSegments, toy_clips

torch.set_num_threads(1)
KEYS = Path(__file__).resolve().parent/'keys'   # the original's key/shape dumps (keys/README.md)

def read_keys(name):
    "(key, shape) pairs of a keys/*.txt dump (the original's state dict), in file order."
    rows = [l.split('\t') for l in (KEYS/name).read_text().splitlines() if l and not l.startswith('#')]
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
        G, _ = read_melgan(Path(d)/'best_netG.pt')
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

def test_vocoder_folder_round_trip_fp16():
    torch.manual_seed(0)
    G = Generator(MELGAN_TINY)
    mel = torch.rand(80, 30)
    with tempfile.TemporaryDirectory() as d:
        voc = MelGANVocoder.from_folder(save_model(Path(d)/'v', G, half=True))
    ref = MelGANVocoder(G)(mel)
    np.testing.assert_allclose(voc(mel), ref, atol=5e-3)
    assert np.abs(voc(mel) - ref).max() > 0   # fp16 really was stored

def test_bad_inputs_are_named():
    with pytest.raises(FileNotFoundError, match='nope'): MelGANVocoder.from_folder('nope')
    voc = MelGANVocoder(Generator(MELGAN_TINY))
    with pytest.raises(ValueError, match='at least 4 frames'): voc(torch.rand(80, 3))
    with pytest.raises(ValueError, match=r'\(80, T\)'): voc(np.zeros((1, 2, 80, 9)))

def clips():
    return [synth_signal(k, 2.0, seed=i) for i, k in enumerate(('chirp', 'hits', 'scene', 'noise', 'chirp', 'hits'))]

def fit(out_dir, steps, cfg=replace(MELGAN_TINY, lr=1e-3), seed=0, **kw):
    "Train the tiny vocoder through the shared Trainer; return the trainer (6 clips, batch 2: 3 steps per epoch)."
    torch.manual_seed(seed)
    task = VocoderTask(cfg, out_dir, n_examples=1)
    valid = ClipSegments([synth_signal('scene', 0.5, seed=9)], 0.5)
    tc = TrainConfig(out_dir=str(out_dir), max_steps=steps, batch_size=2, valid_every=2, log_every=1, seed=seed,
                     monitor='valid/mel_l1', progress=False, device=kw.pop('device', 'cpu'), **kw)
    trainer = Trainer(task, RandomWindows(clips(), cfg.seq_len, cfg.gain, cfg.peak), valid, tc)
    trainer.fit()
    return trainer

def train_rows(trainer): return [r for r in trainer.history if 'train/loss_d' in r]

def test_smoke_training_moves_the_losses(tmp_path):
    "30 tiny steps through the Trainer: the discriminator learns to separate, the generator's mel error falls."
    hist = train_rows(fit(tmp_path, 30))
    mean = lambda rows, k: float(np.mean([r[k] for r in rows]))
    assert mean(hist[-10:], 'train/loss_d') < mean(hist[:3], 'train/loss_d') - 0.5
    assert mean(hist[-10:], 'train/mel_l1') < mean(hist[:3], 'train/mel_l1') - 0.05
    assert all(np.isfinite(v) for r in hist for v in r.values())

def _states(trainer):
    "Weights of both networks and the Adam moments of both optimisers."
    t = trainer.task
    out = {f'G.{k}': v for k, v in t.generator.state_dict().items()}
    out.update({f'D.{k}': v for k, v in t.discriminator.state_dict().items()})
    for name, opt in trainer.optimizers.items():
        for i, st in opt.state_dict()['state'].items(): out[f'{name}.{i}.exp_avg'] = st['exp_avg']
    return out

def test_resume_is_exact(tmp_path):
    "5 steps in one go equal 2 steps, a checkpoint (mid-epoch) and 3 resumed steps, in both networks and optimisers."
    a = fit(tmp_path/'a', 5)
    fit(tmp_path/'b', 2)
    b = fit(tmp_path/'b', 5)
    assert [r['step'] for r in train_rows(b)] == [3, 4, 5]
    sa, sb = _states(a), _states(b)
    assert sa.keys() == sb.keys() and any(k.startswith('discriminator.') for k in sa)
    for k in sa: torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6, msg=k)
    c = fit(tmp_path/'c', 5, seed=1)   # the check can fail: another seed trains other weights
    assert not torch.allclose(sa['G.model.1.weight_v'], _states(c)['G.model.1.weight_v'])

def test_checkpoint_holds_both_networks_and_optimisers(tmp_path):
    t = fit(tmp_path, 2)
    G, D = Generator(t.task.cfg), Discriminator(t.task.cfg)
    opt_g, opt_d = make_optimizers(G, D, t.task.cfg)
    st = load_checkpoint(tmp_path/'last', dict(generator=G, discriminator=D), dict(generator=opt_g, discriminator=opt_d))
    assert st['step'] == 2
    torch.testing.assert_close(D.state_dict(), t.task.discriminator.state_dict())
    torch.testing.assert_close(opt_g.state_dict()['state'][0]['exp_avg'], t.optimizers['generator'].state_dict()['state'][0]['exp_avg'])
    ex = sorted(p.name for p in (tmp_path/'examples').iterdir())
    assert ex == ['original_clip0000.wav', 'step0000002.png', 'step0000002_clip0000.wav'], ex

def test_bf16_training(tmp_path):
    t = fit(tmp_path, 2, precision='bf16')
    assert all(np.isfinite(v) for r in t.history for v in r.values())
    assert all(p.dtype == torch.float32 for p in t.task.generator.parameters())

DDP_SCRIPT = """
import sys, torch
from pathlib import Path
from vgsg.train.trainer import train, rank, world_size, unwrap
import vgsg.train.vocoder
out = Path(sys.argv[1])
cfg = dict(model=dict(preset='tiny', lr=1e-3),
           data=dict(kind='toy', classes=['drum', 'bird'], clips_per_class=4, seconds=0.5, valid=0.25, test=0, valid_clips=2),
           train=dict(out_dir=str(out / 'run'), max_steps=3, batch_size=1, valid_every=3, log_every=1, progress=False, device='cpu'))
t = train('vocoder', cfg)
torch.save(dict(G=unwrap(t.task.generator).state_dict(), D=unwrap(t.task.discriminator).state_dict(), world=world_size(),
                valid=[r for r in t.history if 'valid/mel_l1' in r]), out / f'rank{rank()}.pt')
"""

def test_two_process_ddp(tmp_path):
    "Under torchrun (2 CPU processes, gloo) both networks stay identical across ranks and only rank 0 writes."
    (tmp_path/'ddp_vocoder.py').write_text(DDP_SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(tmp_path/'ddp_vocoder.py'), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path/f'rank{i}.pt', weights_only=True) for i in (0, 1))
    assert r0['world'] == r1['world'] == 2
    for k in ('G', 'D'): torch.testing.assert_close(r0[k], r1[k])
    assert r0['valid'] == r1['valid'] and len(r0['valid']) == 1      # validation averaged over both processes
    torch.testing.assert_close(load_model(tmp_path/'run'/'last').state_dict(), r0['G'])
    assert len(list((tmp_path/'run'/'examples').glob('step*.wav'))) == 1   # rank 0's first validation batch (1 clip)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_training_checkpoint_and_vocoding(tmp_path):
    "On a GPU: train a few steps, checkpoint, load on the CPU, and vocode the same on both devices."
    t = fit(tmp_path, 3, device='cuda')
    G = t.task.generator
    assert next(G.parameters()).is_cuda and all(np.isfinite(r['train/loss_g']) for r in train_rows(t))
    G_cpu = load_model(tmp_path/'last', device='cpu')
    mel = wav_to_mel(synth_signal('hits', 1.0))[0]
    out_gpu = MelGANVocoder(G, device='cuda', chunk_frames=16)(mel)
    np.testing.assert_allclose(out_gpu, MelGANVocoder(G_cpu)(mel), atol=1e-4)

def test_metrics_rank_vocoders():
    "On a real-looking signal Griffin-Lim resynthesis scores far better than an untrained MelGAN."
    wav = synth_signal('scene', 2.0)
    mel = wav_to_mel(wav, trim=False)[0]
    gl = GriffinLimVocoder()(mel)
    torch.manual_seed(0)
    untrained = MelGANVocoder(Generator(MELGAN_TINY))(mel)
    assert mel_l1(gl, wav) < 0.5 * mel_l1(untrained, wav)
    assert spectral_convergence(gl, wav) < spectral_convergence(untrained, wav)

def test_griffin_lim_vocoder_is_seeded():
    "GriffinLimVocoder: each spectrogram's phase from its own seed, as vgsg.audio.griffin_lim; the global RNG plays no part."
    from vgsg.audio import griffin_lim
    mel = wav_to_mel(np.stack([synth_signal(k, 1.0) for k in ('scene', 'hits')]))
    voc = GriffinLimVocoder(n_iter=4)
    torch.manual_seed(0); np.random.seed(0)
    out = voc(mel, seed=[7, 8])
    torch.manual_seed(1); np.random.seed(1)
    np.testing.assert_array_equal(out[1], voc(mel[1], seed=8))
    np.testing.assert_array_equal(out, griffin_lim(mel, 4, [7, 8]))
    assert not np.array_equal(voc(mel[1], seed=7), out[1])

def test_windows_from_files_and_bad_file_named(tmp_path):
    from vgsg.audio import save_wav, AudioError
    files = [save_wav(tmp_path/f'{k}.wav', synth_signal(k, 1.0)) for k in ('chirp', 'hits')]
    ds = RandomWindows(files, 2048)
    assert len(ds) == 2 and ds[1].shape == (2048,) and 0 < ds[1].abs().max() <= 0.95 + 1e-4
    with pytest.raises(AudioError, match='missing.wav'): RandomWindows(files + [tmp_path/'missing.wav'])

def test_bundled_vocoder_beats_untrained_and_loads_fp16():
    "The bundled small vocoder: stored in fp16 with its config, and far better than random weights on a held-out clip."
    from vgsg.core.io import bundled
    from vgsg.audio import SR
    from safetensors import safe_open
    path = bundled(BUNDLED_VOCODER)/'model.safetensors'
    with safe_open(str(path), 'pt') as f: assert f.get_tensor('model.1.bias').dtype == torch.float16
    voc = MelGANVocoder.from_folder(bundled(BUNDLED_VOCODER))
    _, wavs = toy_clips('test', clips_per_class=50, seconds=10., valid=0.1, test=0.2, max_clips=4)
    wav = np.concatenate([w[:SR] for w in wavs])
    mel = wav_to_mel(wav, trim=False)[0]
    torch.manual_seed(0)
    untrained = MelGANVocoder(Generator(voc.G.cfg))(mel)
    assert mel_l1(voc(mel), wav) < 0.5 * mel_l1(untrained, wav)
    assert spectral_convergence(voc(mel), wav) < spectral_convergence(untrained, wav)
