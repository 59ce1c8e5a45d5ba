"Training the codebook and VGGish-ish through the shared trainer: a few steps, exact resume, the CLI, DDP."
import os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from vgsg.train.trainer import train, TASKS, TASK_MODULES, export_checkpoint
from vgsg.train.codebook import CodebookTask, make_lpaps, train_valid, evaluate_codebook
from vgsg.core.models import load_model
from vgsg.lpaps import classifier_stats
from vgsg.audio import mel_stats


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    "Two classes, two 2-s clips each: one training and one validation clip per class."
    root = tmp_path_factory.mktemp('toy')
    data = dict(kind='toy', root=str(root/'prep'), toy_root=str(root/'videos'), classes=['drum', 'siren'],
                clips_per_class=2, seconds=2., size=32)
    train_valid(data)
    return data


def run_cfg(out, steps, **train_kw):
    return dict(dict(out_dir=str(out), max_steps=steps, batch_size=1, valid_every=2, log_every=1, progress=False), **train_kw)


def codebook_cfg(toy, out, steps=2, **loss):
    return dict(train=run_cfg(out, steps), model=dict(preset='tiny_codebook', n_embed=16, learning_rate=1e-3),
                loss=dict(dict(disc_start=2, disc_ndf=8, perceptual_weight=0.), **loss), data=toy)


