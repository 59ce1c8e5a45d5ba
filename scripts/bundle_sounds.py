#!/usr/bin/env python
"""Bundle the real-sounds models into vgsg/assets/models as model folders (fp16, config.yaml, MODEL_CARD.md).

    python scripts/bundle_sounds.py codebook runs/codebook_sounds/best --codec-csv runs/codec_eval/summary.csv
    python scripts/bundle_sounds.py melception runs/melception_sounds
    python scripts/bundle_sounds.py transformer runs/transformer_sounds/best --eval runs/sounds_eval/eval.csv

Each card names the data's sources (Debian package, version, licence, clips and minutes, from the committed
manifest data/sounds_manifest.csv), the training steps and the measured metrics given.
"""
import argparse, json
from pathlib import Path
import pandas as pd
import torch
import yaml
from vgsg.core.io import data_dir, count_params
from vgsg.core.models import save_model, load_model
from vgsg.train.trainer import checkpoint_step, run_config
from vgsg.train.codebook import evaluate_codebook, spectrogram_dataset
from vgsg.train.vocoder import markdown_table

MANIFEST = Path('data/sounds_manifest.csv')
MODELS = data_dir()/'models'


def sources_table(manifest=MANIFEST) -> str:
    "Markdown table of the recordings' sources: package, version, licences, clips and minutes kept."
    df = pd.read_csv(manifest, keep_default_na=False)
    ok = df[df['status'] == 'ok']
    t = ok.groupby(['package', 'version']).agg(clips=('clip', 'size'), minutes=('seconds', lambda s: round(s.sum() / 60, 1)),
                                               licences=('licence', lambda s: ', '.join(sorted(set(s))))).reset_index()
    return markdown_table(t.set_index('package'))


def classes_table(manifest=MANIFEST) -> str:
    "Markdown table of labelled recordings per class and split."
    df = pd.read_csv(manifest, keep_default_na=False)
    ok = df[(df['status'] == 'ok')]
    t = ok.assign(**{'class': ok['class'].replace('', '(none)')}).groupby(['class', 'split']).size().unstack(fill_value=0)
    return markdown_table(t[['train', 'valid', 'test']])


def sources_section() -> list:
    return ['## Sources', '',
            'Recorded sound effects from DFSG-free Debian packages (`vgsg sounds build`, `nbs/03b_sounds.ipynb`): fetched with',
            '`apt-get download`, unpacked with `dpkg-deb -x`, 22.05 kHz mono (soxr), silence trimmed, clips under 0.2 s dropped;',
            'each recording in one split only (a hash of package/file). Licences are per file, from each package\'s copyright file.', '',
            sources_table(), '', 'Recordings per class and split:', '', classes_table(), '']


def config_section(cfg:dict, keys:tuple) -> list:
    "Card lines quoting the run's config sections `keys`."
    return ['## Training config', '', '```yaml', yaml.safe_dump({k: cfg[k] for k in keys if k in cfg}, sort_keys=False).strip(), '```', '']


