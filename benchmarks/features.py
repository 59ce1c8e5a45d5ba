"""Cost of video → features on this machine, and how informative random-weight ResNet-50 features are.

Usage: nice .venv/bin/python benchmarks/features.py [--clips 3] [--full212]
Prints: toy generation rate, per-frame cost of ResNet-50 / BN-Inception / TV-L1, `prepare` clips/s for
1 and 5 features (and 212 with --full212), and pairwise cosine similarities of random ResNet-50 features.
"""
import argparse, os, tempfile, time, warnings
from pathlib import Path
import numpy as np, torch
from vgsg.data import make_toy_dataset, prepare_toy, render_toy_clip, TOY_CLASSES
from vgsg.features import (ResNet, BNInception, ResNet50Features, resnet_preprocess, bni_preprocess_rgb, tvl1_flow,
                           require_cv2)


def timed(f, *a, **kw):
    t = time.perf_counter(); r = f(*a, **kw)
    return r, time.perf_counter() - t


def main(clips:int=3, full212:bool=False):
    warnings.simplefilter('ignore')
    print(f'torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} (2 cores, shared)')
    tmp = Path(tempfile.mkdtemp())
    _, dt = timed(make_toy_dataset, tmp / 'toy', classes=TOY_CLASSES[:clips], clips_per_class=1, seconds=10., size=112, progress=False)
    print(f'toy generation (10 s, 112 px, mp4): {clips / dt:.2f} clips/s')

    torch.manual_seed(0)
    r50 = ResNet().eval()
    frames = np.concatenate([render_toy_clip(c, (9, i), seconds=0.2, size=112).frames[:2] for i, c in enumerate(TOY_CLASSES)])
    with torch.inference_mode():
        f, dt = timed(r50, resnet_preprocess(frames))
    print(f'ResNet-50 forward: {dt / len(frames):.3f} s/frame (batch {len(frames)}, 224x224)')
    n = torch.nn.functional.normalize(f, dim=1)
    cos = (n @ n.T)[~torch.eye(len(n), dtype=bool)]
    print(f'random ResNet-50 features, {len(frames)} frames of 8 toy classes: pairwise cosine min {cos.min():.4f}, mean {cos.mean():.4f}')

    bni = BNInception().eval()
    with torch.inference_mode():
        _, dt = timed(bni, bni_preprocess_rgb(frames))
    print(f'BN-Inception forward: {dt / len(frames):.3f} s/frame')
    try:
        require_cv2()
        big = np.stack([np.asarray(torch.nn.functional.interpolate(torch.from_numpy(x).permute(2, 0, 1)[None].float(), size=(256, 340))[0]
                                   .permute(1, 2, 0).byte()) for x in frames[:4]])
        _, dt = timed(lambda: [tvl1_flow(big[i], big[i + 1]) for i in range(3)])
        print(f'TV-L1 flow at 340x256: {dt / 3:.2f} s/frame')
    except ImportError: print('TV-L1: opencv-contrib missing')

    ext = ResNet50Features(r50)
    for n_feats in [1, 5] + ([None] if full212 else []):
        _, dt = timed(prepare_toy, tmp / 'toy', tmp / f'prep{n_feats}', features=ext, n_feats=n_feats, progress=False)
        print(f'prepare, ResNet-50, {n_feats or 215} frames: {clips / dt:.3f} clips/s ({dt / clips:.1f} s/clip)')
    _, dt = timed(prepare_toy, tmp / 'toy', tmp / 'prep_px', features='pixels', progress=False)
    print(f'prepare, pixel features, 215 frames: {clips / dt:.3f} clips/s ({dt / clips:.2f} s/clip)')


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--clips', type=int, default=3)
    p.add_argument('--full212', action='store_true', help='also all 215 frames with ResNet-50 (about 1-2 min a clip)')
    a = p.parse_args()
    main(a.clips, a.full212)
