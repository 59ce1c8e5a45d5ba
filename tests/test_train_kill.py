"Training killed with SIGKILL anywhere (mid-step, mid-log-row, inside a checkpoint's write or swap) resumes to exactly the uninterrupted result."
import json, os, signal, subprocess, sys
from pathlib import Path
from vgsg.train.trainer import checkpoint_step

DRIVER = Path(__file__).parent/'linefit_kills.py'


def newest_write(found:dict) -> int:
    "The step a run must resume from: a complete new hidden copy of `last`, else `last`, else its previous copy; 0 if none."
    order = lambda name: 2 if name.startswith('.last.tmp') else 1 if name == 'last' else 0
    complete = [(order(n), step) for n, step in found.items() if step is not None and 'last' in n]
    return max(complete)[1] if complete else 0


def test_killed_and_resumed_equals_uninterrupted(tmp_path):
    "Two rounds of kills (each crash point once, at a random pass and in random order, then three at random instants)."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp_path), '0', '2'], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    straight = tmp_path/'straight'
    torn = []
    for i, runs in enumerate(json.loads(done.stdout)['rounds']):
        hooked, final = [r for r in runs if r['kill_at']], runs[-1]
        assert len(hooked) == 7 and all(r['signal'] == signal.SIGKILL and r['start'] for r in hooked), hooked   # every planned kill came
        k = next(k for k, r in enumerate(runs) if (r['kill_at'] or '').startswith('save:swap:'))
        found = runs[k + 1]['start']['found']   # what the next run found: killed between the renames, no checkpoint in place...
        torn.append([n for n in ('last', 'best') if n not in found and any(c.startswith(f'.{n}.tmp') and s is not None for c, s in found.items())])
        assert torn[-1], runs[k + 1]
        for r in runs:   # ...and no progress lost: each run resumed from the newest complete checkpoint the kill left
            if r['start']: assert r['start']['resumed'] == newest_write(r['start']['found']), r
        assert final['exit'] == 0 and final['present'] == ['.lock', 'best', 'last', 'log.csv'], final   # leftovers cleaned up
        killed = tmp_path/f'killed{i}'
        assert checkpoint_step(killed/'last') == checkpoint_step(straight/'last') == 240
        for f in ('last/net.safetensors', 'best/net.safetensors', 'log.csv'):   # bit for bit, and each log row once
            assert (killed/f).read_bytes() == (straight/f).read_bytes(), f
    assert ['last'] in torn   # a kill inside the swap of `last` was among them
