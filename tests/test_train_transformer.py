"Training the transformer through the shared trainer: a few steps, exact resume, early stopping, the CLI, loading."
from dataclasses import replace
from pathlib import Path
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from vgsg.train.trainer import train, TASKS
from vgsg.vqgan import VQModel, tiny_codebook
from vgsg.core.io import save_weights
from vgsg.train.transformer import codebook_of, transformer_sampler, transformer_data, frozen_codebook, codes_of
from vgsg.core.models import save_model, load_model
from vgsg.train.trainer import export_checkpoint


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "Two classes of 2-s synthetic clips with pixel features (one training, one validation clip each) and a tiny codebook."
    root = tmp_path_factory.mktemp('tx')
    torch.manual_seed(0)
    save_model(root/'cb', VQModel(replace(tiny_codebook, n_embed=16)).eval())
    data = dict(kind='toy', root=str(root/'prep'), toy_root=str(root/'videos'), classes=['drum', 'siren'],
                clips_per_class=2, seconds=2., size=32, valid=0.25, test=0.25, features='pixels')
    return dict(codebook=str(root/'cb'), data=data)


def cfg(setup, out, steps, cond='feats', n_feats=5, lr=3e-3, **train_kw):
    return dict(codebook=dict(path=setup['codebook']), data=dict(setup['data']),
                model=dict(preset='tiny', cond=cond, n_feats=n_feats, learning_rate=lr),
                train=dict(dict(out_dir=str(out), max_steps=steps, batch_size=1, valid_every=2, log_every=1, progress=False,
                                seed=0), **train_kw))


def weights(folder): return load_file(str(Path(folder)/'gpt.safetensors'))


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_registered():
    assert 'transformer' in TASKS


def test_few_steps(setup, tmp_path):
    out = tmp_path/'run'
    tr = train('transformer', cfg(setup, out, 4))
    assert tr.step == 4
    log = pd.read_csv(out/'log.csv')
    assert set(log.key) == {'train/loss', 'valid/loss'}
    assert log.query("key == 'valid/loss'").step.tolist() == [2, 4]
    assert log.value.notna().all() and (log.value > 0).all()
    saved = yaml.safe_load((out/'config.yaml').read_text())
    assert {k: saved['model'][k] for k in ('vocab_size', 'n_audio', 'feat_dim')} == dict(vocab_size=16, n_audio=265, feat_dim=2048)
    assert sorted(p.name for p in (out/'last').iterdir()) == ['config.yaml', 'gpt.safetensors', 'trainer.pt']   # no codebook weights
    # the cached codes are the frozen codebook's codes of the clips
    vq = frozen_codebook(setup['codebook'])
    train_ds, = transformer_data(cfg(setup, out, 1), vq, ('train',))
    x = torch.stack([torch.as_tensor(train_ds.specs[i]['image']) for i in range(len(train_ds))])
    assert torch.equal(train_ds.codes, codes_of(vq, x))
    assert train_ds[0]['feature'].shape == (5, 2048)


def test_training_lowers_the_loss(setup, tmp_path):
    "Twenty steps over the two training clips lower the training loss well below ln |Z|"
    tr = train('transformer', cfg(setup, tmp_path/'r', 20, valid_every=100))
    loss = [r['train/loss'] for r in tr.history if 'train/loss' in r]
    assert loss[0] > 2.4 and sum(loss[-4:]) / 4 < loss[0] - 0.5


@pytest.mark.parametrize('cond,n_feats', [('feats', 5), ('nofeats', 1)])
def test_resume_is_exact(setup, tmp_path, cond, n_feats):
    "2 steps, stop, resume to 5 = 5 steps straight (same data order; for No Feats also the same noise)"
    straight = train('transformer', cfg(setup, tmp_path/'a', 5, cond, n_feats))
    train('transformer', cfg(setup, tmp_path/'b', 2, cond, n_feats))
    resumed = train('transformer', cfg(setup, tmp_path/'b', 5, cond, n_feats))
    assert straight.step == resumed.step == 5
    assert same_weights(weights(tmp_path/'a'/'last'), weights(tmp_path/'b'/'last'))


