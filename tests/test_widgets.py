"The sampling interface (vgsg.widgets) driven from Python: set values, click, check what appears."
import io
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from test_cli import tiny_model_set
from vgsg.widgets import Sampler, top_x_options, nearest_option, strip_indices

torch.set_num_threads(1)


def tiny_widget_models(folder, melception=True):
    "The tiny random model set of test_cli plus (optionally) a tiny Melception that names the toy classes."
    from vgsg.core.models import save_model
    from vgsg.melception import Melception, MelceptionConfig
    from vgsg.data import TOY_CLASSES
    tiny_model_set(folder)
    if melception:
        save_model(folder / 'melception', Melception(MelceptionConfig.tiny()), info=dict(classes=list(TOY_CLASSES)))
    return folder


def toy_videos(folder):
    "Two synthetic classes, two 2-s clips each, with toy.csv."
    from vgsg.data import make_toy_dataset
    make_toy_dataset(folder, classes=('drum', 'hammer'), clips_per_class=2, seconds=2, size=32, progress=False)
    return folder


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('widgets')
    return dict(models=tiny_widget_models(tmp / 'models'), toy=toy_videos(tmp / 'toy'), tmp=tmp)


def png_size(data): return Image.open(io.BytesIO(data)).size


def test_top_x_stops_are_log_spaced_integers():
    for n in (2, 5, 32, 100, 1024, 8192):
        opts = top_x_options(n)
        assert opts[0] == 1 and opts[-1] == n and opts == sorted(set(opts))
        r = np.array(opts[1:]) / np.array(opts[:-1])
        assert r.max() <= 2.0 + 1e-9, (n, opts)                       # never more than a doubling per step
        assert len(opts) <= 2 * np.ceil(np.log2(n)) + 1
    assert nearest_option(top_x_options(1024), 600) == 512
    assert len(strip_indices(212, n=5)) == 5


def test_click_generate_shows_spectrogram_audio_and_opinion(world):
    s = Sampler(world['models'], videos=world['toy'], background=False)
    assert s.error is None and s.models.options == ('models',)
    assert s.top_x.value == 16 and s.top_x.options[-1] == 32
    s.top_x.value, s.temperature.value, s.seed.value, s.n_samples.value = 2, 0.7, 5, 3
    s.go.click()
    assert s.error is None
    panels = s.samples.children
    assert len(panels) == 3 and s.progress.value == s.progress.max == 3
    assert '3 of 3 samples' in s.progress_text.value
    for k, p in enumerate(panels):
        title, img, audio, opinion = p.children
        assert f'sample {k + 1} · top-X 2 · T 0.7 · seed {5 + k}' in title.value
        assert png_size(img.value)[0] > 300
        wav, sr = sf.read(io.BytesIO(audio.value))
        assert sr == 22050 and len(wav) == 848 * 256
        assert opinion.value.count('<tr>') == 5                           # header + Melception's top 4
    # the seed is per sample: sample 2 (seed 6) is what the pipeline draws alone with seed 6
    from vgsg.pipeline import Pipeline, ModelSet
    pipe = Pipeline(ModelSet.from_folder(world['models']))
    ref = pipe.generate(s.video, top_k=2, temperature=0.7, seed=6)
    back, _ = sf.read(io.BytesIO(panels[1].children[2].value), dtype='float32')
    np.testing.assert_allclose(back, np.clip(ref.wavs[0], -1, 1), atol=1 / 16000)


def test_background_generation_fills_in_and_unlocks(world):
    s = Sampler(world['models'], videos=world['toy'])
    s.n_samples.value = 2
    s.go.click()
    assert s.go.disabled and not s.stop.disabled                          # locked while the thread runs
    assert s.wait(120)
    assert s.error is None and len(s.samples.children) == 2 and s.progress.value == 2
    assert not s.go.disabled and s.stop.disabled


def test_attention_panel(world):
    s = Sampler(world['models'], videos=world['toy'], background=False)
    s.n_samples.value, s.attention.value = 1, True
    s.go.click()
    (panel,) = s.samples.children
    assert [type(w).__name__ for w in panel.children] == ['HTML', 'Image', 'Audio', 'HTML', 'Image']
    assert png_size(panel.children[-1].value)[0] > 300


def test_video_without_audio_still_generates(world):
    from vgsg.video import make_test_clip
    silent = make_test_clip(world['tmp'] / 'silent.mp4', audio=False)
    s = Sampler(tiny_widget_models(world['tmp'] / 'plain', melception=False), videos=silent, background=False)
    assert s.error is None and 'no audio track' in s.status.value
    assert s.truth.layout.display == 'none' and s.frames.value[:4] == b'\x89PNG'
    s.n_samples.value = 1
    s.go.click()
    assert s.error is None
    assert [type(w).__name__ for w in s.samples.children[0].children] == ['HTML', 'Image', 'Audio']   # no Melception


def test_class_conditioned_transformer_gets_the_chosen_class(world):
    from vgsg.pipeline import Pipeline, ModelSet
    from vgsg.core.models import save_model
    from vgsg.transformer import GPT, tiny_config
    from vgsg.vqgan import tiny_codebook
    folder = tiny_widget_models(world['tmp'] / 'by_class', melception=False)
    torch.manual_seed(1)
    save_model(folder / 'transformer', GPT(tiny_config(vocab_size=tiny_codebook.n_embed, cond='class', n_classes=2)),
               info=dict(classes=['drum', 'hammer']))
    s = Sampler(folder, videos=world['toy'], background=False)
    s.cls.value, s.n_samples.value, s.top_x.value = 'hammer', 1, 8
    s.go.click()
    assert s.error is None and s.video.name == 'hammer_0000.mp4'
    pipe = Pipeline(ModelSet.from_folder(folder))
    codes = {c: pipe.generate(s.video, top_k=8, seed=0, cls=c).codes[0] for c in (0, 1)}
    assert torch.equal(s.results[0].codes, codes[1]) and not torch.equal(codes[0], codes[1])
    bird = world['tmp'] / 'birds' / 'bird'
    bird.mkdir(parents=True)
    (bird / 'b.mp4').write_bytes(s.video.read_bytes())
    s.videos_path.value = str(bird.parent)                                 # a class the transformer does not know
    assert s.error is None and s.cls.value == 'bird'
    s.go.click()
    assert 'class-conditioned on' in str(s.error) and "'bird'" in str(s.error)
    assert not s.go.disabled                                              # an error unlocks the interface


def test_no_models_is_a_message_not_a_crash(world):
    s = Sampler(world['toy'], videos=world['toy'], background=False)
    assert 'no model set here' in str(s.error) and s.pipe is None
    s.go.click()
    assert 'choose a model set and a video first' in str(s.error)
    s.models_path.value = str(world['models'])
    assert s.error is None and s.pipe is not None and s.recon.layout.display is None
