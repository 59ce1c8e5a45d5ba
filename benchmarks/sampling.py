#!/usr/bin/env python
"""Sampling speed (issue 6): our KV-cache sampler vs a re-implementation of the original loop, side by side.

Both samplers run in one process on the same random weights and the same condition, drawing 265 codes (one ~10-s
spectrogram) with the same top-k. The original loop (`vgsg.sample.sample_reference`) does a full forward pass of
the condition + 264 codes for every code; a few of its steps are timed and multiplied by 265 (its cost per step is
constant). Ours (`vgsg.sample.sample`) is timed over the whole sample. Also timed: one pass of matrix-vector
products over all Linear weights of the model (the bytes a one-code step must read), to show how close a step
comes to streaming the weights once.

Examples:
  python benchmarks/sampling.py                                    # small config, CPU, batch 1, 5 features
  python benchmarks/sampling.py --config paper --ref-steps 3       # the paper config on the CPU
  python benchmarks/sampling.py --config paper small --batch 1 10 --n-feats 5 212 --device cuda \
      --dtype fp32 bf16 --mode eager graph
  python benchmarks/sampling.py --config paper --device cuda --dtype bf16 --mode graph compile rowwise
  python benchmarks/sampling.py --config paper --cond feats aligned --ref-steps 3   # the time-aligned model (issue 17)
"""
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

from vgsg.transformer import GPT, paper_config, tiny_config
from vgsg.sample import Decoder, quantize_int8, sample, sample_logits, sample_reference
from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

SMALL = dict(n_layer=8, n_head=8, n_embd=512)   # the "small" config: 8 layers, 512 wide, |Z| = 1024, D = 2048
DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16, int8=torch.float32)  # int8: see quantize_int8
N_CODES = 265
FUSED = ('compile', 'rowwise')   # modes that torch.compile the step (then record it as a CUDA graph)


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def timed(fn, dev):
    "Seconds taken by `fn()`, device work included"
    sync(dev); t = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t

def median_time(fn, dev, reps):
    return statistics.median(timed(fn, dev) for _ in range(reps))

def build(config, n_feats, dtype, dev, seed, cond='feats'):
    "A model with random (seeded) weights"
    torch.manual_seed(seed)
    cfg = tiny_config(n_feats=n_feats, cond=cond) if config == 'tiny' else paper_config(n_feats, cond, **(SMALL if config == 'small' else {}))
    with dev: model = GPT(cfg)
    return model.to(dtype).eval()

def weight_pass(model, dev, route='linear'):
    "A function doing one pass of matrix-vector products over every Linear weight (a CUDA graph on GPUs), its bytes"
    lins = [m for k, m in model.named_modules() if isinstance(m, (nn.Linear, Int8Linear))
            and not k.startswith('frame_track')]   # an aligned model's frame track runs once per window, not per step
    ws = [m.weight() if callable(m.weight) else m.weight for m in lins]   # int8 layers: a quantised tensor
    xs = {w.shape[1]: torch.randn(w.shape[1], device=dev, dtype=w.dtype if w.is_floating_point() else torch.float32) for w in ws}
    outs = {}
    def one_pass():
        for i, (m, w) in enumerate(zip(lins, ws)):
            x = xs[w.shape[1]]
            if isinstance(m, Int8Linear): outs[i] = m(x[None])   # int8 x int8 products, the layer's own kernel
            else: outs[i] = F.linear(x[None], w) if route == 'linear' else torch.mv(w, x)
    with torch.no_grad():
        for _ in range(2): one_pass()
        run = one_pass
        if dev.type == 'cuda':
            side = torch.cuda.Stream(); side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side): one_pass()
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g): one_pass()
            run = g.replay
            run()
    return run, sum(w.numel() * w.element_size() for w in ws)

def paired(model, dec, cond, stream, top_k, dev, steps=15):
    "Median seconds of one decoding step (feed a code, draw the next) and of one weight pass, timed alternately"
    tok = torch.zeros(dec.batch, dtype=torch.long, device=dev)
    step_t, stream_t = [], []
    with torch.no_grad():
        dec.prefill(cond)
        if dec.track is not None: dec.set_track(torch.randn_like(dec.track))   # an aligned model's column vectors
        for i in range(steps):
            step_t.append(timed(lambda: sample_logits(dec(tok, model.n_cond + i)[0], top_k), dev))
            stream_t.append(timed(stream, dev))
    return statistics.median(step_t), statistics.median(stream_t)

