"""The error contract, table-driven: each bad input → exit 2, one line naming the user's path and the problem,
no traceback, no partial file. Full and read-only disks are real (tiny tmpfs mounts) where this user may mount."""
import contextlib, shutil, subprocess
from pathlib import Path
import pytest
import yaml
from vgsg.core.io import bundled
from vgsg.audio import save_wav, synth_signal
from vgsg.cli import main
from test_cli import tiny_model_set


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    return tiny_model_set(tmp_path_factory.mktemp('models'))


@contextlib.contextmanager
def mounted(path:Path, options:str):
    "A tmpfs at `path` with mount `options` (e.g. 'size=16k' or 'ro'); skips the test where mounting is not allowed."
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which('mount') is None or subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)],
                                                       capture_output=True).returncode:
        pytest.skip('cannot mount a tmpfs here (needs root)')
    try: yield path
    finally: subprocess.run(['umount', '-l', str(path)], check=True)


def run_cli(capsys, *args):
    "Run the CLI in this process; (exit code, stderr lines)."
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.splitlines()


def check_one_line(code, lines, *needles):
    assert code == 2, lines
    assert len(lines) == 1 and 'Traceback' not in lines[0], lines
    for n in needles: assert str(n) in lines[0], (n, lines)


def leftovers(folder:Path) -> list:
    "Temporary or partial files left in `folder` (atomic writes leave none)."
    return [p.name for p in folder.rglob('*') if '.tmp' in p.name or p.name.startswith('.vgsg-write-test')]


# ---- output locations: full or read-only disks ----

def test_generate_into_a_read_only_folder_fails_before_any_work(tmp_path, capsys, models, monkeypatch):
    import vgsg.pipeline
    monkeypatch.setattr(vgsg.pipeline.ModelSet, 'from_folder', classmethod(lambda *a, **k: 1 / 0))   # loading models = too late
    with mounted(tmp_path/'ro', 'ro') as ro:
        code, lines = run_cli(capsys, 'generate', bundled('examples/toy_hammer.mp4'), '-o', ro/'out', '--models', models)
    check_one_line(code, lines, ro/'out', 'Read-only file system')


@pytest.mark.parametrize('command', ['generate', 'mel', 'codec'])
def test_disk_full(tmp_path, capsys, models, command):
    wav = save_wav(tmp_path/'in.wav', synth_signal('hits', 2))
    with mounted(tmp_path/'full', 'size=16k') as full:
        args = dict(generate=('generate', bundled('examples/toy_hammer.mp4'), '-o', full, '--models', models, '--seconds', 2),
                    mel=('mel', wav, '-o', full, '--griffin-lim'),
                    codec=('codec', 'encode', wav, '-o', full/'in.vgc', '--models', models/'codebook'))[command]
        if command == 'codec':   # decode a real file into the full disk
            assert main(['codec', 'encode', str(wav), '-o', str(tmp_path/'in.vgc'), '--models', str(models/'codebook')]) == 0
            args = ('codec', 'decode', tmp_path/'in.vgc', '-o', full/'out.wav', '--models', models/'codebook')
        code, lines = run_cli(capsys, *args)
        check_one_line(code, lines, full, 'disk full')
        assert not leftovers(full)
        assert '.tmp' not in lines[0]   # the user's path, never a temporary file's


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    "Two classes, two 2-s clips each, prepared for training a tiny codebook."
    from vgsg.train.codebook import train_valid
    root = tmp_path_factory.mktemp('toy')
    data = dict(kind='toy', root=str(root/'prep'), toy_root=str(root/'videos'), classes=['drum', 'siren'],
                clips_per_class=2, seconds=2., size=32)
    train_valid(data)
    return data


def test_training_on_a_full_disk(tmp_path, capsys, toy):
    from test_train_codebook import codebook_cfg
    cfg = tmp_path/'c.yaml'
    with mounted(tmp_path/'full', 'size=24k') as full:
        cfg.write_text(yaml.safe_dump(codebook_cfg(toy, full/'run', steps=2)))
        code, lines = run_cli(capsys, 'train', 'codebook', '-c', cfg)
        check_one_line(code, lines, full/"run", "disk full")
        assert not leftovers(full)


# ---- tampered model folders ----

def tamper(src:Path, dst:Path, config=None, weights:bytes=None, text:str=None) -> Path:
    "A copy of model folder `src` with settings changed, the weights replaced, or config.yaml replaced by `text`."
    shutil.copytree(src, dst)
    meta = yaml.safe_load((dst/'config.yaml').read_text()); meta['config'].update(config or {})
    (dst/'config.yaml').write_text(text if text is not None else yaml.safe_dump(meta))
    if weights is not None: (dst/'model.safetensors').write_bytes(weights)
    return dst


def weights_of(folder): return (folder/'model.safetensors').read_bytes()

