"""Image files as training data: a folder with one subfolder per class (Keras's
`image_dataset_from_directory`), or a CSV file listing image paths and labels.

The interface the other readers build on (data/stream.py streams and caches with it):

    listing = list_images(spec, src, spec_dir)       # Listing: paths, labels, class_names, bad
    listing = listing.limit(spec.limit)              # `limit:` files evenly spaced through it
    bad = check_headers(listing.paths)               # [(path, reason)]: headers only, no pixels
    x = decode_image(path, spec)                     # float32 (H, W, C) at image_size/color_mode;
                                                     # raises BadFile (.path, .reason)
    x, kept, bad = decode_all(listing.paths, spec)   # (N, H, W, C), indices decoded, bad files
    raise bad_files_error("train data (photos)", bad)   # the one error naming every bad file
    part = read_part(spec, src, spec_dir, limit, name)   # everything decoded, in memory (sources.Part)
    y = resize(x, (h, w), crop, pad, interpolation)   # keras.ops.image.resize, antialias off

A validation or test source passes the training classes: `list_images(spec, src, spec_dir,
class_names)`.

`spec` is a validated `ImagesData` (`layerc/spec/data.py`). The listing lives in
data/folders.py (re-exported here): it reads folder entries only, never opens an image and
imports neither NumPy nor Pillow; `list_files` there lists any file suffixes (data/text_files.py
lists .txt documents with it). Pillow (the `images` extra) is imported by the functions that
open files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .folders import (  # noqa: F401 (part of this module's interface)
    FORMATS, Listing, bad_files_error, find_source, list_csv, list_files, list_images, locate, walk_files,
)

PIL_FORMATS = {"BMP", "GIF", "JPEG", "MPO", "PNG"}  # MPO: a JPEG with extra frames, as cameras write
MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
INSTALL = "pip install 'layerc[images]'"


class BadFile(Exception):
    """One file that cannot be used, with the reason."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


# ---- opening and decoding ------------------------------------------------------------------

