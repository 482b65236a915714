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

`spec` is a validated `ImagesData` (`layerc/spec/data.py`); `list_files` is the same listing
for any file suffixes (data/text_files.py lists .txt documents with it). Listing reads folder
entries only and never opens an image; Pillow (the `images` extra) is imported by the
functions that open files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError
from .paths import candidates

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras's ALLOWLIST_FORMATS
PIL_FORMATS = {"BMP", "GIF", "JPEG", "MPO", "PNG"}  # MPO: a JPEG with extra frames, as cameras write
MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
IGNORED = {"thumbs.db", "desktop.ini"}  # files a file manager leaves in folders
INSTALL = "pip install 'layerc[images]'"


class BadFile(Exception):
    """One file that cannot be used, with the reason."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class Listing:
    """The files of one source, in Keras's order, and what was wrong while listing them.

    Attributes:
        root: the folder (or CSV file) listed.
        paths: the files, class by class, sorted within each class (a CSV: in its row order).
        labels: each file's class id (index into class_names).
        class_names: the classes in id order.
        bad: (path, reason) for files and links that cannot be used (not images, loops).
    """

    root: Path
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)

    def take(self, keep) -> "Listing":
        keep = list(keep)
        return Listing(self.root, [self.paths[i] for i in keep], [self.labels[i] for i in keep],
                       self.class_names, self.bad)

    def limit(self, limit: int | None) -> "Listing":
        """`limit` files evenly spaced through the listing, in its order, so that every class keeps
        its share (the first files of a class folder listing would be one class)."""
        n = len(self.paths)
        if limit is None or limit >= n:
            return self
        return self.take(i * n // limit for i in range(limit))


# ---- listing -------------------------------------------------------------------------------

def locate(name: str, spec_dir: Path | None) -> Path | None:
    """The first existing folder or file for a source path, or None."""
    return next((p for p in candidates(name, spec_dir) if p.exists()), None)


def find_source(name: str, spec_dir: Path | None) -> Path:
    """A source's folder or CSV file; raises DataError listing the places tried."""
    found = locate(name, spec_dir)
    if found is None:
        tried = ", ".join(map(str, candidates(name, spec_dir)))
        raise DataError(f"data folder {name!r} not found (tried: {tried})")
    return found


def list_images(spec, src, spec_dir: Path | None, class_names: list[str] | None = None) -> Listing:
    """The images of one source of `spec` (ImagesData): a class folder tree or a CSV listing.

    Args:
        class_names: the training data's classes, for a validation or test source (its
            classes must be among them); default: `spec.class_names`, else the folder's.
    """
    root = find_source(src.path, spec_dir)
    if root.is_file():
        return list_csv(spec, root, class_names or spec.class_names)
    return list_files(root, FORMATS, class_names or spec.class_names, spec.follow_links,
                      training=class_names is None)


def list_files(root: Path, formats: tuple, class_names: list[str] | None, follow_links: bool,
               training: bool = True) -> Listing:
    """Files ending in `formats` in each class subfolder of `root`, in Keras's order: classes
    sorted by name (or as `class_names` gives them), files sorted by path within each class,
    subfolders included. Hidden files and folders are left out.

    Raises DataError for a folder with no class folders, a class with no files, and (when
    `training`) a single class; other files and symlink loops are returned in `bad`.
    """
    try:
        subdirs = sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir())
    except OSError as e:
        raise DataError(f"{root}: cannot list the folder ({e.strerror or e})") from None
    if class_names is not None:
        missing = [c for c in class_names if c not in subdirs]
        if missing and training:
            raise DataError(f"{root}: class_names names {', '.join(map(repr, missing))}, which "
                            f"{'is no subfolder' if len(missing) == 1 else 'are no subfolders'} "
                            f"(subfolders: {', '.join(subdirs) or 'none'})")
        if not training:
            extra = [d for d in subdirs if d not in class_names]
            if extra:
                raise DataError(f"{root}: folder {extra[0]!r} is no class of the training data "
                                f"({', '.join(class_names)})")
        names = list(class_names)
    else:
        names = subdirs
    if not names or (not training and not subdirs):
        raise DataError(f"{root}: holds no class folders (one subfolder per class, "
                        f"e.g. {root}/cats/, {root}/dogs/)")
    if training and len(names) == 1:
        raise DataError(f"{root}: holds one class folder only ({names[0]}); a classifier needs "
                        "at least two (one subfolder per class)")
    listing = Listing(root, class_names=names)
    empty = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue  # a validation or test folder without this class
        before = len(listing.bad)
        files = list(_walk(folder, formats, follow_links, listing.bad))
        if not files and len(listing.bad) == before:  # not a folder whose files are all bad
            empty.append(str(folder))
        listing.paths += files
        listing.labels += [label] * len(files)
    if empty:
        raise DataError(f"class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                        f"hold{'' if len(empty) > 1 else 's'} no files ({', '.join(formats)})")
    return listing


def _walk(folder: Path, formats: tuple, follow_links: bool, bad: list):
    """Files under `folder` with a suffix in `formats`, sorted by (folder, name) as Keras's
    os.walk-based listing gives them; other files go to `bad`. Linked folders are followed
    with `follow_links`, and one that leads back into its own path is a loop (in `bad`)."""
    found = []  # (folder path text, name, path)

    def visit(path: Path, ancestors: tuple):
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            bad.append((str(path), f"cannot list the folder ({e.strerror or e})"))
            return
        for e in entries:
            if e.name.startswith(".") or e.name.lower() in IGNORED:
                continue
            p = Path(e.path)
            try:
                is_dir = e.is_dir()
            except OSError as err:
                bad.append((str(p), f"cannot be read ({err.strerror or err})"))
                continue
            if is_dir:
                if e.is_symlink() and not follow_links:
                    continue
                try:
                    real = os.path.realpath(p, strict=True)
                except OSError as err:
                    bad.append((str(p), "a symlink loop (the link leads back to itself)"
                                if err.errno == 40 else f"cannot be read ({err.strerror or err})"))
                    continue
                if real in ancestors:
                    bad.append((str(p), f"a symlink loop (it leads back to {real})"))
                    continue
                visit(p, ancestors + (real,))
            elif e.name.lower().endswith(formats):
                found.append((str(path), e.name, p))
            elif not os.path.exists(p) and e.is_symlink():
                bad.append((str(p), "a broken symlink"))
            else:
                bad.append((str(p), f"not a {'/'.join(f.lstrip('.') for f in formats)} file"))

    visit(folder, (os.path.realpath(folder),))
    found.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in found]


