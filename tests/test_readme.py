"""Every command of the README's bash blocks is run here, in the README's order, from a scratch folder laid out like
the repository (its configs/, scripts/ and vgsg/ linked in): the command itself where it is quick, a tiny variant
where it is long (smaller data, `--set train.max_steps=2`). A README command missing from `RUNS` fails the test,
so the README cannot drift from what is tested. Prints each command's wall time.
Running them all takes minutes (each command starts Python and torch afresh), so that part runs with
`make test-slow` (VGSG_SLOW_TESTS=1); the check that every README command has a run is always on."""
import os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TINY_TRAIN = ['train.max_steps=2', 'train.batch_size=2', 'train.valid_every=2', 'train.log_every=1']

# README command (comment stripped) -> what runs here: an argument list ('vgsg ...', 'python ...', 'torchrun ...'),
# 'same as above' (a second spelling of the command just run), 'test:<file>::<function>' (run by that test), or
# 'offline:<why>' for a download (nothing can be downloaded where the tests run).
RUNS = {
    'make demo': 'test:test_cli.py::test_demo_with_the_bundled_models',
    'make test': 'test:test_readme.py::test_every_readme_command_runs',          # this suite
    'vgsg generate my_video.mp4 -o out/mine --samples 3 --top-x 64': 'vgsg generate my_video.mp4 -o out/mine --samples 1 --top-x 64',
    'vgsg generate my_video.mp4 -o out/long --seconds 30': 'vgsg generate my_video.mp4 -o out/long --seconds 12',
    'vgsg generate my_video.mp4 -o out/int8 --int8': 'vgsg generate my_video.mp4 -o out/int8 --int8',
    'vgsg generate my_video.mp4 -o out/paper --transformer transformer_small': 'vgsg generate my_video.mp4 -o out/paper --transformer transformer_small',
    'vgsg codec encode speech.wav -o speech.vgc': 'vgsg codec encode speech.wav -o speech.vgc',
    'vgsg codec decode speech.vgc -o speech_decoded.wav': 'vgsg codec decode speech.vgc -o speech_decoded.wav',
    'vgsg prepare my_videos/ runs/mine --labels labels.csv': 'vgsg prepare my_videos/ runs/mine --labels labels.csv',
    'vgsg convert last.ckpt models/5feats_bn --kind transformer': 'test:test_checkpoints.py::test_cli_convert',
    'vgsg mel clip.wav --griffin-lim': 'vgsg mel clip.wav --griffin-lim',
    'vgsg toy runs/toy_videos --size small --prepare runs/toy': 'vgsg toy runs/toy_videos --size tiny --prepare runs/toy',
    'vgsg train codebook -c configs/codebook_small.yaml --set train.max_steps=20':
        'vgsg train codebook -c configs/codebook_small.yaml --set ' + ' '.join(TINY_TRAIN),
    'vgsg train codebook -c configs/codebook_small.yaml': 'same as above',
    'python scripts/more_toy.py --base runs/toy --out runs/toy_big':
        'python scripts/more_toy.py --base runs/toy --out runs/toy_big --i0 2 --i1 3 --seconds 2',
    'vgsg train transformer -c configs/transformer_small.yaml':
        'vgsg train transformer -c configs/transformer_small.yaml --set ' + ' '.join(TINY_TRAIN),
    'torchrun --nproc_per_node 2 $(which vgsg) train transformer -c configs/transformer_small.yaml':
        'torchrun --nproc_per_node 2 vgsg train transformer -c configs/transformer_small.yaml -o runs/transformer_ddp --set '
        + ' '.join(TINY_TRAIN),
    'vgsg sounds build data/sounds': 'offline:fetches Debian packages (apt-get download); its refusals are tested in test_sounds_cli.py',
    'vgsg sounds pack data/sounds runs/sounds_packed': 'test:test_sounds_cli.py::test_pack_and_av',
    'vgsg sounds av data/sounds runs/semireal_videos --prepare runs/semireal': 'test:test_sounds_cli.py::test_pack_and_av',
    'vgsg evaluate --models runs/transformer_small/best --data runs/toy -o runs/eval/transformer_small':
        'test:test_evaluate_cli.py::test_generate_then_score',   # the scratch folder's tiny toy split is too small for ISc's 10 splits
    'vgsg evaluate runs/eval/transformer_small --data runs/toy --metrics fid,mkl': 'test:test_evaluate_cli.py::test_score_a_samples_folder',
    # using the published weights
    'wget https://a3s.fi/swift/v1/AUTH_a235c0f452d648828f745589cde1219a/specvqgan_public/models/2021-06-03T09-34-10_vggsound_transformer.tar.gz':
        'offline:a download; the conversion of such a checkpoint is tested below on a file of the same layout',
    'mkdir -p logs && tar xf 2021-06-03T09-34-10_vggsound_transformer.tar.gz -C logs': 'offline:unpacks the download above',
    'vgsg convert logs/2021-06-03T09-34-10_vggsound_transformer/checkpoints/last.ckpt models/5feats_bn --kind transformer':
        'test:test_checkpoints.py::test_cli_convert',
    'vgsg convert best_netG.pt models/5feats_bn --kind melgan': 'test:test_checkpoints.py::test_roundtrip_melgan',
    'vgsg convert melception-21-05-10T09-28-40.pt models/5feats_bn --kind melception --stats train_means_stds_melspec_10s_22050hz.txt':
        'test:test_checkpoints.py::test_roundtrip_melception',
    'vgsg generate my_video.mp4 --models models/5feats_bn': 'vgsg generate my_video.mp4 --models models/5feats_bn',   # a tiny random set there
}


