"Tests of vgsg.evaluate: resumable generation without duplicates, broken items, the metric pipeline end to end, MKL of identical inputs."
import json, os
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from vgsg.audio import from_model
from vgsg.evaluate import (sample_path, sample_table, item_key, as_samples, copy_sampler, reconstruction_sampler,
                           generate_samples, evaluate_folder, evaluate_reconstruction, clip_events, real_spec,
                           random_melception, load_sample, batch_seed)


class Specs(torch.utils.data.Dataset):
    "A tiny in-memory split: items like vgsg.data's (image in [−1, 1], target, clip) and a table with event times."
    def __init__(self, n=6, T=848, seed=0):
        g = np.random.default_rng(seed)
        level = g.normal(-0.3, 0.3, (n, 80, 1))                     # each clip its own spectral envelope
        self.x = np.clip(level + 0.2 * g.normal(size=(n, 80, T)), -1, 1).astype(np.float32)
        self.x[:, :, ::50] = 1.0                                    # loud frames: onsets every 50 frames
        self.items = pd.DataFrame(dict(clip=[f'clip{i:02d}' for i in range(n)], target=[i % 2 for i in range(n)],
                                       events=['0.5 1.0'] * n, seconds=[2.0] * n))
        self.classes = ['a', 'b']
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return dict(image=torch.from_numpy(self.x[i]), target=int(self.items['target'][i]), clip=self.items['clip'][i])


class Counting:
    "A noisy copy sampler that counts calls and generated rows, and is interrupted (KeyboardInterrupt) at call `stop_at`."
    def __init__(self, stop_at=None): self.calls, self.rows, self.stop_at = 0, 0, stop_at
    def __call__(self, batch, n):
        self.calls += 1
        if self.calls == self.stop_at: raise KeyboardInterrupt
        x = batch['image'].repeat_interleave(n, 0)
        self.rows += len(x)
        return x + 0.1 * torch.randn_like(x)


@pytest.fixture(scope='module')
def data(): return Specs()


@pytest.fixture(scope='module')
def scorer(data): return random_melception(np.stack([real_spec(data, i) for i in range(len(data))]), n_classes=5)


def files(folder): return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob('*') if p.is_file())


def test_layout_and_values(data, tmp_path):
    rep = generate_samples(copy_sampler(), data, tmp_path, 'test', n_samples=2, batch_size=4, progress=False)
    assert (rep.written, rep.complete, rep.failed) == (12, 0, {})
    assert sample_path(tmp_path, 'test', 1, 'clip01', 1).exists()
    np.testing.assert_array_equal(np.load(sample_path(tmp_path, 'test', 1, 'clip03', 0)), from_model(data.x[3]))
    t = sample_table(tmp_path/'test', data.classes)
    assert t.key.tolist()[:2] == ['a/clip00', 'a/clip00'] and len(t) == 12


def test_not_clamped():
    assert as_samples(torch.full((1, 80, 4), 2.0), 1, 1).max() == 1.5


def test_resume_without_duplicates(data, tmp_path):
    kw = dict(dataset=data, split='test', n_samples=3, batch_size=2, seed=7, progress=False)
    generate_samples(Counting(), out_dir=tmp_path/'ref', **kw)
    interrupted = Counting(stop_at=2)
    with pytest.raises(KeyboardInterrupt): generate_samples(interrupted, out_dir=tmp_path/'run', **kw)
    first = {p: os.stat(tmp_path/'run'/p).st_mtime_ns for p in files(tmp_path/'run') if p.endswith('.npy')}
    assert len(first) == 6                                           # batch 0 only, nothing half-written
    resumed = Counting()
    rep = generate_samples(resumed, out_dir=tmp_path/'run', **kw)
    assert (resumed.calls, resumed.rows, rep.written, rep.complete) == (2, 12, 12, 2)   # batches 1 and 2 only
    assert {p: os.stat(tmp_path/'run'/p).st_mtime_ns for p in first} == first          # nothing rewritten
    assert files(tmp_path/'run') == files(tmp_path/'ref')                              # no extra or temp files
    for p in files(tmp_path/'ref'):
        if p.endswith('.npy'): np.testing.assert_array_equal(np.load(tmp_path/'ref'/p), np.load(tmp_path/'run'/p))
    again = Counting()
    assert generate_samples(again, out_dir=tmp_path/'run', **kw).written == 0 and again.calls == 0


def test_partial_item_regenerates_only_missing(data, tmp_path):
    kw = dict(dataset=data, split='test', n_samples=2, batch_size=3, seed=1, progress=False)
    generate_samples(Counting(), out_dir=tmp_path, **kw)
    gone = sample_path(tmp_path, 'test', 0, 'clip04', 1)
    kept = sample_path(tmp_path, 'test', 1, 'clip05', 0)
    old, t_kept = np.load(gone), os.stat(kept).st_mtime_ns
    gone.unlink()
    rep = generate_samples(Counting(), out_dir=tmp_path, **kw)
    assert (rep.written, rep.complete) == (1, 5)
    np.testing.assert_array_equal(np.load(gone), old)               # same seed for the batch: same value
    assert os.stat(kept).st_mtime_ns == t_kept


