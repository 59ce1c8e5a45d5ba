"""End-to-end generation speed: seconds per 10-s clip with a model set, split by stage.

    python benchmarks/pipeline.py [--models data/models] [--video data/examples/toy_hammer.mp4]
                                  [--samples 1] [--runs 3] [--threads 2] [--device cpu] [--vocoder auto]

Stages: decode + features (PyAV + the transformer's frame features), sampling (KV-cache transformer),
decode (codebook decoder), vocoder, write (mp4 + wav + png). Prints the mean of `--runs` runs after a warm-up
and the real-time factor (audio seconds / compute seconds). A benchmark, not a test.
"""
import argparse, tempfile, time
from pathlib import Path
import pandas as pd, torch
from vgsg.audio import data_dir
from vgsg.pipeline import ModelSet, Pipeline


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default=str(data_dir() / 'models'))
    p.add_argument('--video', default=str(data_dir() / 'examples' / 'toy_hammer.mp4'))
    p.add_argument('--samples', type=int, default=1)
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--device', default='cpu')
    p.add_argument('--top-x', type=int, default=None)
    p.add_argument('--vocoder', default='auto', choices=['auto', 'melgan', 'griffin-lim'], help="the set's MelGAN or Griffin-Lim (auto: as the set recommends)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    pipe = Pipeline(ModelSet.from_folder(a.models, a.device, a.vocoder), a.device)
    out = Path(tempfile.mkdtemp())
    rows = []
    for run in range(a.runs + 1):   # run 0 warms up
        gen = pipe.generate(a.video, n_samples=a.samples, top_k=a.top_x, seed=run)
        pipe.write(gen, out)
        if run: rows.append(gen.timings)
    df = pd.DataFrame(rows)
    audio_s = gen.wavs.shape[1] / 22050 * a.samples
    mean = df.mean()
    print(f'model set {a.models}, video {a.video}, {a.samples} sample(s) of {audio_s / a.samples:.2f} s, '
          f'{a.threads} threads, {a.device}, vocoder {type(pipe.vocoder).__name__}, mean of {a.runs} runs')
    for k, v in mean.items(): print(f'  {k:<10} {v:7.3f} s')
    total = mean.sum()
    print(f'  {"total":<10} {total:7.3f} s   real-time factor x{audio_s / total:.2f} '
          f'({"faster" if audio_s > total else "slower"} than real time)')


if __name__ == '__main__':
    main()
