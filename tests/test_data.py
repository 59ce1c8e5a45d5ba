"Tests of vgsg.data: original-layout datasets, `prepare`, and the synthetic audio-visual dataset."
import json, os, time
import numpy as np, pandas as pd, pytest, torch
from vgsg.data import *
from vgsg.audio import wav_to_mel, SR
from vgsg.core.io import data_dir
from vgsg.video import make_test_clip, load_clip, read_audio, probe
from vgsg.features import ResNet, ResNet50Features, PixelFeatures, FEATURE_DIRS, select_frames, load_feature


@pytest.fixture(scope='module')
def tiny_ext():
    torch.manual_seed(0)
    return ResNet50Features(ResNet((1, 1, 1, 1), width=8), resize=64, crop=56)


# ---------------------------------------------------------------- end to end: mp4 → decode → loop → mel + features
def test_video_to_mel_and_features_end_to_end(tmp_path, tiny_ext):
    p = make_test_clip(tmp_path / 'in' / 'beep.mp4', seconds=3, fps=30, size=40, sr=48000, freq=1000)
    clip = load_clip(p)
    assert clip.frames.shape == (215, 40, 40, 3) and clip.wav.shape == (220500,)   # 10 s at 21.5 fps / 22.05 kHz
    orig = read_audio(p)
    assert len(orig) == 3 * SR
    np.testing.assert_allclose(clip.wav[3 * SR:6 * SR], orig, atol=1e-5)          # the loop repeats the original
    man = prepare(tmp_path / 'in', tmp_path / 'out', features=tiny_ext, progress=False)
    assert man['status'].tolist() == ['ok'] and man['duration'].iloc[0] == pytest.approx(3.0)
    mel = np.load(tmp_path / 'out' / MEL_DIR / 'beep_mel.npy')
    feats = load_feature(tmp_path / 'out' / FEATURE_DIRS['resnet50'] / 'beep.npy')
    assert mel.shape == (80, 860) and mel.dtype == np.float32 and 0 <= mel.min() and mel.max() <= 1
    np.testing.assert_allclose(mel, wav_to_mel(clip.wav)[0].numpy(), atol=1e-5)
    assert feats.shape == (215, 256)
    # a 3 s loop is 64.5 frames at 21.5 fps, so compare frames that show the same source frame
    k = np.arange(215)
    src = np.floor(np.mod(k / 21.5, 3.0) * 30 + 1e-9).astype(int)
    same = [(i, j) for i in range(215) for j in range(i + 1, 215) if src[i] == src[j]][:20]
    assert same and all(np.allclose(feats[i], feats[j], atol=1e-4) for i, j in same)


