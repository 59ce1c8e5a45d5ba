"Tests of vgsg.checkpoints: safe loading, strict mapping of the original checkpoints, conversion to model folders."
import argparse, contextlib, io, os, warnings
from pathlib import Path
import pytest
import torch
from vgsg.core.safety import LIGHTNING_GLOBALS, STAND_INS, UnsafeCheckpointError, safe_load
from vgsg.checkpoints import (CheckpointMismatch, adam_state, original_state_dict, save_original, read_original,
                              codebook_config, transformer_config, melgan_generator_config, vggishish_config,
                              meta_state_dict, build_strict, discriminator_from, lpaps_from, convert,
                              load_codebook_loss, check_permuter)
from vgsg.vqgan import (VQModel, VQGANConfig, tiny_codebook, vggsound_codebook, vas_codebook, LossConfig,
                        CodebookLoss, read_key_dump, column_major_perm)
from vgsg.core.io import count_params
from vgsg.lpaps import LPAPS, VGGishish, tiny_vggishish, vggishish16
from vgsg.transformer import GPT, tiny_config, paper_config
from vgsg.vocoder import Generator, MelGANConfig, MELGAN_PAPER
from vgsg.melception import Melception, MelceptionConfig
from vgsg.pipeline import ModelSet
from vgsg.core.models import load_model
from vgsg.cli import main

KEYS = Path(__file__).resolve().parent / 'keys'
GROUPS = {'num_groups': 4}  # tiny codebook's GroupNorm groups (not stored in a checkpoint)


class Evil:
    "Unpickling this runs a shell command that creates `marker`."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


@pytest.mark.parametrize('zipped', [True, False])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, zipped):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.ckpt'
    torch.save({'state_dict': {'w': torch.zeros(1), 'x': Evil(marker)}}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(UnsafeCheckpointError, match='posix.system'): safe_load(path)
    with pytest.raises(UnsafeCheckpointError, match='--trust'): convert(path, tmp_path / 'out', 'codebook')
    assert not marker.exists() and not (tmp_path / 'out').exists()
    # control: the file really is malicious, and trust=True really unpickles it
    safe_load(path, trust=True)
    assert marker.exists()


def test_cli_refuses_the_malicious_file(tmp_path):
    marker = tmp_path / 'pwned'
    torch.save(Evil(marker), tmp_path / 'evil.pt')
    err = io.StringIO()
    with contextlib.redirect_stderr(err): code = main(['convert', str(tmp_path / 'evil.pt'), str(tmp_path / 'o'), '--kind', 'melgan'])
    assert code == 2 and 'refused to load' in err.getvalue() and not marker.exists()


def test_lightning_checkpoint_needs_only_the_callback_names(tmp_path):
    m = VQModel(tiny_codebook)
    p = save_original(tmp_path / 'a.ckpt', 'codebook', original_state_dict('codebook', m), early_stopping=True,
                      optimizers=[adam_state(3)], epoch=4, global_step=99)
    assert sorted(torch.serialization.get_unsafe_globals_in_checkpoint(p)) == sorted(LIGHTNING_GLOBALS)
    with pytest.raises(Exception, match='ModelCheckpoint'): torch.load(p, weights_only=True)
    ck = safe_load(p)
    assert set(ck['callbacks']) == set(STAND_INS.values()) and ck['global_step'] == 99
    sd, facts = read_original(p)
    assert facts == dict(container='PyTorch Lightning checkpoint', lightning_version='1.2.10', epoch=4, global_step=99)
    assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())
    with pytest.raises(Exception, match='only the class name'): STAND_INS[LIGHTNING_GLOBALS[1]]()
    # any other class is still refused, and named
    torch.save({'state_dict': m.state_dict(), 'hparams': argparse.Namespace(lr=1)}, tmp_path / 'b.ckpt')
    with pytest.raises(UnsafeCheckpointError, match='argparse.Namespace'): safe_load(tmp_path / 'b.ckpt')


def _exact(a, b):
    assert torch.equal(a, b), (a - b).abs().max()


