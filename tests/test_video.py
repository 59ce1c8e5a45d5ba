"Tests of vgsg.video: decoding at 21.5 fps / 22.05 kHz, looping and trimming, muxing, and named errors."
import numpy as np, pytest, av
import soundfile as sf
from vgsg.video import (FPS, SR, VideoError, load_clip, read_audio, read_frames, probe, mux_audio, write_video,
                        make_test_clip, grey_index, run_batch, n_frames_for, open_media, loop_to)


def write_any(path, container, vcodec, pix_fmt, acodec=None, sr=44100, layout='stereo', seconds=2., fps=25, size=32):
    "Write a clip whose frame i has grey level 4*i with any container/codec pair, plus a 440 Hz tone."
    n = n_frames_for(seconds, fps)
    with av.open(str(path), 'w', format=container) as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = pix_fmt
        a = out.add_stream(acodec, rate=sr, layout=layout) if acodec else None
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((size, size, 3), 4 * i, np.uint8), format='rgb24')
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
        if a is not None:
            ch = 2 if layout == 'stereo' else 1
            wav = 0.4 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.repeat(wav[None], ch, 0), format='fltp', layout=layout)
            af.sample_rate, af.pts = sr, 0
            out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def reason(f, *a, **kw):
    with pytest.raises(VideoError) as e: f(*a, **kw)
    return e.value.reason, str(e.value)


@pytest.fixture(scope='module')
def clip2s(tmp_path_factory):
    return make_test_clip(tmp_path_factory.mktemp('v') / 'clip.mp4')


def test_21_5_fps_frame_count_and_pts_selection(clip2s):
    c = load_clip(clip2s)
    assert c.frames.shape == (215, 32, 32, 3) and c.frames.dtype == np.uint8
    k = np.arange(215)
    # output frame k shows the source frame on screen at (k / 21.5) mod 2 s, at 25 fps
    assert (grey_index(c.frames) == np.floor(np.mod(k / 21.5, 2.0) * 25 + 1e-9).astype(int)).all()


def test_looped_audio_repeats_original(clip2s):
    c = load_clip(clip2s)
    orig = read_audio(clip2s)
    assert c.wav.shape == (220500,) and c.wav.dtype == np.float32 and c.looped and c.period == pytest.approx(2.0)
    assert len(orig) == 44100                              # AAC padding cut to the stream duration
    for r in range(5): np.testing.assert_allclose(c.wav[r * 44100:(r + 1) * 44100], orig, atol=1e-5)
    peak = np.argmax(np.abs(np.fft.rfft(c.wav))) * SR / len(c.wav)
    assert abs(peak - 440) < 1


def test_trim_from_start_no_loop(tmp_path):
    p = make_test_clip(tmp_path / 'long.mp4', seconds=13, fps=10, sr=22050)
    c = load_clip(p, start=2.0)
    assert not c.looped and c.frames.shape[0] == 215 and len(c.wav) == 220500
    assert (grey_index(c.frames[:10]) == np.floor((2 + np.arange(10) / 21.5) * 10 + 1e-9).astype(int) % 64).all()
    np.testing.assert_allclose(c.wav[:2000], read_audio(p)[44100:46100], atol=1e-5)
    # start 5 s into a 13 s clip: 8 s left, so it loops with an 8 s period
    c2 = load_clip(p, start=5.0)
    assert c2.looped and c2.period == pytest.approx(8.0)
    np.testing.assert_allclose(c2.wav[8 * SR:8 * SR + 100], c2.wav[:100], atol=1e-6)


def test_frame_idx_subset_matches_full(clip2s):
    full = load_clip(clip2s, audio=False)
    sub = load_clip(clip2s, audio=False, frame_idx=[214, 0, 107, 107])
    assert (sub.frames == full.frames[[214, 0, 107, 107]]).all()
    with pytest.raises(IndexError): load_clip(clip2s, frame_idx=[215])


def test_other_seconds_fps_and_size(clip2s):
    c = load_clip(clip2s, seconds=4, fps=10, sr=16000, size=(8, 12))
    assert c.frames.shape == (40, 8, 12, 3) and c.wav.shape == (64000,)


