"""Codebook training: speed of one training step, and the paper's Table 2 ablation at toy scale.

  python benchmarks/train_codebook.py speed [--configs small paper] [--batch 2] [--steps 2] [--precision fp32 bf16]
      steps/s of a full codebook step (GAN and LPAPS on) on random spectrograms, for the small and paper configs.
  python benchmarks/train_codebook.py ablation [--steps 240] [--variants a b c] [--set key=value ...]
      trains (a) L1 + codebook, (b) + GAN, (c) + GAN + LPAPS from configs/codebook_small.yaml for the same number
      of steps (each resumable, in runs/ablation/<variant>), then evaluates them on the validation and test splits
      and writes ablation.csv and ablation.png (to --report-dir).
  python benchmarks/train_codebook.py report --ckpt NAME=FOLDER [NAME=FOLDER ...] [--report-dir DIR]
      evaluates trained codebook checkpoints (e.g. runs trained elsewhere) on the test split of the data their
      config names: L1, spectral convergence, codes used, and the bundled small Melception's reconstruction FID
      and MKL (paper Table 1); writes report.csv and report.png.
Run with `nice`: the machine is shared.
"""
import argparse, json, sys, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = dict(a=['loss.disc_factor=0', 'loss.perceptual_weight=0'],   # L1 + codebook loss
                b=['loss.perceptual_weight=0'],                          # + GAN
                c=[])                                                     # + GAN + LPAPS
LABELS = dict(a='(a) L1 + codebook', b='(b) + GAN', c='(c) + GAN + LPAPS')


def speed_task(name:str, batch:int):
    "A codebook task of config `name` ('small' or 'paper') with the GAN on and LPAPS on an untrained backbone."
    from vgsg.core.config import load_config
    from vgsg.train.codebook import CodebookTask, from_section, make_lpaps, CODEBOOK_TRAIN_KEYS, LPAPS_KEYS
    from vgsg.vqgan import VQGANConfig, LossConfig
    cfg = load_config(ROOT/'configs'/('codebook_small.yaml' if name == 'small' else 'codebook_vggsound.yaml'))
    small = load_config(ROOT/'configs'/'vggishish_small.yaml')['model']
    lpaps = dict(allow_untrained=True, lpaps=None,
                 lpaps_model=dict(layers=small['layers'], hidden=small['hidden'], n_classes=8) if name == 'small' else 'vggishish16')
    model, loss = cfg['model'], dict(cfg['loss'], disc_start=0)
    lcfg = from_section(LossConfig, loss, ('lpaps', 'allow_untrained', 'lpaps_model', 'lpaps_lin_init'))
    return CodebookTask(from_section(VQGANConfig, model, CODEBOOK_TRAIN_KEYS), lcfg, make_lpaps(lpaps | {'perceptual_weight': 1.}),
                        model.get('base_learning_rate', 4.5e-6), batch)