@pytest.fixture(scope='module')
def vggishish_run(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp('vgg') / 'run'
    cfg = dict(train=run_cfg(out, 2, patience=3), data=toy,
               model=dict(preset='tiny_vggishish', n_classes=None, learning_rate=1e-3))
    return train('vggishish', cfg), out


def test_tasks_registered():
    assert {'codebook', 'vggishish'} <= set(TASK_MODULES)   # found by `train` on first use


def test_vggishish_trains_and_loads(vggishish_run, toy):
    trainer, out = vggishish_run
    assert trainer.step == 2
    log = pd.read_csv(out/'log.csv')
    assert {'valid/loss', 'valid/acc', 'valid/top5', 'train/loss'} <= set(log.key)
    assert yaml.safe_load((out/'config.yaml').read_text())['model']['n_classes'] == 2   # resolved from the data
    net = load_model(out/'best'); mean, std = classifier_stats(net)
    assert net.trained
    torch.testing.assert_close(mean, torch.from_numpy(mel_stats(train_valid(toy)[0], min_std=1e-4)[0]), atol=1e-6, rtol=0)
    assert (std > 0).all()
    # the classifier's statistics are the ones in its ScalingLayer, i.e. the training set's
    sc = load_file(str(out/'best'/'scaling.safetensors'))
    torch.testing.assert_close(sc['shift'].flatten(), 2 * mean - 1)


def test_vggishish_early_stopping(toy, tmp_path):
    "With a learning rate of 0 the validation loss never improves: training stops after patience validations."
    cfg = dict(train=run_cfg(tmp_path/'r', 100, patience=2, valid_every=1), data=toy,
               model=dict(preset='tiny_vggishish', n_classes=None, learning_rate=0.))
    assert train('vggishish', cfg).step == 3   # first validation sets the best, two more without improvement


def test_codebook_steps_images_and_gan_start(toy, tmp_path):
    out = tmp_path/'cb'
    cfg = codebook_cfg(toy, out, steps=3, disc_start=1)
    d0 = TASKS['codebook'](cfg)[0].discriminator.state_dict()
    train('codebook', cfg)
    d1 = load_file(str(out/'last'/'discriminator.safetensors'))
    assert not torch.equal(d0['main.0.weight'], d1['main.0.weight'])   # the discriminator step updates it
    log = pd.read_csv(out/'log.csv').pivot_table(index='step', columns='key', values='value')
    assert log.loc[1, 'train/g_loss'] == 0 and log.loc[1, 'train/disc_loss'] == 0
    assert (log.loc[[2, 3], 'train/disc_loss'] > 0).all() and (log.loc[[2, 3], 'train/g_loss'] != 0).all()  # GAN on from step index 1
    assert {'valid/rec_loss', 'valid/quant_loss', 'valid/spec_conv', 'valid/perplexity', 'valid/usage'} <= set(log.columns)
    assert sorted(p.name for p in (out/'images').iterdir()) == ['step_0000002.png', 'step_0000003.png']
    codes = pd.read_csv(out/'codes.csv')
    assert codes.step.tolist() == [2, 3] and (codes.codes_used >= 1).all()
    assert sorted(p.name for p in (out/'last').iterdir()) == ['config.yaml', 'discriminator.safetensors', 'trainer.pt', 'vqmodel.safetensors']


def test_discriminator_frozen_before_disc_start(toy, tmp_path):
    "Before disc_start the discriminator is neither run (BatchNorm statistics too) nor updated."
    cfg = codebook_cfg(toy, tmp_path/'a', steps=2, disc_start=100)
    initial = TASKS['codebook'](cfg)[0].discriminator.state_dict()   # builders seed: the same initial weights as below
    train('codebook', cfg)
    final = load_file(str(tmp_path/'a'/'last'/'discriminator.safetensors'))
    assert initial.keys() == final.keys() and all(torch.equal(initial[k], final[k]) for k in final)
    vq0, vq1 = TASKS['codebook'](cfg)[0].vqmodel.state_dict(), load_file(str(tmp_path/'a'/'last'/'vqmodel.safetensors'))
    assert not torch.equal(vq0['decoder.conv_out.weight'], vq1['decoder.conv_out.weight'])


def test_codebook_resume_is_exact(toy, tmp_path):
    "Two steps in one go == one step, stop, resume for the second (the GAN starts in the resumed part)."
    train('codebook', codebook_cfg(toy, tmp_path/'once', steps=2, disc_start=1))
    train('codebook', codebook_cfg(toy, tmp_path/'twice', steps=1, disc_start=1))
    train('codebook', codebook_cfg(toy, tmp_path/'twice', steps=2, disc_start=1))
    for name in ('vqmodel', 'discriminator'):
        a, b = (load_file(str(tmp_path/r/'last'/f'{name}.safetensors')) for r in ('once', 'twice'))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_codebook_with_lpaps_and_export(toy, tmp_path, vggishish_run):
    out = tmp_path/'cb'
    train('codebook', codebook_cfg(toy, out, steps=1, perceptual_weight=1., lpaps=str(vggishish_run[1]/'best')))
    log = pd.read_csv(out/'log.csv').pivot_table(index='step', columns='key', values='value')
    assert (log['train/p_loss'] > 0).all()
    export_checkpoint(out/'best', tmp_path/'model', card='# test\n')
    m = load_model(tmp_path/'model')
    assert m.quantize.embedding.weight.dtype == torch.float32 and m.cfg.n_embed == 16
    r = evaluate_codebook(m, train_valid(toy)[1])
    assert 0 < r['l1'] < 2 and 0 < r['spectral_convergence'] and r['codes_used'] >= 1


def test_perceptual_loss_needs_trained_backbone():
    with pytest.raises(ValueError, match='needs loss.lpaps'): make_lpaps(dict(perceptual_weight=1.))
    assert make_lpaps(dict(perceptual_weight=0.)) is None
    assert not make_lpaps(dict(allow_untrained=True, lpaps_model='tiny_vggishish')).backbone_trained
    with pytest.raises(FileNotFoundError): make_lpaps(dict(lpaps='/nonexistent/best'))


def test_bf16_autocast_step(toy, tmp_path):
    "precision bf16: both tasks run a step under autocast and the losses stay finite."
    cfg = codebook_cfg(toy, tmp_path/'cb', steps=1, disc_start=0)
    cfg['train']['precision'] = 'bf16'
    log = pd.read_csv(train('codebook', cfg).out/'log.csv')
    assert log.value.notna().all() and torch.isfinite(torch.tensor(log.value.values)).all()
    vcfg = dict(train=run_cfg(tmp_path/'v', 1, precision='bf16'), data=toy, model=dict(preset='tiny_vggishish', n_classes=None))
    log = pd.read_csv(train('vggishish', vcfg).out/'log.csv')
    assert torch.isfinite(torch.tensor(log.value.values)).all()


def test_cli_train_codebook(toy, tmp_path):
    from vgsg.cli import main
    cfg = tmp_path/'c.yaml'
    cfg.write_text(yaml.safe_dump(codebook_cfg(toy, tmp_path/'unused', steps=5)))
    assert main(['train', 'codebook', '-c', str(cfg), '-o', str(tmp_path/'cli'), '--set', 'train.max_steps=1']) == 0
    assert (tmp_path/'cli'/'last'/'vqmodel.safetensors').exists()
    assert yaml.safe_load((tmp_path/'cli'/'config.yaml').read_text())['train']['max_steps'] == 1
    assert main(['train', 'codebook', '-c', str(cfg), '-o', str(tmp_path/'bad'), '--set', 'model.n_embeds=3']) == 2


DDP_SCRIPT = '''
import sys, torch, yaml
from vgsg.train.trainer import train, rank
from vgsg.train.codebook import *
cfg = yaml.safe_load(open(sys.argv[1]))
d0 = build_codebook(dict(cfg))[0].discriminator.state_dict()
t = train('codebook', cfg)
torch.save(dict(vq=t.task.vqmodel.module.state_dict(), d=t.task.discriminator.module.state_dict(), d0=d0), f"{sys.argv[2]}/rank{rank()}.pt")
'''


def test_codebook_ddp_two_processes(toy, tmp_path):
    "Two gloo processes with the GAN and dead-code restarts on: the replicas of both modules stay identical."
    cfg = codebook_cfg(toy, tmp_path/'run', steps=2, disc_start=0)
    cfg['model']['restart_every'] = 1   # each process sees other data: counts are summed, rank 0's moves broadcast
    (tmp_path/'c.yaml').write_text(yaml.safe_dump(cfg)); (tmp_path/'ddp.py').write_text(DDP_SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(tmp_path/'ddp.py'), str(tmp_path/'c.yaml'), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path/f'rank{i}.pt', weights_only=True) for i in (0, 1))
    for part in ('vq', 'd'):
        # parameters; BatchNorm running statistics are per process on CPU (DDP uses rank 0's; SyncBatchNorm on GPUs)
        for k in r0[part]:
            if 'running_' not in k and 'num_batches' not in k: torch.testing.assert_close(r0[part][k], r1[part][k], msg=f'{part}.{k}')
    assert not torch.equal(r0['d']['main.0.weight'], r0['d0']['main.0.weight'])   # the discriminator did train
    assert len(list((tmp_path/'run'/'images').glob('*.png'))) == 1
    log = pd.read_csv(tmp_path/'run'/'log.csv')
    assert (log.key == 'train/restarted').sum() == 2   # the restart ran at both steps


def test_vas_layout_dataset(tmp_path):
    "data.kind vas reads the original VAS layout: <root>/features/<class>/melspec_10s_22050hz/<clip>_mel.npy + split file."
    from vgsg.data import write_fake_clip
    from vgsg.train.codebook import spectrogram_dataset
    for row in ('dog/video_00001', 'baby/video_00002'):
        cls, name = row.split('/')
        write_fake_clip(tmp_path/'vas'/'features'/cls/'melspec_10s_22050hz'/f'{name}_mel.npy', {})
    (tmp_path/'vas_train.txt').write_text('dog/video_00001\nbaby/video_00002\n')
    ds = spectrogram_dataset(dict(kind='vas', root=str(tmp_path/'vas')), 'train')
    assert len(ds) == 2 and ds[0]['image'].shape == (80, 848) and [ds[i]['target'] for i in (0, 1)] == [2, 0]
    with pytest.raises(ValueError, match='data.kind'): spectrogram_dataset(dict(kind='wavs'), 'train')
