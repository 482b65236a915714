"""Text documents as training data: .txt files (UTF-8) in one subfolder per class, as Keras's
`text_dataset_from_directory` reads them; the words become token ids as in the text format
(data/text.py), with the same vocabulary settings."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .folders import TEXT_FORMATS as FORMATS, bad_files_error, find_source, list_files


def read_document(path: Path) -> str:
    """A document's text; raises DataError naming the file when it cannot be read."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def read_part(spec, src, spec_dir: Path | None, limit: int | None, name: str, class_names=None):
    """One source's documents as a sources.Part (x: texts, y: int64 class ids; meta: class_names,
    skipped: the bad files left out). Unreadable files are one DataError listing them all, or left
    out with `bad_files: skip`."""
    from .sources import Part

    root = find_source(src.path, spec_dir)
    if not root.is_dir():
        raise DataError(f"{root}: format text_files reads a folder with one subfolder of .txt files per class")
    listing = list_files(root, FORMATS, class_names or spec.class_names, spec.follow_links,
                         training=class_names is None).limit(limit)
    texts, labels, bad = [], [], list(listing.bad)
    for path, label in zip(listing.paths, listing.labels):
        try:
            texts.append(read_document(path))
        except DataError as e:
            bad.append((str(path), str(e).removeprefix(f"{path}: ")))
            continue
        labels.append(label)
    bad.sort()  # in path order, wherever found
    if bad and spec.bad_files == "error":
        raise bad_files_error(f"{name} data ({root})", bad)
    return Part(texts, np.array(labels, dtype=np.int64), [str(root)],
                {"class_names": listing.class_names, "skipped": bad})
