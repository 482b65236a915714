"""`pip install .` (not editable) carries the built-in datasets (issue 18, point 12)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".hypothesis", ".venv", "results")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of this tree (so no build/ folder is left in it)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(tmp)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = tmp.glob("layerc-*.whl")
    return whl


def _md5sums() -> dict[str, str]:
    lines = (ROOT / "datasets" / "MD5SUMS").read_text().splitlines()
    return {name.removeprefix("./"): md5 for md5, name in (line.split() for line in lines if line.strip())}


def test_wheel_carries_every_dataset_file_byte_for_byte(wheel):
    sums = _md5sums()
    assert len(sums) == 15
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for name, md5 in sums.items():
            member = f"layerc/_datasets/{name}"
            assert member in names, member
            assert hashlib.md5(z.read(member)).hexdigest() == md5, member


def test_wheel_carries_the_init_templates(wheel):
    shipped = sorted(p.name for p in (ROOT / "layerc" / "templates").glob("*.yaml"))
    assert len(shipped) == 5
    with zipfile.ZipFile(wheel) as z:
        for name in shipped:
            member = f"layerc/templates/{name}"
            assert z.read(member) == (ROOT / "layerc" / "templates" / name).read_bytes(), member


def test_installed_copy_finds_mnist_from_another_directory(wheel, tmp_path):
    target, cwd = tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import layerc, layerc.data.paths as p; from layerc.data import estimate_bytes; "
            "print(layerc.__file__); print(p.find('mnist/t10k-labels-idx1-ubyte.gz', None)); "
            "print(estimate_bytes({'dataset': 'mnist'}, spec_dir=None))")
    env = {**os.environ, "PYTHONPATH": str(target), "LAYERC_DATA": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    where, found, size = r.stdout.split()
    assert Path(where).is_relative_to(target)
    assert Path(found) == target / "layerc" / "_datasets" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert int(size) == 70000 * (784 * 4 + 4)


def test_a_missing_builtin_dataset_says_so_before_the_memory_check(tmp_path, monkeypatch, capsys):
    from layerc.cli import main
    from layerc.data import paths

    monkeypatch.setattr(paths, "SHIPPED", tmp_path / "not-installed")
    monkeypatch.setenv("LAYERC_DATA", "")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spam.yaml"
    shutil.copy(ROOT / "specs" / "sms_spam_lstm.yaml", spec)
    with pytest.raises(SystemExit) as info:
        main(["train", str(spec), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert "built-in dataset 'sms_spam' not found" in err and "SMSSpamCollection" in err
    assert "LAYERC_DATA" in err and "needs about" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
