"""Small data files written by the tests."""
import gzip
from pathlib import Path

import numpy as np

TYPE_CODES = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C, np.dtype("float32"): 0x0D}


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)
    head = bytes([0, 0, TYPE_CODES[arr.dtype], arr.ndim]) + np.array(arr.shape, ">i4").tobytes()
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def image_set(tmp_path: Path, n: int = 20, classes: int = 4, seed: int = 0, prefix: str = "train"):
    """n random 4x4 uint8 images with labels 0..classes-1, as gzipped IDX files."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)
    y = (np.arange(n) % classes).astype(np.uint8)
    write_idx(tmp_path / f"{prefix}-x.gz", x)
    write_idx(tmp_path / f"{prefix}-y.gz", y)
    return x, y


def idx_spec(**kw):
    return {"format": "idx", "train": {"x": "train-x.gz", "y": "train-y.gz"}, **kw}


MNIST = Path(__file__).resolve().parents[2] / "datasets" / "mnist"


def mnist_digits(n: int):
    """The first n training images and labels of the shipped MNIST."""
    from layerc.data.idx import read_idx

    return (read_idx(MNIST / "train-images-idx3-ubyte.gz", n),
            read_idx(MNIST / "train-labels-idx1-ubyte.gz", n, ndim=1))


def mnist_folder(root: Path, n: int = 200, suffix: str = ".png", **save):
    """The first n MNIST digits as image files in one folder per digit (root/3/00007.png);
    returns (x, y) in the order the folder lists them: class by class, files sorted."""
    from PIL import Image

    x, y = mnist_digits(n)
    for i, (image, label) in enumerate(zip(x, y)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / str(label) / f"{i:05d}{suffix}", **save)
    order = sorted(range(n), key=lambda i: (y[i], i))
    return x[order], y[order]
