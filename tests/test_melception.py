"Tests of vgsg.melception: architecture vs the original's keys and counts, features, statistics, training, I/O."
import json
from pathlib import Path
import numpy as np
import pytest
import torch
from vgsg.melception import (Melception, MelceptionConfig, n_params, state_dict_lines, keys_sha256, STATS_KEYS,
                             melception_loss, melception_optimizer,
                             classification_metrics, evaluate_melception, melception_features,
                             from_torchvision_state_dict, FEATURE_NAMES)
from vgsg.core.models import save_model, load_model
from vgsg.core.training import EarlyStopping
from vgsg.audio import mel_stats

# sha256 of the non-comment lines of the original's state-dict dump (keys/melception.txt, 580 lines)
REFERENCE_SHA256 = 'c8f9e63bde00863189572690cda4aecc2c736b86f43c70aec756ce05aa519dce'
KEYS = Path(__file__).resolve().parent / 'keys'   # the original's key/shape dumps and parameter counts (keys/README.md)
REFERENCE_FILE = KEYS / 'melception.txt'
COUNTS = json.loads((KEYS / 'param_counts.json').read_text())


@pytest.fixture(scope='module')
def paper():
    with torch.device('meta'): return Melception()


def tiny(n_classes=4, seed=0):
    torch.manual_seed(seed)
    return Melception(MelceptionConfig.tiny(n_classes))


def test_parameter_counts(paper):
    assert n_params(paper) == COUNTS['melception_all_incl_aux'] == 25_213_450
    assert n_params(paper.AuxLogits) == COUNTS['melception_aux_logits']
    with torch.device('meta'): assert n_params(Melception(MelceptionConfig(aux_logits=False))) == COUNTS['melception_without_aux']
    assert paper.fc.weight.shape == (309, 2048)


def test_state_dict_matches_the_original_dump(paper):
    lines = state_dict_lines(paper)
    assert keys_sha256(lines) == REFERENCE_SHA256
    assert list(paper.state_dict())[:2] == list(STATS_KEYS)
    ref = [l for l in REFERENCE_FILE.read_text().splitlines() if l and not l.startswith('#')]
    assert lines == ref


