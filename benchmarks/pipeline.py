"""Griffin-Lim in torch against librosa's, and the whole bundled pipeline's speed.

    python benchmarks/pipeline.py [--models vgsg/assets/models] [--video vgsg/assets/examples/toy_hammer.mp4]
                                  [--samples 1] [--runs 3] [--threads 2] [--device cpu] [--vocoder auto]
                                  [--gl-runs 2] [--seeds 2] [--skip-gl] [--skip-pipeline] [--no-write]

1. Griffin-Lim, per clip: seconds per clip for `vgsg.audio.griffin_lim_librosa` (the original's path: librosa's
   `mel_to_stft` + `griffinlim`, 32 iterations) and `vgsg.audio.griffin_lim` (torch, 32 iterations, on `--device`),
   best of `--gl-runs`; and the mel L1 of each resynthesis: the normalised log-mel of the waveform, re-analysed,
   against the input spectrogram (mean over `--seeds` initial phases). Clips: 10-s test signals, the bundled
   example's sound (`vgsg/assets/examples/scene.flac`, the audio of `toy_hammer.mp4`), their reconstructions by the
   bundled codebook, and a spectrogram the bundled pipeline generated — what a vocoder gets in practice.
2. The pipeline: stages of `Pipeline.generate` + `write` for the bundled model set and video (mean of `--runs`
   after a warm-up), with the torch Griffin-Lim and, side by side, with librosa's; real-time factor = audio
   seconds / compute seconds.

Prints the tables and writes them as the `pipeline.py` section of `benchmarks/RESULTS.md` (unless
`--no-write`). A benchmark, not a test.
"""
import argparse, os, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from vgsg.audio import (SR, HOP, center_crop, to_model, from_model, griffin_lim, griffin_lim_librosa, load_audio,
                        synth_signal, wav_to_mel)
from vgsg.core.io import data_dir
from vgsg.pipeline import ModelSet, Pipeline
from vgsg.video import read_audio
from vgsg.vocoder import Vocoder

RESULTS = Path(__file__).parent / 'RESULTS.md'
SIGNALS = ('scene', 'hits', 'chirp', 'noise', 'loud_tone')


class LibrosaGriffinLim(Vocoder):
    "The pipeline's vocoder before: librosa's mel inversion and Griffin-Lim, one spectrogram at a time."
    def vocode_batch(self, mel, seed=0):
        seeds = [seed] * len(mel) if isinstance(seed, int) else seed
        return np.stack([griffin_lim_librosa(m, seed=s) for m, s in zip(mel, seeds)])


def best_time(fn, runs:int) -> tuple:
    "The fastest of `runs` calls of `fn` (seconds) and its last result."
    times = []
    for _ in range(runs):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return min(times), out


def resynth_l1(wav:np.ndarray, spec:torch.Tensor) -> float:
    "Mean |mel(wav) − spec| on the normalised [0, 1] scale, over the spectrogram's frames."
    return (wav_to_mel(wav, trim=False)[0, :, :spec.shape[-1]] - spec).abs().mean().item()


def clips(models:ModelSet, video:str) -> dict:
    "Name → normalised mel (80, T) of each clip the Griffin-Lim comparison uses."
    out = {f'{k} (10 s)': wav_to_mel(synth_signal(k))[0] for k in SIGNALS}
    out['scene.flac'] = wav_to_mel(load_audio(data_dir() / 'examples' / 'scene.flac'))[0]
    out['toy_hammer audio'] = wav_to_mel(load_audio_of(video))[0]
    cb = models.codebook.eval()
    for name in ('scene.flac', 'toy_hammer audio'):
        with torch.inference_mode():
            idx = cb.encode_indices(to_model(center_crop(out[name]))[None, None])
            out[f'{name}, codebook reconstruction'] = from_model(cb.decode_indices(idx)[0, 0]).clamp(0, 1)
    gen = Pipeline(models).generate(video, seed=0)
    out['generated for toy_hammer (seed 0)'] = gen.specs[0]
    return out


def load_audio_of(video:str) -> np.ndarray:
    "The first 10 s of a video's sound at 22.05 kHz, zero-padded."
    wav = read_audio(video, SR, stop=10)
    return np.pad(wav, (0, max(0, 10 * SR - len(wav))))[:10 * SR]


