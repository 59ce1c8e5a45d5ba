"Tests of vgsg.transformer and vgsg.sample that do not fit in the notebooks (07_transformer, 07a_sample)."
import copy, sys
from pathlib import Path

import pytest
import torch

from vgsg.features import subsample_indices
from vgsg.transformer import GPT, GPTConfig, paper_config, tiny_config, lm_loss
from vgsg.sample import Decoder, sample, sample_reference

ROOT = Path(__file__).resolve().parents[1]
KEYS = ROOT / 'tests' / 'keys'   # the original's key/shape dumps (keys/README.md)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def scrambled(cfg, seed=0, std=0.2, device='cpu'):
    "A model whose weights are moved far from the flat init, so that logits are of order 1"
    torch.manual_seed(seed)
    with torch.device(device): m = GPT(cfg).eval()
    with torch.no_grad():
        for p in m.parameters(): p.add_(torch.randn_like(p) * std)
    return m

def gen(seed=0, device='cpu'): return torch.Generator(device=device).manual_seed(seed)

def both(m, seed=0, **kw):
    return sample(m, generator=gen(seed), **kw), sample_reference(m, generator=gen(seed), **kw)


@pytest.mark.parametrize('n, name', [(1, '1feat'), (5, '5feats'), (212, '212feats')])
def test_keys_equal_the_official_files(n, name):
    "Every transformer.* key and shape of the published checkpoints, in order"
    f = KEYS / f'vggsound_transformer_{name}.txt'
    rows = [l.split('\t') for l in f.read_text().splitlines() if l.startswith('transformer.')]
    want = [(k[len('transformer.'):], tuple(int(x) for x in s.strip('()').split(',') if x.strip())) for k, s, _ in rows]
    with torch.device('meta'): m = GPT(paper_config(n))
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == want
    assert sum(p.numel() for p in m.parameters()) == {1: 306_779_136, 5: 306_783_232, 212: 306_995_200}[n]


def test_state_dict_round_trip():
    "A strict load into a fresh model reproduces the logits (the persistent mask included)"
    m = scrambled(tiny_config())
    m2 = GPT(tiny_config()).eval()
    m2.load_state_dict(m.state_dict(), strict=True)
    z, f = torch.randint(0, 32, (2, 50)), torch.rand(2, 5, 16)
    with torch.no_grad(): assert torch.equal(m(z, f), m2(z, f))


def test_vas_codebook_size():
    "|Z| = 128 (VAS codebook) shrinks tok_emb and head by 917,504 each (facts §4.4)"
    with torch.device('meta'):
        a, b = GPT(paper_config(212)), GPT(paper_config(212, vocab_size=128))
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(a) - n(b) == 2 * 917_504


def test_feats_class_and_long_primer_match_reference():
    "Features + class token, a primer longer than one window ending mid-column, and sliding over 60 columns"
    m = scrambled(tiny_config(cond='feats_class'), seed=3)
    frames, cls = torch.rand(2, 4 * 60, 16), torch.tensor([0, 3])
    primer = torch.randint(0, 32, (2, 272))           # 54 columns and 2 codes
    ours, ref = both(m, feats=frames, cls=cls, primer=primer, n_cols=60, top_k=12)
    assert ours.shape == (2, 300) and torch.equal(ours, ref) and torch.equal(ours[:, :272], primer)


def test_short_audio_and_212_features():
    "Fewer columns than a window, with all 212 features"
    m = scrambled(tiny_config(n_feats=212), seed=4)
    ours, ref = both(m, feats=torch.rand(1, 212, 16), n_cols=10, temperature=1.5)
    assert ours.shape == (1, 50) and torch.equal(ours, ref)


def test_nofeats_noise_differs_per_sample_and_is_kept_per_sample():
    "'No Feats': each sample gets its own noise, drawn once (before the first step), as the reference does"
    m = scrambled(tiny_config(cond='nofeats', n_feats=1), seed=5)
    ours, ref = both(m, batch=1, n_samples=3)
    assert torch.equal(ours, ref)
    assert not torch.equal(ours[0], ours[1])
    g = gen(7)
    f = m.random_feats(2, g)
    assert not torch.equal(f[0], f[1]) and f.min() >= 0 and f.max() < 1


def test_dropout_is_off_while_sampling_and_mode_is_restored():
    "With dropout in the config, seeded samples are still reproducible (dropout would draw from the global RNG)"
    m = scrambled(tiny_config(dropout=0.3), seed=6).train()
    f = torch.rand(1, 5, 16)
    assert torch.equal(sample(m, feats=f, generator=gen(2)), sample(m, feats=f, generator=gen(2)))
    assert m.training


