"Tests of vgsg.vqgan and vgsg.lpaps that do not fit in the notebooks (tiny configs; paper configs on the meta device)."
import ast
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vgsg.vqgan import (VQModel, VectorQuantizer, CodebookLoss, LossConfig, PatchDiscriminator, CodeUsage,
                        tiny_codebook, vggsound_codebook, vas_codebook, vggsound_loss, taming_adaptive,
                        state_dict_shapes, read_key_dump, grid_to_seq, seq_to_grid, column_major_perm)
from vgsg.core.io import count_params, save_weights, load_weights
from vgsg.lpaps import (LPAPS, VGGishish, UntrainedBackboneError, classifier_info,
                        tiny_vggishish, vggishish16)
from vgsg.core.models import save_model, load_model

KEYS = Path(__file__).parent/'keys'
CODEBOOKS = [(vggsound_codebook, 'vggsound_codebook_vqmodel_with_loss.txt'), (vas_codebook, 'vas_codebook_vqmodel_with_loss.txt')]


def header_counts(fname):
    "The per-part parameter counts written in the dump's second comment line."
    line = (KEYS/fname).read_text().splitlines()[1]
    return ast.literal_eval(line.split('counts: ', 1)[1])


def spec(b=2, h=32, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g)*2 - 1


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return VQModel(replace(tiny_codebook, **kw))


# ---------------------------------------------------------------- state dicts of the paper configs (meta device)

@pytest.mark.parametrize('cfg,fname', CODEBOOKS)
def test_codebook_keys_and_counts_match_original(cfg, fname):
    with torch.device('meta'): m = VQModel(cfg)
    ref = read_key_dump(KEYS/fname)
    assert state_dict_shapes(m) == {k: v for k, v in ref.items() if not k.startswith('loss.')}
    counts = header_counts(fname)
    for part in ('encoder', 'decoder', 'quantize', 'quant_conv', 'post_quant_conv'):
        assert count_params(getattr(m, part)) == counts[part], part
    assert count_params(m) == counts['core_total']


@pytest.mark.parametrize('cfg,fname', CODEBOOKS)
def test_full_training_module_keys_match_original(cfg, fname):
    "VQModel + loss (LPAPS, discriminator) together have exactly the keys of the original training checkpoint."
    with torch.device('meta'):
        m = VQModel(cfg)
        crit = CodebookLoss(vggsound_loss, LPAPS(VGGishish(), allow_untrained=True))
    ours = {**state_dict_shapes(m), **state_dict_shapes(crit, 'loss.')}
    assert ours == read_key_dump(KEYS/fname)
    counts = header_counts(fname)
    assert count_params(crit.discriminator) == counts['discriminator']
    assert count_params(crit.perceptual_loss) == counts['lpaps_total']
    assert count_params(crit.perceptual_loss.net) == counts['lpaps_vgg']
    assert count_params(m) + count_params(crit) == counts['all']


def test_vggishish_keys_match_original():
    with torch.device('meta'): m = VGGishish(vggishish16)
    assert state_dict_shapes(m) == read_key_dump(KEYS/'vggishish16.txt')
    assert count_params(m) == 137_622_517


def test_read_key_dump_missing_file_names_it():
    with pytest.raises(FileNotFoundError, match='no_such_dump'): read_key_dump(KEYS/'no_such_dump.txt')


# ---------------------------------------------------------------- quantiser

def test_straight_through_gradient_reaches_encoder():
    m = tiny_model()
    x = spec()
    xrec, _, _ = m(x)
    (xrec - x).abs().mean().backward()
    assert m.encoder.conv_in.weight.grad.abs().sum() > 0
    assert m.quant_conv.weight.grad.abs().sum() > 0
    assert m.quantize.embedding.weight.grad is None  # the reconstruction alone does not move the codes


def test_straight_through_is_identity_for_gradients():
    vq = VectorQuantizer(16, 4)
    z = torch.randn(2, 4, 3, 5, requires_grad=True)
    w = torch.randn(2, 4, 3, 5)
    zq, _, _ = vq(z)
    (zq*w).sum().backward()
    assert torch.equal(z.grad, w)


