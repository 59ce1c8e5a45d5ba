"""Spectrogram throughput: the batched torch MelSpectrogram vs the per-file librosa chain, on the same clips.

    python benchmarks/mel.py [--clips 100] [--batch 25] [--device cpu|cuda] [--threads N]

Prints clips/s for each and the ratio (measured side by side in one run; not a test).
"""
import argparse, time
import numpy as np, torch
from vgsg.audio import MelSpectrogram, mel_librosa, synth_signal, N_FRAMES


def clips(n):
    "`n` ten-second real-looking clips, varied by kind and seed."
    kinds = ['scene', 'hits', 'chirp', 'noise']
    return np.stack([synth_signal(kinds[i % 4], seed=i) for i in range(n)])


def timed(fn, repeats):
    "Best wall time of `repeats` runs of `fn` (after a warm-up run)."
    fn()
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best


def run_torch(wavs, batch, device, fft_dtype):
    mel = MelSpectrogram(fft_dtype=fft_dtype).to(device)
    x = torch.from_numpy(wavs).to(device)
    def go():
        with torch.inference_mode():
            outs = [mel(x[i:i + batch])[..., :N_FRAMES].cpu() for i in range(0, len(x), batch)]
        return outs
    return go


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--clips', type=int, default=100)
    p.add_argument('--batch', type=int, default=25)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--repeats', type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    wavs = clips(a.clips)
    t_lib = timed(lambda: [mel_librosa(w) for w in wavs], a.repeats)
    rows = [('librosa, per file (numpy, 1 thread)', t_lib)]
    for dt in (torch.float64, torch.float32):
        go = run_torch(wavs, a.batch, a.device, dt)
        if a.device.startswith('cuda'):
            inner = go; go = lambda: (inner(), torch.cuda.synchronize())
        rows.append((f'torch MelSpectrogram, batch {a.batch}, {a.device}, fft {str(dt)[6:]}', timed(go, a.repeats)))
    print(f'{a.clips} ten-second clips, torch threads {a.threads}, best of {a.repeats}')
    for name, t in rows:
        print(f'{name:<55} {a.clips / t:8.1f} clips/s   x{t_lib / t:5.2f} vs librosa')


if __name__ == '__main__':
    main()