def time_steps(name:str, batch:int, steps:int, device:str, precision:str) -> dict:
    "Seconds per training step (after one warm-up step) of config `name`."
    from vgsg.core.dist import seed_everything
    seed_everything(0)
    task = speed_task(name, batch).to(torch.device(device))
    task.precision, task.optimizers = precision, None
    task.optimizers = task.configure_optimizers()
    x = dict(image=torch.rand(batch, 80, 848, device=device) * 2 - 1)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    times = []
    for i in range(steps + 1):
        sync(); t = time.perf_counter()
        task.training_step(x, 10**6 + i)
        sync(); times.append(time.perf_counter() - t)
        print(f'  {name} {precision} step {i} ({"warm-up" if i == 0 else "timed"}): {times[-1]:.3f} s', file=sys.stderr, flush=True)
    s = sorted(times[1:])[len(times[1:]) // 2]
    n_params = sum(p.numel() for p in task.vqmodel.parameters())
    return dict(config=name, device=device, precision=precision, batch=batch, steps=steps, params=n_params,
                sec_per_step=round(s, 4), steps_per_s=round(1 / s, 3), clips_per_s=round(batch / s, 2))


def speed(args):
    rows = []
    for name in args.configs:
        for prec in args.precision:
            batch = args.batch if name == 'small' else args.paper_batch
            r = time_steps(name, batch, args.steps if name == 'small' else args.paper_steps, args.device, prec)
            print(json.dumps(r), flush=True); rows.append(r)
    if args.json: Path(args.json).write_text(json.dumps(rows, indent=1))


def variant_config(args, v:str) -> dict:
    from vgsg.core.config import load_config
    over = list(args.set) + VARIANTS[v] + [f'train.out_dir={Path(args.out)/v}', f'train.max_steps={args.steps}']
    return load_config(args.config, over)


def evaluate(args) -> 'pd.DataFrame':
    "Evaluate the trained variants on the valid and test splits; write ablation.csv and ablation.png."
    import pandas as pd
    from vgsg.core.io import atomic_write, save_figure
    from vgsg.train.codebook import evaluate_codebook, spectrogram_dataset
    from vgsg.core.models import load_model
    rows, models = [], {}
    for v in args.variants:
        cfg = variant_config(args, v)
        ckpt = Path(cfg['train']['out_dir'])/'last'
        step = torch.load(ckpt/'trainer.pt', weights_only=True)['step']
        models[v] = m = load_model(ckpt)
        for split in ('valid', 'test'):
            r = evaluate_codebook(m, spectrogram_dataset(cfg['data'], split))
            rows.append(dict(variant=LABELS[v], split=split, steps=step, **{k: round(x, 4) if isinstance(x, float) else x for k, x in r.items()}))
    df = pd.DataFrame(rows)
    out = Path(args.report_dir); out.mkdir(parents=True, exist_ok=True)
    atomic_write(out/'ablation.csv', lambda p: df.to_csv(p, index=False))
    save_figure(reconstruction_grid(spectrogram_dataset(variant_config(args, args.variants[0])['data'], 'valid'), models), out/'ablation.png')
    print(df.to_string(index=False))
    return df


def reconstruction_grid(ds, models:dict):
    "Two clips of `ds` (rows): the input and each model's reconstruction (columns)."
    import matplotlib.pyplot as plt
    from vgsg.audio import show_spec, from_model
    from vgsg.train.codebook import spec_batch
    x = spec_batch(torch.utils.data.default_collate([ds[i] for i in (0, len(ds) // 2)]))
    with torch.no_grad(): cols = [('input', x)] + [(LABELS.get(v, v), m(x)[0]) for v, m in models.items()]
    fig, axs = plt.subplots(len(x), len(cols), figsize=(3.2 * len(cols), 1.7 * len(x)), squeeze=False)
    for i in range(len(x)):
        for j, (name, t) in enumerate(cols):
            show_spec(from_model(t[i, 0]).clamp(0, 1), name, axs[i, j]); axs[i, j].set(xlabel='', ylabel='')
    fig.tight_layout()
    return fig


def report(args):
    "Test-split L1 / spectral convergence / code usage and Melception FID / MKL of the codebooks in --ckpt."
    import pandas as pd
    from vgsg.core.io import atomic_write, save_figure
    from vgsg.train.codebook import evaluate_codebook, spectrogram_dataset
    from vgsg.train.trainer import run_config
    from vgsg.core.models import load_model
    from vgsg.evaluate import evaluate_reconstruction, load_scorer
    mel, rows, models, first = load_scorer(), [], {}, None
    out = Path(args.report_dir); out.mkdir(parents=True, exist_ok=True)
    for item in args.ckpt:
        name, folder = item.split('=', 1)
        cfg, step = run_config(Path(folder)), (Path(folder).parent/'step.txt')
        models[name] = m = load_model(folder)
        ds = spectrogram_dataset(cfg['data'], 'test')
        first = first or ds
        r = evaluate_codebook(m, ds)
        rec = evaluate_reconstruction(m, ds, Path(args.samples)/name, 'test', mel, progress=False, verbose=False).iloc[0]
        rows.append(dict(codebook=name, steps=int(step.read_text()) if step.exists() else None, clips=len(ds),
                         **{k: round(x, 4) if isinstance(x, float) else x for k, x in r.items()},
                         fid=round(float(rec['fid']), 3), mkl=round(float(rec['mkl']), 4)))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    atomic_write(out/'report.csv', lambda p: df.to_csv(p, index=False))
    save_figure(reconstruction_grid(first, models), out/'report.png')   # on the first checkpoint's test clips
    print(df.to_string(index=False))
    return df


def ablation(args):
    from vgsg.train.trainer import train
    import vgsg.train.codebook  # registers the tasks
    for v in args.variants:
        if not args.report_only:
            t = time.time(); train('codebook', variant_config(args, v))
            print(f'{LABELS[v]}: {args.steps} steps in {time.time() - t:.0f} s', flush=True)
    if not args.train_only: evaluate(args)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('speed')
    s.add_argument('--configs', nargs='+', default=['small', 'paper'])
    s.add_argument('--device', default='cpu')
    s.add_argument('--batch', type=int, default=4)
    s.add_argument('--steps', type=int, default=5)
    s.add_argument('--paper-batch', type=int, default=1)
    s.add_argument('--paper-steps', type=int, default=2)
    s.add_argument('--precision', nargs='+', default=['fp32'])
    s.add_argument('--json')
    a = sub.add_parser('ablation')
    a.add_argument('--config', default=str(ROOT/'configs'/'codebook_small.yaml'))
    a.add_argument('--steps', type=int, default=1400)
    a.add_argument('--variants', nargs='+', default=list(VARIANTS))
    a.add_argument('--out', default=str(ROOT/'runs'/'ablation'))
    a.add_argument('--report-dir', default=str(ROOT/'data'/'ablation'))
    a.add_argument('--set', nargs='*', default=[])
    a.add_argument('--train-only', action='store_true')
    a.add_argument('--report-only', action='store_true')
    r = sub.add_parser('report')
    r.add_argument('--ckpt', nargs='+', required=True, help='NAME=checkpoint folder (vqmodel.safetensors + config.yaml)')
    r.add_argument('--report-dir', default=str(ROOT/'runs'/'codebook_report'))
    r.add_argument('--samples', default=str(ROOT/'runs'/'codebook_report'/'samples'))
    args = p.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    dict(speed=speed, ablation=ablation, report=report)[args.cmd](args)


if __name__ == '__main__': main()