def test_codebook_loss_moves_codes_towards_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4)
    z = torch.randn(1, 4, 2, 2)*0.1
    opt = torch.optim.SGD(vq.parameters(), lr=10.0)
    before = vq(z)[1].item()
    for _ in range(20):
        opt.zero_grad(); vq(z)[1].backward(); opt.step()
    assert vq(z)[1].item() < 0.5*before


def test_nearest_code_under_bf16_autocast_matches_float32():
    torch.manual_seed(0)
    vq = VectorQuantizer(1024, 256)
    with torch.no_grad(): vq.embedding.weight.normal_()
    z = vq.embedding.weight[torch.randint(0, 1024, (500,))].detach() + 1e-3*torch.randn(500, 256)
    ref = vq.nearest(z)
    with torch.autocast('cpu', dtype=torch.bfloat16): got = vq.nearest(z)
    assert torch.equal(got, ref)


def test_usage_statistics_show_collapse():
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 4)
    with torch.no_grad(): vq.embedding.weight.normal_()
    collapsed = vq.embedding.weight[2].detach().view(1, 4, 1, 1).expand(3, 4, 5, 7).contiguous()
    _, _, info = vq(collapsed)
    assert info['usage'].item() == pytest.approx(1/64)
    assert info['perplexity'].item() == pytest.approx(1.0, abs=1e-4)
    u = CodeUsage(64).update(info['indices'])
    assert u.summary()['codes_used'] == 1 and len(u.dead_codes) == 63
    u.update(torch.arange(64))
    assert u.fraction_used == 1.0


# ---------------------------------------------------------------- model, sequences, round trips