def bundle_codebook(ckpt, codec_csv, notes):
    ckpt, cfg = Path(ckpt), run_config(Path(ckpt))
    vq, steps = load_model(ckpt), checkpoint_step(ckpt)
    test_ds = spectrogram_dataset(cfg['data'], 'test')
    test = evaluate_codebook(vq, test_ds)
    codec = pd.read_csv(codec_csv) if codec_csv else None
    init = Path(cfg['model'].get('init_from') or 'scratch').name
    disc = cfg['loss'].get('disc_start', 0)
    losses = 'L1 + codebook loss + LPAPS on the bundled VGGish-ish' + (f' + patch GAN from step {disc}' if disc < steps else ' (no GAN)')
    info = dict(default=True, steps=steps, init_from=init,
                data='real recordings from Debian packages packed into 10-s windows (vgsg sounds pack)',
                test=dict(l1=round(test['l1'], 4), spectral_convergence=round(test['spectral_convergence'], 4),
                          codes_used=test['codes_used'], perplexity=round(test['perplexity'], 2)))
    if codec is not None: info['codec'] = json.loads(codec.to_json(orient='records'))
    card = '\n'.join([
        '# General-sound codebook `codebook_sounds`', '',
        'The default codebook of `vgsg codec` and of the real-sounds model set: 80 x 848 log-mel spectrograms (22.05 kHz)',
        f'<-> a 5 x 53 grid of codes. {count_params(vq):,} parameters (fp16 here), {vq.cfg.n_embed} codes of {vq.cfg.embed_dim} dimensions',
        f'(7 bits a code: 265 codes per 9.85 s, about 188 bits per second before the header). The layout of `codebook_small`; this',
        f'run started from `{init}` and trained {steps} steps on real recordings ({losses}; dead-code restarts);',
        'the training history is below. Load: `vgsg.core.models.load_model(folder)`.', '',
        '## Held-out windows', '',
        f"On the {len(test_ds)} packed 10-s test windows (recordings never seen in training):",
        f"l1 {test['l1']:.4f} (on the [-1, 1] scale), spectral convergence {test['spectral_convergence']:.3f}, "
        f"{test['codes_used']:.0f} of {vq.cfg.n_embed} codes used, perplexity {test['perplexity']:.1f}.", '',
        '## As a codec, beside Opus (`benchmarks/codec.py`)', '',
        'Held-out recordings one by one; mel L1 on the [0, 1] log-mel of the decoded waveform (Griffin-Lim 32 iterations', 'for the codebooks):', '',
        markdown_table(codec.set_index('coder')) if codec is not None else '(not measured)', '', notes.strip(), '',
        *sources_section(), *config_section(cfg, ('model', 'loss', 'data', 'train'))])
    return save_model(MODELS/'codebook_sounds', vq, info, card, half=True)


def bundle_melception(run_dir, notes):
    from vgsg.train.melception import bundle_melception as bundle
    cmds = ['vgsg sounds build data/sounds', 'vgsg sounds av data/sounds runs/semireal_videos --prepare runs/semireal',
            'OMP_NUM_THREADS=1 vgsg train melception -c configs/melception_sounds.yaml']
    metrics = bundle(run_dir, MODELS/'melception_sounds', cmds, notes + '\n\n' + '\n'.join(sources_section()))
    print(metrics)


def bundle_transformer(ckpt, eval_csv, notes):
    ckpt, cfg = Path(ckpt), run_config(Path(ckpt))
    gpt, steps = load_model(ckpt), checkpoint_step(ckpt)
    from vgsg.data import read_manifest
    classes = sorted(read_manifest(cfg['data']['root'])['class'].unique())
    ev = pd.read_csv(eval_csv) if eval_csv else None
    info = dict(default=True, features='pixels', n_feats=gpt.cfg.n_feats, classes=classes, steps=steps,
                codebook='codebook_sounds_stage1', melception='melception_sounds', init_from='transformer_aligned_small',
                data='semi-real audio-visual set: rendered events carrying real recordings (vgsg sounds av; 13 classes x 40 clips of 10 s; 364 / 78 / 78)')
    if ev is not None: info['eval'] = json.loads(ev.to_json(orient='records'))
    card = '\n'.join([
        '# Transformer `transformer_sounds`', '',
        'The default transformer of the bundled set: a GPT-2-style sampler over the codes of `codebook_sounds_stage1`, time-aligned',
        f'(`cond: aligned`: a {gpt.cfg.n_feats}-frame prefix of `pixels` features, and every frame added to the codes of its time column),',
        f'fine-tuned from `transformer_aligned_small` on the semi-real set. {count_params(gpt):,} parameters (fp16 here); best',
        f'validation loss at step {steps} (early stopping).', '',
        '## Test split (78 clips whose recordings no training clip uses)', '',
        markdown_table(ev.set_index(ev.columns[0])) if ev is not None else '(not measured)', '', notes.strip(), '',
        *sources_section(), *config_section(cfg, ('model', 'codebook', 'data', 'train'))])
    return save_model(MODELS/'transformer_sounds', gpt, info, card, half=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('kind', choices=['codebook', 'melception', 'transformer'])
    p.add_argument('run', help='checkpoint folder (codebook, transformer) or run folder (melception)')
    p.add_argument('--codec-csv')
    p.add_argument('--eval')
    p.add_argument('--notes', default='')
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.kind == 'codebook': print(bundle_codebook(a.run, a.codec_csv, a.notes))
    elif a.kind == 'melception': bundle_melception(a.run, a.notes)
    else: print(bundle_transformer(a.run, a.eval, a.notes))


if __name__ == '__main__': main()