def pillow():
    """PIL.Image, with the decompression-bomb warning raised as an error; DataError without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"reading images needs Pillow: {INSTALL}") from None
    import warnings

    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    return Image


def open_image(path):
    """A lazily opened Pillow image (header read, pixels not decoded); raises BadFile."""
    Image = pillow()
    path = Path(path)
    try:
        im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadFile(path, f"too large to decode safely (over Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} "
                            "pixels, Image.MAX_IMAGE_PIXELS)") from None
    except FileNotFoundError:
        raise BadFile(path, "not found") from None
    except PermissionError:
        raise BadFile(path, "permission denied") from None
    except IsADirectoryError:
        raise BadFile(path, "a folder, not an image file") from None
    except Exception as e:  # Pillow's parsers raise many kinds for a file that is no image
        if path.stat().st_size == 0:
            raise BadFile(path, "an empty file (0 bytes)") from None
        raise BadFile(path, f"not an image Pillow can read ({e})") from None
    if im.format not in PIL_FORMATS:
        im.close()
        raise BadFile(path, f"a {im.format} image; images are JPEG, PNG, BMP or GIF")
    return im


def check_headers(paths) -> list[tuple[str, str]]:
    """(path, reason) for each file whose header cannot be read as an image; no pixel is decoded."""
    bad = []
    for p in paths:
        try:
            open_image(p).close()
        except BadFile as e:
            bad.append((e.path, e.reason))
    return bad


def decode_image(path, spec) -> np.ndarray:
    """One image file as the model gets it: decoded (GIF: first frame), in `spec.color_mode`,
    cropped or padded to the aspect ratio if asked, resized to `spec.image_size`.
    Raises BadFile for a file that cannot be decoded.

    Shapes: -> (height, width, channels) float32, values 0..255.
    """
    im = open_image(path)
    try:
        with im:
            im.seek(0)
            pixels = np.asarray(im.convert(MODES[spec.color_mode]), dtype=np.uint8)
    except BadFile:
        raise
    except Exception as e:  # a truncated or corrupt file fails only when its pixels are decoded
        raise BadFile(path, f"cannot be decoded ({e})") from None
    x = pixels.astype(np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    return resize(x, tuple(spec.image_size), spec.crop_to_aspect_ratio, spec.pad_to_aspect_ratio,
                  spec.interpolation)


class ImageDecoder:
    """`decode_image` with fixed settings (stream.image_settings: image_size, color_mode,
    interpolation, crop/pad to aspect ratio, Pillow's version), as a decoder that worker
    processes can rebuild from its JSON `remote` description (data/workers.py)."""

    bad_file = BadFile  # what it raises for a file that cannot be used

    def __init__(self, settings: dict):
        from types import SimpleNamespace

        self.settings = dict(settings)
        self.remote = {"images": self.settings}
        self.spec = SimpleNamespace(**self.settings)
        self.spec.image_size = tuple(self.spec.image_size)

    def __call__(self, path) -> np.ndarray:
        return decode_image(path, self.spec)


def decoder_from(remote: dict) -> ImageDecoder:
    """The decoder that `remote` (an ImageDecoder's `remote`) describes, in a worker."""
    return ImageDecoder(remote["images"])


def decode_all(paths, spec) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Every file decoded into one array, in this thread; (images, indices of the decoded
    files, bad files).

    Shapes: -> (decoded, height, width, channels) float32.
    """
    from functools import partial

    from .stream import decode_chunk

    x, left_out = decode_chunk(partial(decode_image, spec=spec), paths, skip=(BadFile,))
    skipped = {i for i, _, _ in left_out}
    if x is None:
        x = np.empty((0, *spec.image_size, spec.channels()), np.float32)
    return x, [i for i in range(len(paths)) if i not in skipped], [(path, why) for _, path, why in left_out]


def read_part(spec, src, spec_dir: Path | None, limit: int | None, name: str,
              class_names: list[str] | None = None):
    """One source's images decoded into memory, as a sources.Part (x float32 (N, H, W, C) 0..255,
    y int64 class ids; meta: class_names, paths, skipped: the (path, reason) of the bad files
    left out). Bad files are one DataError listing them all, or left out with `bad_files: skip`."""
    from .stream import image_part

    listing = list_images(spec, src, spec_dir, class_names).limit(limit)
    return image_part(spec, listing, name)  # decoded once and cached, or streamed (data/stream.py)


# ---- resizing ------------------------------------------------------------------------------

def resize(x: np.ndarray, size: tuple, crop_to_aspect_ratio: bool = False,
           pad_to_aspect_ratio: bool = False, interpolation: str = "bilinear") -> np.ndarray:
    """One image resized as `keras.ops.image.resize(x, size, interpolation=..., antialias=False,
    ...)`: bilinear or nearest with half-pixel centres, after a centred crop (or zero padding)
    to the target's aspect ratio when asked.

    Shapes: x (H, W, C) -> (size[0], size[1], C) float32.
    """
    th, tw = size
    h, w = x.shape[:2]
    if crop_to_aspect_ratio:
        ch = max(min(h, int(float(w * th) / tw)), 1)
        cw = max(min(w, int(float(h * tw) / th)), 1)
        top, left = int(float(h - ch) / 2), int(float(w - cw) / 2)
        x = x[top:top + ch, left:left + cw]
    elif pad_to_aspect_ratio:
        ph, pw = max(h, int(float(w * th) / tw)), max(w, int(float(h * tw) / th))
        top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
        padded = np.zeros((h + 2 * top, w + 2 * left, x.shape[2]), x.dtype)  # Keras pads both sides by top/left
        padded[top:top + h, left:left + w] = x
        x = padded
    x = np.asarray(x, dtype=np.float32)
    if x.shape[:2] == (th, tw):
        return np.ascontiguousarray(x)
    if interpolation == "nearest":
        return x[_nearest(x.shape[0], th)][:, _nearest(x.shape[1], tw)]
    r0, r1, rw = _bilinear(x.shape[0], th)
    c0, c1, cw = _bilinear(x.shape[1], tw)
    rows = x[r0] * (1 - rw)[:, None, None] + x[r1] * rw[:, None, None]
    return rows[:, c0] * (1 - cw)[None, :, None] + rows[:, c1] * cw[None, :, None]


def _nearest(n_in: int, n_out: int):
    """Source indices of half-pixel-centred nearest resampling (PyTorch's nearest-exact)."""
    f = np.float32
    return np.minimum((np.arange(n_out, dtype=f) + f(0.5)) * f(n_in / n_out), n_in - 1).astype(np.int64)


def _bilinear(n_in: int, n_out: int):
    """Source indices and weights of a half-pixel-centred linear resampling (no antialias)."""
    f = np.float32  # in float32 as PyTorch's kernel computes them (Keras's torch backend)
    src = f(n_in / n_out) * (np.arange(n_out, dtype=f) + f(0.5)) - f(0.5)
    src = np.maximum(src, f(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0.astype(f)


# ---- prediction inputs ---------------------------------------------------------------------

def predict_files(input_path) -> list[Path]:
    """The image files `layerc predict --input` names: one image, a folder of them (sorted, its
    subfolders included), or a list file with one path a line (relative to the list's folder)."""
    path = Path(input_path)
    if path.is_dir():
        bad: list = []
        files = walk_files(path, FORMATS, False, bad)
        if bad:
            raise bad_files_error(f"input folder {path}", bad, training=False)
        if not files:
            raise DataError(f"input folder {path} holds no images ({', '.join(FORMATS)})")
        return files
    if not path.is_file():
        raise DataError(f"input {path} not found")
    if path.suffix.lower() in FORMATS:
        return [path]
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: neither an image ({', '.join(FORMATS)}) nor a list of image paths "
                        "(UTF-8 text)") from None
    files = [path.parent / line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not files:
        raise DataError(f"{path}: lists no image files")
    return files


def predict_inputs(input_path, fitted: dict, chunk: int = 32) -> tuple[list[str], object]:
    """(file names, image batches) for prediction: `chunk` files at a time, decoded and scaled as
    the training data was (`fitted`: the run's data.json) when the batch is asked for, so a folder
    is never decoded whole. Bad files are one DataError listing them all, raised once every
    batch is read (before anything is written).

    Shapes: each batch (<= chunk, height, width, channels) in the training inputs' dtype.
    """
    from types import SimpleNamespace

    from .prepare import apply_scaling

    opts = SimpleNamespace(**fitted["images"])
    opts.channels = lambda: len(MODES[opts.color_mode])  # L, RGB, RGBA
    files = predict_files(input_path)

    def batches():
        bad = []
        for start in range(0, len(files), chunk):
            x, _, wrong = decode_all(files[start:start + chunk], opts)
            bad += wrong
            if not bad:
                yield apply_scaling(x, fitted.get("rescale"), fitted.get("standardize"),
                                    fitted.get("x_dtype") or "float32")
        if bad:
            raise bad_files_error("input", bad, training=False)

    return [str(f) for f in files], batches()