TAMPERED = dict(
    truncated=(lambda f: dict(weights=weights_of(f)[:len(weights_of(f)) // 3]), 'not a complete safetensors file'),
    empty_weights=(lambda f: dict(weights=b''), 'not a complete safetensors file'),
    pickle_as_safetensors=(lambda f: dict(weights=b'\x80\x04\x95' + bytes(64)), 'not a complete safetensors file'),
    wrong_shapes=(lambda f: dict(config=dict(ch=64)), 'has shape'),
    misspelt_key=(lambda f: dict(config=dict(n_embedd=64)), "unknown codebook setting 'n_embedd'"),
    four_terabytes=(lambda f: dict(config=dict(ch=2 ** 20, num_res_blocks=4096)), 'model.safetensors'),
    yaml_tag=(lambda f: dict(text='kind: codebook\nconfig: !!python/object/apply:os.system ["touch MARKER"]\n'), 'python/object/apply:os.system'),
    unknown_kind=(lambda f: dict(text='kind: rocket\nconfig: {}\n'), 'kind must be one of'),
    string_size=(lambda f: dict(config=dict(n_embed='many')), "'n_embed' must be a int"),
)

@pytest.mark.parametrize('case', TAMPERED)
def test_tampered_model_folder(tmp_path, capsys, models, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make, problem = TAMPERED[case]
    folder = tamper(models/'codebook', tmp_path/'cb', **make(models/'codebook'))
    wav = save_wav(tmp_path/'in.wav', synth_signal('hits', 1))
    code, lines = run_cli(capsys, 'codec', 'encode', wav, '-o', tmp_path/'x.vgc', '--models', folder)
    check_one_line(code, lines, folder, problem)
    assert not (tmp_path/'x.vgc').exists() and not (tmp_path/'MARKER').exists()


# ---- damaged inputs ----

@pytest.mark.parametrize('content', [b'', b'just some text\n', None])
def test_generate_with_a_damaged_video(tmp_path, capsys, models, content):
    video = tmp_path/'clip.mp4'
    if content is None: video.write_bytes(bundled('examples/toy_hammer.mp4').read_bytes()[:2000])   # cut short
    else: video.write_bytes(content)
    code, lines = run_cli(capsys, 'generate', video, '-o', tmp_path/'out', '--models', models, '--seconds', 2)
    check_one_line(code, lines, video)
    assert not list((tmp_path/'out').glob('*'))


@pytest.mark.parametrize('content, problem', [(b'', 'empty file'), (b'model weights, honest\n', 'not a readable PyTorch file'),
                                              (b'PK\x03\x04' + bytes(40), 'not a readable PyTorch file')])
def test_convert_a_file_that_is_no_checkpoint(tmp_path, capsys, content, problem):
    ckpt = tmp_path/'last.ckpt'; ckpt.write_bytes(content)
    code, lines = run_cli(capsys, 'convert', ckpt, tmp_path/'model', '--kind', 'transformer')
    check_one_line(code, lines, ckpt, problem)
    assert not (tmp_path/'model').exists() or not any((tmp_path/'model').iterdir())


@pytest.mark.parametrize('text, override, problem', [
    ('train: {max_steps: 1}\nmodel: !!python/object/apply:os.system ["touch MARKER"]\n', None, 'python/object/apply:os.system'),
    ('- just\n- a list\n', None, 'a training config is a mapping'),
    ('train: [unclosed\n', None, 'not valid YAML'),
    ('train: {max_steps: 1}\n', 'model=!!python/name:os.system', 'not plain YAML')])
def test_bad_training_config(tmp_path, capsys, monkeypatch, text, override, problem):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path/'c.yaml'; cfg.write_text(text)
    code, lines = run_cli(capsys, 'train', 'codebook', '-c', cfg, *(['--set', override] if override else []))
    check_one_line(code, lines, cfg if override is None else override, problem)
    assert not (tmp_path/'MARKER').exists()


def test_training_into_a_folder_in_use(tmp_path, capsys, toy):
    from vgsg.train.trainer import lock_folder
    from test_train_codebook import codebook_cfg
    cfg = tmp_path/'c.yaml'; cfg.write_text(yaml.safe_dump(codebook_cfg(toy, tmp_path/'run', steps=2)))
    held = lock_folder(tmp_path/'run')   # another training holds the folder
    try: code, lines = run_cli(capsys, 'train', 'codebook', '-c', cfg)
    finally: held.close()
    check_one_line(code, lines, tmp_path/'run', 'in use by another training')


def test_generate_with_an_unknown_transformer(tmp_path, capsys):
    "The bundled set holds two transformers; naming a third fails before any work, listing the ones there are."
    code, lines = run_cli(capsys, 'generate', bundled('examples/toy_hammer.mp4'), '-o', tmp_path/'out', '--transformer', 'transformer_big')
    check_one_line(code, lines, "no transformer folder 'transformer_big'", 'transformer_aligned_small', 'transformer_small')
    assert not list((tmp_path/'out').glob('*'))
