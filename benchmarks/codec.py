"""The codebook as an audio codec on held-out real recordings, side by side with Opus at 6 kbps and Griffin-Lim alone.

Usage: python benchmarks/codec.py [--sounds data/sounds] [--split test] [--codebooks vgsg/assets/models/codebook_sounds ...]
                                  [--melception vgsg/assets/models/melception_sounds] [--max-clips 200] [--threads 2]

Every kept recording of the split (`vgsg sounds build`; each recording is in one split only) is coded by
- each codebook: `vgsg.codec.encode` -> .vgc bytes -> `decode` (the codebook's mel, then Griffin-Lim),
- Opus (libopus through PyAV, 48 kHz mono, the given bit rate), decoded and aligned by cross-correlation (+-30 ms),
- Griffin-Lim alone on the original mel (no coding: the vocoder's own share of the error).
Columns: mel L1 of the decoded waveform's normalised [0, 1] log-mel against the original's; spectral convergence
||M - M'|| / ||M|| on mel magnitudes; kbps (the .vgc file with its header; Opus: packet payload only, no container);
MKL: KL between Melception's class distributions of the original and the decoded clip (both padded to 10 s) when
a Melception is given. Rows by clip length show what short clips pay for the .vgc header.
"""
import argparse, io
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, torch
from vgsg.audio import SR, wav_to_mel, mel_to_magnitude, griffin_lim
from vgsg.core.io import data_dir
from vgsg.pipeline import load_one
from vgsg.codec import encode, decode
from vgsg.sounds import read_sounds
from results_md import write_section, md_table


def mel(wav:np.ndarray) -> torch.Tensor: return wav_to_mel(np.asarray(wav, np.float32), trim=False)[0]


def scores(a:torch.Tensor, back:np.ndarray, n:int) -> dict:
    "Mel L1 and spectral convergence of a decoded waveform, cut or padded to the original's `n` samples, against the original's mel `a`."
    b = mel(back[:n] if len(back) >= n else np.pad(back, (0, n - len(back))))
    ma, mb = mel_to_magnitude(a), mel_to_magnitude(b)
    return dict(l1=(a - b).abs().mean().item(), sc=(torch.linalg.norm(ma - mb) / torch.linalg.norm(ma)).item())


def align(ref:np.ndarray, y:np.ndarray, max_lag:int) -> np.ndarray:
    "`y` shifted by the lag (within +-max_lag samples) that best matches `ref`."
    n = min(len(ref), len(y))
    c = np.correlate(y[:n], ref[:n], 'full')[n - 1 - max_lag:n + max_lag]
    lag = int(np.argmax(c)) - max_lag
    return np.concatenate([y[lag:], np.zeros(max(lag, 0), np.float32)]) if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), y[:lag]])


def opus(wav:np.ndarray, kbps:float, rate:int=48000) -> tuple:
    "(decoded waveform at 22.05 kHz, payload bytes) of `wav` coded by libopus at `kbps`."
    import av, librosa
    x, buf, nbytes = librosa.resample(wav, orig_sr=SR, target_sr=rate, res_type='soxr_hq').astype(np.float32), io.BytesIO(), 0
    with av.open(buf, 'w', format='ogg') as out:
        st = out.add_stream('libopus', rate=rate, layout='mono'); st.bit_rate = int(kbps * 1000)
        frames = [av.AudioFrame.from_ndarray(x[None, i:i + 960], format='flt', layout='mono') for i in range(0, len(x), 960)]
        for fr in frames + [None]:
            if fr is not None: fr.sample_rate = rate
            for p in st.encode(fr): nbytes += p.size; out.mux(p)
    buf.seek(0)
    with av.open(buf) as inp:
        frames = list(inp.decode(audio=0))
    y = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)
    y = librosa.resample(y, orig_sr=frames[0].sample_rate, target_sr=SR, res_type='soxr_hq')   # Ogg Opus decodes at 48 kHz
    return align(wav, y, int(0.03 * SR))[:len(wav)], nbytes


