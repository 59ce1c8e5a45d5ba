"Run by tests/test_train.py under torchrun: train LineFitTask with DDP and save each rank's final weights."
import sys
from pathlib import Path
import torch
from vgsg.train import Trainer, TrainConfig, LineFitTask, line_data, rank, unwrap, world_size

out = Path(sys.argv[1])
cfg = TrainConfig(out_dir=str(out / 'run'), max_steps=12, batch_size=4, valid_every=6, log_every=3, progress=False, device='cpu')
trainer = Trainer(LineFitTask(), line_data(), line_data(16, seed=1), cfg)
trainer.fit()
torch.save(dict(weight=unwrap(trainer.task.net).weight.detach().clone(), world=world_size(),
                valid=[r for r in trainer.history if 'valid/loss' in r]), out / f'rank{rank()}.pt')