def list_csv(spec, path: Path, class_names: list[str] | None) -> Listing:
    """Images listed in a CSV file (`path_column`, `label_column`), paths relative to the file."""
    from .csv import column_index, read_table

    table = read_table(path, True, ",")
    pcol = column_index(table, spec.path_column, "path")
    lcol = column_index(table, spec.label_column, "label")
    labels = [row[lcol].strip() for row in table.rows]
    if class_names is None:
        found = set(labels)
        names = sorted(found, key=lambda v: (0, int(v), v) if v.isdigit() else (1, 0, v))
    else:
        names = list(class_names)
    index = {n: i for i, n in enumerate(names)}
    listing = Listing(path, class_names=names)
    for row, line, label in zip(table.rows, table.lines, labels):
        if label not in index:
            raise DataError(f"{path}: line {line}: label {label!r} is not one of {', '.join(names)}")
        listing.paths.append(path.parent / row[pcol].strip())
        listing.labels.append(index[label])
    if class_names is None and len(names) == 1:
        raise DataError(f"{path}: every image has the label {names[0]!r}; a classifier needs at least two classes")
    return listing


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


def decode_all(paths, spec) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Every file decoded into one array; (images, indices of the decoded files, bad files).

    Shapes: -> (decoded, height, width, channels) float32.
    """
    h, w = spec.image_size
    out = np.empty((len(paths), h, w, spec.channels()), np.float32)
    kept, bad = [], []
    for i, p in enumerate(paths):
        try:
            out[len(kept)] = decode_image(p, spec)
        except BadFile as e:
            bad.append((e.path, e.reason))
            continue
        kept.append(i)
    return out[:len(kept)], kept, bad


def bad_files_error(what: str, bad: list[tuple[str, str]], training: bool = True) -> DataError:
    """One error naming every bad file."""
    listed = "; ".join(f"{p}: {r}" for p, r in bad)
    them = "them" if len(bad) > 1 else "it"
    advice = (f"training does not start (fix or remove {them}, or set `bad_files: skip` in `data:` to train "
              f"without {them})" if training else f"fix or remove {them}")
    return DataError(f"{what}: {len(bad)} file{'s' if len(bad) > 1 else ''} cannot be used, so {advice}: {listed}")


def read_part(spec, src, spec_dir: Path | None, limit: int | None, name: str,
              class_names: list[str] | None = None):
    """One source's images decoded into memory, as a sources.Part (x float32 (N, H, W, C) 0..255,
    y int64 class ids; meta: class_names, paths, skipped: the (path, reason) of the bad files
    left out). Bad files are one DataError listing them all, or left out with `bad_files: skip`."""
    from .sources import Part

    listing = list_images(spec, src, spec_dir, class_names).limit(limit)
    x, kept, bad = decode_all(listing.paths, spec)
    bad = sorted(listing.bad + bad)  # in path order, wherever found
    if bad and spec.bad_files == "error":
        raise bad_files_error(f"{name} data ({listing.root})", bad)
    y = np.array([listing.labels[i] for i in kept], dtype=np.int64)
    return Part(x, y, [str(listing.root)], {"class_names": listing.class_names, "skipped": bad,
                                            "paths": [str(listing.paths[i]) for i in kept]})


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
        files = _walk(path, FORMATS, False, bad)
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


def predict_inputs(input_path, fitted: dict) -> tuple[list[str], np.ndarray]:
    """(file names, images) for prediction, decoded and scaled as the training data was
    (`fitted`: the run's data.json). Bad files are one DataError listing them all.

    Shapes: -> (N, height, width, channels) in the training inputs' dtype.
    """
    from types import SimpleNamespace

    from .prepare import apply_scaling

    opts = SimpleNamespace(**fitted["images"])
    opts.channels = lambda: len(MODES[opts.color_mode])  # L, RGB, RGBA
    files = predict_files(input_path)
    x, kept, bad = decode_all(files, opts)
    if bad:
        raise bad_files_error("input", bad, training=False)
    x = apply_scaling(x, fitted.get("rescale"), fitted.get("standardize"), fitted.get("x_dtype") or "float32")
    return [str(f) for f in files], x