def time_ours(model, feats, mode, top_k, dev, reps, seed):
    "Setup (cache, graph, compile), prefill and full-sample seconds of `sample`"
    B = feats.shape[0]
    gen = lambda: torch.Generator(device=dev).manual_seed(seed)
    t0 = time.perf_counter()
    dec = Decoder(model, B, cuda_graph=mode != 'eager', compile=mode in FUSED, rowwise=mode == 'rowwise')
    with torch.no_grad():
        sample(model, feats, n_cols=2, top_k=top_k, generator=gen(), decoder=dec)  # warm-up (and compile)
        sync(dev)
        setup = time.perf_counter() - t0
        cond = model.embed_cond(B, feats)
        prefill = median_time(lambda: dec.prefill(cond), dev, 3)
        total = median_time(lambda: sample(model, feats, top_k=top_k, generator=gen(), decoder=dec), dev, reps)
    return setup, prefill, total, dec

def logit_error(model, dec, cond, dev):
    "Relative difference of one step's logits from the plain decoder's (int8 weights, fused kernels)"
    tok = torch.zeros(dec.batch, dtype=torch.long, device=dev)
    plain = Decoder(model, dec.batch)
    with torch.no_grad():
        plain.prefill(cond); dec.prefill(cond)
        if dec.track is not None:
            tr = torch.randn_like(dec.track); plain.set_track(tr); dec.set_track(tr)
        ref, out = plain(tok, model.n_cond)[0].float(), dec(tok, model.n_cond)[0].float()
    return ((out - ref).norm() / ref.norm()).item()

