"""Seconds to vocode a 10-s mel (80 × 860) on this machine: MelGAN (paper and small configs) vs Griffin-Lim.

Usage: python benchmarks/vocoder.py [--threads 2] [--repeats 3] [--weights MODEL_FOLDER] [--device cuda]
                                    [--train-steps N]
Prints one row per vocoder with the best and median wall time and the real-time factor
(audio seconds / compute seconds; > 1 is faster than real time). MelGAN runs with random weights unless
`--weights` is given (speed does not depend on the values). `--train-steps N` also times N training steps of the
paper config (batch `--batch`, 8192-sample windows) on `--device`.
"""
import argparse, os, statistics, time
import numpy as np
import torch
from vgsg.audio import SR, HOP, N_FRAMES, synth_signal, wav_to_mel, griffin_lim
from vgsg.vocoder import (MELGAN_PAPER, MELGAN_SMALL, Generator, Discriminator, MelGANVocoder,
                          make_optimizers, random_windows, train_step)
from vgsg.core.io import count_params
from vgsg.core.models import load_model
from vgsg.audio import MelSpectrogram

def sync(device):
    if str(device).startswith('cuda'): torch.cuda.synchronize()

def timeit(fn, repeats:int, device='cpu')->list:
    "Wall times of `repeats` calls of `fn` after one warm-up call."
    fn(); sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); sync(device); times.append(time.perf_counter() - t)
    return times

def time_training(device, steps:int, batch:int)->float:
    "Seconds per MelGAN training step (paper config, G + D update) on `device`."
    torch.manual_seed(0)
    cfg = MELGAN_PAPER
    G, D = Generator(cfg).to(device), Discriminator(cfg).to(device)
    opt_g, opt_d = make_optimizers(G, D, cfg)
    clips = [synth_signal(k, 10.0, seed=i) for i, k in enumerate(('chirp', 'hits', 'scene', 'noise'))]
    mel_fn, rng = MelSpectrogram().to(device), np.random.default_rng(0)
    def step():
        wav = torch.from_numpy(random_windows(clips, batch, cfg.seq_len, cfg.gain, rng)).to(device)
        train_step(G, D, opt_g, opt_d, wav, mel_fn(wav)[..., :cfg.frames], mel_fn)
    return statistics.median(timeit(step, steps, device))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--gl-iter', type=int, default=32, help='Griffin-Lim iterations (librosa default 32)')
    p.add_argument('--chunk', type=int, default=256, help='chunk size (frames) of the chunked MelGAN rows')
    p.add_argument('--weights', help='a trained generator to time as well (a vocoder model folder or checkpoint)')
    p.add_argument('--device', default='cpu', help="where MelGAN runs ('cpu', 'cuda'); Griffin-Lim is always CPU")
    p.add_argument('--batch', type=int, default=16, help='batch of the training-step timing (paper 16, args.yml 64)')
    p.add_argument('--train-steps', type=int, default=0, help='also time this many training steps (0: skip)')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    mel = wav_to_mel(synth_signal('scene', 10.0))[0]          # (80, 860)
    assert mel.shape == (80, N_FRAMES), mel.shape
    audio_s = N_FRAMES * HOP / SR
    rows = []
    def add(name, params, fn, device='cpu'):
        ts = timeit(fn, a.repeats, device)
        rows.append((name, params, min(ts), statistics.median(ts)))
        print(f'  {name}: best {min(ts):.3f} s', flush=True)

    gens = [('MelGAN paper', Generator(MELGAN_PAPER)), ('MelGAN small', Generator(MELGAN_SMALL))]
    if a.weights: gens.append((f'MelGAN {os.path.basename(a.weights)}', load_model(a.weights)))
    dev = a.device
    for name, G in gens:
        n = count_params(G)
        G = G.to(dev).eval()
        with torch.inference_mode():
            add(f'{name}, weight norm not folded', n, lambda: G(mel[None].to(dev)).cpu(), dev)
        voc = MelGANVocoder(G, device=dev, chunk_frames=None)
        add(f'{name}, folded', n, lambda: voc(mel), dev)
        voc_c = MelGANVocoder(G, device=dev, chunk_frames=a.chunk)
        add(f'{name}, folded, chunks of {a.chunk}', n, lambda: voc_c(mel), dev)
    add(f'Griffin-Lim ({a.gl_iter} it.)', 0, lambda: griffin_lim(mel, a.gl_iter))

    where = torch.cuda.get_device_name() if dev.startswith('cuda') else 'CPU'
    print(f'\n10-s mel (80 × {N_FRAMES} → {audio_s:.2f} s audio), MelGAN on {where}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}')
    print(f'{"vocoder":<48} {"params":>10} {"best s":>8} {"median s":>9} {"× real time":>12}')
    for name, n, best, med in rows:
        print(f'{name:<48} {n:>10,} {best:>8.3f} {med:>9.3f} {audio_s / best:>12.1f}')
    if a.train_steps:
        sec = time_training(dev, a.train_steps, a.batch)
        print(f'training step, paper config, batch {a.batch} on {where}: {sec:.3f} s '
              f'(3M steps ≈ {3e6 * sec / 86400:.1f} days)')

if __name__ == '__main__': main()