def readme_commands(text:str) -> list:
    "The command lines of the ```bash blocks, without their comments."
    blocks = re.findall(r'```bash\n(.*?)```', text, re.S)
    lines = [re.sub(r'\s+#.*$', '', l).strip() for b in blocks for l in b.splitlines()]
    return [l for l in lines if l and not l.startswith('#')]


def test_every_readme_command_has_a_run():
    cmds = readme_commands((ROOT/'README.md').read_text())
    assert cmds, 'no bash blocks in README.md'
    missing = [c for c in cmds if c not in RUNS]
    assert not missing, f'README commands with no test run (add them to RUNS): {missing}'
    for how in RUNS.values():
        assert not how.startswith('offline:') or len(how) > 20, how
        if how.startswith('test:'):
            file, fn = how[5:].split('::')
            assert f'def {fn}(' in (ROOT/'tests'/file).read_text(), how


def argv(how:str) -> list:
    "The argument list of a run: `vgsg`/`python`/`torchrun` from this environment."
    exe = dict(vgsg=str(BIN/'vgsg'), python=sys.executable, torchrun=str(BIN/'torchrun'))
    args = how.split()
    return [exe.get(args[0], args[0])] + [str(BIN/'vgsg') if a == 'vgsg' else a for a in args[1:]]


def scratch(root:Path) -> Path:
    "A folder laid out like the repository for the README's commands, with the inputs they name."
    from vgsg.core.io import bundled
    from vgsg.audio import save_wav, synth_signal
    from vgsg.video import make_test_clip
    for d in ('configs', 'scripts', 'vgsg'): (root/d).symlink_to(ROOT/d)
    shutil.copy(bundled('examples/toy_hammer.mp4'), root/'my_video.mp4')
    save_wav(root/'speech.wav', synth_signal('hits', 3)); save_wav(root/'clip.wav', synth_signal('scene', 2))
    make_test_clip(root/'my_videos'/'a.mp4', freq=440); make_test_clip(root/'my_videos'/'b.mp4', freq=660)
    (root/'labels.csv').write_text('video,class\na.mp4,beep\nb.mp4,beep\n')
    sys.path.insert(0, str(ROOT/'tests'))
    from test_cli import tiny_model_set
    tiny_model_set(root/'models'/'5feats_bn')         # stands in for the converted published models
    return root


@pytest.mark.skipif(not os.environ.get('VGSG_SLOW_TESTS'), reason='minutes: make test-slow (VGSG_SLOW_TESTS=1)')
def test_every_readme_command_runs(tmp_path):
    "The README's commands, in order, in one scratch folder (each reads what the previous ones wrote)."
    root = scratch(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS='1', PATH=f'{BIN}{os.pathsep}{os.environ["PATH"]}')
    times = []
    for cmd in readme_commands((ROOT/'README.md').read_text()):
        how = RUNS[cmd]
        if how.startswith(('test:', 'offline:')) or how == 'same as above': continue
        t0 = time.perf_counter()
        done = subprocess.run(argv(how), cwd=root, env=env, capture_output=True, text=True, timeout=900)
        times.append((time.perf_counter() - t0, how))
        assert done.returncode == 0, (how, done.stdout[-2000:], done.stderr[-3000:])
        assert 'Traceback' not in done.stderr, (how, done.stderr[-3000:])
        if how.startswith('torchrun'): assert done.stdout.count('trained transformer for') == 1, done.stdout   # rank 0 only
    for s, how in times: print(f'{s:7.1f} s  {how}')
    assert (root/'out'/'mine'/'my_video_sample0.mp4').exists() and (root/'speech_decoded.wav').exists()
    assert (root/'runs'/'toy'/'manifest.csv').exists() and (root/'runs'/'toy_big'/'manifest.csv').exists()
    for run in ('codebook_small', 'transformer_small', 'transformer_ddp'): assert (root/'runs'/run/'log.csv').exists(), run