def test_roundtrip_codebook_with_loss(tmp_path):
    torch.manual_seed(1)
    vq = VQModel(tiny_codebook).eval()
    crit = CodebookLoss(LossConfig(disc_ndf=8), LPAPS(VGGishish(tiny_vggishish), allow_untrained=True)).eval()
    p = save_original(tmp_path / 'last.ckpt', 'codebook', original_state_dict('codebook', vq, loss=crit), optimizers=[adam_state(4), adam_state(2)])
    out = convert(p, tmp_path / 'set', 'codebook', keep_loss=True, settings=GROUPS)
    back = load_model(out[0])
    x, y = torch.rand(2, 1, 16, 32) * 2 - 1, torch.rand(1, 1, 80, 32) * 2 - 1
    with torch.no_grad():
        _exact(back(x)[0], vq(x)[0])
        _exact(back.encode_indices(x), vq.encode_indices(x))
        D, lp = load_codebook_loss(out[0])
        _exact(D.eval()(y), crit.discriminator(y))
        _exact(lp(y, y.flip(-1)), crit.perceptual_loss(y, y.flip(-1)))
    assert back.info['source'] == 'last.ckpt' and back.cfg == tiny_codebook
    # converting again without the loss removes the stale loss files
    convert(p, tmp_path / 'set', 'codebook', settings=GROUPS)
    assert not (out[0] / 'discriminator.safetensors').exists()
    with pytest.raises(FileNotFoundError, match='keep-loss'): load_codebook_loss(out[0])


def test_roundtrip_transformer_is_a_model_set(tmp_path):
    torch.manual_seed(2)
    gpt, vq = GPT(tiny_config(n_feats=4)).eval(), VQModel(tiny_codebook).eval()
    run = tmp_path / 'logs' / '2021-07-30T21-34-25_vggsound_transformer' / 'checkpoints' / 'last.ckpt'
    sd = original_state_dict('transformer', gpt, codebook=vq)
    with pytest.warns(UserWarning, match='should have 5 features'):  # the run name says 5, the tiny model has 4
        out = convert(save_original(run, 'transformer', sd, early_stopping=True), tmp_path / 'set', 'transformer',
                      settings={'n_head': 2, 'codebook.num_groups': 4})
    assert [p.name for p in out] == ['transformer', 'codebook']
    ms = ModelSet.from_folder(tmp_path / 'set')
    idx, feats = torch.randint(0, 32, (2, 30)), torch.randn(2, 4, 16)
    with torch.no_grad(): _exact(ms.transformer(idx, feats), gpt(idx, feats))
    assert ms.transformer.cfg.n_feats == 4 and ms.transformer.cfg.block_size == 269
    assert ms.info['features'] == 'resnet50' and ms.info['published_run'].startswith('2021-07-30T21-34-25')
    x = torch.rand(1, 1, 16, 32) * 2 - 1
    with torch.no_grad(): _exact(ms.codebook(x)[0], vq(x)[0])


def test_no_feats_run_and_explicit_features(tmp_path):
    gpt, vq = GPT(tiny_config(n_feats=1)).eval(), VQModel(tiny_codebook)
    sd = original_state_dict('transformer', gpt, codebook=vq)
    p = save_original(tmp_path / '2021-06-20T16-35-20_vggsound_transformer' / 'last.ckpt', 'transformer', sd)
    convert(p, tmp_path / 'a', 'transformer', settings={'n_head': 2, 'codebook.num_groups': 4})
    assert load_model(tmp_path / 'a' / 'transformer').cfg.cond == 'nofeats'
    p = save_original(tmp_path / 'x.ckpt', 'transformer', sd)
    convert(p, tmp_path / 'b', 'transformer', features='bninception', settings={'n_head': 2, 'codebook.num_groups': 4})
    t = load_model(tmp_path / 'b' / 'transformer')
    assert t.cfg.cond == 'feats' and t.info['features'] == 'bninception'
    convert(p, tmp_path / 'c', 'transformer', settings={'n_head': 2, 'codebook.num_groups': 4})
    assert load_model(tmp_path / 'c' / 'transformer').info['features'] == 'unknown'