@pytest.mark.parametrize('container,vcodec,pix,acodec,sr,layout', [
    ('webm', 'libvpx-vp9', 'yuv420p', 'libopus', 48000, 'stereo'),
    ('avi', 'mpeg4', 'yuv420p', 'libmp3lame', 44100, 'stereo'),
    ('matroska', 'libx264', 'yuv420p', 'flac', 32000, 'mono'),
    ('mov', 'mjpeg', 'yuvj420p', 'pcm_s16le', 8000, 'mono')])
def test_common_formats(tmp_path, container, vcodec, pix, acodec, sr, layout):
    p = write_any(tmp_path / f'x.{container}', container, vcodec, pix, acodec, sr, layout)
    c = load_clip(p)
    assert c.frames.shape == (215, 32, 32, 3) and c.wav.shape == (220500,)
    assert c.duration == pytest.approx(2.0, abs=0.1)
    assert abs(np.argmax(np.abs(np.fft.rfft(c.wav[:SR]))) - 440) <= 1          # 1 s window: bin k = k Hz
    assert abs(int(grey_index(c.frames[:1])[0]) - 0) <= 1


def test_probe(clip2s):
    i = probe(clip2s)
    assert (i.width, i.height, i.fps, i.n_frames, i.has_audio, i.sr) == (32, 32, 25.0, 50, True, 44100)


def test_errors_name_the_file(tmp_path, clip2s):
    (tmp_path / 'text.mp4').write_text('this is a text file renamed .mp4\n' * 30)
    (tmp_path / 'zero.mp4').touch()
    sf.write(tmp_path / 'speech.wav', np.zeros(8000, np.float32), 16000)
    mute = make_test_clip(tmp_path / 'mute.mp4', audio=False)
    cases = {'text.mp4': 'not_media', 'zero.mp4': 'empty', 'speech.wav': 'no_video', 'missing.mp4': 'missing',
             'mute.mp4': 'no_audio'}
    for name, why in cases.items():
        r, msg = reason(load_clip, tmp_path / name)
        assert r == why and str(tmp_path / name) in msg, (name, r, msg)
    assert load_clip(mute, audio=False).frames.shape[0] == 215        # fine when no audio is needed
    r, msg = reason(load_clip, tmp_path)                               # a folder
    assert r == 'unreadable'
    r, _ = reason(load_clip, clip2s, start=2.5)
    assert r == 'bad_start'


def test_audio_only_mp4(tmp_path):
    "An AAC-only mp4/m4a (no video stream) is rejected, its cover-art-free audio still readable."
    p = tmp_path / 'song.m4a'
    with av.open(str(p), 'w', format='mp4') as out:
        s = out.add_stream('aac', rate=22050, layout='mono')
        f = av.AudioFrame.from_ndarray(np.zeros((1, 22050), np.float32), format='fltp', layout='mono')
        f.sample_rate, f.pts = 22050, 0
        out.mux(s.encode(f)); out.mux(s.encode(None))
    assert reason(load_clip, p)[0] == 'no_video'
    assert read_audio(p).shape == (22050,)


def test_zero_duration(tmp_path):
    "A container with a video and an audio stream but no frames or samples at all."
    p = tmp_path / 'nothing.avi'
    with av.open(str(p), 'w') as out:
        vs = out.add_stream('mpeg4', rate=25); vs.width = vs.height = 32; vs.pix_fmt = 'yuv420p'
        out.add_stream('mp2', rate=22050)
        out.start_encoding()
    assert reason(load_clip, p)[0] == 'zero_duration'
    assert reason(load_clip, p, audio=False)[0] == 'zero_duration'