def pad10(wav:np.ndarray) -> np.ndarray: return np.pad(wav, (0, max(0, 10 * SR - len(wav))))[:10 * SR]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sounds', default='data/sounds')
    p.add_argument('--split', default='test')
    p.add_argument('--codebooks', nargs='+', default=[str(data_dir()/'models'/n) for n in ('codebook_small', 'codebook_sounds')])
    p.add_argument('--melception', help='a Melception model folder for MKL (default: none)')
    p.add_argument('--opus-kbps', type=float, default=6.)
    p.add_argument('--gl-iter', type=int, default=32)
    p.add_argument('--max-clips', type=int, default=200)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--csv', help='also write the summary table (one row per coder) to this CSV')
    p.add_argument('--no-write', action='store_true')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    clips = read_sounds(a.sounds, a.split)
    clips = clips.sample(min(len(clips), a.max_clips), random_state=0).sort_values('clip')
    books = {Path(c).name: load_one(c, 'codebook').eval() for c in a.codebooks if Path(c).exists()}
    mcp = load_one(a.melception, 'melception').eval() if a.melception else None
    vocode = lambda s: griffin_lim(s, a.gl_iter)
    rows, logits = [], {}
    for _, r in clips.iterrows():
        wav = sf.read(str(Path(a.sounds)/'clips'/f"{r['clip']}.flac"), dtype='float32')[0]
        outs = {}
        for name, vq in books.items():
            data = encode(wav, vq)
            outs[name] = (decode(data, vq, vocode)[:len(wav)], len(data))
        y, nb = opus(wav, a.opus_kbps)
        outs[f'opus {a.opus_kbps:g} kbps'] = (y, nb)
        ref = mel(wav)                                       # the original's mel, once per clip
        outs['Griffin-Lim only'] = (griffin_lim(ref, a.gl_iter)[:len(wav)], None)
        for name, (back, nbytes) in outs.items():
            rows.append(dict(clip=r['clip'], seconds=len(wav) / SR, coder=name, kbps=nbytes * 8 / (len(wav) / SR) / 1000 if nbytes else np.nan,
                             **scores(ref, back, len(wav))))
            if mcp is not None: logits.setdefault(name, []).append(pad10(back))
        if mcp is not None: logits.setdefault('original', []).append(pad10(wav))
        print(rows[-1]['clip'], ' '.join(f"{x['coder']}: {x['l1']:.4f}" for x in rows[-len(outs):]), flush=True)
    df = pd.DataFrame(rows)
    df['length'] = pd.cut(df['seconds'], [0, 1, 3, 10.01], labels=['< 1 s', '1-3 s', '3-10 s'])
    mkl_of = {}
    if mcp is not None:
        from vgsg.melception import melception_features
        from vgsg.metrics import mkl
        lg = {k: melception_features(mcp, [mel(w).numpy() for w in v], names=('logits',))['logits'] for k, v in logits.items()}
        mkl_of = {k: mkl(lg['original'], v) for k, v in lg.items() if k != 'original'}
    summary = df.groupby('coder', sort=False).agg(l1=('l1', 'mean'), sc=('sc', 'mean'), kbps=('kbps', 'mean')).reset_index()
    summary['mkl'] = summary['coder'].map(mkl_of) if mkl_of else np.nan
    by_len = df.groupby(['coder', 'length'], sort=False, observed=True).agg(clips=('l1', 'size'), l1=('l1', 'mean'), kbps=('kbps', 'mean')).reset_index()
    cols = ['coder', 'l1', 'sc', 'kbps'] + (['mkl'] if mkl_of else [])
    minutes = df[df['coder'] == df['coder'].iloc[0]]['seconds'].sum() / 60
    lines = [f'{len(clips)} held-out recordings (`{a.split}` split of `{a.sounds}`, {minutes * 60:.0f} s of audio); '
             f'mel L1 on the [0, 1] log-mel of the decoded waveform, Griffin-Lim {a.gl_iter} iterations.', '',
             *md_table(summary.round(4).to_dict('records'), cols), '', 'By clip length (what short clips pay for the .vgc header):', '',
             *md_table(by_len.round(4).to_dict('records'), ['coder', 'length', 'clips', 'l1', 'kbps'])]
    print('\n'.join(lines))
    if a.csv: Path(a.csv).parent.mkdir(parents=True, exist_ok=True); summary.round(4).to_csv(a.csv, index=False)
    if not a.no_write: write_section('codec.py', 'Codec on held-out real recordings (`benchmarks/codec.py`)', lines)


if __name__ == '__main__': main()
