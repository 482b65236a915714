"""Weights, checkpoints and data files from other people: zip bombs, NaN, headers that do
not fit the spec, random bytes. Each is refused (or ignored) fast, in bounded memory."""
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from layerc import jobs, runs
from layerc.data import arrays
from layerc.data.errors import DataError
from layerc.runs import RunError


@pytest.fixture
def trained(tiny_spec, tmp_path):
    spec = tiny_spec(epochs=1)
    return spec, jobs.train(spec, run_dir=tmp_path / "run").run_dir


def bounded(fn, max_mb=50, max_s=10):
    """fn() with its peak traced allocation and time checked; returns its exception or None."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        fn()
        err = None
    except (RunError, DataError) as e:
        err = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < max_mb << 20, f"peak {peak >> 20} MB"
    assert time.perf_counter() - t < max_s
    return err


def npy_header(shape, dtype="<f4"):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def rewrite(path, replace=None, extra=None):
    """Copy the .npz at `path` with some members replaced by bombs and bombs added.

    replace/extra: {name: (npy header, bytes of zeros after it)}.
    """
    with np.load(path) as f:
        old = {k: f[k] for k in f.files}
    replace, extra = replace or {}, extra or {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, a in old.items():
            if k not in replace:
                with z.open(k + ".npy", "w") as m:
                    np.lib.format.write_array(m, a)
        for k, (header, zeros) in {**replace, **extra}.items():
            with z.open(k + ".npy", "w", force_zip64=True) as m:
                m.write(header)
                chunk = bytes(1 << 22)
                for _ in range(zeros // len(chunk)):
                    m.write(chunk)


BOMB = 256 << 20  # 256 MB of zeros: about 250 KB on disk


def test_bomb_in_a_needed_weights_member_is_refused(trained):
    spec, run = trained
    w = run / "weights.npz"
    rewrite(w, replace={"dense/kernel": (npy_header((12, 16)), BOMB)})
    assert w.stat().st_size < 2 << 20
    err = bounded(lambda: jobs.load_trained(spec, w))
    assert "dense/kernel" in str(err) and "zip bomb" in str(err)


def test_member_whose_size_disagrees_with_its_header_is_refused(trained):
    spec, run = trained
    w = run / "weights.npz"
    with np.load(w) as f:
        old = {k: f[k] for k in f.files}
    with zipfile.ZipFile(w, "w", zipfile.ZIP_STORED) as z:
        for k, a in old.items():
            with z.open(k + ".npy", "w") as m:
                np.lib.format.write_array(m, a)
                if k == "dense/kernel":
                    m.write(bytes(100))
    err = bounded(lambda: jobs.load_trained(spec, w))
    assert "dense/kernel" in str(err) and "declares" in str(err)


def test_bomb_in_an_extra_weights_member_is_never_read(trained):
    spec, run = trained
    w = run / "weights.npz"
    rewrite(w, extra={"junk": (npy_header((10 << 30,), "|u1"), BOMB)})
    assert bounded(lambda: jobs.load_trained(spec, w)) is None


def test_init_weights_never_reads_an_extra_bomb_member(trained):
    """--init-weights reads a file from elsewhere too: only the model's members are read."""
    spec, run = trained
    w = run / "weights.npz"
    rewrite(w, extra={"junk": (npy_header((10 << 30,), "|u1"), BOMB)})
    model = jobs.build(jobs.load_spec(spec))
    assert bounded(lambda: jobs._load_init_weights(model, w)) is None


def test_bombs_in_checkpoints(trained):
    spec, run = trained
    ck = run / "checkpoint.npz"
    keys = list(np.load(ck).files)
    good = ck.read_bytes()
    rewrite(ck, extra={"junk": (npy_header((10 << 30,), "|u1"), BOMB)})
    arrays_, meta = runs.load_checkpoint(run)  # the extra member is skipped
    assert "junk" not in arrays_ and meta["epoch"] == 1
    assert bounded(lambda: runs.load_checkpoint(run)) is None
    ck.write_bytes(good)
    opt = next(k for k in keys if k.startswith("optimizer/"))
    shape = np.load(ck)[opt].shape
    rewrite(ck, replace={opt: (npy_header(shape), BOMB)})
    err = bounded(lambda: runs.load_checkpoint(run))
    assert opt in str(err) and "zip bomb" in str(err)


def test_member_count_is_capped(trained, monkeypatch):
    spec, run = trained
    monkeypatch.setattr("layerc.npzfile.MAX_MEMBERS", 3)
    with pytest.raises(RunError, match="members"):
        jobs.load_trained(spec, run / "weights.npz")


def test_nan_and_inf_are_refused_naming_the_array(trained):
    spec, run = trained
    w = run / "weights.npz"
    d = dict(np.load(w))
    d["dense/kernel"][0, :3] = np.nan
    np.savez(w, **d)
    with pytest.raises(RunError, match=r"weights.npz: array 'dense/kernel' holds 3 NaN values; refused"):
        jobs.load_trained(spec, w)
    ck = run / "checkpoint.npz"
    d = dict(np.load(ck))
    opt = next(k for k in d if k.startswith("optimizer/") and d[k].dtype.kind == "f" and d[k].size)
    d[opt].reshape(-1)[0] = np.inf
    np.savez(ck, **d)
    with pytest.raises(RunError, match=rf"array '{opt}' holds 1 infinite values"):
        runs.load_checkpoint(run)


def test_headers_are_checked_before_the_model_is_allocated(trained, tmp_path):
    spec, run = trained
    big = tmp_path / "big.yaml"
    big.write_text(spec.read_text().replace("units: 16,", "units: 2000000,"))
    err = bounded(lambda: jobs.load_trained(big, run / "weights.npz"), max_mb=30, max_s=5)
    assert "dense/kernel" in str(err) and "(12, 16)" in str(err) and "(12, 2000000)" in str(err)


def test_random_bytes_are_not_called_pickled(tmp_path, trained):
    rng = np.random.default_rng(1)
    junk = rng.bytes(4096).replace(b"\x80", b"\x81")
    for name in ("x.npy", "x.npz"):
        (tmp_path / name).write_bytes(junk)
    with pytest.raises(DataError, match="not a NumPy .npy/.npz file"):
        arrays.read_npy(tmp_path / "x.npy")
    with pytest.raises(DataError, match="not a NumPy .npy/.npz file"):
        arrays.read_npz(tmp_path / "x.npz", ("x", "y"))
    spec, run = trained
    (run / "weights.npz").write_bytes(junk)
    with pytest.raises(RunError, match="not a NumPy .npy/.npz file"):
        jobs.load_trained(spec, run / "weights.npz")
    (run / "checkpoint.npz").write_bytes(junk)
    with pytest.raises(RunError, match="not a NumPy .npy/.npz file"):
        runs.load_checkpoint(run)


def test_real_pickles_are_still_refused_as_pickled(tmp_path, trained):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled"):
        arrays.read_npy(tmp_path / "o.npy")
    spec, run = trained
    np.savez(run / "weights.npz", **{"dense/kernel": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(RunError, match="pickled"):
        jobs.load_trained(spec, run / "weights.npz")


def test_checkpoint_declaring_more_than_the_memory_is_refused(trained, monkeypatch):
    spec, run = trained
    monkeypatch.setattr(jobs, "available_memory", lambda: 1000)
    with pytest.raises(RunError, match="only 0 MB are available"):
        runs.load_checkpoint(run)
