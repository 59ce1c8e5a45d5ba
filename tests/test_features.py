"Tests of vgsg.features: frame rules, ResNet-50 / BN-Inception layouts, pre-processing, flow, extraction."
import sys, pickle, warnings
import numpy as np, pytest, torch
from PIL import Image
from vgsg.features import *
from vgsg.features import _flow_pair
from vgsg.video import make_test_clip, Clip, FPS

try: require_cv2(); HAS_CV2 = True
except ImportError: HAS_CV2 = False
needs_cv2 = pytest.mark.skipif(not HAS_CV2, reason='opencv-contrib (cv2.optflow) not installed')


# ---------------------------------------------------------------- frame rules (facts §2.2-2.3)
def test_subsample_values_of_the_original():
    assert subsample_indices(1).tolist() == [106]
    assert subsample_indices(5).tolist() == [35, 77, 119, 162, 204]
    assert subsample_indices(212).tolist() == list(range(212))
    assert subsample_indices(53)[:4].tolist() == [3, 7, 11, 15]
    for bad in (0, 213): pytest.raises(ValueError, subsample_indices, bad)


def test_select_frames_tile_crop_subsample():
    x = np.arange(215)
    assert select_frames(x, 1).tolist() == [107]                 # crop position 106 = frame 107
    assert select_frames(x, 5).tolist() == [36, 78, 120, 163, 205]
    assert select_frames(x, 212).tolist() == list(range(1, 213))
    assert select_frames(np.arange(216), 5).tolist() == [36, 78, 120, 163, 205]   # BN-Inception's 216 rows
    short = np.arange(100)                                       # tiled: 0..99, 0..99, 0..14
    assert select_frames(short, 212)[-1] == (212 % 100)
    assert select_frames(short, 1, mode='zeros').tolist() == [0]  # 107 is in the zero padding
    assert frame_indices(5).tolist() == [36, 78, 120, 163, 205]
    assert frame_indices(1, n_frames=43).tolist() == [107 % 43]


