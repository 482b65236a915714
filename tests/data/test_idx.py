"""IDX reading: the shipped MNIST files, files the tests write, and corrupt files."""
import gzip

import numpy as np
import pytest

from layerc.data import DataError, load_data
from layerc.data.idx import idx_header, read_idx
from layerc.data.paths import SHIPPED

from .helpers import idx_bytes, idx_spec, image_set, write_idx

MNIST = SHIPPED / "mnist"


def load(spec, tmp_path, input_shape=(4, 4), output_shape=(4,), loss="sparse_categorical_crossentropy", **kw):
    return load_data(spec, spec_dir=tmp_path, input_shape=input_shape, output_shape=output_shape,
                     loss_name=loss, seed=0, **kw)


def test_mnist_headers_and_slices():
    assert idx_header(MNIST / "train-images-idx3-ubyte.gz") == (np.dtype(">u1"), (60000, 28, 28))
    assert idx_header(MNIST / "t10k-labels-idx1-ubyte.gz")[1] == (10000,)
    y = read_idx(MNIST / "train-labels-idx1-ubyte.gz", limit=10, ndim=1)
    assert y.tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first MNIST labels
    x = read_idx(MNIST / "train-images-idx3-ubyte.gz", limit=3)
    assert x.shape == (3, 28, 28) and x.dtype == np.uint8 and x.max() == 255 and x[0, 0, 0] == 0


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", ["uint8", "int32", "float32"])
def test_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype) if dtype != "uint8" \
        else np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    got = read_idx(write_idx(tmp_path / "a.idx", arr, gz))
    assert got.dtype == arr.dtype and np.array_equal(got, arr)
    assert read_idx(tmp_path / "a.idx", limit=1).shape == (1, 3, 5)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((50, 8, 8), np.uint8) + 7))
    (tmp_path / "t.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_idx(tmp_path / "t.gz")


def test_truncated_payload(tmp_path):
    (tmp_path / "t.idx").write_bytes(idx_bytes(np.zeros((5, 4, 4), np.uint8))[:-10])
    with pytest.raises(DataError, match="announces 5 samples of 4x4 .80 bytes. but only 70"):
        read_idx(tmp_path / "t.idx")


def test_trailing_bytes(tmp_path):
    (tmp_path / "t.idx").write_bytes(idx_bytes(np.zeros((5,), np.uint8)) + b"xx")
    with pytest.raises(DataError, match="more bytes"):
        read_idx(tmp_path / "t.idx")


@pytest.mark.parametrize("head", [b"\x50\x4b\x03\x04", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"\x00"])
def test_wrong_magic(tmp_path, head):
    (tmp_path / "t.idx").write_bytes(head + bytes(12))
    with pytest.raises(DataError, match="not an IDX file .magic number 0x"):
        read_idx(tmp_path / "t.idx")


def test_images_given_as_labels(tmp_path):
    image_set(tmp_path)
    with pytest.raises(DataError, match="wrong IDX magic number 0x00000803.*labels"):
        load(idx_spec(train={"x": "train-x.gz", "y": "train-x.gz"}), tmp_path)


def test_count_mismatch(tmp_path):
    image_set(tmp_path, n=20)
    write_idx(tmp_path / "train-y.gz", np.zeros(19, np.uint8))
    with pytest.raises(DataError, match="has 20 samples but .*train-y.gz has 19 labels"):
        load(idx_spec(), tmp_path)


def test_load_idx_rescale_and_reshape(tmp_path):
    x, y = image_set(tmp_path, n=20)
    ds = load(idx_spec(rescale=0.5, shuffle=False), tmp_path, input_shape=(4, 4, 1))
    assert ds.train[0].shape == (20, 4, 4, 1) and ds.train[0].dtype == np.float32
    np.testing.assert_array_equal(ds.train[0][..., 0], x.astype(np.float32) * 0.5)
    assert ds.train[1].dtype == np.int32 and ds.train[1].tolist() == y.tolist()
    assert ds.validation is None and ds.test is None


def test_limit_reads_first_samples(tmp_path):
    x, _ = image_set(tmp_path, n=20)
    ds = load(idx_spec(limit=7, shuffle=False), tmp_path, input_shape=(16,))
    np.testing.assert_array_equal(ds.train[0], x[:7].reshape(7, 16))


def test_labels_outside_output_range(tmp_path):
    image_set(tmp_path, classes=4)
    with pytest.raises(DataError, match=r"label 3 \(sample \d+\) is outside 0..2, the output layer's 3 classes"):
        load(idx_spec(), tmp_path, output_shape=(3,))