def test_decoder_mismatch_and_bad_inputs():
    m = scrambled(tiny_config())
    f = torch.rand(2, 5, 16)
    with pytest.raises(ValueError, match='another model or batch'): sample(m, feats=f, decoder=Decoder(m, 3))
    with pytest.raises(ValueError, match='feats must have shape'): sample(m, feats=torch.rand(2, 5, 15))
    with pytest.raises(ValueError, match='top_k=33'): sample(m, feats=f, top_k=33)
    with pytest.raises(ValueError, match='expected 265 codes'): lm_loss(m, torch.zeros(2, 264, dtype=torch.long), f)


def test_subsample_indices_float_rule_vs_exact_arithmetic():
    """The original's float formula (numpy linspace, kept on purpose) differs from exact integer arithmetic only for a
    few N, where i * 212 / N is a whole number that linspace rounds just below; never for N = 1, 5, 53, 212"""
    exact = lambda n: [i * 212 // n + 212 // (n + 1) for i in range(n)]
    differ = [n for n in range(1, 213) if subsample_indices(n).tolist() != exact(n)]
    assert differ == [38, 76, 152, 166, 190, 194]
    assert subsample_indices(38).tolist()[19] == 110 and exact(38)[19] == 111


def test_cached_logits_bf16_close_to_fp32():
    "bf16 weights give logits close to fp32 ones through the cache (what the GPU benchmark runs)"
    m = scrambled(tiny_config(), seed=8)
    mb = scrambled(tiny_config(), seed=8).to(torch.bfloat16)
    f, z = torch.rand(1, 5, 16), torch.randint(0, 32, (1, 30))
    def cached(model):
        dec = Decoder(model, 1)
        first, _ = dec.prefill(torch.cat([model.embed_cond(1, f), model.tok_emb(z[:, :10])], 1))
        return torch.stack([first] + [dec(z[:, t], 5 + t)[0] for t in range(10, 29)], 1).float()
    with torch.no_grad():
        a, b = cached(m), cached(mb)
        full = m(z[:, :29], f)[:, 4 + 10:]
    assert (a - full).abs().max() < 1e-4
    assert (a - b).abs().max() / a.abs().max() < 0.1


def test_benchmark_script_runs():
    "benchmarks/sampling.py on the tiny model: both samplers run and the row is complete"
    sys.path.insert(0, str(ROOT / 'benchmarks'))
    try:
        import sampling
        rows = sampling.main(['--config', 'tiny', '--ref-steps', '2', '--batch', '2'])
    finally: sys.path.pop(0)
    (r,) = rows
    assert r['batch'] == 2 and r['params'] > 0 and r['speedup'] > 0 and r['step_over_stream'] > 0


@cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_cuda_graph_and_compile_match_eager(dtype):
    "On a GPU: the CUDA-graph step (and compile + graph, rowwise) give the logits of the eager step, and samples agree"
    m = scrambled(paper_config(5, n_layer=2, n_head=4, n_embd=256, feat_dim=64), std=0.05, device='cuda').to(dtype)
    m32 = copy.deepcopy(m).float()              # fp32 copy of the (rounded) weights: the reference
    f = torch.rand(3, 5, 64, device='cuda')
    z = torch.randint(0, 1024, (3, 60), device='cuda')
    tol = 1e-3 if dtype == torch.float32 else 5e-2
    fused = dict(cuda_graph=True, compile=True)
    variants = [dict(), dict(cuda_graph=True), dict(fused, rowwise=True)] + ([fused] if dtype == torch.float32 else [])
    with torch.no_grad():
        full = m32(z[:, :59], f)[:, 4:]
        errs, got = [], []
        for kw in variants:
            dec = Decoder(m, 3, **kw)
            first, _ = dec.prefill(m.embed_cond(3, f))
            steps = [first.float()] + [dec(z[:, t], 5 + t)[0].float().clone() for t in range(59)]
            got.append(torch.stack(steps, 1))
            errs.append(((got[-1] - full).abs().max() / full.abs().max()).item())
        assert max(errs) < tol, (variants, errs)
        assert ((got[1] - got[0]).abs().max() / full.abs().max()).item() < tol / 2
        eager = sample(m, f, top_k=64, generator=gen(0, 'cuda'))
        graph = sample(m, f, top_k=64, generator=gen(0, 'cuda'), decoder=Decoder(m, 3, cuda_graph=True))
        rowwise = sample(m, f, top_k=64, generator=gen(0, 'cuda'), decoder=Decoder(m, 3, rowwise=True, **fused))
        if dtype == torch.float32: assert (eager == graph).float().mean() > 0.9 and (eager == rowwise).float().mean() > 0.9
