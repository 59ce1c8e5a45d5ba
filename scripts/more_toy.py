#!/usr/bin/env python
"""More training clips for the synthetic set: clips i0..i1-1 of every class (seeds (seed, class, i), the same recipe
as the 50-clip set, whose clips are i < 50), rendered to mp4 and prepared with `pixels` features (5 frames, or all 215 with --all-frames),
then merged with an existing prepared folder into a new one whose train split gains them (valid/test unchanged).

    vgsg toy runs/toy_videos --size small --prepare runs/toy      # the base: the small synthetic set
    python scripts/more_toy.py --i0 50 --i1 200 --videos runs/toy_more_videos --prepared runs/toy_more \
        --base runs/toy --out runs/toy_big                        # these are the defaults
"""
import argparse, os, shutil
from pathlib import Path
import pandas as pd
from vgsg.data import make_toy_dataset, prepare_toy, read_manifest, prepared_feature, MEL_DIR
from vgsg.features import FEATURE_DIRS

def merge(base:Path, extra:Path, out:Path):
    "A prepared folder of symlinks: base's clips and splits, plus extra's clips in train."
    b, e = read_manifest(base), read_manifest(extra)
    for d in (MEL_DIR, FEATURE_DIRS['pixels']): (out/d).mkdir(parents=True, exist_ok=True)
    for root, df in ((base, b), (extra, e)):
        for c in df.loc[df.status == 'ok', 'clip']:
            feat = prepared_feature(root, 'pixels', c)                  # .npy (or .pkl from older versions)
            for src, dst in ((root/MEL_DIR/f'{c}_mel.npy', out/MEL_DIR/f'{c}_mel.npy'),
                             (feat, out/FEATURE_DIRS['pixels']/feat.name)):
                if not dst.exists(): os.symlink(src.resolve(), dst)
    e = e[e.status == 'ok'].assign(split='train')
    pd.concat([b, e]).to_csv(out/'manifest.csv', index=False)
    for s in ('valid', 'test'): shutil.copy(base/f'{s}.txt', out/f'{s}.txt')
    (out/'train.txt').write_text((base/'train.txt').read_text() + ''.join(c + '\n' for c in e['clip']))
    print(f'{out}: {len(b)} + {len(e)} clips')

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--i0', type=int, default=50); p.add_argument('--i1', type=int, default=200)
    p.add_argument('--seed', type=int, default=0); p.add_argument('--seconds', type=float, default=10.); p.add_argument('--size', type=int, default=32)
    p.add_argument('--videos', default='runs/toy_more_videos'); p.add_argument('--prepared', default='runs/toy_more')
    p.add_argument('--base', default='runs/toy', help='a prepared small synthetic set: `vgsg toy runs/toy_videos --size small --prepare runs/toy`'); p.add_argument('--out', default='runs/toy_big')
    p.add_argument('--all-frames', action='store_true', help="keep all 215 frames (what `model.cond: aligned` reads)")
    a = p.parse_args(argv)
    read_manifest(a.base)   # a missing base fails now, not after rendering the clips
    make_toy_dataset(a.videos, clips_per_class=a.i1 - a.i0, first=a.i0, seconds=a.seconds, size=a.size, seed=a.seed,
                     valid=0, test=0)   # all train: the base's valid and test splits stay the evaluation
    prepare_toy(a.videos, a.prepared, 'pixels', n_feats=None if a.all_frames else 5)
    merge(Path(a.base), Path(a.prepared), Path(a.out))

if __name__ == '__main__': main()