def time_reference(model, feats, top_k, dev, steps, seed):
    "Seconds per step of the original loop, timed over `steps` steps"
    gen = lambda: torch.Generator(device=dev).manual_seed(seed)
    sample_reference(model, feats, top_k=top_k, generator=gen(), max_steps=1)  # warm-up
    return timed(lambda: sample_reference(model, feats, top_k=top_k, generator=gen(), max_steps=steps), dev) / steps

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--config', nargs='+', default=['small'], choices=['paper', 'small', 'tiny'],
                   help='paper: 24 x 1024 (307 M); small: 8 x 512; tiny: the 2 x 32 test model (smoke tests)')
    p.add_argument('--n-feats', nargs='+', type=int, default=[5], help='visual features in the condition (1, 5, 212)')
    p.add_argument('--cond', nargs='+', default=['feats'], choices=['feats', 'aligned'],
                   help="the paper's prefix condition, or the time-aligned one (reads 212 frames; N is its prefix)")
    p.add_argument('--batch', nargs='+', type=int, default=[1], help='videos sampled together')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--dtype', nargs='+', default=['fp32'], choices=list(DTYPES),
                   help='bf16 and fp16 are meant for cuda; int8 (cpu): ours samples from quantize_int8(model), the original '
                        'loop runs the float32 model')
    p.add_argument('--mode', nargs='+', default=['eager'], choices=['eager', 'graph', *FUSED],
                   help='our step: eager, replayed CUDA graph, torch.compile + CUDA graph, the same with Linear layers '
                        'as fused product-and-sum kernels (rowwise); cuda only but eager')
    p.add_argument('--coordinate-descent', action='store_true', help="tune the compiled kernels' block sizes (inductor)")
    p.add_argument('--top-k', type=int, default=512, help='top-X clipping (512 = the VGGSound evaluation)')
    p.add_argument('--ref-steps', type=int, default=None, help='steps of the original loop to time (default 3 on cpu, 20 on cuda; 0 skips it)')
    p.add_argument('--reps', type=int, default=None, help='timed runs of our sampler (median; default 1 on cpu, 3 on cuda)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=None, help='also write the rows to this file')
    p.add_argument('--results-md', default=None, help='write the table as this named section of benchmarks/RESULTS.md')
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == 'cuda' and not torch.cuda.is_available(): p.error('--device cuda: no CUDA device')
    if dev.type == 'cpu' and set(a.mode) - {'eager'}: p.error('--mode graph/compile need --device cuda')
    if a.threads: torch.set_num_threads(a.threads)
    if a.coordinate_descent: torch._inductor.config.coordinate_descent_tuning = True
    ref_steps = a.ref_steps if a.ref_steps is not None else (3 if dev.type == 'cpu' else 20)
    reps = a.reps or (1 if dev.type == 'cpu' else 3)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'cpu, {torch.get_num_threads()} threads'
    print(f'device: {name}; torch {torch.__version__}; top_k {a.top_k}; {N_CODES} codes per sample', flush=True)
    hdr = (f"{'config':6} {'N':>3} {'B':>3} {'dtype':5} {'mode':7} | {'setup s':>7} {'prefill ms':>10} {'step ms':>8} "
           f"{'s/batch':>8} {'s/sample':>8} | {'ref step ms':>11} {'ref s/sample':>12} {'speed-up':>8} | "
           f"{'pair step':>9} {'stream ms':>9} {'GB/s':>6} {'step/stream':>11} {'logit err':>9}")
    rows = []
    print(hdr, flush=True)
    for config, kind in ((c, k) for c in a.config for k in a.cond):
        for n_feats in a.n_feats:
            for dname in a.dtype:
                model = build(config, n_feats, DTYPES[dname], dev, a.seed, kind)
                ours = quantize_int8(model) if dname == 'int8' else model   # the original loop runs the float model
                stream, nbytes = weight_pass(ours, dev)
                print(f'  {config} N={n_feats} {dname}: weight pass {median_time(stream, dev, 5) * 1e3:.3f} ms with '
                      f'F.linear, {median_time(weight_pass(ours, dev, "mv")[0], dev, 5) * 1e3:.3f} ms with torch.mv '
                      f'({nbytes / 1e9:.2f} GB)', flush=True)
                for B in a.batch:
                    torch.manual_seed(a.seed)
                    feats = torch.rand(B, model.cfg.n_frames if kind == 'aligned' else n_feats, model.cfg.feat_dim, device=dev)
                    k = min(a.top_k, model.cfg.vocab_size)
                    ref = time_reference(model, feats, k, dev, ref_steps, a.seed) if ref_steps else math.nan
                    for mode in a.mode:
                        try: setup, prefill, total, dec = time_ours(ours, feats, mode, k, dev, reps, a.seed)
                        except Exception as e:  # one failing mode (a compiler error, say) should not hide the others
                            print(f'{config:6} {kind} {n_feats:3d} {B:3d} {dname:5} {mode:7} | failed: {type(e).__name__}: {e}'[:400], flush=True)
                            continue
                        step = (total - prefill) / (N_CODES - 1)
                        cond = model.embed_cond(B, feats)
                        pstep, pstream = paired(ours, dec, cond, stream, k, dev)
                        err = logit_error(model, dec, cond, dev)
                        r = dict(config=config, cond=kind, n_feats=n_feats, batch=B, dtype=dname, mode=mode, device=name,
                                 params=sum(q.numel() for q in model.parameters()), setup_s=setup, prefill_s=prefill,
                                 step_s=step, batch_s=total, sample_s=total / B, ref_step_s=ref,
                                 ref_sample_s=ref * N_CODES / B, speedup=ref * N_CODES / total,
                                 paired_step_s=pstep, stream_s=pstream, stream_gbps=nbytes / pstream / 1e9,
                                 step_over_stream=pstep / pstream, logit_error=err)
                        rows.append(r)
                        print(f"{config:6}{'+al' if kind == 'aligned' else '   '} {n_feats:3d} {B:3d} {dname:5} {mode:7} | {setup:7.2f} {prefill * 1e3:10.2f} "
                              f"{step * 1e3:8.2f} {total:8.3f} {total / B:8.3f} | {ref * 1e3:11.2f} "
                              f"{r['ref_sample_s']:12.3f} {r['speedup']:7.1f}x | {pstep * 1e3:8.2f} {pstream * 1e3:9.3f} "
                              f"{r['stream_gbps']:6.1f} {r['step_over_stream']:10.2f}x {err:9.1e}", flush=True)
                del model
                if dev.type == 'cuda': torch.cuda.empty_cache()
    print('step = (s/batch - prefill) / 264 codes; s/sample = s/batch / B; ref s/sample = ref step x 265 / B '
          f'(ref timed over {ref_steps} steps); speed-up = ref s/batch / our s/batch; '
          'stream = one pass of matrix-vector products over all Linear weights (batch 1); pair step and stream = '
          'medians of 15 single steps and 15 weight passes timed alternately (same load), step/stream = their ratio; '
          'logit err = |logits - plain decoder logits| / |plain decoder logits| for one step')
    if a.json:
        with open(a.json, 'w') as f: json.dump(rows, f, indent=1)
    if a.results_md: write_results(a.results_md, rows, ref_steps)
    return rows

COLS = ['config', 'cond', 'n_feats', 'batch', 'dtype', 'mode', 'params', 'step_s', 'sample_s', 'ref_sample_s', 'speedup',
        'paired_step_s', 'stream_s', 'step_over_stream']

def write_results(name, rows, ref_steps):
    "The rows as the `sampling.py: <name>` section of RESULTS.md"
    from results_md import write_section, md_table
    write_section(f'sampling.py: {name}', f'Sampling speed (`sampling.py`, {name})', md_table(rows, COLS) + ['',
        f'step = our cached step (s); ref = the original loop (a full forward per code, timed over {ref_steps} steps); '
        'paired_step_s and stream_s = medians of single cached steps and single passes of matrix-vector products over '
        'every Linear weight, timed alternately; step_over_stream = their ratio (1 = the step costs one pass over the weights).'])

if __name__ == '__main__': main()