def test_truncated_and_corrupt(tmp_path, clip2s):
    data = clip2s.read_bytes()
    (tmp_path / 'half.mp4').write_bytes(data[:len(data) // 2])        # moov atom (index) at the end is lost
    assert reason(load_clip, tmp_path / 'half.mp4')[0] == 'not_media'
    (tmp_path / 'holed.mp4').write_bytes(data[:3000] + b'\xff' * 2000 + data[5000:])   # garbage inside the frames
    r, msg = reason(load_clip, tmp_path / 'holed.mp4')
    assert r == 'corrupt' and 'holed.mp4' in msg
    (tmp_path / 'still.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 10)
    assert reason(load_clip, tmp_path / 'still.png')[0] in ('image', 'not_media')


def test_still_image_is_not_a_video(tmp_path):
    import matplotlib.pyplot as plt
    plt.imsave(tmp_path / 'pic.png', np.zeros((8, 8, 3)))
    assert reason(load_clip, tmp_path / 'pic.png')[0] == 'image'


def test_mux_copies_video_and_replaces_audio(tmp_path, clip2s):
    new = (0.3 * np.sin(2 * np.pi * 880 * np.arange(2 * SR) / SR)).astype(np.float32)
    out = mux_audio(clip2s, new, tmp_path / 'dub.mp4')
    with open_media(clip2s) as a, open_media(out) as b:
        pa = [bytes(p) for p in a.demux(video=0) if p.dts is not None]
        pb = [bytes(p) for p in b.demux(video=0) if p.dts is not None]
        assert pa == pb and b.streams.audio[0].codec_context.name == 'aac'
    w = read_audio(out)
    assert abs(np.argmax(np.abs(np.fft.rfft(w[:SR]))) - 880) <= 1 and len(w) == 2 * SR
    assert not list(tmp_path.glob('.*'))                               # no temp files left


def test_mux_reencodes_codecs_mp4_cannot_hold(tmp_path):
    src = write_any(tmp_path / 'raw.avi', 'avi', 'rawvideo', 'rgb24')
    out = mux_audio(src, np.zeros(2 * SR, np.float32), tmp_path / 'out.mp4')      # the picture lasts as long as the sound
    i = probe(out)
    assert i.has_audio and i.n_frames == 50
    with open_media(out) as c: assert c.streams.video[0].codec_context.name == 'h264'
    assert (np.abs(grey_index(read_frames(out, [0.0, 1.0])) - [0, 25]) <= 1).all()


def test_mux_errors(tmp_path, clip2s):
    with pytest.raises(ValueError, match='empty waveform'): mux_audio(clip2s, np.zeros(0), tmp_path / 'x.mp4')
    (tmp_path / 'bad.mp4').write_text('nope')
    with pytest.raises(VideoError, match='bad.mp4'): mux_audio(tmp_path / 'bad.mp4', np.zeros(10), tmp_path / 'y.mp4')
    assert not (tmp_path / 'y.mp4').exists()


def test_write_video_odd_size_and_bad_input(tmp_path):
    p = write_video(tmp_path / 'odd.mp4', np.full((5, 31, 33, 3), 100, np.uint8), fps=21.5)
    i = probe(p)
    assert (i.height, i.width, i.n_frames, i.fps) == (32, 34, 5, 21.5)
    with pytest.raises(ValueError, match='uint8'): write_video(tmp_path / 'f.mp4', np.zeros((2, 8, 8, 3)))


def test_batch_skips_and_reports(tmp_path, clip2s):
    (tmp_path / 'bad.mp4').write_text('x')
    (tmp_path / 'empty.mp4').touch()
    items = [clip2s, tmp_path / 'bad.mp4', tmp_path / 'empty.mp4', clip2s.parent / 'missing.mp4']
    rep = run_batch(items, lambda p: load_clip(p, seconds=1).frames.shape, progress=False)
    assert rep.done == {clip2s: (22, 32, 32, 3)}
    assert set(rep.failed) == set(items[1:])
    assert 'empty file' in rep.failed[tmp_path / 'empty.mp4'] and '3 failed' in repr(rep)
    rep2 = run_batch([1, 2], lambda x: 1 / (x - 1), progress=False)   # any exception, named with its item
    assert rep2.done == {2: 1.0} and 'ZeroDivisionError' in rep2.failed[1]


def test_loop_to():
    assert loop_to(np.arange(3), 8).tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    with pytest.raises(ValueError): loop_to(np.zeros(0), 3)


# ---------------------------------------------------------------- memory: decode size and remuxing
def coded(path, n=50, fps=25, width=32, height=32, x264='keyint=250', grey=True):
    "An H.264 mp4 whose frame i is grey level 4*i (or, with grey=False, a gradient moving with i); `x264`: encoder params."
    with av.open(str(path), 'w') as out:
        vs = out.add_stream('libx264', rate=fps, options={'preset': 'ultrafast', 'x264-params': x264})
        vs.width, vs.height, vs.pix_fmt = width, height, 'yuv420p'
        ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
        for i in range(n):
            a = np.full((height, width, 3), 4 * i % 256, np.uint8) if grey else \
                np.broadcast_to((ramp + 5 * i) % 256, (height, width, 3)).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(a, format='rgb24'); f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
    return path


def packets(path):
    with open_media(path) as c: return [bytes(p) for p in c.demux(video=0) if p.dts is not None]


@pytest.fixture
def rgb_shapes(monkeypatch):
    "Record the shape of every RGB array the decoder hands out."
    import vgsg.video as v
    shapes, orig = [], v._to_rgb
    def spy(f, size):
        a = orig(f, size); shapes.append(a.shape); return a
    monkeypatch.setattr(v, '_to_rgb', spy)
    return shapes


@pytest.mark.parametrize('width,height', [(1920, 1080), (4000, 3000)])
def test_frames_never_held_at_source_size(tmp_path, rgb_shapes, width, height):
    import tracemalloc
    from vgsg.video import FrameSize
    p = coded(tmp_path / 'big.mp4', n=3, fps=5, width=width, height=height, grey=False)
    tracemalloc.start()
    c = load_clip(p, audio=False, size=FrameSize(lambda h, w: (h // 16, w // 16)))
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    assert c.frames.shape == (215, height // 16, width // 16, 3) and c.frames.dtype == np.uint8
    assert rgb_shapes and set(rgb_shapes) == {(height // 16, width // 16, 3)}
    assert peak < width * height * 3                          # all numpy ever held: less than ONE source frame


def test_remux_loops_packets_for_longer_audio(tmp_path):
    src = coded(tmp_path / 'b.mp4', x264='keyint=250:bframes=2:b-adapt=0')   # B-frames: decode order != display
    out = mux_audio(src, np.zeros(round(4.5 * SR), np.float32), tmp_path / 'loop.mp4')
    a, b = packets(src), packets(out)
    assert b == a + a + a[:13]                                 # 2.25 copies (0.5 s = 13 frames), the bytes unchanged
    i = probe(out)
    assert i.duration == pytest.approx(4.5, abs=0.1) and (i.width, i.height) == (32, 32)
    t = np.arange(0, 4.4, 0.2)
    assert (np.abs(grey_index(read_frames(out, t)) - np.floor(np.mod(t, 2) * 25 + 1e-9)) <= 1).all()
    assert len(read_audio(out)) == round(4.5 * SR)


def test_remux_cuts_and_starts_on_a_keyframe(tmp_path):
    src = coded(tmp_path / 'g.mp4', x264='keyint=10:min-keyint=10:scenecut=0')   # keyframes at 0, 0.4, 0.8 ... s
    out = mux_audio(src, np.zeros(SR // 2, np.float32), tmp_path / 'from_key.mp4', start=0.4)
    assert packets(out) == packets(src)[10:23]                 # frames 10 .. 22: 0.5 s from 0.4 s, copied
    assert probe(out).duration == pytest.approx(0.5, abs=0.05)
    assert grey_index(read_frames(out, [0.])) == [10]


def test_reencode_off_keyframe_keeps_size_in_constant_memory(tmp_path, rgb_shapes):
    import tracemalloc
    src = coded(tmp_path / 'hd.mp4', n=10, fps=10, width=1280, height=720)
    tracemalloc.start()
    out = mux_audio(src, np.zeros(3 * SR, np.float32), tmp_path / 'off.mp4', start=0.35)   # no keyframe there
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    i = probe(out)
    assert (i.width, i.height, i.fps) == (1280, 720, 10) and i.duration == pytest.approx(3.0, abs=0.1)
    with open_media(out) as c: assert c.streams.video[0].codec_context.name == 'h264'
    assert packets(out)[:7] != packets(src)[3:]                # re-encoded, not copied
    assert rgb_shapes == [] and peak < 1280 * 720 * 3         # no RGB arrays made while writing, < 1 frame in numpy
    assert grey_index(read_frames(out, [0.])) == [3]           # the frame on screen at 0.35 s
    assert grey_index(read_frames(out, [0.7])) == [4]          # looped with period 0.65 s: 0.35 + 0.05 s


def test_mux_start_past_the_end(tmp_path, clip2s):
    assert reason(mux_audio, clip2s, np.zeros(SR, np.float32), tmp_path / 'x.mp4', start=2.5)[0] == 'bad_start'
    assert not (tmp_path / 'x.mp4').exists()
