"""`.keras` files are untrusted input: bombs, traversal and absolute names, huge or too many
members, non-zips, truncated or corrupt archives and weights that do not fit the config are
each refused with one clear line, no traceback, and nothing written. No Keras needed."""
import io
import json
import struct
import zipfile

import numpy as np
import pytest

import layerc
from layerc.interop.keras import save_keras
from layerc.spec import parse_spec

from ..cli.test_errors import cli

h5py = pytest.importorskip("h5py")

SPEC = "input: {shape: [3]}\nlayers:\n  - Dense: {units: %d, name: out}\n"


@pytest.fixture
def members(tmp_path):
    """The members of a valid exported .keras file."""
    save_keras(layerc.build(parse_spec(SPEC % 4)), tmp_path / "valid.keras")
    with zipfile.ZipFile(tmp_path / "valid.keras") as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def refused(tmp_path, path, *needles):
    code, out = cli("import", str(path), "--output", str(tmp_path / "out"))
    assert code == 1, out
    assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out
    assert not (tmp_path / "out").exists()
    return out


def patch_sizes(data: bytes, name: bytes, size: int) -> bytes:
    """Declare `size` bytes (compressed and not) for a member in the central directory."""
    i = data.find(b"PK\x01\x02")
    while data[i + 46:i + 46 + len(name)] != name:
        i = data.find(b"PK\x01\x02", i + 4)
    return data[:i + 20] + struct.pack("<II", size, size) + data[i + 28:]


def test_the_valid_archive_imports(tmp_path, members):
    code, out = cli("import", str(write_zip(tmp_path / "m.keras", members)), "--output", str(tmp_path / "out"))
    assert code == 0, out


def test_zip_bomb(tmp_path, members):
    members["model.weights.h5"] = bytes(40 << 20)
    path = write_zip(tmp_path / "m.keras", members, zipfile.ZIP_BZIP2)
    refused(tmp_path, path, "member 'model.weights.h5' inflates", "a zip bomb")


@pytest.mark.parametrize("name", ["../evil.json", "assets/../../evil", "/etc/evil", "\\\\server\\evil", "C:evil"])
def test_traversal_and_absolute_names(tmp_path, members, name):
    members[name] = b"x"
    refused(tmp_path, write_zip(tmp_path / "m.keras", members), "unsafe member name")


def test_huge_members(tmp_path, members, monkeypatch):
    path = write_zip(tmp_path / "m.keras", members)
    path.write_bytes(patch_sizes(path.read_bytes(), b"config.json", 1_000_000_000))
    refused(tmp_path, path, "member 'config.json' declares 1,000,000,000 bytes, over the 64 MB read limit")
    from layerc import jobs

    monkeypatch.setattr(jobs, "available_memory", lambda: 2 << 30)  # weights are read up to half of it
    path = write_zip(tmp_path / "m.keras", members)
    path.write_bytes(patch_sizes(path.read_bytes(), b"model.weights.h5", 3_000_000_000))
    refused(tmp_path, path, "member 'model.weights.h5' declares 3,000,000,000 bytes, over the 1024 MB read limit")


def test_too_many_members(tmp_path, members):
    members.update({f"assets/{i}": b"" for i in range(100)})
    refused(tmp_path, write_zip(tmp_path / "m.keras", members), "103 members in the archive")


def test_duplicate_members(tmp_path, members):
    path = write_zip(tmp_path / "m.keras", members)
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning):
        z.writestr("config.json", members["config.json"])
    refused(tmp_path, path, "the member 'config.json' appears twice")


def test_not_a_zip(tmp_path):
    (tmp_path / "m.keras").write_text("layers: []\n")
    refused(tmp_path, tmp_path / "m.keras", "not a .keras file (a .keras file is a zip archive)")


def test_truncated_and_corrupt_archives(tmp_path, members):
    data = write_zip(tmp_path / "m.keras", members).read_bytes()
    (tmp_path / "m.keras").write_bytes(data[:len(data) // 2])
    refused(tmp_path, tmp_path / "m.keras", "not a readable .keras archive")
    at = data.find(b"HDF") + 200  # a byte inside the stored weights
    (tmp_path / "m.keras").write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    refused(tmp_path, tmp_path / "m.keras", "not a readable .keras archive", "CRC")


def test_weights_that_do_not_fit_the_config(tmp_path, members):
    save_keras(layerc.build(parse_spec(SPEC % 5)), tmp_path / "five.keras")
    members["config.json"] = zipfile.ZipFile(tmp_path / "five.keras").read("config.json")
    refused(tmp_path, write_zip(tmp_path / "m.keras", members),
            "layers/dense/vars/0 (out kernel) has shape (3, 4), the config needs (3, 5)")


def test_weights_that_are_not_hdf5_or_not_numbers(tmp_path, members):
    members["model.weights.h5"] = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4
    refused(tmp_path, write_zip(tmp_path / "m.keras", members), "the weights are not a readable HDF5 file")
    for bad, message in ((np.full((3, 4), np.nan, np.float32), "holds NaN or infinite values"),
                         (np.zeros((3, 4), np.int64), "is int64, not floating point")):
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f["layers/dense/vars/0"] = bad
            f["layers/dense/vars/1"] = np.zeros(4, np.float32)
        members["model.weights.h5"] = buf.getvalue()
        refused(tmp_path, write_zip(tmp_path / "m.keras", members), message)


def test_links_in_the_weights_are_not_followed(tmp_path, members):
    (tmp_path / "secret.h5").write_bytes(b"")
    with h5py.File(tmp_path / "secret.h5", "w") as f:
        f["data"] = np.ones((3, 4), np.float32)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["layers/dense/vars/0"] = h5py.ExternalLink(str(tmp_path / "secret.h5"), "/data")
        f["layers/dense/vars/1"] = np.zeros(4, np.float32)
    members["model.weights.h5"] = buf.getvalue()
    refused(tmp_path, write_zip(tmp_path / "m.keras", members), "is a link in the weights file")


@pytest.mark.parametrize("config", [b"{not json", b"[" * 100_000 + b"]" * 100_000, b"[1, 2]",
                                    json.dumps({"class_name": "MyModel", "module": "mine", "config": {}}).encode()])
def test_configs_that_are_not_keras_models(tmp_path, members, config):
    members["config.json"] = config
    refused(tmp_path, write_zip(tmp_path / "m.keras", members))


def test_a_missing_file_is_one_line(tmp_path):
    refused(tmp_path, tmp_path / "nope.keras", "cannot read")


def _paths(obj, path=()):
    yield path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, path + (k,))


def _replaced(obj, path, value):
    if not path:
        return value
    obj = json.loads(json.dumps(obj))
    node = obj
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return obj


def test_every_config_value_replaced_by_a_wrong_one_is_success_or_one_line(tmp_path, members):
    config = json.loads(members["config.json"])
    seen = set()
    for path in _paths(config):
        for value in (None, -3, "x", []):
            members["config.json"] = json.dumps(_replaced(config, path, value)).encode()
            code, out = cli("import", str(write_zip(tmp_path / "m.keras", members)), "--output", str(tmp_path / "out"))
            assert code in (0, 1) and "Traceback" not in out and "--debug" not in out, (path, value, out)
            seen.add(code)
    assert seen == {0, 1}
