"Run by tests/test_train.py under torchrun: train LineFitTask with DDP (through `train`, as `vgsg train` does) and save each rank's final weights."
import sys
from pathlib import Path
import torch
from vgsg.train.trainer import train, register_task, LineFitTask, line_data, unwrap
from vgsg.core.dist import rank, world_size, seed_everything

out, noise = Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.

@register_task('linefit')
def build(cfg):
    "The task's initial weights are seeded here: the Trainer seeds only after the task exists."
    seed_everything(0)
    return LineFitTask(noise=noise), line_data(), line_data(16, seed=1)

def run(folder, steps):
    "Train (or resume) the run in `folder` to `steps` steps; the task draws random numbers if noise > 0."
    return train('linefit', dict(train=dict(out_dir=str(out / folder), max_steps=steps, batch_size=4, valid_every=6, log_every=3,
                                            progress=False, device='cpu')))

trainer = run('run', 12)
if noise: run('split', 6); resumed = run('split', 12)   # the same 12 steps, interrupted after 6
torch.save(dict(weight=unwrap(trainer.task.net).weight.detach().clone(), world=world_size(),
                valid=[r for r in trainer.history if 'valid/loss' in r],
                resumed=unwrap(resumed.task.net).weight.detach().clone() if noise else None), out / f'rank{rank()}.pt')
