"""Text documents as training data: .txt files (UTF-8) in one subfolder per class, as Keras's
`text_dataset_from_directory` reads them; the words become token ids as in the text format
(data/text.py), with the same vocabulary settings.

Streamed (`stream: true`, or documents over the memory budget), no document is kept: listing
reads each file once to find the bad ones, the vocabulary is counted in one pass over the
training files (`tokens`), and training reads, tokenises and pads each batch's files as it
goes (`streamed_ids`, a data/stream.py `Streamed`), giving the rows the in-memory path gives.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import text
from .errors import DataError
from .folders import TEXT_FORMATS as FORMATS, bad_files_error, find_source, list_files
from .stream import Streamed


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
    """One source's documents as a sources.Part (x: texts, or with `spec.stream` a `Streamed` of
    the files, read only to check them; y: int64 class ids; meta: class_names, skipped: the bad
    files left out). Unreadable files are one DataError listing them all, or left out with
    `bad_files: skip`."""
    from .sources import Part

    root = find_source(src.path, spec_dir)
    if not root.is_dir():
        raise DataError(f"{root}: format text_files reads a folder with one subfolder of .txt files per class")
    listing = list_files(root, FORMATS, class_names or spec.class_names, spec.follow_links,
                         training=class_names is None).limit(limit)
    texts, kept, labels, bad = [], [], [], list(listing.bad)
    for path, label in zip(listing.paths, listing.labels):
        try:
            document = read_document(path)
        except DataError as e:
            bad.append((str(path), str(e).removeprefix(f"{path}: ")))
            continue
        if spec.stream:
            kept.append(path)
        else:
            texts.append(document)
        labels.append(label)
    bad.sort()  # in path order, wherever found
    if bad and spec.bad_files == "error":
        raise bad_files_error(f"{name} data ({root})", bad)
    x = Streamed(kept, read_document, (), object) if spec.stream else texts  # ids once the vocabulary is known
    return Part(x, np.array(labels, dtype=np.int64), [str(root)],
                {"class_names": listing.class_names, "skipped": bad})


def tokens(documents: Streamed, lowercase: bool):
    """Each document's words, read from its file when asked (one document in memory at a time)."""
    for path in documents.paths:
        yield text.tokenize(read_document(path), lowercase)


def streamed_ids(documents: Streamed, vocabulary: list[str], settings: dict) -> Streamed:
    """The documents as padded token-id rows, read and encoded batch by batch as training asks.

    Args:
        settings: the fitted text state (lowercase, max_length, padding, truncating).

    Shapes: x[index] -> (len(index), max_length) int32, the rows `text.encode` gives in memory.
    """
    from functools import partial

    decode = partial(_ids, index=text.vocabulary_index(vocabulary), lowercase=settings["lowercase"],
                     max_length=settings["max_length"], padding=settings["padding"],
                     truncating=settings["truncating"])
    return Streamed(documents.paths, decode, (settings["max_length"],), np.int32)


def _ids(path, index, lowercase, max_length, padding, truncating) -> np.ndarray:
    words = text.tokenize(read_document(path), lowercase)
    return text.encode([words], None, max_length, padding, truncating, index)[0]
