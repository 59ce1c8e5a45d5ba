"""What coding in windows costs the codec: whole grid vs windows with 0, 4, 8, 12 columns of context.

Usage: python benchmarks/codec_windows.py [--models vgsg/assets/models/codebook_small] [--seconds 30] [--threads 2]

For each synthetic 22.05 kHz signal (scene, hits, chirp), encodes and decodes with the whole code grid at once
(`size=None`, attention over everything) and with 53-column windows keeping `53 − 2·context` central columns.
Columns: codes equal to the whole-grid codes (%); mel L1 of the decoded spectrogram against the input (all frames,
frames within 16 of a boundary between kept ranges, the rest); the same for the Griffin-Lim waveform's mel
(windows vocoded one by one and crossfaded); seconds for encode + spectrogram decode. For the whole-grid row,
"near" uses the boundaries of the default layout (context 8). Means over the signals. Writes the table as the
`codec_windows.py` section of benchmarks/RESULTS.md.
"""
import argparse, os, time
from pathlib import Path
import numpy as np
import torch
from vgsg.audio import SR, synth_signal, wav_to_mel, griffin_lim
from vgsg.core.io import data_dir
from vgsg.pipeline import load_one
from vgsg.codec import CONTEXT, encode, decode, decode_spec, read_codes, windows, code_cols

RESULTS = Path(__file__).parent / 'RESULTS.md'


def boundary_mask(n_frames:int, cols:int, context:int, factor:int, near:int=16) -> torch.Tensor:
    "Frames within `near` of a boundary between kept ranges of the window layout."
    mask = torch.zeros(n_frames, dtype=torch.bool)
    for _, k, _ in list(windows(cols, context=context))[1:]: mask[max(0, k * factor - near):k * factor + near] = True
    return mask


def l1_parts(x:torch.Tensor, ref:torch.Tensor, mask:torch.Tensor) -> tuple:
    "(all, near, elsewhere) mean |x − ref| per frame."
    d = (x[:, :ref.shape[1]] - ref).abs().mean(0)
    return d.mean().item(), d[mask].mean().item(), d[~mask].mean().item()


def measure(model, wav:np.ndarray, size, context:int, gl_iter:int) -> dict:
    ref = wav_to_mel(wav, trim=False)[0]
    f = model.cfg.factor
    cols = code_cols(wav.size, f)
    mask = boundary_mask(ref.shape[1], cols, CONTEXT if size is None else context, f)
    t = time.perf_counter()
    data = encode(wav, model, size=size, context=context)
    spec = decode_spec(data, model, size=size, context=context)[1]
    secs = time.perf_counter() - t
    back = decode(data, model, lambda s: griffin_lim(s, gl_iter), size=size, context=context)
    return dict(data=data, secs=secs, spec=l1_parts(spec.clamp(0, 1), ref, mask), wave=l1_parts(wav_to_mel(back, trim=False)[0], ref, mask))


def table(rows:list) -> str:
    head = ['coding', 'kept cols / window', 'codes = whole grid', 'spec L1 all', 'near boundary', 'elsewhere',
            'GL wave mel L1 all', 'near boundary', 'elsewhere', 'encode+decode s']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['name'], r['kept'], f"{r['same']:.1f} %", *(f'{v:.4f}' for v in r['spec']), *(f'{v:.4f}' for v in r['wave']), f"{r['secs']:.2f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_section(text:str):
    "Replace (or append) the `codec_windows.py` section of RESULTS.md."
    start, end = '<!-- codec_windows.py -->', '<!-- /codec_windows.py -->'
    old = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n'
    block = f'{start}\n{text.strip()}\n{end}'
    new = old[:old.index(start)] + block + old[old.index(end) + len(end):] if start in old and end in old else old.rstrip() + '\n\n' + block + '\n'
    tmp = RESULTS.with_name(f'.RESULTS.tmp{os.getpid()}.md'); tmp.write_text(new); os.replace(tmp, RESULTS)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', default=str(data_dir() / 'models' / 'codebook_small'), help='a codebook folder or model set')
    p.add_argument('--seconds', type=float, default=30)
    p.add_argument('--contexts', type=int, nargs='+', default=[0, 4, 8, 12])
    p.add_argument('--gl-iter', type=int, default=32)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--no-write', action='store_true', help='print only')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = load_one(a.models, 'codebook').eval()
    signals = {k: synth_signal(k, a.seconds) for k in ('scene', 'hits', 'chirp')}
    setups = [('whole grid', None, 0)] + [(f'windows, context {c}', 53, c) for c in a.contexts]
    rows = []
    for name, size, c in setups:
        per = {k: measure(model, w, size, c, a.gl_iter) for k, w in signals.items()}
        whole = {k: rows[0]['per'][k]['data'] for k in signals} if rows else {k: per[k]['data'] for k in signals}
        same = np.mean([(read_codes(per[k]['data'], model)[1] == read_codes(whole[k], model)[1]).float().mean().item() * 100 for k in signals])
        mean = lambda key: tuple(np.mean([per[k][key] for k in signals], 0))
        rows.append(dict(name=name, kept='all' if size is None else str(size - 2 * c), same=same, per=per,
                         spec=mean('spec'), wave=mean('wave'), secs=float(np.mean([per[k]['secs'] for k in signals]))))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = (f'## Codec windows (`benchmarks/codec_windows.py`)\n\nCodebook `{Path(a.models).name}`, {a.seconds:g}-s synthetic '
            f'signals (scene, hits, chirp; means), {a.threads} torch threads, Griffin-Lim {a.gl_iter} iterations, crossfade '
            f'16 frames. "near boundary": frames within 16 of a boundary between kept ranges (whole grid: the context-8 layout).\n\n'
            + table(rows))
    print(text)
    if not a.no_write: write_section(text)


if __name__ == '__main__': main()
