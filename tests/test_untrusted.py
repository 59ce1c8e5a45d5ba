"""No code runs from a data file: every loader of vgsg against files whose opening would create a marker file.

Each payload is real: the `trust=True` controls show the marker does appear when the file is opened fully, so the
refusals are what keeps it away."""
import contextlib, io, os, pickle
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from vgsg.core.safety import UntrustedFileError, read_pickle, load_torch, read_yaml, load_npy
from vgsg.features import load_feature, feature_complete, load_state_dict, ResNet, FEATURE_DIRS
from vgsg.data import SpecFeatsDataset, vas_dataset, load_mel, write_fake_clip, MEL_DIR
from vgsg.core.safety import safe_load, UnsafeCheckpointError
from vgsg.vocoder import Generator, MelGANConfig
from vgsg.checkpoints import read_melgan
from vgsg.cli import main


class Shell:
    "Unpickling this runs `touch marker` through os.system."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


class Exec:
    "Unpickling this runs Python code through builtins.exec."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (exec, (f'open({str(self.marker)!r}, "w").close()',))


PAYLOADS = [(Shell, 'posix.system'), (Exec, 'builtins.exec')]


@pytest.fixture
def marker(tmp_path): return tmp_path / 'MARKER'


def refused(f, path, name):
    "`f()` raises UntrustedFileError naming `path` and `name`, on one line."
    with pytest.raises(UntrustedFileError) as e: f()
    msg = str(e.value)
    assert msg.startswith(f'{path}: refused to load') and '\n' not in msg, msg
    assert name in msg or name.split('.')[-1] in msg.split(), msg   # PyTorch's legacy format names builtins bare: 'exec'
    assert '--trust' in msg or 'plain data' in msg, msg
    return msg


# ---------------------------------------------------------------- feature pickles
@pytest.mark.parametrize('payload,name', PAYLOADS)
def test_feature_pickle(tmp_path, marker, payload, name):
    p = tmp_path / 'video_00001.pkl'
    p.write_bytes(pickle.dumps([np.zeros((215, 4), np.float32), payload(marker)], protocol=4))
    refused(lambda: load_feature(p), p, name)
    refused(lambda: read_pickle(p), p, name)
    refused(lambda: feature_complete(p, 215), p, name)
    assert not marker.exists()
    with pytest.raises(ValueError): load_feature(p, trust=True)        # opened fully: the command runs ...
    assert marker.exists()                                              # ... (and the result is no feature array)


@pytest.mark.parametrize('proto', [2, 3, 4, 5])
def test_original_feature_pickles_load_without_trust(tmp_path, proto):
    x = np.random.default_rng(0).uniform(0, 3, (216, 1024)).astype(np.float32)   # the original's BN-Inception files
    (tmp_path / 'a.pkl').write_bytes(pickle.dumps(x, protocol=proto))
    np.testing.assert_array_equal(load_feature(tmp_path / 'a.pkl'), x)
    (tmp_path / 'b.pkl').write_bytes(pickle.dumps(x.astype(np.float64), protocol=proto))
    np.testing.assert_array_equal(load_feature(tmp_path / 'b.pkl'), x)
    assert feature_complete(tmp_path / 'a.pkl', 216, 1024)


def test_dataset_items_refuse_and_trust_opens(tmp_path, marker):
    d = tmp_path / 'vas' / 'features' / 'dog'
    feats = {k: d / FEATURE_DIRS[k] / 'video_00001.pkl' for k in ('rgb', 'flow')}
    write_fake_clip(d / MEL_DIR / 'video_00001_mel.npy', feats)
    (tmp_path / 'vas_train.txt').write_text('dog/video_00001\n')
    assert vas_dataset(tmp_path / 'vas', 'train', n_feats=5)[0]['feature'].shape == (5, 2048)   # the plain files load
    feats['flow'].write_bytes(pickle.dumps(Shell(marker), protocol=4))
    refused(lambda: vas_dataset(tmp_path / 'vas', 'train', n_feats=5)[0], feats['flow'], 'posix.system')
    items = pd.DataFrame([dict(clip='x', mel=d / MEL_DIR / 'video_00001_mel.npy', target=0, **feats)])
    refused(lambda: SpecFeatsDataset(items, 'bninception', n_feats=5).features(0), feats['flow'], 'posix.system')
    assert not marker.exists()
    with pytest.raises(Exception): vas_dataset(tmp_path / 'vas', 'train', n_feats=5, trust=True)[0]
    assert marker.exists()


def test_transformer_data_section_trust(tmp_path, marker):
    from vgsg.train.transformer import feature_dataset
    d = tmp_path / 'vas' / 'features' / 'dog'
    feats = {k: d / FEATURE_DIRS[k] / 'video_00001.pkl' for k in ('rgb', 'flow')}
    write_fake_clip(d / MEL_DIR / 'video_00001_mel.npy', feats)
    (tmp_path / 'vas_train.txt').write_text('dog/video_00001\n')
    feats['rgb'].write_bytes(pickle.dumps(Shell(marker), protocol=4))
    data = dict(kind='vas', root=str(tmp_path / 'vas'))
    refused(lambda: feature_dataset(data, 'train', 5, 'bninception').features(0), feats['rgb'], 'posix.system')
    assert not marker.exists()
    with pytest.raises(Exception): feature_dataset(dict(data, trust=True), 'train', 5, 'bninception').features(0)
    assert marker.exists()


