"""CSV memory estimates against what the loader really peaks at, and `limit:` stopping the parse."""
import tracemalloc

import numpy as np
import pytest

from layerc.data import estimate_bytes, load_data
from layerc.data.csv import read_table
from layerc.data.estimate import _line_count


def write_csv(path, rows, cols, fmt="%.6f", seed=0):
    rng = np.random.default_rng(seed)
    x = np.c_[rng.standard_normal((rows, cols)) * 100, rng.integers(0, 2, rows)]
    names = ",".join([f"f{i}" for i in range(cols)] + ["y"])
    np.savetxt(path, x, delimiter=",", fmt=fmt, header=names, comments="")
    return path


def peak_of_loading(spec, tmp_path, cols):
    tracemalloc.start()
    try:
        load_data({"format": "csv", "shuffle": False, **spec}, spec_dir=tmp_path, input_shape=(cols,),
                  output_shape=(2,), loss_name="sparse_categorical_crossentropy", seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("rows,cols,fmt", [(4000, 10, "%.6f"), (2000, 40, "%.3f"), (4000, 10, "%d")])
def test_estimate_covers_the_measured_parsing_peak(tmp_path, rows, cols, fmt):
    write_csv(tmp_path / "t.csv", rows, cols, fmt)
    spec = {"format": "csv", "train": "t.csv", "target": "y"}
    peak = peak_of_loading(spec, tmp_path, cols)
    estimate = estimate_bytes(spec, spec_dir=tmp_path)
    assert peak <= estimate <= 1.5 * peak, (peak, estimate)
    assert estimate > 20 * rows * (cols + 1) * 4  # far above the loaded float32 arrays


def test_estimate_with_limit_counts_only_the_limited_rows(tmp_path):
    write_csv(tmp_path / "t.csv", 20000, 10)
    spec = {"format": "csv", "train": "t.csv", "target": "y", "limit": 500}
    peak = peak_of_loading(spec, tmp_path, 10)
    estimate = estimate_bytes(spec, spec_dir=tmp_path)
    assert peak <= estimate <= 1.5 * peak, (peak, estimate)
    assert estimate < estimate_bytes({**spec, "limit": None}, spec_dir=tmp_path) / 20


def test_line_count_stops_at_the_limit(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n" + b"5,6\n" * 10)
    assert _line_count(path) == (14, len(path.read_bytes()))
    assert _line_count(path, 3) == (3, 12)


def test_loader_stops_parsing_after_limit_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8\n")
    table = read_table(path, limit=3)
    assert table.rows == [["1", "2", "0"], ["3", "4", "1"], ["5", "6", "0"]] and table.lines == [2, 3, 4]
    ds = load_data({"format": "csv", "train": "t.csv", "target": "y", "limit": 2, "shuffle": False},
                   spec_dir=tmp_path, input_shape=(2,), output_shape=(2,),
                   loss_name="sparse_categorical_crossentropy", seed=0)
    np.testing.assert_array_equal(ds.train[0], [[1, 2], [3, 4]])


def test_timeseries_estimate_counts_parsing(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("t,v\n" + "".join(f"{i},{np.sin(i):.5f}\n" for i in range(5000)))
    spec = {"format": "timeseries", "train": "s.csv", "column": "v", "window": 10}
    assert estimate_bytes(spec, spec_dir=tmp_path) > 5000 * 2 * 80