def test_inception_units_as_torchvision(paper):
    "What the keys cannot show: BatchNorm eps 1e-3, bias-free convolutions, identity max pools."
    bns = [m for m in paper.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in paper.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(bns) == len(convs) == 96 and all(b.eps == 1e-3 for b in bns) and all(c.bias is None for c in convs)
    assert isinstance(paper.maxpool1, torch.nn.Identity) and isinstance(paper.maxpool2, torch.nn.Identity)
    assert paper.Conv2d_1a_3x3.conv.stride == (2, 2) and paper.dropout.p == 0.5


def test_the_key_check_would_notice_a_change():
    with torch.device('meta'): m = Melception(MelceptionConfig(n_classes=308))
    assert keys_sha256(state_dict_lines(m)) != REFERENCE_SHA256


def test_geometry_of_a_full_size_input():
    m = tiny().eval()
    with torch.no_grad(): maps = m.feature_maps(torch.rand(1, 80, 848), aux=True)
    assert {k: tuple(v.shape[-2:]) for k, v in maps.items() if k != 'aux_logits'} == \
        {'64': (37, 421), '192': (35, 419), '768': (17, 209), '2048': (8, 104)}


def test_features_and_heads():
    m = tiny(n_classes=6).eval()
    x = torch.rand(3, 80, 90)
    with torch.no_grad():
        f = m.features(x)
        logits = m(x)
    assert list(f) == list(FEATURE_NAMES)
    assert [f[k].shape[1] for k in ('64', '192', '768', '2048')] == [8, 24, 96, 256]
    torch.testing.assert_close(f['logits'], logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f['logits'] - f['logits_unbiased'], m.fc.bias.detach().expand(3, -1))
    torch.testing.assert_close(f['2048'], m.feature_maps(x)['2048'].mean((2, 3)).detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r'\(B, 80, T\)'): m(torch.rand(2, 3, 80, 90))


def test_standardisation_uses_the_stored_statistics():
    m = tiny()
    g = np.random.default_rng(0)
    specs = g.random((5, 80, 40)) * np.linspace(0.2, 1, 80)[:, None] + np.linspace(0, 0.5, 80)[:, None]
    mean, std = mel_stats(specs)
    np.testing.assert_allclose(mean, specs.mean((0, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, specs.std(2).mean(0), rtol=1e-6)
    m.set_stats(mean, std)
    z = m.standardise(torch.tensor(specs, dtype=torch.float32))[:, 0]
    want = (specs - mean[:, None]) / std[:, None]
    np.testing.assert_allclose(z.numpy(), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='positive'): m.set_stats(mean, np.zeros(80))


def test_train_step_trains_the_aux_head():
    m = tiny(n_classes=2)
    opt = melception_optimizer(m, lr=1e-3)
    assert opt.defaults['betas'] == (0.9, 0.999) and opt.defaults['weight_decay'] == 1e-4
    x, y = torch.rand(4, 80, 80), torch.tensor([0, 1, 1, 0])
    before = {k: v.detach().clone() for k, v in m.AuxLogits.named_parameters()}
    m.train(); opt.zero_grad(); melception_loss(m, x, y, aux_weight=0.4).backward(); opt.step()
    assert all(not torch.equal(before[k], v) for k, v in m.AuxLogits.named_parameters())
    # the loss really includes 0.4 × the auxiliary cross-entropy
    m.eval()
    torch.manual_seed(0); main_only = melception_loss(m, x, y, aux_weight=0.0)
    torch.manual_seed(0); both = melception_loss(m, x, y, aux_weight=0.4)
    logits, aux = m.logits_and_aux(x)
    assert both.item() == pytest.approx(main_only.item() + 0.4 * torch.nn.functional.cross_entropy(aux, y).item(), rel=1e-5)


def test_early_stopping_patience_three():
    es = EarlyStopping(patience=3)
    stops = []
    for v in [3, 2, 2.5, 2.1, 2.2]: es.improved(v); stops.append(es.should_stop)
    assert stops == [False, False, False, False, True] and es.best == 2


def test_classification_metrics_by_hand():
    P = torch.tensor([[0.7, 0.1, 0.1, 0.1],     # label 0
                      [0.1, 0.6, 0.2, 0.1],     # label 1
                      [0.4, 0.15, 0.35, 0.1],   # label 1, wrong at top-1
                      [0.2, 0.2, 0.5, 0.1]])    # label 2; class 3 never occurs and is left out of mAP/mAUC
    r = classification_metrics(P.log(), [0, 1, 1, 2])
    assert r['top1'] == pytest.approx(0.75) and r['top5'] == 1.0
    # class 1 ranks rows 1(+), 3(-), 2(+), 0(-): AP = (1 + 2/3) / 2, AUC = 3/4; classes 0 and 2 are perfect
    assert r['mAP'] == pytest.approx((1 + 5 / 6 + 1) / 3)
    assert r['mAUC'] == pytest.approx((1 + 3 / 4 + 1) / 3)


def test_tiny_evaluation():
    g = np.random.default_rng(0)
    def toy(n):
        y = g.integers(0, 2, n)
        X = 0.2 * g.random((n, 80, 80)).astype(np.float32)
        for i, c in enumerate(y): X[i, 5 + 40 * c:35 + 40 * c] += 0.6
        return X, y
    m = tiny(n_classes=2)
    m.set_stats(*mel_stats(toy(12)[0]))
    assert not torch.all(m.mel_std == 1)
    r = evaluate_melception(m, toy(6))
    assert set(r) == {'loss', 'top1', 'top5', 'mAP', 'mAUC'}


def test_save_load_roundtrip(tmp_path):
    m = tiny(n_classes=3).eval()
    m.set_stats(np.full(80, 0.4), np.full(80, 0.2))
    x = torch.rand(2, 80, 84)
    back = load_model(save_model(tmp_path/'m', m))
    with torch.no_grad(): torch.testing.assert_close(back(x), m(x))
    assert back.cfg == m.cfg and torch.equal(back.mel_std, m.mel_std)
    half = load_model(save_model(tmp_path/'h', m, half=True))
    with torch.no_grad(): torch.testing.assert_close(half(x), m(x), rtol=0.05, atol=0.05)
    assert not list(tmp_path.rglob('.*tmp*'))   # nothing half-written left behind
    with pytest.raises(FileNotFoundError, match='nothere'): load_model(tmp_path/'nothere')


def test_original_layout_state_dict_loads():
    m = tiny(n_classes=3).eval()
    sd = {k: v for k, v in m.state_dict().items() if k not in STATS_KEYS}
    back = from_torchvision_state_dict(sd)
    x = torch.rand(1, 80, 84)
    with torch.no_grad(): torch.testing.assert_close(back(x), m(x))
    with pytest.raises(ValueError, match='does not fit'): from_torchvision_state_dict({**sd, 'extra.weight': torch.zeros(1)})


def test_extract_features_from_a_dataset():
    m = tiny(n_classes=3)
    ds = torch.utils.data.TensorDataset(torch.rand(5, 80, 84), torch.zeros(5, dtype=torch.long))
    f = melception_features(m, ds, names=('2048', 'logits'), bs=2)
    assert f['2048'].shape == (5, 256) and f['logits'].shape == (5, 3)
    with torch.no_grad(): np.testing.assert_allclose(f['logits'], m.eval()(ds.tensors[0]).numpy(), rtol=1e-4, atol=1e-5)