def test_roundtrip_melgan(tmp_path):
    torch.manual_seed(3)
    G = Generator(MelGANConfig(ngf=4, n_residual_layers=2)).eval()
    p = save_original(tmp_path / 'best_netG.pt', 'melgan', original_state_dict('melgan', G))
    assert isinstance(torch.load(p, weights_only=True), dict)  # a bare state dict, as the original
    mel = torch.rand(2, 80, 12)
    with torch.no_grad(): _exact(load_model(convert(p, tmp_path / 'set', 'melgan')[0])(mel), G(mel))
    with torch.no_grad(): torch.testing.assert_close(load_model(convert(p, tmp_path / 'h', 'melgan', half=True)[0])(mel), G(mel), atol=1e-2, rtol=0)


def test_roundtrip_melception(tmp_path):
    torch.manual_seed(4)
    M = Melception(MelceptionConfig.tiny(n_classes=5)).eval()
    stats = tmp_path / 'train_means_stds_melspec_10s_22050hz.txt'
    stats.write_text('\n'.join(f'{0.5 + i / 1000} {0.08 + i / 2000}' for i in range(80)))
    from vgsg.audio import read_mel_stats
    M.set_stats(*read_mel_stats(stats))
    p = save_original(tmp_path / 'melception.pt', 'melception', original_state_dict('melception', M))
    assert set(torch.load(p, weights_only=True)) == {'model'}
    back = load_model(convert(p, tmp_path / 'set', 'melception', stats=stats)[0])
    spec = torch.rand(2, 80, 24)
    with torch.no_grad(): _exact(back(spec), M(spec))
    with pytest.raises(ValueError, match='stats='): convert(p, tmp_path / 'set', 'melception')


def test_roundtrip_vggishish(tmp_path):
    torch.manual_seed(5)
    V = VGGishish(tiny_vggishish).eval()
    p = save_original(tmp_path / 'vggishish16.pt', 'vggishish', original_state_dict('vggishish', V))
    back = load_model(convert(p, tmp_path / 'set', 'vggishish')[0])
    spec = torch.rand(2, 80, 96)
    with torch.no_grad(): _exact(back(spec), V(spec))


def _shapes(sd): return [(k, tuple(v.shape)) for k, v in sd.items()]
def _dump(name): return list(read_key_dump(KEYS / name).items())


@pytest.mark.parametrize('cfg,name', [(vggsound_codebook, 'vggsound'), (vas_codebook, 'vas')])
def test_paper_codebooks_match_the_key_dumps(cfg, name):
    dump = f'{name}_codebook_vqmodel_with_loss.txt'
    with torch.device('meta'):
        crit = CodebookLoss(LossConfig(), LPAPS(VGGishish(vggishish16), allow_untrained=True))
        assert _shapes(original_state_dict('codebook', VQModel(cfg), loss=crit)) == _dump(dump)
    sd = meta_state_dict(KEYS / dump)
    assert codebook_config({k: v for k, v in sd.items() if not k.startswith('loss.')}) == cfg
    assert count_params(discriminator_from(meta_state_dict(KEYS / dump, 'loss.discriminator.'))) == 2_763_585
    assert count_params(lpaps_from(meta_state_dict(KEYS / dump, 'loss.perceptual_loss.'))) == 14_715_008


@pytest.mark.parametrize('n,name,count', [(1, '1feat', 306_779_136), (5, '5feats', 306_783_232), (212, '212feats', 306_995_200)])
def test_paper_transformers_match_the_key_dumps(n, name, count):
    dump = KEYS / f'vggsound_transformer_{name}.txt'
    with torch.device('meta'):
        sd = original_state_dict('transformer', GPT(paper_config(n)), codebook=VQModel(vggsound_codebook))
    assert _shapes(sd) == list(read_key_dump(dump).items())
    gsd = meta_state_dict(dump, 'transformer.')
    cfg = transformer_config(gsd)
    assert cfg == paper_config(n) and cfg.n_head == 16 and cfg.block_size == 265 + n
    assert count_params(build_strict(lambda: GPT(cfg), gsd, 'GPT')) == count


def test_paper_melgan_melception_vggishish_match_the_key_dumps():
    with torch.device('meta'):
        assert _shapes(original_state_dict('melgan', Generator(MELGAN_PAPER))) == _dump('melgan_netG.txt')
        assert _shapes(original_state_dict('melception', Melception())) == _dump('melception.txt')
        assert _shapes(original_state_dict('vggishish', VGGishish(vggishish16))) == _dump('vggishish16.txt')
    sd = meta_state_dict(KEYS / 'melgan_netG.txt')
    assert melgan_generator_config(sd) == MELGAN_PAPER
    assert count_params(build_strict(lambda: Generator(MELGAN_PAPER), sd, 'G')) == 4_266_050
    assert vggishish_config(meta_state_dict(KEYS / 'vggishish16.txt')) == vggishish16