# ---------------------------------------------------------------- prepare
def make_folder(root):
    make_test_clip(root / 'beeps' / 'a.mp4', freq=440)
    make_test_clip(root / 'beeps' / 'b.mp4', freq=880)
    make_test_clip(root / 'beeps' / 'c.mp4', freq=660)
    make_test_clip(root / 'hums' / 'd.mp4', freq=110)
    (root / 'hums' / 'corrupt.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'\x13' * 500)
    make_test_clip(root / 'hums' / 'silent.mp4', audio=False)
    (root / 'notes.txt').write_text('not a video, not even looked at')
    return root


def test_prepare_lists_failures_and_prepares_rest(tmp_path, tiny_ext, capsys):
    vids = make_folder(tmp_path / 'v')
    man = prepare(vids, tmp_path / 'p', features=tiny_ext, n_feats=5, progress=False)
    st = man.set_index('clip')['status']
    assert st.to_dict() == {'beeps__a': 'ok', 'beeps__b': 'ok', 'beeps__c': 'ok', 'hums__corrupt': 'failed',
                            'hums__d': 'ok', 'hums__silent': 'failed'}
    err = man.set_index('clip')['error']
    assert 'corrupt.mp4' in err['hums__corrupt'] and 'silent.mp4: no audio stream' in err['hums__silent']
    saved = read_manifest(tmp_path / 'p')
    assert saved['status'].tolist() == man['status'].tolist() and (saved['class'] == man['class']).all()
    ok = man[man.status == 'ok']
    assert sorted(ok['split']) == ['test', 'train', 'train', 'valid']            # beeps: 3 clips → 1 valid, 1 test; hums: 1 → train
    lines = sum((read_split(tmp_path / 'p' / f'{s}.txt') for s in ('train', 'valid', 'test')), [])
    assert sorted(lines) == sorted(ok['clip'])                                    # failed clips in no split
    assert man.loc[man.status == 'failed', 'split'].eq('').all()
    for c in ok['clip']:
        assert load_feature(tmp_path / 'p' / FEATURE_DIRS['resnet50'] / f'{c}.npy').shape == (5, 256)
    assert not list((tmp_path / 'p').rglob('*.pkl'))                               # no pickles in a prepared folder
    assert (man.set_index('clip').loc[['beeps__a', 'hums__d'], 'target'] == [0, 1]).all()


def test_prepare_resumes_without_recomputing(tmp_path, tiny_ext):
    vids = tmp_path / 'v'
    make_test_clip(vids / 'x.mp4'); make_test_clip(vids / 'y.mp4')
    m1 = prepare(vids, tmp_path / 'p', features=tiny_ext, n_feats=1, progress=False)
    broken = tmp_path / 'p' / FEATURE_DIRS['resnet50'] / 'y.npy'
    files = [tmp_path / 'p' / MEL_DIR / 'x_mel.npy', tmp_path / 'p' / FEATURE_DIRS['resnet50'] / 'x.npy']
    stamps = [f.stat().st_mtime_ns for f in files]
    broken.write_bytes(b'broken')                                                 # a half-written file from a crash
    m2 = prepare(vids, tmp_path / 'p', features=tiny_ext, n_feats=1, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == stamps                        # the complete clip is not redone
    assert load_feature(tmp_path / 'p' / FEATURE_DIRS['resnet50'] / 'y.npy').shape == (1, 256)
    assert m2['duration'].tolist() == pytest.approx(m1['duration'].tolist())
    assert m2['split'].tolist() == m1['split'].tolist()                           # seeded


def test_prepare_with_labels_csv_and_no_features(tmp_path):
    vids = tmp_path / 'v'
    for n in ('one', 'two', 'three'): make_test_clip(vids / f'{n}.mp4')
    pd.DataFrame(dict(video=['one.mp4', 'two.mp4', 'three.mp4'], label=['cat', 'dog', 'cat'],
                      split=['train', 'test', 'valid'])).to_csv(tmp_path / 'labels.csv', index=False)
    man = prepare(vids, tmp_path / 'p', labels=tmp_path / 'labels.csv', features=None, progress=False)
    assert man.set_index('clip')[['class', 'split', 'target']].to_dict('index') == {
        'one': {'class': 'cat', 'split': 'train', 'target': 0}, 'three': {'class': 'cat', 'split': 'valid', 'target': 0},
        'two': {'class': 'dog', 'split': 'test', 'target': 1}}
    ds = prepared_dataset(tmp_path / 'p', 'test', feats=None)
    assert len(ds) == 1 and ds[0]['target'] == 1 and ds[0]['image'].shape == (80, 848) and 'feature' not in ds[0]
    with pytest.raises(FileNotFoundError, match='manifest'): prepared_dataset(tmp_path / 'nowhere')


def test_labels_match_nested_paths_or_file_names(tmp_path):
    vids = tmp_path / 'v'
    make_test_clip(vids / 'x' / 'one.mp4'); make_test_clip(vids / 'y' / 'two.mp4')
    labels = pd.DataFrame(dict(video=['x/one.mp4', 'two.mp4'], label=['a', 'b']))   # relative path, bare name
    man = prepare(vids, tmp_path / 'p', labels=labels, features=None, progress=False)
    assert man.set_index('clip')['class'].to_dict() == {'x__one': 'a', 'y__two': 'b'}
    man = prepare(vids, tmp_path / 'q', features=None, progress=False)            # no labels: sub-folder = class
    assert man.set_index('clip')['class'].to_dict() == {'x__one': 'x', 'y__two': 'y'}


def test_assign_splits_per_class():
    df = pd.DataFrame({'class': ['a'] * 10 + ['b'] * 2 + ['c'], 'split': [np.nan] * 12 + ['test']})
    s = assign_splits(df, seed=0)
    assert (s[:10].value_counts().to_dict()) == {'train': 8, 'valid': 1, 'test': 1}
    assert sorted(s[10:12]) == ['train', 'valid'] and s[12] == 'test'
    assert s.tolist() == assign_splits(df, seed=0).tolist() != assign_splits(df, seed=1).tolist()


# ---------------------------------------------------------------- original layouts
def fake_vas(root):
    rows = ['dog/video_00001', 'baby/video_00003', 'sneeze/video_00010']
    for i, r in enumerate(rows):
        cls, name = r.split('/')
        d = root / 'vas' / 'features' / cls
        write_fake_clip(d / MEL_DIR / f'{name}_mel.npy', {k: d / FEATURE_DIRS[k] / f'{name}.pkl' for k in ('rgb', 'flow', 'resnet50')},
                        rows=216, seed=i)
    (root / 'vas_valid.txt').write_text('\n'.join(rows) + '\n')
    return root / 'vas'


def test_vas_dataset(tmp_path):
    ds = vas_dataset(fake_vas(tmp_path), 'valid', n_feats=5)
    assert [ds[i]['target'] for i in range(3)] == [2, 0, 7] and ds.classes == sorted(VAS_CLASSES)
    it = ds[0]
    assert it['image'].shape == (80, 848) and it['feature'].shape == (5, 2048) and it['file_path_'].endswith('video_00001_mel.npy')
    assert it['feature'][:, 0].tolist() == [36, 78, 120, 163, 205] and it['feature'][:, 1024].tolist() == [36.5, 78.5, 120.5, 163.5, 205.5]
    raw = np.load(it['file_path_'])
    np.testing.assert_allclose(it['image'], 2 * raw[:, 6:854] - 1, atol=1e-6)
    r = vas_dataset(tmp_path / 'vas', 'valid', feats='resnet50', n_feats=212)[1]['feature']
    assert r.shape == (212, 2048) and r[0, 0] == 1 and r[-1, 0] == 212
    with pytest.raises(FileNotFoundError, match='vas_train.txt'): vas_dataset(tmp_path / 'vas', 'train')


def test_no_feats_random_each_time(tmp_path):
    ds = vas_dataset(fake_vas(tmp_path), 'valid', random_feats=True, n_feats=1)
    a, b = ds[0]['feature'], ds[0]['feature']
    assert a.shape == (1, 2048) and not np.allclose(a, b) and 0 <= min(a.min(), b.min()) and max(a.max(), b.max()) < 1
    big = vas_dataset(tmp_path / 'vas', 'valid', random_feats=True, n_feats=212)[0]['feature']
    assert abs(big.mean() - 0.5) < 0.01                                           # uniform [0, 1)


def test_vggsound_dataset_labels_and_batches(tmp_path):
    root = tmp_path / 'vggsound'
    clips = ['a_b-cdefghi_30000_40000', '-1pRmoJIGQc_10000_20000', 'zzzzzzzzzzz_0_10000']
    for i, c in enumerate(clips):
        write_fake_clip(root / MEL_DIR / f'{c}_mel.npy', {k: root / FEATURE_DIRS[k] / f'{c}.pkl' for k in ('rgb', 'flow')}, seed=i)
    (tmp_path / 'vggsound_valid.txt').write_text('\n'.join(clips))
    (tmp_path / 'vggsound.csv').write_text('ytid,start,label,split\na_b-cdefghi,30,playing drums,train\n'
                                           '-1pRmoJIGQc,10,dog barking,train\nzzzzzzzzzzz,0,airplane,test\n')
    ds = vggsound_dataset(root, 'valid', n_feats=212)
    assert [ds[i]['target'] for i in range(3)] == [2, 1, 0]
    b = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert b['image'].shape == (3, 80, 848) and b['feature'].shape == (3, 212, 2048) and b['target'].tolist() == [2, 1, 0]


def test_preselected_and_bad_mel(tmp_path):
    mel, f = tmp_path / 'x_mel.npy', tmp_path / 'x.pkl'
    write_fake_clip(mel, {'resnet50': f}, rows=5)
    items = pd.DataFrame([dict(clip='x', mel=mel, target=0, resnet50=f)])
    assert SpecFeatsDataset(items, 'resnet50', n_feats=5)[0]['feature'][:, 0].tolist() == [0, 1, 2, 3, 4]
    np.save(mel, np.zeros((80, 500)))
    with pytest.raises(ValueError, match='x_mel.npy'): SpecFeatsDataset(items, 'resnet50', n_feats=5)[0]


# ---------------------------------------------------------------- the synthetic dataset
def test_every_class_renders_deterministically():
    for c in TOY_CLASSES:
        a, b = render_toy_clip(c, (0, 1), seconds=1.5, size=24), render_toy_clip(c, (0, 1), seconds=1.5, size=24)
        assert a.frames.shape == (38, 24, 24, 3) and a.wav.shape == (33075,) and a.wav.dtype == np.float32
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.wav, b.wav)
        assert len(a.events) >= 1 and (a.events >= 0).all() and (a.events < 1.5).all(), c
        assert 0.01 < np.abs(a.wav).max() <= 1
        assert not np.array_equal(render_toy_clip(c, (0, 2), seconds=1.5, size=24).wav, a.wav)
    with pytest.raises(ValueError, match='unknown toy class'): render_toy_clip('violin')


def test_sound_onsets_are_on_the_events():
    for c in ('drum', 'hammer', 'bird', 'rocket', 'bell'):
        for s in range(4):
            tc = render_toy_clip(c, (1, s), seconds=3, size=8)
            assert np.abs(onset_error(tc.wav, tc.events)).max() < 0.005, (c, s)
    late = render_toy_clip('drum', (1, 0), seconds=3, size=8)
    assert np.abs(onset_error(late.wav, late.events + 0.02)).min() > 0.015         # the check can fail


def test_pictures_change_on_the_events():
    for c in ('drum', 'bell'):
        tc = render_toy_clip(c, (2, 0), seconds=3, size=32)
        flash = since(np.arange(len(tc.frames)) / tc.fps, tc.events) < 0.08
        b = tc.frames.astype(float).mean(axis=(1, 2, 3))
        assert flash.any() and b[flash].min() > b[~flash].max(), c


def test_tiny_toy_set_is_fast_and_synced_through_mp4(tmp_path):
    t0 = time.time()
    df = make_toy_dataset(tmp_path / 'toy', **TOY_SIZES['tiny'], progress=False)
    assert time.time() - t0 < 30                                                  # a few seconds when the machine is idle
    assert len(df) == 16 and sorted(df['class'].unique()) == sorted(TOY_CLASSES)
    assert all(sorted(g) == ['train', 'valid'] for _, g in df.groupby('class')['split'])
    assert sorted(p.name for p in (tmp_path / 'toy' / 'video').iterdir()) == sorted(f'{c}.mp4' for c in df['clip'])
    i = probe(tmp_path / 'toy' / 'video' / 'hammer_0001.mp4')
    assert (i.width, i.fps, i.has_audio, i.duration) == (64, 25.0, True, pytest.approx(2.0))
    clip = load_clip(tmp_path / 'toy' / 'video' / 'hammer_0001.mp4')               # AAC round trip + loop to 10 s
    ev = toy_events(df, 'hammer_0001')
    assert np.abs(onset_error(clip.wav, np.concatenate([ev + 2 * k for k in range(5)]))).max() < 0.005
    again = make_toy_dataset(tmp_path / 'toy2', **TOY_SIZES['tiny'], progress=False)
    assert again.equals(df)                                                       # deterministic from the seed
    assert pd.read_csv(tmp_path / 'toy' / 'toy.csv')['events'].tolist() == df['events'].tolist()


def test_prepare_toy_pixels(tmp_path):
    make_toy_dataset(tmp_path / 'toy', classes=('rain', 'siren'), clips_per_class=3, seconds=1., size=32, progress=False)
    man = prepare_toy(tmp_path / 'toy', tmp_path / 'prep', n_feats=5, progress=False)
    assert (man['status'] == 'ok').all() and 'events' in man and man['n_events'].min() >= 1
    ds = prepared_dataset(tmp_path / 'prep', 'train', feats='pixels', n_feats=5)
    assert ds.classes == ['rain', 'siren'] and len(ds) == 2
    it = ds[0]
    assert it['feature'].shape == (5, 2048) and it['image'].shape == (80, 848) and it['target'] in (0, 1)


def test_bundled_example():
    p = data_dir() / 'examples' / 'toy_hammer.mp4'
    assert p.exists() and p.stat().st_size < 300_000
    clip = load_clip(p, seconds=4)
    tc = render_toy_clip('hammer', (2024, 1, 0), seconds=4., size=112)
    assert clip.frames.shape == (86, 112, 112, 3)
    assert np.abs(onset_error(clip.wav, tc.events)).max() < 0.005                 # it is the documented clip


# ---------------------------------------------------------------- prepare: damaged files, odd names, resuming on identity
def remux(src, dst, fmt):
    "Copy the streams of `src` into a new `fmt` container, packets unchanged."
    import av
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as c, av.open(str(dst), 'w', format=fmt) as o:
        m = {s.index: o.add_stream_from_template(s) for s in c.streams}
        for p in c.demux():
            if p.dts is None: continue
            p.stream = m[p.stream.index]; o.mux(p)
    return dst


@pytest.mark.parametrize('fraction', [0.3, 0.6])
def test_prepare_reports_a_truncated_video_as_damaged(tmp_path, fraction):
    whole = remux(make_test_clip(tmp_path / 'src.mp4', seconds=8.), tmp_path / 'v' / 'whole.mkv', 'matroska')
    data = whole.read_bytes()
    (tmp_path / 'v' / 'cut.mkv').write_bytes(data[:int(fraction * len(data))])
    assert probe(tmp_path / 'v' / 'cut.mkv').duration > 7.9                          # the header still says 8 s
    man = prepare(tmp_path / 'v', tmp_path / 'p', features=None, progress=False).set_index('clip')
    assert man['status'].to_dict() == {'cut': 'failed', 'whole': 'ok'}
    decoded = float(__import__('re').search(r'cut\.mkv: damaged: decoded ([\d.]+) s of 8\.0\d s$', man.loc['cut', 'error']).group(1))
    assert 0.5 * fraction * 8 < decoded < 1.2 * fraction * 8
    assert not (tmp_path / 'p' / MEL_DIR / 'cut_mel.npy').exists() and 'cut' not in (tmp_path / 'p' / 'train.txt').read_text()
    assert man.loc['whole', 'duration'] == pytest.approx(8.0, abs=0.05)


def test_a_long_video_damaged_after_the_part_used_is_fine(tmp_path):
    whole = remux(make_test_clip(tmp_path / 'src.mp4', seconds=30., size=16), tmp_path / 'v' / 'long.mkv', 'matroska')
    whole.write_bytes(whole.read_bytes()[:int(0.6 * whole.stat().st_size)])      # 18 s of 30 s left; 10 s used
    man = prepare(tmp_path / 'v', tmp_path / 'p', features=None, progress=False)
    assert man['status'].tolist() == ['ok']


def test_prepare_refuses_names_that_split_lines(tmp_path):
    for n in ('ok', 'new\nline', 'car\rriage', 'tab\there', ' lead'): make_test_clip(tmp_path / 'v' / f'{n}.mp4')
    man = prepare(tmp_path / 'v', tmp_path / 'p', features=None, valid=0, test=0, progress=False).set_index('clip')
    assert man['status'].to_dict() == {' lead': 'failed', 'car\rriage': 'failed', 'new\nline': 'failed', 'ok': 'ok', 'tab\there': 'failed'}
    for c in ('new\nline', 'car\rriage', 'tab\there'):
        e = man.loc[c, 'error']
        assert e.isprintable() and 'refused: the name contains' in e, e
    assert read_split(tmp_path / 'p' / 'train.txt') == ['ok'] and (tmp_path / 'p' / 'train.txt').read_text() == 'ok\n'
    assert read_manifest(tmp_path / 'p').set_index('clip').loc['new\nline', 'status'] == 'failed'   # the CSV keeps the name


def stamps(out, clips): return {c: (out / MEL_DIR / f'{c}_mel.npy').stat().st_mtime_ns for c in clips}


def test_prepare_redoes_a_replaced_video_and_keeps_the_others(tmp_path):
    vids, out = tmp_path / 'v', tmp_path / 'p'
    make_test_clip(vids / 'a.mp4', freq=440); make_test_clip(vids / 'b.mp4', freq=440)
    prepare(vids, out, features=None, progress=False)
    t1, mel_a = stamps(out, 'ab'), np.load(out / MEL_DIR / 'a_mel.npy')
    prepare(vids, out, features=None, progress=False)
    assert stamps(out, 'ab') == t1                                                # nothing changed: nothing redone
    make_test_clip(vids / 'a.mp4', freq=3000)                                     # same name, new content
    prepare(vids, out, features=None, progress=False)
    t2 = stamps(out, 'ab')
    assert t2['a'] != t1['a'] and t2['b'] == t1['b']
    assert not np.allclose(np.load(out / MEL_DIR / 'a_mel.npy'), mel_a)           # the stale mel is gone
    os.utime(vids / 'b.mp4', ns=(1, 1))                                           # touched (same bytes): redone too
    prepare(vids, out, features=None, progress=False)
    assert stamps(out, 'ab')['b'] != t2['b']


def test_prepare_redoes_everything_when_settings_change(tmp_path, tiny_ext):
    vids, out = tmp_path / 'v', tmp_path / 'p'
    make_test_clip(vids / 'a.mp4', seconds=3.)
    feat = out / FEATURE_DIRS['resnet50'] / 'a.npy'
    prepare(vids, out, features=tiny_ext, n_feats=5, progress=False)
    t = feat.stat().st_mtime_ns
    prepare(vids, out, features=tiny_ext, n_feats=5, progress=False)
    assert feat.stat().st_mtime_ns == t
    for change in (dict(n_feats=5, start=1.0), dict(n_feats=1, start=1.0)):      # another start, another n_feats
        prepare(vids, out, features=tiny_ext, progress=False, **change)
        assert feat.stat().st_mtime_ns != t
        t = feat.stat().st_mtime_ns
    torch.manual_seed(1)
    other = ResNet50Features(ResNet((1, 1, 1, 1), width=8), resize=64, crop=56)  # same kind, other weights
    prepare(vids, out, features=other, n_feats=1, start=1.0, progress=False)
    assert feat.stat().st_mtime_ns != t


def test_done_records_survive_a_killed_run(tmp_path):
    vids, out = tmp_path / 'v', tmp_path / 'p'
    for n in 'abc': make_test_clip(vids / f'{n}.mp4')
    prepare(vids, out, features=None, progress=False)
    lines = (out / DONE_FILE).read_text().splitlines()
    assert len(lines) == 3 and {json.loads(l)['clip'] for l in lines} == set('abc')
    (out / DONE_FILE).write_text(lines[0] + '\n' + lines[1] + '\n' + lines[2][:25])  # killed while writing c's record
    t = stamps(out, 'abc')
    prepare(vids, out, features=None, progress=False)
    t2 = stamps(out, 'abc')
    assert t2['a'] == t['a'] and t2['b'] == t['b'] and t2['c'] != t['c']
    assert set(read_done(out)) == set('abc') and len((out / DONE_FILE).read_text().splitlines()) == 3


def test_a_folder_prepared_with_pickles_still_reads(tmp_path, tiny_ext):
    import pickle
    vids, out = tmp_path / 'v', tmp_path / 'p'
    for n in 'ab': make_test_clip(vids / f'{n}.mp4')
    prepare(vids, out, features=tiny_ext, n_feats=5, valid=0, test=0, progress=False)
    ref = prepared_dataset(out, 'train', n_feats=5)[0]['feature']
    for f in (out / FEATURE_DIRS['resnet50']).glob('*.npy'):                      # the layout of older vgsg versions
        f.with_suffix('.pkl').write_bytes(pickle.dumps(np.load(f), protocol=4)); f.unlink()
    ds = prepared_dataset(out, 'train', n_feats=5)
    assert str(ds.items['resnet50'].iloc[0]).endswith('.pkl')
    np.testing.assert_array_equal(ds[0]['feature'], ref)


def test_audio_shorter_than_the_video_is_not_damage(tmp_path):
    from vgsg.video import write_video
    frames = np.zeros((200, 16, 16, 3), np.uint8)                                 # 8 s of picture, 5 s of sound
    src = write_video(tmp_path / 'src.mp4', frames, 25., 0.3 * np.sin(np.arange(5 * 44100) / 10), 44100)
    remux(src, tmp_path / 'v' / 'short_audio.mkv', 'matroska'); remux(src, tmp_path / 'v' / 'short_audio_mp4.mp4', 'mp4')
    man = prepare(tmp_path / 'v', tmp_path / 'p', features=None, progress=False)
    assert man['status'].tolist() == ['ok', 'ok'], man['error'].tolist()
    assert man['duration'].tolist() == pytest.approx([5.0, 5.0], abs=0.05)


def test_prepare_by_feature_name_resumes_across_runs(tmp_path):
    "Each run builds its own extractor from the name (as the CLI does): equal settings must give equal records."
    make_test_clip(tmp_path / 'v' / 'a.mp4')
    assert extractor_id(PixelFeatures()) == extractor_id(PixelFeatures()) != extractor_id(PixelFeatures(seed=1))
    prepare(tmp_path / 'v', tmp_path / 'p', features='pixels', n_feats=5, progress=False)
    f = tmp_path / 'p' / FEATURE_DIRS['pixels'] / 'a.npy'
    t = f.stat().st_mtime_ns
    prepare(tmp_path / 'v', tmp_path / 'p', features='pixels', n_feats=5, progress=False)
    assert f.stat().st_mtime_ns == t