def test_fix_and_crop():
    assert fix_frames(np.arange(3), 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert fix_frames(np.ones((2, 4)), 5, 'zeros').sum() == 8
    pytest.raises(ValueError, fix_frames, np.zeros((0, 4)), 5)
    pytest.raises(ValueError, fix_frames, np.ones(3), 5, 'edge')
    assert crop_frames(np.arange(215)).tolist() == list(range(1, 213))
    pytest.raises(ValueError, crop_frames, np.arange(100))


# ---------------------------------------------------------------- ResNet-50
def test_resnet50_counts_and_torchvision_keys():
    with torch.device('meta'): m = ResNet()
    n = sum(p.numel() for p in m.parameters())
    assert n == 25_557_032 and n - 2048 * 1000 - 1000 == 23_508_032
    sd = m.state_dict()
    assert len(sd) == 320
    expect = {'conv1.weight': (64, 3, 7, 7), 'bn1.running_mean': (64,), 'layer1.0.downsample.0.weight': (256, 64, 1, 1),
              'layer3.5.bn3.weight': (1024,), 'layer4.0.conv2.weight': (512, 512, 3, 3), 'fc.bias': (1000,)}
    for k, shape in expect.items(): assert tuple(sd[k].shape) == shape, k
    assert 'layer1.1.downsample.0.weight' not in sd and 'layer3.6.conv1.weight' not in sd


def test_resnet_strict_load_and_random_warning(tmp_path, monkeypatch):
    torch.manual_seed(0)
    src = ResNet((1, 1, 1, 1), width=8)
    torch.save(src.state_dict(), tmp_path / 'resnet50-test.pth')
    monkeypatch.setenv('VGSG_WEIGHTS', str(tmp_path))
    assert find_weights('resnet50-*.pth') == tmp_path / 'resnet50-test.pth'
    sd = load_state_dict(tmp_path / 'resnet50-test.pth')
    dst = ResNet((1, 1, 1, 1), width=8); dst.load_state_dict(sd, strict=True)
    assert torch.equal(dst.layer4[0].conv3.weight, src.layer4[0].conv3.weight)
    with pytest.raises(RuntimeError):                            # the full ResNet-50 does not accept the tiny file
        resnet50(tmp_path / 'resnet50-test.pth')
    monkeypatch.setenv('VGSG_WEIGHTS', str(tmp_path / 'none'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.chdir(tmp_path / '..')
    with pytest.warns(UserWarning, match='RANDOM'): resnet50('auto')


def test_resnet_forward_shapes():
    torch.manual_seed(0)
    m = ResNet((1, 1, 1, 1), width=8).eval()
    with torch.inference_mode():
        f = m(torch.randn(3, 3, 64, 80))
    assert f.shape == (3, 256) and (f >= 0).all() and m.logits(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


# ---------------------------------------------------------------- pre-processing vs PIL (torchvision's backend)
def test_resize_and_crop_match_pil():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (96, 150, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(img).resize((75, 48), Image.BILINEAR).resize((150, 96), Image.BILINEAR))  # smooth
    ours = resize_short(to_tensor(img[None]), 64)[0]
    w = int(64 * 150 / 96)                                       # torchvision's rule: int(size * long / short) = 100
    assert ours.shape == (3, 64, w)
    pil = np.asarray(Image.fromarray(img).resize((w, 64), Image.BILINEAR)).astype(float) / 255
    assert np.abs(ours.permute(1, 2, 0).numpy() - pil).mean() < 2 / 255
    up = resize_short(to_tensor(img[None]), 256)[0].permute(1, 2, 0).numpy()
    pil_up = np.asarray(Image.fromarray(img).resize((400, 256), Image.BILINEAR)).astype(float) / 255
    assert np.abs(up - pil_up).mean() < 2 / 255
    c = center_crop_image(torch.arange(7.).view(1, 1, 1, 7).expand(1, 1, 7, 7), 4)
    assert c[0, 0, 0].tolist() == [2., 3., 4., 5.]               # round(1.5) = 2
    pytest.raises(ValueError, center_crop_image, torch.zeros(1, 3, 10, 10), 11)


def test_imagenet_normalisation():
    mean = np.array(IMAGENET_MEAN) * 255
    x = resnet_preprocess(np.full((1, 300, 400, 3), mean.round(), np.uint8))
    assert x.shape == (1, 3, 224, 224) and x.abs().max() < 0.01
    white = resnet_preprocess(np.full((1, 224, 224, 3), 255, np.uint8))
    np.testing.assert_allclose(white[0, :, 0, 0].numpy(), (1 - np.array(IMAGENET_MEAN)) / IMAGENET_STD, rtol=1e-5)


# ---------------------------------------------------------------- BN-Inception (no opencv needed)
def test_bninception_layout_and_params():
    with torch.device('meta'): m = BNInception()
    n = sum(p.numel() for p in m.parameters())
    assert m.dim == 1024 and n == 11_295_240 and n - 1024 * 1000 - 1000 == 10_270_240
    sd = m.state_dict()
    for k, shape in {'conv1_7x7_s2.weight': (64, 3, 7, 7), 'conv1_7x7_s2.bias': (64,),
                     'inception_3a_pool_proj.weight': (32, 192, 1, 1), 'inception_3c_3x3.weight': (160, 128, 3, 3),
                     'inception_4d_1x1.weight': (96, 608, 1, 1), 'inception_5b_double_3x3_2_bn.running_var': (224,),
                     'fc.weight': (1000, 1024)}.items():
        assert tuple(sd[k].shape) == shape, k
    assert 'inception_3c_1x1.weight' not in sd and 'inception_4e_pool_proj.weight' not in sd


def test_bninception_forward_and_spatial_sizes():
    torch.manual_seed(0)
    m = BNInception(div=16).eval()
    sizes = []
    hook = lambda mod, i, o: sizes.append(o.shape[-1])
    m.inception_3a_1x1.register_forward_hook(hook); m.inception_4a_1x1.register_forward_hook(hook)
    m.inception_5a_1x1.register_forward_hook(hook)
    with torch.inference_mode(): f = m(torch.randn(2, 3, 224, 224))
    assert f.shape == (2, 64) and sizes == [28, 14, 7]


def test_flow_net_first_conv_is_rgb_mean():
    torch.manual_seed(0)
    rgb = BNInception(div=16).eval()
    flow = flow_net_from_rgb(rgb)
    w = rgb.conv1_7x7_s2.weight.mean(1)
    assert flow.conv1_7x7_s2.weight.shape[1] == 2
    assert torch.allclose(flow.conv1_7x7_s2.weight[:, 0], w) and torch.allclose(flow.conv1_7x7_s2.weight[:, 1], w)
    assert torch.equal(flow.conv1_7x7_s2.bias, rgb.conv1_7x7_s2.bias)
    assert rgb.conv1_7x7_s2.weight.shape[1] == 3                 # the RGB net is untouched
    with torch.inference_mode(): assert flow(torch.randn(1, 2, 224, 224)).shape == (1, 64)


def test_bninception_loads_caffe_style_file(tmp_path):
    torch.manual_seed(1)
    src = BNInception(div=16)
    sd = {(k.replace('fc.', 'last_linear.')): (v[None] if 'running' in k else v)
          for k, v in src.state_dict().items() if 'num_batches' not in k}
    torch.save(sd, tmp_path / 'bn_inception-x.pth')
    dst = BNInception(div=16)
    dst.load_state_dict(fix_bninception_state(load_state_dict(tmp_path / 'bn_inception-x.pth'), dst), strict=True)
    assert torch.equal(dst.inception_4c_pool_proj_bn.running_var, src.inception_4c_pool_proj_bn.running_var)


def test_bninception_preprocessing():
    x = bni_preprocess_rgb(np.full((1, 256, 340, 3), [104, 117, 128][::-1], np.uint8))
    assert x.shape == (1, 3, 224, 224) and x.abs().max() < 1e-3          # BGR mean removed exactly
    f = bni_preprocess_flow(np.full((3, 256, 340, 2), 128, np.uint8))
    assert f.shape == (3, 2, 224, 224) and f.abs().max() < 1e-3


def test_flow_mapping_and_pairs():
    assert flow_to_uint8(np.array([-50., -20, -10, 0, 10, 20, 50])).tolist() == [0, 0, 63, 127, 191, 255, 255]
    a, b = _flow_pair(np.array([0, 1, 36, 214]))
    assert a.tolist() == [0, 0, 35, 213] and b.tolist() == [1, 1, 36, 214]


def test_missing_opencv_message(monkeypatch):
    monkeypatch.setitem(sys.modules, 'cv2', None)
    with pytest.raises(ImportError, match='opencv-contrib-python-headless'): require_cv2()


@needs_cv2
def test_tvl1_flow_direction():
    a = np.zeros((48, 48, 3), np.uint8); a[16:28, 14:26] = 200
    b = np.roll(a, (-1, 3), axis=(0, 1))                                  # 3 px right, 1 px up
    fl = tvl1_flow(a, b).astype(float)
    fx, fy = [(np.median(fl[18:26, 17:25, i]) - 127.5) / 6.375 for i in (0, 1)]   # back from 0..255 to pixels
    assert abs(fx - 3) < 0.7 and abs(fy + 1) < 0.7


@needs_cv2
def test_bninception_extractor(tmp_path):
    torch.manual_seed(0)
    p = make_test_clip(tmp_path / 'c.mp4', size=40)
    ext = BNInceptionFeatures(BNInception(div=16), size=(48, 64), input_size=64)
    f = extract_clip_features(p, ext, n_feats=5)
    assert {k: v.shape for k, v in f.items()} == {'rgb': (5, 64), 'flow': (5, 64)}
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in f.values())


# ---------------------------------------------------------------- extraction
@pytest.fixture(scope='module')
def tiny_ext():
    torch.manual_seed(0)
    return ResNet50Features(ResNet((1, 1, 1, 1), width=8), resize=64, crop=56)


def test_selected_extraction_equals_full(tmp_path, tiny_ext):
    p = make_test_clip(tmp_path / 'c.mp4', size=48)
    full = extract_clip_features(p, tiny_ext)['resnet50']
    assert full.shape == (215, 256)
    np.testing.assert_allclose(full[:43], full[43:86], atol=1e-4)         # 2 s clip looped: period 43 frames
    for n in (1, 5):
        np.testing.assert_allclose(extract_clip_features(p, tiny_ext, n_feats=n)['resnet50'], select_frames(full, n), atol=1e-4)


def test_batch_extraction_resume_and_report(tmp_path, tiny_ext):
    good = make_test_clip(tmp_path / 'good.mp4')
    (tmp_path / 'bad.mp4').write_text('x' * 100)
    mute = make_test_clip(tmp_path / 'mute.mp4', audio=False)              # features need no audio
    rep = extract_features([good, tmp_path / 'bad.mp4', mute], tmp_path / 'out', tiny_ext, n_feats=5, progress=False)
    assert set(rep.done) == {good, mute} and list(rep.failed) == [tmp_path / 'bad.mp4']
    out = tmp_path / 'out' / 'feature_resnet50_dim2048_21.5fps' / 'good.npy'
    x = np.load(out, allow_pickle=False)                                    # vgsg writes .npy, never pickles
    assert x.shape == (5, 256) and x.dtype == np.float32
    out.write_bytes(out.read_bytes()[:50])                                  # a broken file is redone
    t_mute = (tmp_path / 'out' / 'feature_resnet50_dim2048_21.5fps' / 'mute.npy').stat().st_mtime_ns
    extract_features([good, mute], tmp_path / 'out', tiny_ext, n_feats=5, progress=False)
    assert load_feature(out).shape == (5, 256)
    assert (tmp_path / 'out' / 'feature_resnet50_dim2048_21.5fps' / 'mute.npy').stat().st_mtime_ns == t_mute
    rep = extract_features([good], tmp_path / 'pkl', tiny_ext, names=['renamed'], ext='.pkl', progress=False)
    with open(rep.done[good]['resnet50'], 'rb') as f: x = pickle.load(f)  # the original's format on request: a pickled array
    assert rep.done[good]['resnet50'].name == 'renamed.pkl' and x.shape == (215, 256) and x.dtype == np.float32


def test_pixel_features_informative_and_deterministic():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 24, 30, 3), dtype=np.uint8)
    c = Clip(frames, None, np.arange(4), '', 0., 10., 10., FPS, 22050, 10.)
    f = PixelFeatures()(c, [0, 1, 2, 3])['pixels']
    assert f.shape == (4, 2048) and np.allclose(f, PixelFeatures()(c, [0, 1, 2, 3])['pixels'])
    n = f / np.linalg.norm(f, axis=1, keepdims=True)
    assert np.abs(n @ n.T - np.eye(4)).max() < 0.3                          # different frames stay apart


def test_feature_files(tmp_path):
    x = np.random.default_rng(0).normal(size=(7, 3))
    save_feature(tmp_path / 'a.pkl', x); save_feature(tmp_path / 'a.npy', x)
    np.testing.assert_allclose(load_feature(tmp_path / 'a.pkl'), x, rtol=1e-6)
    assert feature_complete(tmp_path / 'a.npy', 7, 3) and not feature_complete(tmp_path / 'a.npy', 7, 4)
    assert not feature_complete(tmp_path / 'missing.pkl', 7)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


# ---------------------------------------------------------------- memory: decode sizes, batches, chunks
def textured(path, n, height, width, fps=21.5):
    "A clip of moving colour waves plus noise (so that resampling matters), written with PyAV."
    import av
    from fractions import Fraction
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(0)
    with av.open(str(path), 'w') as out:
        vs = out.add_stream('libx264', rate=Fraction(fps).limit_denominator(100), options={'preset': 'ultrafast', 'crf': '18'})
        vs.width, vs.height, vs.pix_fmt = width, height, 'yuv420p'
        for i in range(n):
            img = np.stack([np.sin(20 * xx + i / 3), np.cos(13 * yy - i / 5), np.sin(7 * (xx + yy) + i)], -1) * 100 + 128
            a = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(a, format='rgb24'); f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
    return path


def old_pixel_features(pf, path, times):
    "The pixel features as computed before decode sizes: frames at the source size, one area resize of all of them."
    from vgsg.video import read_frames
    x = torch.nn.functional.interpolate(to_tensor(read_frames(path, times)), size=(pf.side, pf.side), mode='area')
    return ((x - 0.5).flatten(1) @ pf.proj).numpy()


@pytest.fixture
def rgb_shapes(monkeypatch):
    "Record the shape of every RGB array the decoder hands out."
    import vgsg.video as v
    shapes, orig = [], v._to_rgb
    def spy(f, size):
        a = orig(f, size); shapes.append(a.shape); return a
    monkeypatch.setattr(v, '_to_rgb', spy)
    return shapes


@pytest.mark.parametrize('side', [64, 112, 256])
def test_small_video_pixel_features_bit_identical(tmp_path, side):
    p = textured(tmp_path / 'toy.mp4', 6, side, side)
    pf = PixelFeatures()
    for n_feats in (None, 5):
        new = extract_clip_features(p, pf, n_feats=n_feats)['pixels']
        idx = np.arange(215) if n_feats is None else frame_indices(n_feats)
        assert np.array_equal(new, old_pixel_features(pf, p, idx / FPS % (6 / FPS)))


@pytest.mark.parametrize('width,height', [(1920, 1080), (4000, 3000)])
def test_extractors_never_decode_at_source_size(tmp_path, rgb_shapes, width, height):
    p = textured(tmp_path / 'big.mp4', 2, height, width, fps=5)
    f = extract_clip_features(p, PixelFeatures(), n_feats=5)['pixels']
    assert f.shape == (5, 2048) and set(rgb_shapes) == {(256, 256, 3)}
    rgb_shapes.clear()
    tiny = ResNet50Features(ResNet((1, 1, 1, 1), width=8), resize=64, crop=56)
    assert extract_clip_features(p, tiny, n_feats=5)['resnet50'].shape == (5, 256)
    assert set(rgb_shapes) == {(64, int(64 * width / height), 3)}   # Resize(64)'s size, decoded directly


def test_hd_pixel_features_close_to_full_frame(tmp_path):
    p = textured(tmp_path / 'hd.mp4', 4, 1080, 1920)
    pf = PixelFeatures()
    new = extract_clip_features(p, pf, n_feats=5)['pixels']
    old = old_pixel_features(pf, p, frame_indices(5) / FPS % (4 / FPS))
    assert np.abs(new - old).max() < 0.05 and np.abs(old).max() > 0.5          # measured: 0.010 of features up to 1.25


def test_hd_resnet_input_close_to_full_frame(tmp_path):
    from vgsg.video import read_frames
    p = textured(tmp_path / 'hd.mp4', 1, 1080, 1920)
    ext = ResNet50Features(ResNet((1, 1, 1, 1), width=8))
    new, old = (resnet_preprocess(read_frames(p, [0.], size)) for size in (ext.size, None))
    assert new.shape == old.shape == (1, 3, 224, 224)
    assert (new - old).abs().mean() < 0.05 and (new - old).abs().max() < 0.25   # measured: 0.020 and 0.071


def test_long_extraction_is_chunked(tmp_path, monkeypatch):
    "30 s of frames are decoded 256 at most at a time, and the chunks give the same features as one pass."
    import vgsg.features as feats
    p = textured(tmp_path / 'c.mp4', 8, 48, 64)
    pf, sizes, orig = PixelFeatures(), [], feats.load_clip
    monkeypatch.setattr(feats, 'load_clip', lambda *a, **kw: sizes.append(len(kw['frame_idx'])) or orig(*a, **kw))
    long = extract_clip_features(p, pf, seconds=30)['pixels']
    assert long.shape == (645, 2048) and max(sizes) <= 256 and sum(sizes) == 645
    one = extract_clip_features(p, pf, seconds=30, chunk=1000)['pixels']
    np.testing.assert_allclose(long, one, atol=1e-6)


def test_batched_resnet_equals_one_batch(tmp_path):
    p = make_test_clip(tmp_path / 'c.mp4', size=48)
    torch.manual_seed(0)
    net = ResNet((1, 1, 1, 1), width=8)
    a = extract_clip_features(p, ResNet50Features(net, resize=64, crop=56, batch_size=7), n_feats=53)['resnet50']
    b = extract_clip_features(p, ResNet50Features(net, resize=64, crop=56, batch_size=64), n_feats=53)['resnet50']
    np.testing.assert_allclose(a, b, atol=1e-5)
