#!/usr/bin/env python
"""Bundle trained checkpoints as the default model set in vgsg/assets/models (fp16 model folders with model cards).

    python scripts/bundle_models.py --codebook runs/gpu/cb_main/best --codebook-report runs/gpu/cb_report/report.csv \
        --transformer runs/gpu/tx_feats/best --transformer-eval runs/gpu/eval

Each checkpoint folder is a model folder (`vgsg.core.models.load_model` reads it) whose run's config.yaml is one folder
up. The folders written are standard model folders: config.yaml {kind, config, info}, model.safetensors, MODEL_CARD.md;
the card quotes the training config and the measured tables given.
"""
import argparse, json, shutil
from pathlib import Path
import pandas as pd
import yaml
from vgsg.core.io import data_dir
from vgsg.core.models import save_model, load_model
from vgsg.train.trainer import checkpoint_step, run_config
from vgsg.train.vocoder import markdown_table
from vgsg.core.io import count_params


def steps_of(ckpt:Path):
    "Training steps of a checkpoint (trainer.pt, or a step.txt written when it was copied off another machine)."
    if (ckpt/'trainer.pt').exists(): return checkpoint_step(ckpt)
    for p in (ckpt/'step.txt', ckpt.parent/'step.txt'):
        if p.exists(): return int(p.read_text())
    return None

def md(df:pd.DataFrame) -> str:
    "A results table as markdown, its first column as the row names."
    return markdown_table(df.set_index(df.columns[0]).round(4))

def training_yaml(cfg:dict) -> str:
    return yaml.safe_dump({k: cfg[k] for k in ('model', 'loss', 'data', 'train', 'codebook') if k in cfg}, sort_keys=False).strip()

def bundle_codebook(ckpt, out, report, row_name, notes):
    ckpt, cfg = Path(ckpt), run_config(Path(ckpt))
    vq, steps = load_model(ckpt), steps_of(Path(ckpt))
    table = pd.read_csv(report) if report else None
    row = table.set_index('codebook').loc[row_name].to_dict() if table is not None else {}
    gan = cfg.get('loss', {})
    info = dict(steps=steps, data='synthetic audio-visual set (8 classes x 50 clips of 10 s; 280 / 40 / 80)',
                test=dict((k, row[k]) for k in ('l1', 'spectral_convergence', 'codes_used', 'perplexity', 'fid', 'mkl') if k in row))
    card = '\n'.join([f'# Spectrogram VQGAN codebook `{Path(out).name}`', '',
        'The codebook of the bundled model set: 80 x 848 log-mel spectrograms (22.05 kHz) <-> a 5 x 53 grid of codes.',
        f'{count_params(vq):,} parameters (fp16 here), {vq.cfg.n_embed} codes of {vq.cfg.embed_dim} dimensions; trained for {steps} steps',
        f"with L1 + codebook loss + patch GAN (from step {gan.get('disc_start')}) + LPAPS (on the bundled small VGGish-ish), with dead-code restarts",
        f'every {vq.cfg.restart_every} steps (not in the original; see `nbs/04_vqgan.ipynb`). Load: `vgsg.core.models.load_model(folder)`.', '',
        '## Test split (80 clips never seen in training)', '',
        'l1: mean |x - x_rec| on the [-1, 1] scale; spectral_convergence on mel magnitudes; codes used of', f'{vq.cfg.n_embed} and their perplexity;',
        "FID / MKL: the bundled small Melception's reconstruction FID and MKL (paper Table 1; lower is better).", '',
        f'This model is the row `{row_name}`; the others are the Table 2 ablation it was trained beside:', '',
        md(table) if table is not None else '(not measured)', '', notes.strip(), '',
        '## Training config', '', '```yaml', training_yaml(cfg), '```', ''])
    return save_model(out, vq, info, card, half=True)

