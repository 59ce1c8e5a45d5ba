"The time-aligned transformer (`cond='aligned'`): training through the shared trainer, resume, loading, sampling."
from dataclasses import replace
import pytest
import torch
import yaml
from vgsg.train.trainer import train
from vgsg.vqgan import VQModel, tiny_codebook
from vgsg.core.io import save_weights
from vgsg.transformer import GPT, tiny_config, paper_config, lm_loss
from vgsg.sample import sample, sample_reference, Decoder
from vgsg.core.models import save_model, load_model
from vgsg.train.transformer import codebook_of, transformer_sampler, transformer_data, frozen_codebook


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "Two classes of 2-s synthetic clips with all their pixel-feature frames and a tiny codebook."
    root = tmp_path_factory.mktemp('al')
    torch.manual_seed(0)
    save_model(root/'cb', VQModel(replace(tiny_codebook, n_embed=16)).eval())
    data = dict(kind='toy', root=str(root/'prep'), toy_root=str(root/'videos'), classes=['drum', 'siren'],
                clips_per_class=2, seconds=2., size=32, valid=0.25, test=0.25, features='pixels')
    return dict(codebook=str(root/'cb'), data=data)


def cfg(setup, out, steps, **model):
    return dict(codebook=dict(path=setup['codebook']), data=dict(setup['data']),
                model=dict(dict(preset='tiny', cond='aligned', n_feats=5, learning_rate=3e-3), **model),
                train=dict(out_dir=str(out), max_steps=steps, batch_size=1, valid_every=2, log_every=1, progress=False, seed=0))


def test_train_resume_load_and_sample(setup, tmp_path):
    c = cfg(setup, tmp_path/'run', 4, frame_pad=1)
    train_ds, = transformer_data(c, frozen_codebook(setup['codebook']), ('train',))
    assert train_ds[0]['feature'].shape == (212, 2048)                     # all the frames, not the prefix's 5
    train('transformer', c)
    g = load_model(tmp_path/'run'/'last')
    assert (g.cfg.cond, g.cfg.frame_pad, g.n_cond) == ('aligned', 1, 5)
    # resuming 2 + 2 steps gives the weights of 4 straight steps
    train('transformer', cfg(setup, tmp_path/'half', 2, frame_pad=1))
    train('transformer', cfg(setup, tmp_path/'half', 4, frame_pad=1))   # resumes from its last checkpoint
    a, b = load_model(tmp_path/'half'/'last').state_dict(), g.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    batch = dict(feature=torch.rand(2, 212, 2048), target=torch.tensor([0, 1]))
    sampler = transformer_sampler(g, codebook_of(tmp_path/'run'/'last'), top_k=4)
    torch.manual_seed(0); s = sampler(batch, 2)
    torch.manual_seed(0); s2 = sampler(batch, 2)
    assert s.shape == (4, 80, 848) and torch.equal(s, s2) and not torch.equal(s[0], s[2])


def test_paper_width_step_matches_reference():
    "At the paper's width and depth (meta-free, random weights) a few cached aligned steps give the full forward's codes"
    torch.manual_seed(0)
    cfg = replace(paper_config(5, cond='aligned'), n_layer=2, vocab_size=64)
    m = GPT(cfg).eval()
    f = torch.rand(1, 212, 2048)
    g = lambda: torch.Generator().manual_seed(1)
    ours = sample(m, feats=f, generator=g(), decoder=Decoder(m, 1, static=True))
    ref = sample_reference(m, feats=f, generator=g(), max_steps=20)
    assert torch.equal(ours[:, :20], ref[:, :20])


def test_frames_change_only_their_columns_loss():
    "The loss of codes before a changed frame's columns does not move"
    torch.manual_seed(0)
    m = GPT(tiny_config(cond='aligned')).eval()
    z, f = torch.randint(0, 32, (1, 265)), torch.rand(1, 212, 16)
    f2 = f.clone(); f2[:, 150] -= 1                   # frame 150: columns 37 (and 36 through the padding)
    with torch.no_grad(): a, b = lm_loss(m, z, f, reduction='none'), lm_loss(m, z, f2, reduction='none')
    assert torch.equal(a[:, :36 * 5], b[:, :36 * 5]) and not torch.equal(a[:, 36 * 5:], b[:, 36 * 5:])
