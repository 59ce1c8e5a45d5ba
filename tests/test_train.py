"The trainer under torchrun: two CPU processes (gloo) stay in sync and only rank 0 writes."
import os, subprocess, sys
from pathlib import Path
import torch


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
    assert (tmp_path / 'run' / 'last' / 'net.safetensors').exists()
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