def test_mismatches_are_listed(tmp_path):
    V = VGGishish(tiny_vggishish)
    sd = original_state_dict('vggishish', V)
    sd.pop('features.2.bias'); sd.pop('classifier.4.bias')
    sd['classifier.7.weight'] = torch.zeros(2)
    sd['classifier.2.weight'] = torch.zeros(3, 3)
    p = save_original(tmp_path / 'v.pt', 'vggishish', sd)
    with pytest.raises(CheckpointMismatch) as e: convert(p, tmp_path / 'o', 'vggishish')
    msg = str(e.value)
    assert 'missing keys (2): features.2.bias, classifier.4.bias' in msg
    assert 'unexpected keys (1): classifier.7.weight' in msg
    assert 'shape mismatches (1): classifier.2.weight (3, 3) (expected (32, 32))' in msg
    assert str(p) in msg and not (tmp_path / 'o').exists()


def test_wrong_kind_and_inconsistent_files(tmp_path):
    G = Generator(MelGANConfig(ngf=4, n_residual_layers=1))
    pg = save_original(tmp_path / 'g.pt', 'melgan', original_state_dict('melgan', G))
    with pytest.raises(CheckpointMismatch, match='not a codebook'): convert(pg, tmp_path / 'o', 'codebook')
    with pytest.raises(CheckpointMismatch, match='first_stage_permuter'): convert(pg, tmp_path / 'o', 'transformer')
    gpt, vq = GPT(tiny_config()), VQModel(tiny_codebook)
    s = {'n_head': 2, 'codebook.num_groups': 4}
    sd = original_state_dict('transformer', gpt, codebook=VQModel(VQGANConfig(**{**tiny_codebook.as_dict(), 'n_embed': 64})))
    with pytest.raises(CheckpointMismatch, match='predicts 32 codes but its codebook has 64'):
        convert(save_original(tmp_path / 't.ckpt', 'transformer', sd), tmp_path / 'o', 'transformer', settings=s)
    sd = original_state_dict('transformer', gpt, codebook=vq)
    sd['transformer.blocks.1.attn.mask'] = torch.ones_like(sd['transformer.blocks.1.attn.mask'])
    with pytest.raises(CheckpointMismatch, match='blocks.1.attn.mask is not a plain causal mask'):
        convert(save_original(tmp_path / 't.ckpt', 'transformer', sd), tmp_path / 'o', 'transformer', settings=s)
    with pytest.raises(ValueError, match='do not apply'): convert(pg, tmp_path / 'o', 'melgan', settings={'codebook.num_groups': 4})
    with pytest.raises(ValueError, match='unknown kind'): convert(pg, tmp_path / 'o', 'gan')
    assert not (tmp_path / 'o').exists()


def test_permuter_must_be_column_major():
    fwd, bwd = column_major_perm()
    check_permuter(fwd, bwd)
    raster = torch.arange(265)
    with pytest.raises(CheckpointMismatch, match='column-major'): check_permuter(raster, raster)
    with pytest.raises(CheckpointMismatch, match='column-major'): check_permuter(fwd, fwd)


def test_cli_convert(tmp_path):
    gpt, vq = GPT(tiny_config(n_feats=2)), VQModel(tiny_codebook)
    p = save_original(tmp_path / 'x.ckpt', 'transformer', original_state_dict('transformer', gpt, codebook=vq))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(['convert', str(p), str(tmp_path / 'set'), '--kind', 'transformer', '--features', 'resnet50',
                     '--set', 'n_head=2', 'codebook.num_groups=4', '--half'])
    assert code == 0 and 'set/transformer' in out.getvalue() and 'set/codebook' in out.getvalue()
    t = load_model(tmp_path / 'set' / 'transformer')
    assert t.info['features'] == 'resnet50' and t.cfg.n_head == 2
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(['convert', str(p), str(tmp_path / 'set2'), '--kind', 'transformer', '--set', 'n_head']) == 2
    assert 'KEY=VALUE' in err.getvalue()
