"""Evidence for the visually conditioned transformer (issue 6) on the synthetic audio-visual dataset.

Samples of the small 5-feature transformer and of the No Feats one for every clip of the test split, decoded by
their codebook and scored by the small Melception with `vgsg.evaluate`: FID (fidelity), MKL (relevance to the
clip's own sound), the share of samples Melception assigns to the clip's class, and onset sync (share of the
clip's visual events with an audio onset within ±0.1 s). Reference rows: the real clips and the codebook's
reconstructions. Then a top-X sweep. Results go to <results>/eval.csv and <results>/topx.csv.

    nice python benchmarks/transformer_eval.py \
        --run feats=runs/transformer_small/best --run nofeats=runs/transformer_small_nofeats/best \
        --results vgsg/assets/models/transformer_small --sweep 1 8 64 128

The time-aligned model (issue 17) beside the bundled 5-feature model, two draws each (seeds 0 and 1), the offset
of every event's nearest onset to <results>/offsets.csv and onset_offsets.png, the table to RESULTS.md:

    nice python benchmarks/transformer_eval.py --run aligned=runs/transformer_aligned_small/best \
        --run feats=vgsg/assets/models/transformer_small --seeds 0 1 --results runs/aligned_eval \
        --no-reference --earlier vgsg/assets/models/transformer_small/eval.csv vgsg/assets/models/transformer_small/variants.csv \
        --data configs/transformer_aligned_small.yaml --results-md aligned
"""
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

from vgsg.evaluate import (generate_samples, evaluate_folder, evaluate_reconstruction, clip_events, sample_table,
                           load_sample, LazySpecs, real_spec, append_csv, onset_offsets, plot_onset_offsets)
from vgsg.core.io import module_hash
from vgsg.melception import melception_features
from vgsg.core.models import load_model
from vgsg.train.transformer import codebook_of, feature_dataset, transformer_sampler
from vgsg.train.trainer import run_config
from vgsg.sample import quantize_int8
from vgsg.features import CROP_LEN
from vgsg.core.safety import read_yaml


def melception(path=None):
    "The bundled small Melception, or a run's best checkpoint"
    from vgsg.evaluate import load_scorer
    return load_scorer(path)


def first_per_class(ds, k):
    "A copy of a `SpecFeatsDataset` holding the first `k` clips of each class"
    import copy
    small = copy.copy(ds)
    classes = ds.items.attrs.get('classes')
    small.items = ds.items.groupby('target', sort=False).head(k).reset_index(drop=True)
    small.items.attrs['classes'] = classes
    return small


def class_share(mel, folder, classes=None, bs=32) -> float:
    "Share of the samples in `folder` whose Melception class is the class of their video"
    table = sample_table(folder, classes)
    logits = melception_features(mel, LazySpecs(len(table), lambda i: load_sample(table.path[i])), ('logits',), bs)['logits']
    return float((np.asarray(logits).argmax(1) == table.target.to_numpy()).mean())


def real_class_share(mel, ds, bs=32) -> float:
    "Melception's accuracy on the real clips (the ceiling of the share above)"
    logits = melception_features(mel, LazySpecs(len(ds), lambda i: real_spec(ds, i)), ('logits',), bs)['logits']
    return float((np.asarray(logits).argmax(1) == np.array([int(t) for t in ds.items['target']])).mean())


KEEP = ['model', 'seed', 'top_k', 'n_samples', 'n_fake', 'fid', 'mkl', 'class_share', 'isc_mean', 'onset_within', 'onset_precision',
        'onset_offset_s', 'seconds']


def score(name, top_k, folder, ds, mel, events, n, t0):
    "One results row for a folder of samples"
    row = evaluate_folder(folder, ds, mel, ('fid', 'mkl', 'isc'), events=events, isc_splits=2, verbose=False).iloc[0].to_dict()
    row.update(model=name, top_k=top_k, n_samples=n, class_share=class_share(mel, folder, ds.classes), seconds=time.time() - t0)
    return row