def condition_text(g) -> str:
    "What a transformer is conditioned on, for its card"
    if g.cfg.cond == 'aligned':
        return (f'a {g.cfg.n_feats}-frame prefix of `pixels` features (what) and, time-aligned, all {g.cfg.n_frames} frames: each code '
                f'column adds a vector of its {g.cfg.frames_per_col} frames +- {g.cfg.frame_pad} (when; `cond: aligned`, `nbs/07_transformer.ipynb`) --')
    return f'{g.cfg.n_feats} `pixels` frame features'

def bundle_transformer(ckpt, out, eval_dir, notes, default=False):
    ckpt, cfg = Path(ckpt), run_config(Path(ckpt))
    gpt, steps = load_model(ckpt), steps_of(Path(ckpt))
    from vgsg.data import read_manifest
    classes = sorted(read_manifest(cfg['data']['root'])['class'].unique()) if 'root' in cfg.get('data', {}) else None
    ev = pd.read_csv(Path(eval_dir)/'eval.csv') if eval_dir and (Path(eval_dir)/'eval.csv').exists() else None
    sweep = pd.read_csv(Path(eval_dir)/'topx.csv') if eval_dir and (Path(eval_dir)/'topx.csv').exists() else None
    info = dict(features=cfg.get('data', {}).get('features', 'pixels'), n_feats=gpt.cfg.n_feats, classes=classes, steps=steps, codebook='codebook_small',
                data='synthetic audio-visual set (8 classes x 50 clips of 10 s; 280 / 40 / 80)')
    if ev is not None: info['eval'] = json.loads(ev.to_json(orient='records'))
    if default: info['default'] = True   # the transformer a model set generates with unless told otherwise
    card = '\n'.join([f'# Transformer `{Path(out).name}`', '',
        f'A GPT-2-style sampler over the codes of the bundled codebook, conditioned on {condition_text(gpt)}',
        f'(32 x 32 thumbnails x a fixed random projection, 2048-d; a random ResNet-50 carries no information offline).',
        f'{count_params(gpt):,} parameters (fp16 here); best validation loss at step {steps} (early stopping).', '',
        '## Evaluation on the 80 test clips (scored by the bundled small Melception)', '',
        'FID: fidelity; MKL: relevance to the clip\'s own sound; class_share: share of samples Melception puts in the',
        "video's class; onset_within: share of visual events with an audio onset within +-0.1 s. Lower FID/MKL is better.", '',
        md(ev) if ev is not None else '(not measured)', '',
        *(['Top-X sweep:', '', md(sweep), ''] if sweep is not None else []), notes.strip(), '',
        '## Training config', '', '```yaml', training_yaml(cfg), '```', ''])
    folder = save_model(out, gpt, info, card, half=True)
    for t, name in ((ev, 'eval.csv'), (sweep, 'topx.csv')):
        if t is not None: t.to_csv(folder/name, index=False)   # read by nbs/09b_train_transformer.ipynb
    for name in ('onset_offsets.png',):
        if eval_dir and (Path(eval_dir)/name).exists(): shutil.copy(Path(eval_dir)/name, folder/name)
    return folder

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--codebook'); p.add_argument('--codebook-report'); p.add_argument('--codebook-row'); p.add_argument('--codebook-notes', default='')
    p.add_argument('--transformer'); p.add_argument('--transformer-eval'); p.add_argument('--transformer-notes', default='')
    p.add_argument('--transformer-name', default='transformer_small', help='folder name in the model set')
    p.add_argument('--default', action='store_true', help="mark this transformer as the set's default (info.default)")
    p.add_argument('--out', default=str(data_dir()/'models'))
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.codebook: print('wrote', bundle_codebook(a.codebook, out/'codebook_small', a.codebook_report, a.codebook_row, a.codebook_notes))
    if a.transformer: print('wrote', bundle_transformer(a.transformer, out/a.transformer_name, a.transformer_eval, a.transformer_notes, a.default))

if __name__ == '__main__': main()