def test_codes_on_the_fly_equal_cached(setup, tmp_path):
    cached = cfg(setup, tmp_path/'a', 3)
    fly = cfg(setup, tmp_path/'b', 3)
    fly['data']['precompute_codes'] = False
    fly['data']['codes_dir'] = str(tmp_path/'nocache')
    train('transformer', cached); train('transformer', fly)
    assert not (tmp_path/'nocache').exists()
    assert same_weights(weights(tmp_path/'a'/'last'), weights(tmp_path/'b'/'last'))


def test_early_stopping(setup, tmp_path):
    "With a learning rate of 0 the validation loss never improves: training stops after 2 more validations"
    assert train('transformer', cfg(setup, tmp_path/'r', 100, lr=0., valid_every=1, patience=2)).step == 3


def test_class_condition(setup, tmp_path):
    out = tmp_path/'cls'
    train('transformer', cfg(setup, out, 2, cond='class'))
    g = load_model(out/'last')
    assert g.cfg.cond == 'class' and g.cfg.n_classes == 2 and g.n_cond == 1


def test_bad_configs(setup, tmp_path):
    c = cfg(setup, tmp_path/'r', 1)
    c['model']['vocab_size'] = 1024
    with pytest.raises(ValueError, match='model.vocab_size = 1024'): train('transformer', c)
    c = cfg(setup, tmp_path/'r', 1); del c['codebook']
    with pytest.raises(ValueError, match='codebook.path'): train('transformer', c)
    c = cfg(setup, tmp_path/'r', 1); c['codebook']['path'] = str(tmp_path/'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere'): train('transformer', c)


def test_cli(setup, tmp_path):
    from vgsg.cli import main
    path = tmp_path/'c.yaml'
    path.write_text(yaml.safe_dump(cfg(setup, tmp_path/'unused', 5)))
    assert main(['train', 'transformer', '-c', str(path), '-o', str(tmp_path/'cli'), '--set', 'train.max_steps=1']) == 0
    assert (tmp_path/'cli'/'last'/'gpt.safetensors').exists() and not (tmp_path/'unused').exists()
    assert yaml.safe_load((tmp_path/'cli'/'config.yaml').read_text())['train']['max_steps'] == 1


def test_bundle_load_and_sample(setup, tmp_path):
    out = tmp_path/'run'
    train('transformer', cfg(setup, out, 2))
    b = export_checkpoint(out/'best', tmp_path/'set'/'transformer', card='# card\n', info=dict(codebook='codebook'))
    save_model(tmp_path/'set'/'codebook', load_model(setup['codebook']))
    sd = load_file(str(b/'model.safetensors'))
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    g, ref = load_model(b), load_model(out/'best')
    assert g.pos_emb.dtype == torch.float32
    torch.testing.assert_close(g.head.weight, ref.head.weight, atol=1e-3, rtol=1e-3)
    vq = codebook_of(b)
    assert not any(p.requires_grad for p in vq.parameters()) and not vq.training
    batch = dict(feature=torch.rand(2, 5, 2048), target=torch.tensor([0, 1]))
    torch.manual_seed(0); a = transformer_sampler(g, vq, top_k=4)(batch, 3)
    torch.manual_seed(0); a2 = transformer_sampler(g, vq, top_k=4)(batch, 3)
    assert a.shape == (6, 80, 848) and torch.equal(a, a2)
    with pytest.raises(FileNotFoundError, match='not a vgsg model folder'): load_model(tmp_path)


def test_bundled_transformer_missing_is_a_clear_error(tmp_path, monkeypatch):
    from vgsg.train.transformer import BUNDLED_TRANSFORMER
    from vgsg.core.io import bundled
    monkeypatch.setenv('VGSG_DATA', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='transformer_small'): load_model(bundled(BUNDLED_TRANSFORMER))