# ---------------------------------------------------------------- PyTorch files
@pytest.mark.parametrize('zipped', [True, False])
@pytest.mark.parametrize('payload,name', PAYLOADS)
def test_torch_files(tmp_path, marker, zipped, payload, name):
    p = tmp_path / 'model.ckpt'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': payload(marker)}, p, _use_new_zipfile_serialization=zipped)
    refused(lambda: load_torch(p), p, name)
    refused(lambda: load_torch(p, mmap=True), p, name)
    with pytest.raises(UnsafeCheckpointError): safe_load(p)
    refused(lambda: safe_load(p), p, name)
    assert not marker.exists()
    load_torch(p, trust=True)
    assert marker.exists()


def test_features_load_state_dict(tmp_path, marker):
    net = ResNet((1, 1, 1, 1), width=8)
    p = tmp_path / 'resnet50-evil.pth'
    torch.save({**net.state_dict(), 'x': Shell(marker)}, p)
    refused(lambda: load_state_dict(p), p, 'posix.system')
    assert not marker.exists()
    load_state_dict(p, trust=True)
    assert marker.exists()
    torch.save(net.state_dict(), tmp_path / 'plain.pth')
    assert set(load_state_dict(tmp_path / 'plain.pth')) == set(net.state_dict())


def test_vocoder_weights(tmp_path, marker):
    cfg = MelGANConfig(ngf=4, n_residual_layers=2)
    sd = Generator(cfg).state_dict()
    torch.save(sd, tmp_path / 'best_netG.pt')
    assert torch.equal(read_melgan(tmp_path / 'best_netG.pt')[0].state_dict()[next(iter(sd))], next(iter(sd.values())))
    p = tmp_path / 'evil_netG.pt'
    torch.save({**sd, 'x': Shell(marker)}, p)
    refused(lambda: read_melgan(p), p, 'posix.system')
    assert not marker.exists()
    with pytest.raises(Exception): read_melgan(p, trust=True)   # unpickled (command run), then the extra key
    assert marker.exists()


@pytest.mark.parametrize('content,expect', [(b'', 'empty file'), (b'hello world\n', 'not a readable PyTorch file'),
                                            (b'\x80\x02}q\x00(', 'not a readable PyTorch file')])
def test_convert_of_empty_or_foreign_file_is_one_line(tmp_path, content, expect):
    p = tmp_path / 'model.ckpt'
    p.write_bytes(content)
    err = io.StringIO()
    with contextlib.redirect_stderr(err): code = main(['convert', str(p), str(tmp_path / 'o'), '--kind', 'codebook'])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1 and str(p) in lines[0] and expect in lines[0], err.getvalue()
    assert not (tmp_path / 'o').exists()


def test_truncated_torch_file(tmp_path):
    torch.save({'w': torch.ones(1000)}, tmp_path / 'a.pt')
    data = (tmp_path / 'a.pt').read_bytes()
    (tmp_path / 'a.pt').write_bytes(data[:len(data) // 3])
    with pytest.raises(ValueError, match='a.pt: not a readable PyTorch file'): load_torch(tmp_path / 'a.pt')


# ---------------------------------------------------------------- YAML
def test_yaml_model_config(tmp_path, marker):
    from vgsg.train.trainer import run_config
    from vgsg.core.models import load_model
    run = tmp_path / 'run'; run.mkdir()
    (run / 'config.yaml').write_text(f"model: {{n_embed: 16}}\nx: !!python/object/apply:os.system ['touch {marker}']\n")
    for f in (lambda: read_yaml(run / 'config.yaml'), lambda: run_config(run), lambda: load_model(run)):
        msg = refused(f, f'{run / "config.yaml"} (line 2)', '!!python/object/apply:os.system')
        assert 'plain data' in msg
    assert not marker.exists()
    (run / 'config.yaml').write_text('model: {n_embed: 16\n')
    with pytest.raises(ValueError, match='config.yaml: not valid YAML'): read_yaml(run / 'config.yaml')


# ---------------------------------------------------------------- .npy / .npz
def test_npy_paths(tmp_path, marker):
    from vgsg.train.transformer import read_code_cache
    obj = np.array([Shell(marker)], dtype=object)
    np.save(tmp_path / 'x_mel.npy', obj, allow_pickle=True)
    refused(lambda: load_npy(tmp_path / 'x_mel.npy'), tmp_path / 'x_mel.npy', 'pickled Python objects')
    refused(lambda: load_mel(tmp_path / 'x_mel.npy'), tmp_path / 'x_mel.npy', 'pickled Python objects')
    (tmp_path / 'pickle.npy').write_bytes(pickle.dumps(Shell(marker)))          # a pickle posing as .npy
    refused(lambda: load_feature(tmp_path / 'pickle.npy'), tmp_path / 'pickle.npy', 'pickled Python objects')
    np.savez(tmp_path / 'codes.npz', codes=np.zeros((1, 3), np.int16), clips=obj)
    assert read_code_cache(tmp_path / 'codes.npz', ['a']) is None                   # an untrusted cache is just not used
    assert not marker.exists()
    np.load(tmp_path / 'x_mel.npy', allow_pickle=True)                          # control: the payload is real
    assert marker.exists()
