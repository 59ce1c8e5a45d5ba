"The codec on hostile files (a seeded fuzz test) and on long audio (windows, streaming, output errors)."
import errno, math, os, struct, tracemalloc, zlib
from dataclasses import replace
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
import torch
import vgsg.codec as codec
from vgsg.audio import SR, synth_signal, save_wav, load_audio
from vgsg.codec import CodecError, encode, encode_file, decode_file, decode_spec, codebook_id
from vgsg.vqgan import VQModel, tiny_codebook

N_EMBED = 20   # 5 bits per code, so 20 … 31 are well-formed bits but no code


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return VQModel(replace(tiny_codebook, n_embed=N_EMBED)).eval()


@pytest.fixture(scope='module')
def base(model):
    "A valid 1-s file: 6 columns of 5 codes."
    return encode(synth_signal('hits', 1.0), model)


# An independent reading of the format (struct and Python integers, not the library's code): the oracle.
HEAD = struct.Struct('>4sB8sIIBIB')

def seal(body:bytes) -> bytes: return body + struct.pack('>I', zlib.crc32(body))

def expected(data:bytes, cid:bytes):
    "The (n_samples, cols, codes) a correct decoder must read from `data`, or None if it must refuse it."
    if len(data) < HEAD.size + 4: return None
    magic, version, fid, sr, n, rows, cols, bits = HEAD.unpack_from(data)
    if (magic, version, fid, sr, rows, bits) != (b'VGSC', 1, cid, SR, 5, 5) or n < 1: return None
    if cols != math.ceil((1 + n // 256) / 16): return None
    payload = data[HEAD.size:-4]
    if len(payload) != math.ceil(rows * cols * bits / 8) or zlib.crc32(data[:-4]) != struct.unpack('>I', data[-4:])[0]: return None
    value, nbits = int.from_bytes(payload, 'big'), 8 * len(payload)
    codes = [(value >> (nbits - bits * (i + 1))) & 31 for i in range(rows * cols)]
    if value & ((1 << (nbits - bits * rows * cols)) - 1) or max(codes) >= N_EMBED: return None
    return n, cols, codes


def mutations(base:bytes, rng, n:int):
    "`n` seeded mutations of `base`: bit flips, byte changes, truncations, extensions, header fields, consistent resizes."
    fields = {'version': (4, 'B'), 'rate': (13, 'I'), 'n': (17, 'I'), 'rows': (21, 'B'), 'cols': (22, 'I'), 'bits': (26, 'B')}
    for i in range(n):
        b, kind = bytearray(base), i % 6
        if kind == 0:
            for _ in range(rng.integers(1, 4)): b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            for _ in range(rng.integers(1, 4)): b[rng.integers(len(b))] = rng.integers(256)
        elif kind == 2: b = b[:rng.integers(len(b))]
        elif kind == 3: b += rng.integers(0, 256, rng.integers(1, 40)).astype(np.uint8).tobytes()
        elif kind == 4:
            at, fmt = fields[list(fields)[rng.integers(len(fields))]]
            top = 2 ** (8 * struct.calcsize(fmt)) - 1
            old = struct.unpack_from('>' + fmt, b, at)[0]
            struct.pack_into('>' + fmt, b, at, int(rng.choice([0, 1, top, top - 1, max(0, old - 1), min(top, old + 1), rng.integers(top)])))
        else:   # a forged file of another length: consistent header, random codes (some out of the codebook)
            samples = int(rng.choice([1, 255, 256, 4095, 4096, rng.integers(1, SR)]))
            cols = math.ceil((1 + samples // 256) / 16)
            codes = rng.integers(0, N_EMBED if rng.random() < 0.7 else 32, 5 * cols)
            struct.pack_into('>I', b, 17, samples); struct.pack_into('>I', b, 22, cols)
            b = b[:HEAD.size] + codec.pack_indices(codes, 5) + bytes(4)
        if kind == 5 or rng.random() < 0.5: b = seal(bytes(b[:-4])) if len(b) >= 4 else b
        yield bytes(b)


def test_fuzz_every_case_refused_or_decoded_correctly(model, base):
    "2000 seeded mutations: each is a CodecError or a correct decode, and nothing allocates beyond the checked sizes."
    cid, rng = codebook_id(model), np.random.default_rng(15)
    counts = {'refused': 0, 'decoded': 0}
    tracemalloc.start()
    try:
        for data in mutations(base, rng, 2000):
            want = expected(data, cid)
            tracemalloc.reset_peak()
            try: header, spec = decode_spec(data, model, 'fuzz.vgc')
            except CodecError as e:
                assert want is None, f'refused a valid file: {e}'
                assert str(e).startswith('fuzz.vgc: ') and '\n' not in str(e)
                counts['refused'] += 1
            else:
                assert want is not None, f'decoded an invalid file {data.hex()}'
                n, cols, codes = want
                assert (header.n_samples, header.cols) == (n, cols)
                assert codec.read_codes(data, model)[1].transpose(1, 2).flatten().tolist() == codes
                assert spec.shape == (80, 16 * cols) and torch.isfinite(spec).all()
                counts['decoded'] += 1
            assert tracemalloc.get_traced_memory()[1] < (1 << 20) + 200 * len(data)   # numpy's allocations (traced)
    finally: tracemalloc.stop()
    assert min(counts.values()) > 200, counts    # both outcomes are exercised


def test_huge_declared_sizes_refused_before_reading(model, base, tmp_path):
    "A header that declares an hour (or 54 hours) of codes is refused from the file's size, before it is read."
    for n in (SR * 3600, 2 ** 32 - 1):
        b = bytearray(base)
        struct.pack_into('>I', b, 17, n); struct.pack_into('>I', b, 22, math.ceil((1 + n // 256) / 16))
        (tmp_path / 'big.vgc').write_bytes(seal(bytes(b[:-4])))
        with pytest.raises(CodecError, match=r'big.vgc: \d+ bytes, expected \d+ \(truncated or corrupt\)'):
            decode_file(tmp_path / 'big.vgc', tmp_path / 'x.wav', model)
    assert not (tmp_path / 'x.wav').exists()


class Widths:
    "Record the widths (columns or frames) a function is called with."
    def __init__(self, fn, width): self.fn, self.width, self.seen = fn, width, []
    def __call__(self, x, *a, **k): self.seen.append(self.width(x)); return self.fn(x, *a, **k)


def test_long_audio_is_coded_in_windows_and_streamed(model, tmp_path, monkeypatch):
    "A minute at 44.1 kHz: read in blocks, coded 53 columns (848 frames) at a time, written as decoded."
    save_wav(tmp_path / 'long.wav', np.tile(synth_signal('scene', 10.0, sr=44100), 6), sr=44100)
    real_read, reads = sf.SoundFile.read, []
    def read(self, frames=-1, *a, **k): reads.append(frames); return real_read(self, frames, *a, **k)
    monkeypatch.setattr(sf.SoundFile, 'read', read)
    enc = Widths(model.encode_indices, lambda x: x.shape[-1])
    dec = Widths(model.decode_indices, lambda g: g.shape[-1])
    voc = Widths(lambda s: np.zeros(s.shape[-1] * 256, np.float32), lambda s: s.shape[-1])
    monkeypatch.setattr(model, 'encode_indices', enc); monkeypatch.setattr(model, 'decode_indices', dec)
    info = encode_file(tmp_path / 'long.wav', tmp_path / 'long.vgc', model)
    assert abs(info['seconds'] - 60) < 1e-6
    assert 0 < max(reads) <= 1 << 18                      # never the whole file at once
    assert max(enc.seen) == 848 and len(enc.seen) == math.ceil(math.ceil((1 + 60 * SR // 256) / 16) / 37)
    decode_file(tmp_path / 'long.vgc', tmp_path / 'back.wav', model, voc)
    assert max(dec.seen) == 53 and max(voc.seen) == 848
    assert sf.info(str(tmp_path / 'back.wav')).frames == 60 * SR


def test_streamed_encoding_equals_the_in_memory_one(model, tmp_path):
    "A 44.1-kHz stereo file encoded block by block gives the bytes `encode(load_audio(...))` gives."
    wav = synth_signal('scene', 20.0, sr=44100)
    sf.write(str(tmp_path / 'st.flac'), np.stack([wav, 0.3 * wav], 1), 44100)
    encode_file(tmp_path / 'st.flac', tmp_path / 'st.vgc', model)
    assert (tmp_path / 'st.vgc').read_bytes() == encode(load_audio(tmp_path / 'st.flac', n_samples=None), model)


def test_windows_join_close_to_the_whole_grid(model):
    "Decoding 25 s in windows gives (nearly) the spectrogram of decoding the same codes all at once."
    data = encode(synth_signal('scene', 25.0), model)
    whole = decode_spec(data, model, size=None)[1]
    windowed = decode_spec(data, model)[1]
    assert whole.shape == windowed.shape
    assert (whole - windowed).abs().mean() < 0.05 * whole.abs().mean()


@pytest.fixture
def vgc(model, tmp_path):
    (tmp_path / 'in.vgc').write_bytes(encode(synth_signal('hits', 2.0), model))
    return tmp_path / 'in.vgc'


def test_output_folder_not_writable_before_any_work(model, vgc, tmp_path, monkeypatch):
    "An output under a file, or in a read-only folder: one line naming the user's path, before decoding starts."
    monkeypatch.setattr(model, 'decode_indices', lambda *a: pytest.fail('decoded before checking the output'))
    (tmp_path / 'afile').write_bytes(b'x')
    with pytest.raises(OSError) as e: decode_file(vgc, tmp_path / 'afile' / 'out.wav', model)
    assert str(tmp_path / 'afile' / 'out.wav') in str(e.value) and '\n' not in str(e.value) and 'vgsg-write-test' not in str(e.value)
    monkeypatch.setattr(model, 'encode_indices', lambda *a: pytest.fail('encoded before checking the output'))
    with pytest.raises(OSError, match='out.vgc'): encode_file(tmp_path / 'nowhere.wav', tmp_path / 'afile' / 'out.vgc', model)
    if os.geteuid() == 0: return   # root writes into read-only folders: the case above stands in for it
    ro = tmp_path / 'ro'; ro.mkdir(); ro.chmod(0o555)
    try:
        with pytest.raises(OSError, match='ro/out.wav'): decode_file(vgc, ro / 'out.wav', model)
    finally: ro.chmod(0o755)


@pytest.mark.parametrize('failure', ['enospc', 'libsndfile'])
def test_disk_full_while_decoding(model, vgc, tmp_path, monkeypatch, failure):
    "ENOSPC (or libsndfile's 'System error' on a full disk) mid-write: '<path>: disk full', no file, no temp file."
    def full(self, data):
        if failure == 'enospc': raise OSError(errno.ENOSPC, 'No space left on device')
        raise sf.LibsndfileError(2, 'Error writing: ')
    monkeypatch.setattr(sf.SoundFile, 'write', full)
    if failure == 'libsndfile':
        import vgsg.core.io, shutil
        real = shutil.disk_usage
        monkeypatch.setattr(vgsg.core.io.shutil, 'disk_usage', lambda p: real(p)._replace(free=0))
    out = tmp_path / 'out.wav'
    with pytest.raises(OSError) as e: decode_file(vgc, out, model, lambda s: np.zeros(s.shape[-1] * 256, np.float32))
    assert str(e.value).endswith(f'{out}: disk full') and '.tmp' not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.vgc']


def test_disk_full_while_encoding(model, tmp_path, monkeypatch):
    save_wav(tmp_path / 'in.wav', synth_signal('hits', 2.0))
    real = Path.write_bytes
    def full(self, data):
        if self.suffix == '.vgc': raise OSError(errno.ENOSPC, 'No space left on device')
        return real(self, data)
    monkeypatch.setattr(Path, 'write_bytes', full)
    with pytest.raises(OSError) as e: encode_file(tmp_path / 'in.wav', tmp_path / 'out.vgc', model)
    assert str(e.value).endswith(f'{tmp_path / "out.vgc"}: disk full')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.wav']
