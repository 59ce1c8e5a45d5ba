"Tests of vgsg.metrics: FID against pytorch-fid, MKL/ISc/KID against hand computations, onset sync."
import ast, importlib.util, inspect, types, warnings
from pathlib import Path
import numpy as np
import pytest
import scipy.linalg
from vgsg.metrics import (fid, feature_stats, frechet_distance, mkl, kl_divergences, clip_key, inception_score,
                          kernel_inception_distance, polynomial_mmd2, detect_onsets, onset_sync, compute_metrics)


def reference_frechet_distance():
    """pytorch-fid's `calculate_frechet_distance`, taken from the installed package without importing its modules.

    `pytorch_fid.fid_score` imports torchvision at module level (which this project does not install), while the
    function itself needs only numpy and scipy.linalg; so we compile just that function from the package's source file.
    Install: `pip install --no-deps pytorch-fid==0.3.0`.
    """
    spec = importlib.util.find_spec('pytorch_fid')  # locates the package without running it
    if spec is None: raise ImportError('pytorch-fid is missing: pip install --no-deps pytorch-fid==0.3.0')
    path = Path(spec.origin).with_name('fid_score.py')
    fn = next(n for n in ast.parse(path.read_text()).body
              if isinstance(n, ast.FunctionDef) and n.name == 'calculate_frechet_distance')
    linalg = scipy.linalg
    if 'disp' not in inspect.signature(scipy.linalg.sqrtm).parameters:  # SciPy >= 1.18 dropped the argument it passes
        linalg = types.SimpleNamespace(sqrtm=lambda a, disp=True: scipy.linalg.sqrtm(a) if disp else (scipy.linalg.sqrtm(a), None))
    ns = {'np': np, 'linalg': linalg}
    exec(compile(ast.Module([fn], type_ignores=[]), str(path), 'exec'), ns)
    return ns['calculate_frechet_distance']


def _stats_pair(n1, n2, d, seed, shift=0.0, scale=1.0):
    g = np.random.default_rng(seed)
    mix = g.normal(size=(d, d)) / np.sqrt(d)
    a = g.normal(size=(n1, d)) @ mix
    b = (g.normal(size=(n2, d)) @ mix) * scale + shift
    return feature_stats(a), feature_stats(b), (a, b)


@pytest.mark.parametrize('n1,n2,d,shift,scale', [(500, 400, 32, 0.0, 1.0),     # same distribution
                                                 (300, 350, 64, 0.3, 1.5),     # shifted and scaled
                                                 (1000, 800, 128, 1.0, 0.7),
                                                 (40, 30, 64, 0.1, 1.0)])      # fewer samples than dimensions
def test_frechet_distance_matches_pytorch_fid(n1, n2, d, shift, scale):
    ref = reference_frechet_distance()
    (m1, s1), (m2, s2), (a, b) = _stats_pair(n1, n2, d, seed=d + n1, shift=shift, scale=scale)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # pytorch-fid passes sqrtm's deprecated `disp`
        expected = float(ref(m1, s1, m2, s2))
    ours = frechet_distance(m1, s1, m2, s2)
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert fid(b, a) == pytest.approx(expected, rel=1e-6, abs=1e-9)  # fid(real, fake) = d(fake stats, real stats)


def test_reference_is_really_used():
    "The independent implementation is what we think it is: it disagrees with a deliberately wrong formula."
    ref = reference_frechet_distance()
    (m1, s1), (m2, s2), _ = _stats_pair(200, 200, 8, seed=1, shift=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        d = ref(m1, s1, m2, s2)
    assert d == pytest.approx(frechet_distance(m1, s1, m2, s2), rel=1e-6)
    assert abs(d - ((m1 - m2) ** 2).sum()) > 1e-3  # the covariance term matters here


def test_frechet_distance_closed_forms_and_guards():
    assert frechet_distance([0., 1.], np.diag([4., 9.]), [1., 1.], np.eye(2)) == pytest.approx(1 + 1 + 4)
    a = np.random.default_rng(0).normal(size=(100, 5))
    assert fid(a, a) == pytest.approx(0, abs=1e-8)
    with pytest.raises(ValueError, match='imaginary'):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1., -4.]))
    with pytest.raises(ValueError, match='mismatched'):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_frechet_distance_retries_with_eps_when_sqrtm_fails(monkeypatch):
    "The original's safeguard: a non-finite sqrtm is retried on covariances with 1e-6 added to the diagonal."
    import vgsg.metrics as M
    calls, real_sqrtm = [], M.sqrtm
    def flaky(a):
        calls.append(a)
        return np.full_like(a, np.inf) if len(calls) == 1 else real_sqrtm(a)
    monkeypatch.setattr(M, 'sqrtm', flaky)
    s1, s2 = np.diag([1., 0.]), np.diag([0., 4.])
    d = M.frechet_distance(np.zeros(2), s1, np.ones(2), s2)
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert d == pytest.approx(2 + 1 + 4 - 2 * (np.sqrt(1e-6 * (1 + 1e-6)) + np.sqrt(1e-6 * (4 + 1e-6))), rel=1e-9)


