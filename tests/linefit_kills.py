"""Run by tests/test_train_kill.py: train LineFitTask in child processes that are killed with SIGKILL at the
trainer's crash points and at random instants, each resuming where the last left off; print what happened as JSON.

Usage: python tests/linefit_kills.py OUT SEED ROUNDS. Trains OUT/straight (never interrupted) and OUT/killed0, killed1...
(each killed and resumed again and again, to the same number of steps)."""
import json, os, random, re, signal, sys, time, traceback
from pathlib import Path
import torch, torch._dynamo   # the optimisers import dynamo on first use: once here, not in every child
from vgsg.train.trainer import Trainer, TrainConfig, LineFitTask, line_data
from vgsg.core.dist import seed_everything

STEPS = 240
POINTS = {'step': 12, 'log': 6, 'write': 3, 'save:begin': 3, 'save:files': 3, 'save:swap': 3, 'save:swapped': 3}   # point: most passes before the kill

def on_disk(folder:Path) -> dict:
    "The checkpoints `last` and `best` in `folder` and their hidden copies: name -> saved step, or None if its trainer.pt is not there."
    names = [p for p in folder.iterdir() if re.fullmatch(r'last|best|\.(last|best)\.(tmp|old)\d+', p.name)] if folder.is_dir() else []
    return {p.name: torch.load(p/'trainer.pt', weights_only=True)['step'] if (p/'trainer.pt').exists() else None for p in names}

class Recorded(Trainer):
    "A trainer that writes, beside its folder, what it found there before recovering and the step it resumed from."
    def recover(self): self.found = on_disk(self.out); super().recover()
    def restore(self, name='last'):
        resumed = super().restore(name)
        tmp = self.out.with_suffix('.start.tmp'); tmp.write_text(json.dumps(dict(found=self.found, resumed=self.step)))
        tmp.replace(self.out.with_suffix('.start'))   # a kill while writing leaves no half-written marker
        return resumed

def train(folder:Path):
    "Train (or resume) a LineFitTask that draws random numbers every step: a checkpoint every 4 steps, log rows every 2."
    torch.set_num_threads(1)
    cfg = TrainConfig(out_dir=str(folder), max_steps=STEPS, batch_size=8, valid_every=4, log_every=2, progress=False, device='cpu')
    seed_everything(0)   # the task's initial weights
    Recorded(LineFitTask(noise=0.1), line_data(), line_data(16, seed=1), cfg).fit()

def run(folder:Path, kill_at:str|None=None, kill_after:float|None=None) -> dict:
    "Train in a forked child, killed at crash point `kill_at` ('name:n') or `kill_after` seconds after it starts; how it went."
    start, started = time.monotonic(), folder.with_suffix('.start')
    started.unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:
        if kill_at: os.environ['VGSG_KILL_AT'] = kill_at
        try: train(folder); os._exit(0)
        except BaseException: traceback.print_exc(); os._exit(1)
    if kill_after is not None: time.sleep(kill_after); os.kill(pid, signal.SIGKILL)   # a child that has ended is a zombie: no error
    _, status = os.waitpid(pid, 0)
    return dict(kill_at=kill_at, kill_after=kill_after, seconds=round(time.monotonic() - start, 3),
                signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                exit=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                start=json.loads(started.read_text()) if started.exists() else None,
                present=sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [])

def killed_runs(folder:Path, rng:random.Random, seconds:float) -> list:
    "Kill a training in `folder` once at each crash point (in random order, at a random pass), then thrice at random instants, then let it finish."
    plan = [dict(kill_at=f'{p}:{rng.randint(1, most)}') for p, most in POINTS.items()]   # together under 90 of the steps
    rng.shuffle(plan)
    plan += [dict(kill_after=rng.uniform(0, seconds / 6)) for _ in range(3)]
    return [run(folder, **p) for p in plan] + [run(folder)]

if __name__ == '__main__':
    out, rng, rounds = Path(sys.argv[1]), random.Random(int(sys.argv[2])), int(sys.argv[3])
    straight = run(out/'straight')
    print(json.dumps(dict(straight=straight, rounds=[killed_runs(out/f'killed{i}', rng, straight['seconds']) for i in range(rounds)])))
