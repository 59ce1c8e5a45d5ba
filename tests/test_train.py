"The trainer under torchrun (two CPU processes stay in sync, only rank 0 writes); checkpoints against a full disk, unsafe files and a second training."
import errno, io, os, shutil, signal, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import pytest
import torch
import torch.nn as nn
from vgsg.train.trainer import save_checkpoint, load_checkpoint, checkpoint_step, recover_checkpoint, TrainConfig, Trainer, LineFitTask, line_data


def test_two_process_ddp(tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(Path(__file__).parent / 'ddp_linefit.py'), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f'rank{i}.pt', weights_only=True) for i in (0, 1))
    assert r0['world'] == r1['world'] == 2
    torch.testing.assert_close(r0['weight'], r1['weight'])          # DDP kept the replicas identical
    assert r0['valid'] == r1['valid']                               # validation averaged over both processes
    assert r0['valid'][-1]['valid/loss'] < r0['valid'][0]['valid/loss']
    assert (tmp_path / 'run' / 'last' / 'net.safetensors').exists() and (tmp_path / 'run' / 'config.yaml').exists()
    assert not list((tmp_path / 'run').glob('.*tmp*'))             # no half-written checkpoint left


def test_two_process_resume_is_exact(tmp_path):
    "Interrupted and resumed under torchrun, a task that draws random numbers ends where an uninterrupted run does."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(Path(__file__).parent / 'ddp_linefit.py'), str(tmp_path), '0.5']
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for i in (0, 1):
        r = torch.load(tmp_path / f'rank{i}.pt', weights_only=True)
        assert torch.equal(r['resumed'], r['weight']), (r['resumed'], r['weight'])
    ck = torch.load(tmp_path / 'split' / 'last' / 'trainer.pt', weights_only=True)
    assert len(ck['rng_ranks']) == 2 and not torch.equal(ck['rng_ranks'][0]['torch'], ck['rng_ranks'][1]['torch'])


def _net(fill):
    "A one-output linear layer with every weight `fill`."
    net = nn.Linear(2, 1); nn.init.constant_(net.weight, fill); return net


def _hidden(folder):
    "The hidden entries of `folder` (what a save leaves while it runs)."
    return sorted(p.name for p in folder.iterdir() if p.name.startswith('.'))


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ck = save_checkpoint(tmp_path/'last', dict(net=_net(1.)), step=1)
    def no_space(*args, **kw): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr('vgsg.train.trainer.save_file', no_space)                # safetensors
    with pytest.raises(OSError) as e: save_checkpoint(ck, dict(net=_net(2.)), step=2)
    assert e.value.errno == errno.ENOSPC and e.value.strerror.startswith(f'{ck}: disk full') and '\n' not in str(e.value)
    monkeypatch.undo()
    class FullFile(io.BytesIO):
        def write(self, data): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr('vgsg.train.trainer.open', lambda *args: FullFile(), raising=False)   # torch.save into a full disk (no errno in its error)
    with pytest.raises(OSError, match=f'{ck}: disk full; the checkpoint was not written \\(the previous one is kept\\)'):
        save_checkpoint(ck, dict(net=_net(2.)), step=2)
    monkeypatch.undo()
    def torch_fails(obj, f): raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534')
    monkeypatch.setattr(torch, 'save', torch_fails)                       # a write error that says nothing about why...
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: SimpleNamespace(total=10 << 30, used=10 << 30, free=0))   # ...the disk does
    with pytest.raises(OSError, match='disk full'): save_checkpoint(ck, dict(net=_net(2.)), step=2)
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: SimpleNamespace(total=10 << 30, used=0, free=10 << 30))
    with pytest.raises(OSError, match=r'last: cannot write the checkpoint \(\[enforce fail'): save_checkpoint(ck, dict(net=_net(2.)), step=2)
    monkeypatch.undo()
    net = _net(0.)
    assert load_checkpoint(ck, dict(net=net))['step'] == 1 and net.weight.sum().item() == 2.   # the previous one, intact
    assert _hidden(tmp_path) == []                                       # no partial copy left


def test_disk_full_stops_training_and_frees_the_folder(tmp_path, monkeypatch):
    cfg = TrainConfig(out_dir=str(tmp_path/'run'), max_steps=8, batch_size=8, valid_every=4, log_every=2, progress=False, device='cpu')
    def no_space(*args, **kw): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr('vgsg.train.trainer.save_file', no_space)
    with pytest.raises(OSError, match=f'{tmp_path/"run"/"best"}: disk full'): Trainer(LineFitTask(), line_data(), line_data(16, seed=1), cfg).fit()
    monkeypatch.undo()
    assert Trainer(LineFitTask(), line_data(), line_data(16, seed=1), cfg).fit() and checkpoint_step(tmp_path/'run'/'last') == 8


class _Payload:
    "Unpickling this creates a marker file."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (io.open, (str(self.marker), 'w'))


def test_trainer_pt_that_runs_code_is_refused(tmp_path):
    marker = tmp_path/'pwned'
    run = tmp_path/'run'
    save_checkpoint(run/'last', dict(net=LineFitTask().net), step=3)
    torch.save(dict(step=3, best=None, bad_checks=0, rng=_Payload(marker)), run/'last'/'trainer.pt')
    for load in (lambda: load_checkpoint(run/'last', {}), lambda: checkpoint_step(run/'last'),
                 lambda: Trainer(LineFitTask(), line_data(), cfg=TrainConfig(out_dir=str(run), max_steps=4, progress=False)).fit()):
        with pytest.raises(ValueError, match=rf'{run/"last"/"trainer.pt"}: refused to load _?io.open .*; a vgsg trainer.pt holds only'): load()
    assert not marker.exists()


def test_hidden_copy_that_runs_code_is_never_loaded(tmp_path):
    marker, ck = tmp_path/'pwned', tmp_path/'last'
    save_checkpoint(ck, dict(net=_net(1.)), step=4)
    evil = save_checkpoint(tmp_path/'x', dict(net=_net(9.)), step=99).rename(tmp_path/'.last.tmp999')
    torch.save(dict(step=99, optimizers={}, files={}, x=_Payload(marker)), evil/'trainer.pt')
    assert checkpoint_step(ck) == 4 and recover_checkpoint(ck) == ck and checkpoint_step(ck) == 4
    assert not marker.exists() and _hidden(tmp_path) == []


HOLD = "import sys, time; from vgsg.train.trainer import lock_folder; f = lock_folder(sys.argv[1]); print('locked', flush=True); time.sleep(60)"


def test_second_training_on_a_folder_is_refused(tmp_path):
    run = tmp_path/'run'
    other = subprocess.Popen([sys.executable, '-c', HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == 'locked'
        cfg = TrainConfig(out_dir=str(run), max_steps=4, batch_size=8, progress=False, device='cpu')
        with pytest.raises(OSError) as e: Trainer(LineFitTask(), line_data(), cfg=cfg).fit()
        assert str(e.value).endswith(f'{run}: in use by another training (pid {other.pid}); wait for it to end or choose another out_dir')
        assert not (run/'log.csv').exists() and not (run/'last').exists()     # refused before touching anything
    finally: other.send_signal(signal.SIGKILL); other.wait()
    t = Trainer(LineFitTask(), line_data(), cfg=cfg); t.fit()
    assert t.step == 4 and checkpoint_step(run/'last') == 4                # a killed holder leaves no stale lock