def test_mkl_identical_is_zero_and_different_is_positive():
    g = np.random.default_rng(0)
    logits = g.normal(size=(30, 309)) * 4
    same = mkl(logits, logits)
    assert -309e-6 <= same <= 0
    assert mkl(logits, g.normal(size=(30, 309)) * 4) > 1.0


def test_mkl_pairs_k_samples_with_their_video():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    q = np.array([[0.6, 0.4], [0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    kl = lambda a, b: float((a * np.log(a / (b + 1e-6))).sum())
    # real row 0 is video 'y', row 1 video 'x'; samples 0, 1 are of 'x', 2, 3 of 'y': each real counts twice
    want = (kl(p[1], q[0]) + kl(p[1], q[1]) + kl(p[0], q[2]) + kl(p[0], q[3])) / 4
    got = mkl(np.log(p), np.log(q), real_keys=['y', 'x'], fake_keys=['x', 'x', 'y', 'y'])
    assert got == pytest.approx(want, rel=1e-12)
    assert kl_divergences(np.log(p[[0]]), np.log(q[[1]]))[0] == pytest.approx(kl(p[0], q[1]), rel=1e-12)
    with pytest.raises(ValueError, match='twice'): mkl(np.log(p), np.log(q), ['x', 'x'], ['x'] * 4)


def test_clip_keys_match_real_and_generated_files():
    assert clip_key('/data/test/abc_mel.npy') == clip_key('/out/cls_0/abc_sample_9.npy') == 'abc'
    assert clip_key('/out/cls_1/abc_sample_9.npy', ['dog', 'drum']) == 'drum/abc'


def test_inception_score_by_hand():
    labels = np.arange(40) % 4                                   # 4 classes, equally often
    mean, std = inception_score(50.0 * np.eye(4)[labels], splits=1)
    assert mean == pytest.approx(4.0, rel=1e-6) and std == 0.0   # one split: exp(H(uniform over 4)) = 4
    assert inception_score(np.zeros((20, 5)))[0] == pytest.approx(1.0)
    # the shuffle is RandomState(2020)'s: splits of the permuted labels decide the per-split scores
    x = 50.0 * np.eye(4)[np.r_[np.zeros(10, int), np.arange(10) % 4]]
    perm = np.random.RandomState(2020).permutation(20)
    per_split = []
    for part in np.split(np.r_[np.zeros(10, int), np.arange(10) % 4][perm], 2):
        h = np.bincount(part, minlength=4) / len(part)
        per_split.append(np.exp(-(h[h > 0] * np.log(h[h > 0])).sum()))
    assert inception_score(x, splits=2) == pytest.approx((np.mean(per_split), np.std(per_split)), rel=1e-6)


def test_kid_by_hand():
    g = np.random.default_rng(3)
    x, y = g.normal(size=(5, 4)), g.normal(size=(5, 4)) + 0.5
    k = lambda a, b: (a @ b / 4 + 1) ** 3
    want = (sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
            - 2 * sum(k(x[i], y[j]) for i in range(5) for j in range(5)) / 25)
    assert polynomial_mmd2(x, y) == pytest.approx(want, rel=1e-10)
    mean, std = kernel_inception_distance(x, y)          # subsets capped at 5 = whole sets
    assert mean == pytest.approx(want, rel=1e-10) and std == pytest.approx(0, abs=1e-12)
    # the subsets are drawn with RandomState(2020): fake subset first, then real
    a, b = g.normal(size=(30, 4)), g.normal(size=(40, 4))
    rs = np.random.RandomState(2020)
    draws = [polynomial_mmd2(a[rs.choice(30, 10, replace=False)], b[rs.choice(40, 10, replace=False)]) for _ in range(3)]
    assert kernel_inception_distance(a, b, subsets=3, subset_size=10) == pytest.approx((np.mean(draws), np.std(draws)))


def test_onsets_of_a_clicking_spectrogram():
    spec = np.zeros((80, 848))
    hits = [100, 250, 400, 700]
    for f in hits: spec[:, f:f + 20] = np.linspace(0.8, 0.2, 20)   # sharp attack, linear decay
    onsets = detect_onsets(spec)
    times = (np.array(hits) + 6) * 256 / 22050
    np.testing.assert_allclose(onsets, times, atol=1e-9)
    res = onset_sync([onsets], [times + 0.05])
    assert res['onset_within'] == 1.0 and res['onset_offset_s'] == pytest.approx(0.05)
    assert onset_sync([onsets], [times + 0.2])['onset_within'] == 0.0


def test_compute_metrics_row():
    g = np.random.default_rng(0)
    feats = lambda n, s: {'2048': g.normal(size=(n, 16)) + s, 'logits': g.normal(size=(n, 5)),
                          'logits_unbiased': g.normal(size=(n, 5))}
    real, fake = feats(15, 0), feats(30, 1)
    row = compute_metrics(real, fake, [str(i) for i in range(15)], [str(i % 15) for i in range(30)], kid_subsets=5)
    assert {'fid', 'mkl', 'isc_mean', 'isc_std', 'kid_mean', 'kid_std'} <= set(row)
    assert row['fid'] > 10 and row['kid_mean'] > 0