def griffin_lim_table(specs:dict, a) -> pd.DataFrame:
    "Time and mel L1 of librosa's and our Griffin-Lim per clip."
    rows = []
    for name, spec in specs.items():
        spec = spec.float()
        dev = spec.to(a.device)
        griffin_lim(dev[:, :16])   # warm-up (allocations, CUDA context)
        t_lib, _ = best_time(lambda: griffin_lim_librosa(spec, seed=0), a.gl_runs)
        t_ours, _ = best_time(lambda: griffin_lim(dev, seed=0), a.gl_runs)
        l1_lib = np.mean([resynth_l1(griffin_lim_librosa(spec, seed=s), spec) for s in range(a.seeds)])
        l1_ours = np.mean([resynth_l1(griffin_lim(dev, seed=s), spec) for s in range(a.seeds)])
        rows.append({'clip': name, 'frames': spec.shape[-1], 'librosa s': t_lib, 'torch s': t_ours,
                     'speed-up': t_lib / t_ours, 'mel L1 librosa': l1_lib, 'mel L1 torch': l1_ours,
                     'L1 torch / librosa': l1_ours / l1_lib})
        print(f"  {name:<45} {t_lib:6.2f} s  {t_ours:6.3f} s  x{t_lib / t_ours:5.1f}   L1 {l1_lib:.4f} vs {l1_ours:.4f}", flush=True)
    df = pd.DataFrame(rows)
    total = dict(clip='all clips (sums; L1 means)', frames=df.frames.sum(), **{k: df[k].sum() for k in ('librosa s', 'torch s')},
                 **{k: df[k].mean() for k in ('mel L1 librosa', 'mel L1 torch')})
    total['speed-up'] = total['librosa s'] / total['torch s']
    total['L1 torch / librosa'] = total['mel L1 torch'] / total['mel L1 librosa']
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def pipeline_table(models:ModelSet, a) -> tuple:
    "Mean seconds per stage of generate + write, and the real-time factor, with our and librosa's Griffin-Lim."
    out, cols, audio_s = Path(tempfile.mkdtemp()), {}, None
    vocoders = {type(models.vocoder).__name__: models.vocoder, 'librosa Griffin-Lim (before)': LibrosaGriffinLim()}
    for label, voc in vocoders.items():
        models.vocoder = voc
        pipe = Pipeline(models, a.device)
        rows = []
        for run in range(a.runs + 1):   # run 0 warms up
            gen = pipe.generate(a.video, n_samples=a.samples, top_k=a.top_x, seed=run)
            pipe.write(gen, out)
            if run: rows.append(gen.timings)
        mean = pd.DataFrame(rows).mean()
        audio_s = gen.wavs.shape[1] / SR * a.samples
        cols[label] = pd.concat([mean, pd.Series({'total': mean.sum(), 'vocoder share of total': mean['vocoder'] / mean.sum(),
                                                  'real-time factor': audio_s / mean.sum()})])
        print(f'  {label}: total {mean.sum():.2f} s, vocoder {mean["vocoder"]:.2f} s, RTF x{audio_s / mean.sum():.2f}', flush=True)
    models.vocoder = next(iter(vocoders.values()))
    return pd.DataFrame(cols), audio_s


def fmt(df:pd.DataFrame) -> str:
    "A markdown table (index as the first column; numbers with 4 significant digits)."
    cell = lambda v: f'{v:.4g}' if isinstance(v, (float, np.floating, int, np.integer)) else str(v)
    head = [df.index.name or ''] + [str(c) for c in df.columns]
    rows = [[str(i)] + [cell(v) for v in r] for i, r in zip(df.index, df.values.tolist())]
    return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [head, ['---'] * len(head)] + rows)


def write_section(text:str):
    "Replace (or append) the `pipeline.py` section of RESULTS.md."
    start, end = '<!-- pipeline.py: start -->', '<!-- pipeline.py: end -->'
    old = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n\nEach section is written by the script it names.\n'
    block = f'{start}\n{text.strip()}\n{end}'
    new = old[:old.index(start)] + block + old[old.index(end) + len(end):] if start in old and end in old else old.rstrip() + '\n\n' + block + '\n'
    tmp = RESULTS.with_name(f'.RESULTS.tmp{os.getpid()}.md'); tmp.write_text(new); os.replace(tmp, RESULTS)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default=str(data_dir() / 'models'))
    p.add_argument('--video', default=str(data_dir() / 'examples' / 'toy_hammer.mp4'))
    p.add_argument('--samples', type=int, default=1)
    p.add_argument('--runs', type=int, default=3, help='pipeline runs (after a warm-up)')
    p.add_argument('--gl-runs', type=int, default=2, help='timed Griffin-Lim calls per clip (best is kept)')
    p.add_argument('--seeds', type=int, default=2, help='initial phases the mel L1 is averaged over')
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--device', default='cpu')
    p.add_argument('--top-x', type=int, default=None)
    p.add_argument('--vocoder', default='auto', choices=['auto', 'melgan', 'griffin-lim'], help="the set's MelGAN or Griffin-Lim (auto: as the set recommends)")
    p.add_argument('--skip-gl', action='store_true'); p.add_argument('--skip-pipeline', action='store_true')
    p.add_argument('--no-write', action='store_true', help='print only; leave RESULTS.md alone')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    models = ModelSet.from_folder(a.models, a.device, a.vocoder)
    where = f'{os.cpu_count()} cores, {a.threads} torch thread(s), device {a.device}, torch {torch.__version__}'
    text = ['## Griffin-Lim and pipeline speed (`benchmarks/pipeline.py`)', '',
            f'`python benchmarks/pipeline.py --runs {a.runs} --gl-runs {a.gl_runs} --seeds {a.seeds} --threads {a.threads} '
            f'--device {a.device}` ({where}; load average {os.getloadavg()[0]:.1f} at the start).']
    if not a.skip_gl:
        print('Griffin-Lim, 32 iterations: librosa vs torch (seconds per clip, best of runs; mel L1 of the resynthesis)')
        gl = griffin_lim_table(clips(models, a.video), a)
        text += ['', '### Griffin-Lim: librosa (`griffin_lim_librosa`) vs torch (`griffin_lim`)', '',
                 'Seconds per clip (best of runs; librosa includes its NNLS mel inversion, as the old `griffin_lim` did); '
                 f'mel L1 = mean |mel(resynthesis) − input| on the [0, 1] scale, mean over {a.seeds} seeds.', '', fmt(gl.set_index('clip'))]
    if not a.skip_pipeline:
        print(f'pipeline: {a.models}, {a.video}, {a.samples} sample(s), mean of {a.runs} runs')
        pl, audio_s = pipeline_table(models, a)
        text += ['', f'### Bundled pipeline: seconds per stage, {a.samples} sample(s) of {audio_s / a.samples:.2f} s, mean of {a.runs} runs', '',
                 f'Model set `{Path(a.models).name}`, video `{Path(a.video).name}`; real-time factor = audio seconds / compute seconds.', '', fmt(pl)]
    report = '\n'.join(text)
    print(report)
    if not a.no_write: write_section(report)


if __name__ == '__main__':
    main()