def test_indices_sequence_round_trip_decodes_identically():
    m = tiny_model().eval()
    with torch.no_grad():
        idx = m.encode_indices(spec(h=80, w=848, b=1))
        assert idx.shape == (1, 5, 53)
        seq = grid_to_seq(idx)
        assert seq.shape == (1, 265)
        t = torch.arange(265)
        assert torch.equal(seq[0], idx[0, t % 5, t//5])
        assert torch.equal(m.decode_indices(seq_to_grid(seq, 5)), m.decode_indices(idx))
    fwd, bwd = column_major_perm(5, 53)
    assert torch.equal(idx.flatten(1)[:, fwd], seq) and torch.equal(seq[:, bwd], idx.flatten(1))


def test_safetensors_round_trip(tmp_path):
    m = tiny_model(seed=1)
    crit = CodebookLoss(LossConfig(disc_start=0, perceptual_weight=0.0, disc_ndf=8))
    x = spec()
    crit.discriminator(x)  # updates BatchNorm running stats, which must survive the round trip too
    save_weights(m, tmp_path/'vq.safetensors'); save_weights(crit, tmp_path/'loss.safetensors')
    m2 = load_weights(tiny_model(seed=2), tmp_path/'vq.safetensors')
    crit2 = load_weights(CodebookLoss(LossConfig(disc_start=0, perceptual_weight=0.0, disc_ndf=8)), tmp_path/'loss.safetensors')
    for a, b in [(m, m2), (crit, crit2)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    m.eval(); m2.eval()
    with torch.no_grad(): assert torch.equal(m(x)[0], m2(x)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['loss.safetensors', 'vq.safetensors']


def test_load_weights_rejects_wrong_codebook_size(tmp_path):
    save_weights(tiny_model(), tmp_path/'vq.safetensors')
    with pytest.raises(RuntimeError, match='size mismatch'):
        load_weights(tiny_model(n_embed=16), tmp_path/'vq.safetensors')


class Opaque:
    "Stands for the non-tensor objects (callbacks, hyper-parameters) inside a Lightning checkpoint."


def test_untrusted_pickle_with_objects_is_refused(tmp_path):
    m = tiny_model(seed=3)
    torch.save({'state_dict': m.state_dict(), 'callbacks': Opaque()}, tmp_path/'x.ckpt')
    with pytest.raises(ValueError, match='refused to load.*Opaque'): load_weights(tiny_model(), tmp_path/'x.ckpt')
    m2 = load_weights(tiny_model(), tmp_path/'x.ckpt', trusted=True)
    assert torch.equal(m2.quantize.embedding.weight, m.quantize.embedding.weight)


# ---------------------------------------------------------------- loss

def test_adaptive_weight_is_gradient_norm_ratio():
    m = tiny_model()
    crit = CodebookLoss(taming_adaptive(LossConfig(disc_start=0, perceptual_weight=0.0, disc_ndf=8)))
    x = spec()
    xrec, q, _ = m(x)
    _, logs = crit(x, xrec, q, step=0, last_layer=m.last_layer)
    nll = (x - xrec).abs().mean()
    g = -crit.discriminator(xrec).mean()
    gn = torch.autograd.grad(nll, m.last_layer, retain_graph=True)[0].norm()
    gg = torch.autograd.grad(g, m.last_layer)[0].norm()
    assert logs['d_weight'].item() == pytest.approx(0.8*(gn/(gg + 1e-4)).clamp(0, 1e4).item(), rel=1e-4)
    assert logs['d_weight'].item() != pytest.approx(0.8)


def test_original_gan_weight_is_constant_after_disc_start():
    m = tiny_model()
    crit = CodebookLoss(LossConfig(disc_start=5, perceptual_weight=0.0, disc_ndf=8))
    x = spec()
    xrec, q, _ = m(x)
    before = crit(x, xrec, q, step=4, last_layer=m.last_layer)[1]
    after = crit(x, xrec, q, step=5, last_layer=m.last_layer)[1]
    assert before['disc_factor'] == 0 and before['g_loss'] == 0
    assert after['disc_factor'] == 1 and after['d_weight'].item() == pytest.approx(0.8)
    assert after['total_loss'].item() == pytest.approx((after['nll_loss'] + 0.8*after['g_loss'] + after['quant_loss']).item(), rel=1e-5)


def test_discriminator_step_does_not_reach_generator():
    m = tiny_model()
    crit = CodebookLoss(LossConfig(disc_start=0, perceptual_weight=0.0, disc_ndf=8))
    x = spec()
    xrec, q, _ = m(x)
    loss, logs = crit(x, xrec, q, step=0, optimizer_idx=1)
    loss.backward()
    assert m.decoder.conv_out.weight.grad is None
    assert crit.discriminator.main[0].weight.grad.abs().sum() > 0


def test_vanilla_gan_option():
    torch.manual_seed(0)
    crit = CodebookLoss(LossConfig(disc_start=0, perceptual_weight=0.0, disc_ndf=8, disc_loss='vanilla')).eval()
    x, y = spec(seed=0), spec(seed=1)
    loss, _ = crit.discriminator_loss(x, y, step=0)
    with torch.no_grad(): r, f = crit.discriminator(x), crit.discriminator(y)
    expected = 0.5*(torch.nn.functional.softplus(-r).mean() + torch.nn.functional.softplus(f).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    hinge = 0.5*((1 - r).clamp(min=0).mean() + (1 + f).clamp(min=0).mean())
    assert loss.item() != pytest.approx(hinge.item(), rel=1e-3)


# ---------------------------------------------------------------- LPAPS

def test_lpaps_refuses_untrained_backbone():
    with pytest.raises(UntrainedBackboneError, match='allow_untrained=True'): LPAPS(VGGishish(tiny_vggishish))
    assert LPAPS(VGGishish(tiny_vggishish), allow_untrained=True).backbone_trained is False


def test_lpaps_from_weights_file_is_trained_and_uses_them(tmp_path):
    torch.manual_seed(0)
    v = VGGishish(tiny_vggishish).mark_trained()
    save_model(tmp_path/'v', v, info=classifier_info(torch.full((80,), 0.5), torch.full((80,), 0.25)))
    lp = LPAPS(tmp_path/'v')
    assert lp.backbone_trained
    assert torch.equal(getattr(lp.net.slice5, '28').weight, v.features[28].weight.detach())
    assert load_model(tmp_path/'v').trained


def test_lpaps_stays_frozen_and_in_eval_inside_training_loss():
    lp = LPAPS(VGGishish(tiny_vggishish).mark_trained())
    crit = CodebookLoss(LossConfig(disc_ndf=8), lp).train()
    assert crit.discriminator.training and not crit.perceptual_loss.training
    assert not any(p.requires_grad for p in crit.perceptual_loss.parameters())
    x = spec(h=80, w=64)
    a, b = lp(x, x.flip(-1)), lp(x, x.flip(-1))
    assert torch.equal(a, b)  # dropout inactive