def sample_and_score(name, gpt, vq, ds, mel, events, out, top_k, n, bs, seed=0):
    t0 = time.time()
    folder = Path(out)/(f'{name}_top{top_k}' + (f'_seed{seed}' if seed else ''))
    torch.manual_seed(seed)
    rep = generate_samples(transformer_sampler(gpt, vq, top_k), ds, folder, 'test', n_samples=n, batch_size=bs, seed=seed,
                           settings=dict(model=name, top_k=top_k, gpt=module_hash(gpt), codebook=module_hash(vq)), progress=False)
    if rep.failed: raise RuntimeError(f'{name}: {len(rep.failed)} clips failed: {list(rep.failed.items())[:3]}')
    row = score(name, top_k, folder/'test', ds, mel, events, n, t0)
    row['seed'] = seed
    row['offsets'] = onset_offsets(folder/'test', events, ds.classes)
    print(pd.DataFrame([row])[[c for c in KEEP if c in row]].to_string(index=False), flush=True)
    return row


def write_offsets(results, offsets:dict):
    "Every event's |event - nearest onset| per model to offsets.csv, and their cumulative shares to onset_offsets.png"
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pd.concat([pd.DataFrame(dict(model=k, offset_s=v)) for k, v in offsets.items()]).to_csv(Path(results)/'offsets.csv', index=False)
    ax = plot_onset_offsets(offsets)
    ax.set_title('Synthetic test split: nearest onset to each visual event', fontsize=9)
    plt.tight_layout(); plt.savefig(Path(results)/'onset_offsets.png', dpi=110); plt.close()


RESULTS = Path(__file__).parent/'RESULTS.md'

