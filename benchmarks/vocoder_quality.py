"""Resynthesis quality of the vocoders on held-out clips: mel L1, spectral convergence and (with a trained Melception) MKL.

Usage: python benchmarks/vocoder_quality.py [--model vgsg/assets/models/vocoder_small] [--config configs/vocoder_small.yaml]
                                            [--split test] [--max-clips N] [--seconds 10] [--gl-iter 32]
                                            [--melception vgsg/assets/models/melception_small] [--out CSV] [--threads 1]

Each held-out clip of the config's dataset (its `data:` section; by default the synthetic set's test split) is turned
into the paper's mel spectrogram and back into audio by each vocoder; the result is compared with the original:
- `original`: the original waveform itself (0 by construction: where a perfect vocoder would be),
- `griffin_lim`: Griffin-Lim with `--gl-iter` iterations (the paper's fallback),
- `melgan`: the trained generator of `--model`,
- `melgan_untrained`: the same layout with random weights (seed 0): the floor.
Metrics (vgsg.vocoder): mel L1 on the normalised [0, 1] log-mel, spectral convergence on linear STFT magnitudes, and
MKL = KL(Melception's class distribution on the original ‖ on the resynthesis) when a Melception is found (the
default is the bundled one; without one the column is left empty). Writes one row per clip and vocoder to `--out`
(default: <model>/vocoder_quality.csv) and prints the means.
"""
import argparse, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from vgsg.core.io import atomic_write, data_dir
from vgsg.audio import center_crop, wav_to_mel, CROP_FRAMES, SR
from vgsg.core.config import load_config
from vgsg.vocoder import Generator, GriffinLimVocoder, MelGANVocoder, mel_l1, spectral_convergence
from vgsg.train.vocoder import vocoder_clips, quality_table

def melception_logits(model, wavs:list) -> np.ndarray:
    "Melception logits (N, C) of the centre-cropped [0, 1] mels of waveforms."
    from vgsg.melception import melception_features
    specs = [center_crop(wav_to_mel(w, trim=False)[0], CROP_FRAMES).numpy() for w in wavs]
    return melception_features(model, np.stack(specs), names=('logits',))['logits']

def load_melception_if_any(path):
    "(Melception, where) from a model folder, a model set or a run at `path` (default: the bundled one), or (None, why not)."
    from vgsg.evaluate import load_scorer
    try: return load_scorer(path), path or 'the bundled melception_small'
    except FileNotFoundError as e:
        if path is None: return None, str(e)
        raise

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=str(data_dir()/'models'/'vocoder_small'), help='a vocoder folder/file or a training run')
    p.add_argument('--config', default='configs/vocoder_small.yaml', help='YAML config whose data section names the clips')
    p.add_argument('--split', default='test')
    p.add_argument('--max-clips', type=int, default=None, help='use this many clips, spread over the split (default all)')
    p.add_argument('--seconds', type=float, default=10., help='seconds of each clip to resynthesise')
    p.add_argument('--gl-iter', type=int, default=32)
    p.add_argument('--melception', default=None, help='Melception weights or folder (default: the bundled one, if any)')
    p.add_argument('--out', default=None, help='per-clip CSV (default: <model>/vocoder_quality.csv)')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names, wavs = vocoder_clips(load_config(a.config).get('data', {}), a.split, a.max_clips)
    wavs = [w[:round(a.seconds * SR)] for w in wavs]
    melgan = MelGANVocoder.from_folder(a.model)
    torch.manual_seed(0)
    vocoders = dict(griffin_lim=GriffinLimVocoder(a.gl_iter), melgan=melgan,
                    melgan_untrained=MelGANVocoder(Generator(melgan.G.cfg)))
    rows, outs, secs = [], {k: [] for k in vocoders}, {k: 0. for k in vocoders}
    t0 = time.time()
    for i, (name, wav) in enumerate(zip(names, wavs)):
        mel = wav_to_mel(wav, trim=False)[0]
        rows.append(dict(clip=name, vocoder='original', mel_l1=mel_l1(wav, wav), spectral_convergence=spectral_convergence(wav, wav)))
        for k, voc in vocoders.items():
            t = time.perf_counter(); out = voc(mel); secs[k] += time.perf_counter() - t
            outs[k].append(out[:len(wav)])
            rows.append(dict(clip=name, vocoder=k, mel_l1=mel_l1(out, wav), spectral_convergence=spectral_convergence(out, wav)))
        print(f'{i + 1}/{len(names)} {name} ({time.time() - t0:.0f} s)', flush=True)
    df = pd.DataFrame(rows).assign(mkl=np.nan)
    out = Path(a.out) if a.out else (Path(a.model) if Path(a.model).is_dir() else Path(a.model).parent)/'vocoder_quality.csv'
    atomic_write(out, lambda f: df.to_csv(f, index=False))   # saved before MKL, which may fail
    model, mpath = load_melception_if_any(a.melception)
    if model is None: print(f'no Melception ({mpath}): MKL left empty')
    else:
        from vgsg.metrics import kl_divergences
        real = melception_logits(model, wavs)
        kl = lambda fake: np.maximum(kl_divergences(real, fake), 0.)   # KL >= 0; the metric's eps gives -1e-6 at p = q
        df.loc[df.vocoder == 'original', 'mkl'] = kl(real)
        for k in vocoders: df.loc[df.vocoder == k, 'mkl'] = kl(melception_logits(model, outs[k]))
        print(f'MKL with {mpath}')
        atomic_write(out, lambda f: df.to_csv(f, index=False))
    audio_s = sum(len(w) for w in wavs) / SR
    print(quality_table(out).round(4).to_string())
    print('seconds of compute per second of audio (threads %d): ' % a.threads +
          ', '.join(f'{k} {secs[k] / audio_s:.3f}' for k in vocoders))
    print(f'wrote {out}')

if __name__ == '__main__': main()
