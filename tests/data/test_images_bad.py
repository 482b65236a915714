"""Bad image data (issue 21): each bad file named with its reason, all at once, no traceback;
`bad_files: skip`; validate and summary read the folder listing only; Pillow is the
`images` extra and is imported only when images are opened."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from layerc import jobs
from layerc.cli import main
from layerc.data import DataError, load_data
from layerc.spec.data import parse_data_spec

from ..modules import ROOT, modules_after
from .helpers import mnist_folder

Image = pytest.importorskip("PIL.Image")

SPEC = """\
name: digits
seed: 3
input: {{shape: [28, 28, 1]}}
layers:
  - Flatten
  - Dense: {{units: {units}, activation: softmax}}
data: {{format: images, train: digits, image_size: [28, 28], color_mode: grayscale, rescale: 0.00392156862745098{extra}}}
train: {{optimizer: adam, loss: sparse_categorical_crossentropy, batch_size: 16, epochs: 1}}
"""


def folder(tmp_path, n=30):
    mnist_folder(tmp_path / "digits", n)
    return tmp_path / "digits"


def spec_file(tmp_path, extra="", units=10, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(SPEC.format(extra=extra, units=units))
    return path


def load(tmp_path, units=10, **kw):
    spec = parse_data_spec({"format": "images", "train": "digits", "image_size": [28, 28],
                            "color_mode": "grayscale", **kw})
    return load_data(spec, spec_dir=tmp_path, input_shape=(28, 28, 1), output_shape=(units,),
                     loss_name="sparse_categorical_crossentropy", seed=0)


def cli(*args):
    """(exit code, stdout + stderr) of the CLI as the console script runs it."""
    r = subprocess.run([sys.executable, "-m", "layerc", *map(str, args)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return r.returncode, r.stdout + r.stderr


def corrupt_png(path: Path):
    """A PNG whose header is whole and whose pixel data is garbage."""
    Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))


def truncated_jpeg(path: Path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(
        path, format="JPEG", quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("make, reason", [
    (truncated_jpeg, "cannot be decoded (image file is truncated"),
    (corrupt_png, "cannot be decoded"),
    (lambda p: p.write_bytes(b""), "an empty file (0 bytes)"),
    (lambda p: p.write_text("no picture here"), "not an image Pillow can read"),
])
def test_each_bad_file_is_named_with_its_reason(tmp_path, make, reason):
    bad = folder(tmp_path) / "5" / "bad.jpg"
    make(bad)
    with pytest.raises(DataError) as e:
        load(tmp_path)
    assert f"{bad}: {reason}" in str(e.value)
    assert "training does not start" in str(e.value) and "bad_files: skip" in str(e.value)


def test_a_file_of_another_kind_in_a_class_folder(tmp_path):
    root = folder(tmp_path)
    (root / "2" / "notes.txt").write_text("taken on a sunny day")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "2" / "scan.png", format="TIFF")
    (root / "2" / ".DS_Store").write_bytes(b"\0\1")  # hidden files are left out, as Keras does
    with pytest.raises(DataError) as e:
        load(tmp_path)
    msg = str(e.value)
    assert f"{root / '2' / 'notes.txt'}: not a bmp/gif/jpeg/jpg/png file" in msg
    assert f"{root / '2' / 'scan.png'}: a TIFF image; images are JPEG, PNG, BMP or GIF" in msg
    assert "2 files cannot be used" in msg and ".DS_Store" not in msg


@pytest.mark.parametrize("side", [40, 50])  # over the limit (Pillow warns), over twice the limit (Pillow refuses)
def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    bomb = folder(tmp_path) / "1" / "bomb.png"
    Image.fromarray(np.zeros((side, side), np.uint8)).save(bomb)
    with pytest.raises(DataError, match="bomb.png: too large to decode safely"):
        load(tmp_path)


def test_a_symlink_loop_with_follow_links(tmp_path):
    root = folder(tmp_path)
    (root / "4" / "again").symlink_to(root / "4", target_is_directory=True)
    plain = load(tmp_path)  # not followed: left out, as Keras does
    with pytest.raises(DataError) as e:
        load(tmp_path, follow_links=True)
    assert f"{root / '4' / 'again'}: a symlink loop" in str(e.value)
    skipped = load(tmp_path, follow_links=True, bad_files="skip")
    assert len(skipped.train[0]) == len(plain.train[0])
    assert skipped.info["notes"] == [f"skipped 1 file that cannot be used (bad_files: skip), {root / '4' / 'again'}: "
                                     f"a symlink loop (it leads back to {root / '4'})"]
    (root / "4" / "again").unlink()
    (root / "4" / "sub").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "4" / "sub" / "x.png")
    (root / "4" / "linked").symlink_to(root / "4" / "sub", target_is_directory=True)
    assert len(load(tmp_path, follow_links=True).train[0]) == len(plain.train[0]) + 2  # sub/x.png, linked/x.png


def test_folder_problems(tmp_path):
    root = folder(tmp_path)
    (root / "empty").mkdir()
    with pytest.raises(DataError, match=f"class folder {root / 'empty'} holds no files"):
        load(tmp_path, units=11)
    (root / "empty").rmdir()
    for d in list(root.iterdir()):
        if d.name != "1":
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
    with pytest.raises(DataError, match=f"{root}: holds one class folder only \\(1\\)"):
        load(tmp_path)
    with pytest.raises(DataError, match="data folder 'nowhere' not found"):
        load(tmp_path, train="nowhere")
    with pytest.raises(DataError, match="class_names names '7', which is no subfolder"):
        load(tmp_path, class_names=["1", "7"])


def test_unreadable_files_are_named(tmp_path):
    """Root reads any file: there the check runs without the capabilities that override permissions."""
    root = folder(tmp_path, 30)
    secret = root / "0" / sorted(os.listdir(root / "0"))[0]
    locked = root / "9"
    code = ("from layerc.data import load_data; from layerc.spec.data import parse_data_spec\n"
            f"spec = parse_data_spec({{'format': 'images', 'train': {str(root)!r}, 'image_size': [28, 28]}})\n"
            "try:\n    load_data(spec, spec_dir=None, input_shape=(28, 28, 3), output_shape=(10,), loss_name=None, seed=0)\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    caps = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    secret.chmod(0)
    locked.chmod(0)
    try:
        r = subprocess.run([*caps, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)
    assert r.stdout.startswith("DataError"), r.stdout + r.stderr
    assert f"{secret}: permission denied" in r.stdout
    assert f"{locked}: cannot list the folder (Permission denied)" in r.stdout


def test_every_bad_file_at_once_then_skip_trains_without_them(tmp_path):
    root = folder(tmp_path)
    truncated_jpeg(root / "3" / "cut.jpg")
    (root / "6" / "zero.png").write_bytes(b"")
    (root / "8" / "readme.md").write_text("#")
    spec = spec_file(tmp_path)
    code, out = cli("train", spec, "--run-dir", tmp_path / "run")
    assert code == 1 and "Traceback" not in out
    assert "3 files cannot be used" in out
    for name in ("cut.jpg", "zero.png", "readme.md"):
        assert name in out
    assert not (tmp_path / "run" / "weights.npz").exists()
    result = jobs.train(spec_file(tmp_path, ", bad_files: skip"), run_dir=tmp_path / "run2")
    assert any("skipped 3 files that cannot be used" in m for m in result.messages)
    assert (result.run_dir / "weights.npz").exists()


def test_validate_and_summary_read_the_listing_only(tmp_path, monkeypatch):
    root = folder(tmp_path)
    corrupt_png(root / "7" / "corrupt.png")
    spec = spec_file(tmp_path)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    for command in ("validate", "summary"):
        with pytest.raises(SystemExit) as e:
            main([command, str(spec)])
        assert e.value.code in (0, None) and opened == [], command
    bad = spec_file(tmp_path, units=9, name="nine.yaml")  # the class count is checked from the folder listing
    with pytest.raises(SystemExit) as e:
        main(["validate", str(bad)])
    assert e.value.code == 1 and opened == []
    with pytest.raises(DataError, match="corrupt.png: cannot be decoded"):
        jobs.train(spec, run_dir=tmp_path / "run")
    assert len(opened) == 31  # training decodes each image once


def test_without_pillow_an_image_spec_names_the_extra(tmp_path):
    folder(tmp_path)
    spec = spec_file(tmp_path)
    code = ("import sys; sys.modules['PIL'] = None; sys.argv = ['layerc', *sys.argv[1:]]\n"
            "from layerc.__main__ import main; main()")
    for command, want in (("validate", 0), ("train", 1)):
        r = subprocess.run([sys.executable, "-c", code, command, str(spec), *(["--run-dir", str(tmp_path / "r")]
                            if command == "train" else [])],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == want, r.stdout + r.stderr
        if command == "train":
            assert "reading images needs Pillow: pip install 'layerc[images]'" in r.stderr
            assert "Traceback" not in r.stderr


def test_pillow_is_not_imported_to_summarise(tmp_path):
    assert "PIL" not in modules_after("summary", "specs/mnist_cnn.yaml")[1]
    assert "PIL" not in modules_after("--version")[1]
    folder(tmp_path)
    out, mods = modules_after("summary", str(spec_file(tmp_path)))
    assert "7,850" in out and "PIL" not in mods and "numpy" not in mods  # the listing opens no image