def test_other_settings_refused(data, tmp_path):
    generate_samples(copy_sampler(), data, tmp_path, n_samples=1, progress=False, settings=dict(top_k=64))
    with pytest.raises(ValueError, match="top_k"):
        generate_samples(copy_sampler(), data, tmp_path, n_samples=1, progress=False, settings=dict(top_k=512))


def test_broken_items_skipped_and_reported(data, tmp_path):
    class Broken(Specs):
        def __getitem__(self, i):
            if i == 2: raise OSError('clip02_mel.npy: truncated file')
            return super().__getitem__(i)
    def picky(batch, n):
        if 'clip05' in batch['clip']: raise RuntimeError('CUDA out of memory')
        return batch['image'].repeat_interleave(n, 0)
    rep = generate_samples(picky, Broken(), tmp_path, batch_size=1, progress=False)
    assert sorted(rep.failed) == ['clip02', 'clip05'] and 'truncated' in rep.failed['clip02']
    assert rep.written == 4
    assert pd.read_csv(tmp_path/'test'/'failed.csv')['clip'].tolist() == ['clip02', 'clip05']


def test_ranks_share_the_work(data, tmp_path):
    reps = [generate_samples(copy_sampler(), data, tmp_path, batch_size=2, rank=r, world=2, progress=False) for r in (0, 1)]
    assert [r.written for r in reps] == [4, 2] and len(sample_table(tmp_path/'test')) == 6
    assert batch_seed(0, 1) != batch_seed(0, 2) and batch_seed(0, 1) == batch_seed(0, 1)


def test_mkl_zero_for_identical_and_positive_otherwise(data, scorer, tmp_path):
    generate_samples(copy_sampler(), data, tmp_path/'same', progress=False)
    generate_samples(copy_sampler(roll=1), data, tmp_path/'other', batch_size=6, progress=False)
    kw = dict(melception=scorer, isc_splits=2, kid_subsets=5, verbose=False)
    same = evaluate_folder(tmp_path/'same'/'test', data, **kw).iloc[0]
    other = evaluate_folder(tmp_path/'other'/'test', data, **kw).iloc[0]
    assert -5 * 1e-6 - 1e-9 < same.mkl <= 0                          # only the 1e-6 smoothing (5 classes)
    assert abs(same.fid) < 1e-3                                      # one sample per video: identical sets
    assert other.mkl > 1e-2 and other.mkl > 1000 * abs(same.mkl)   # right sounds, wrong videos
    assert abs(other.fid - same.fid) < 1e-3                          # the same set: FID cannot see the pairing


def test_metric_pipeline_end_to_end(data, scorer, tmp_path):
    generate_samples(copy_sampler(noise=0.3), data, tmp_path, n_samples=2, progress=False, settings=dict(top_k=5))
    ev = clip_events(data)
    assert np.allclose(ev['a/clip00'], [0.5, 1.0, 2.5, 3.0, 4.5, 5.0, 6.5, 7.0, 8.5, 9.0])
    df = evaluate_folder(tmp_path/'test', data, scorer, events=ev, out_csv=tmp_path/'r.csv', isc_splits=2,
                         kid_subsets=5, verbose=False)
    row = df.iloc[0]
    assert (row.n_fake, row.n_real, row.n_videos, row.top_k, row.n_samples) == (12, 6, 6, 5, 2)
    for k in ('fid', 'mkl', 'isc_mean', 'isc_std', 'kid_mean', 'kid_std', 'onset_offset_s', 'onset_within',
              'real_onset_offset_s', 'melception'):
        assert k in df and pd.notna(row[k]), k
    assert row.fid > 0 and row.mkl > 0 and row.isc_mean >= 1
    evaluate_folder(tmp_path/'test', data, scorer, metrics=('fid',), out_csv=tmp_path/'r.csv', verbose=False)
    assert len(pd.read_csv(tmp_path/'r.csv')) == 2


def test_reconstruction_of_a_codebook(data, scorer, tmp_path):
    from vgsg.vqgan import VQModel, tiny_codebook
    torch.manual_seed(0)
    vq = VQModel(tiny_codebook)
    df = evaluate_reconstruction(vq, data, tmp_path, melception=scorer, batch_size=3, progress=False, verbose=False)
    assert {'fid', 'mkl', 'codebook'} <= set(df.columns) and 'isc_mean' not in df
    assert df.fid[0] > 0 and df.mkl[0] > 0 and df.n_fake[0] == 6
    x = data[0]['image']
    with torch.no_grad(): want = from_model(vq(x[None, None])[0][0, 0]).numpy()
    np.testing.assert_allclose(load_sample(sample_path(tmp_path, 'test', 0, 'clip00', 0)), want, atol=1e-4)


def test_bad_sample_file_named(data, scorer, tmp_path):
    generate_samples(copy_sampler(), data, tmp_path, progress=False)
    bad = sample_path(tmp_path, 'test', 1, 'clip03', 0)
    np.save(bad, np.full((80, 848), np.nan, np.float32))
    with pytest.raises(ValueError, match='clip03_sample_0.npy: expected a finite'):
        evaluate_folder(tmp_path/'test', data, scorer, metrics=('fid',), verbose=False)