def write_section(name, df, earlier, argv):
    "Replace (or append) the `transformer_eval.py: <name>` section of RESULTS.md with the table (and earlier rows)"
    cols = ['model', 'seed', 'n_fake', 'fid', 'mkl', 'class_share', 'onset_within', 'onset_precision', 'onset_offset_s']
    cell = lambda v: '' if pd.isna(v) else f'{v:.4g}' if isinstance(v, float) else str(v)
    def md(d):
        d = d[[c for c in cols if c in d.columns]]
        return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [list(d.columns), ['---'] * d.shape[1]] + [[cell(v) for v in r] for r in d.values.tolist()])
    text = [f'## Time-aligned transformer vs the prefix models (`transformer_eval.py`, {name})', '',
            '80 test clips of the synthetic set, 2 samples per clip per draw (seed), scored by the bundled small Melception.',
            'onset_within: share of visual events with an audio onset within +-0.1 s; onset_offset_s: mean |event -',
            'nearest onset|. Command: `python benchmarks/transformer_eval.py ' + ' '.join(argv) + '`', '', md(df)]
    if earlier: text += ['', f"Rows measured earlier by this script ({', '.join(f'`{e}`' for e in earlier)}, one draw each; see the model card):", '',
                         md(pd.concat([pd.read_csv(e) for e in earlier], ignore_index=True))]
    start, end = f'<!-- transformer_eval.py: {name} -->', f'<!-- /transformer_eval.py: {name} -->'
    old = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n'
    block = start + '\n' + '\n'.join(text) + '\n' + end
    new = old[:old.index(start)] + block + old[old.index(end) + len(end):] if start in old and end in old else old.rstrip() + '\n\n' + block + '\n'
    tmp = RESULTS.with_name(f'.RESULTS.tmp{os.getpid()}.md'); tmp.write_text(new); os.replace(tmp, RESULTS)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--run', action='append', required=True, help='name=checkpoint folder (e.g. feats=runs/transformer_small/best)')
    p.add_argument('--results', default='vgsg/assets/models/transformer_small', help='folder for eval.csv and topx.csv')
    p.add_argument('--out', default='runs/transformer_eval', help='samples root')
    p.add_argument('--melception', default=None, help='a Melception run folder (default: the bundled small Melception)')
    p.add_argument('--n-samples', type=int, default=2, help='samples per test clip')
    p.add_argument('--top-k', type=int, default=None, help='top-X of the main comparison (default |Z|)')
    p.add_argument('--sweep', type=int, nargs='*', default=[], help='top-X values of the sweep (e.g. 1 8 64 128)')
    p.add_argument('--sweep-samples', type=int, default=1, help='samples per clip in the sweep')
    p.add_argument('--sweep-only', action='store_true', help='skip the main comparison (eval.csv); only the sweep')
    p.add_argument('--int8', action='store_true', help='also score an int8 copy of each model (vgsg.sample.quantize_int8)')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--seeds', type=int, nargs='+', default=[0], help='one draw of samples per seed (the spread of draws)')
    p.add_argument('--no-reference', action='store_true', help='skip the real-clip and codebook-reconstruction rows')
    p.add_argument('--data', default=None, help="a config file whose data section names the test split (default: the first run's)")
    p.add_argument('--earlier', nargs='+', default=[], help='CSVs of rows measured earlier (e.g. eval.csv, variants.csv), shown below the table')
    p.add_argument('--results-md', default=None, help='write the table as this named section of benchmarks/RESULTS.md')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--per-class', type=int, default=None, help='evaluate on the first K test clips of each class only (a quick check)')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    runs = dict(r.split('=', 1) for r in a.run)
    models = {k: load_model(v) for k, v in runs.items()}
    if a.int8: models.update({f'{k} int8': quantize_int8(g) for k, g in list(models.items())})
    first = next(iter(runs.values()))
    vq = codebook_of(first)
    cfg = read_yaml(a.data) if a.data else run_config(Path(first))
    if 'data' not in cfg: raise ValueError(f"{a.data or first}: no data section (give --data CONFIG with the test split's data)")
    n_feats = max([g.cfg.n_feats for g in models.values() if g.cfg.cond in ('feats', 'feats_class')] or [1])
    if any(g.cfg.cond == 'aligned' for g in models.values()):
        n_feats = CROP_LEN   # all 212 frames: an aligned model reads them all, a prefix model keeps its N (`window_feats`)
    elif any(g.cfg.cond in ('feats', 'feats_class') and g.cfg.n_feats != n_feats for g in models.values()):
        raise ValueError('all feature-conditioned models must use the same number of features')
    ds = feature_dataset(cfg['data'], 'test', n_feats, cfg['data'].get('features', 'pixels'))
    if a.per_class: ds = first_per_class(ds, a.per_class)
    mel, events = melception(a.melception), clip_events(ds)
    res = Path(a.results); res.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.time()
    if not a.sweep_only and not a.no_reference:
        rec = evaluate_reconstruction(vq, ds, Path(a.out)/'reconstruction', 'test', mel, metrics=('fid', 'mkl', 'isc'),
                                      events=events, isc_splits=2, progress=False, verbose=False).iloc[0].to_dict()
        rec.update(model='codebook reconstruction', top_k=None, n_samples=1,
                   class_share=class_share(mel, Path(a.out)/'reconstruction'/'test', ds.classes), seconds=time.time() - t0)
        real = dict(model='real clips', n_samples=1, n_fake=len(ds), class_share=real_class_share(mel, ds),
                    onset_within=rec.get('real_onset_within'), onset_precision=rec.get('real_onset_precision'),
                    onset_offset_s=rec.get('real_onset_offset_s'))
        rows += [real, rec]
    if not a.sweep_only:
        for name, g in models.items():
            for seed in a.seeds:
                rows.append(sample_and_score(name, g, vq, ds, mel, events, a.out, a.top_k, a.n_samples, a.batch_size, seed))
        offsets = {f"{r['model']} (seed {r['seed']})": r.pop('offsets') for r in rows if 'offsets' in r}
        if offsets: write_offsets(res, offsets)
        df = pd.DataFrame(rows)
        df = df[[c for c in KEEP if c in df.columns]]
        df.to_csv(res/'eval.csv.tmp', index=False); (res/'eval.csv.tmp').replace(res/'eval.csv')
        print(df.to_string(index=False))
        if a.results_md: write_section(a.results_md, df, a.earlier, sys.argv[1:])
    if a.sweep:
        sweep = []
        for name, g in models.items():
            for k in a.sweep:
                k = None if k >= g.cfg.vocab_size else k
                r = sample_and_score(name, g, vq, ds, mel, events, Path(a.out)/'sweep', k, a.sweep_samples, a.batch_size)
                r['top_k'] = k or g.cfg.vocab_size
                r.pop('offsets', None)
                sweep.append(r)
                sw = pd.DataFrame(sweep)[[c for c in KEEP if c in r]]
                sw.to_csv(res/'topx.csv.tmp', index=False); (res/'topx.csv.tmp').replace(res/'topx.csv')
        print(sw.to_string(index=False))


if __name__ == '__main__':
    main()
