"""Labelled text lines: reading, a word tokenizer, the vocabulary and padded id sequences.

Ids: 0 pads (so `Embedding(mask_zero=True)` masks it), 1 is any word outside the
vocabulary, 2.. are the vocabulary's words, most frequent first.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from .errors import DataError

PAD, OOV = 0, 1
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, keeping inner apostrophes: don't


def read_labelled(path: Path, separator: str = "\t") -> tuple[list[str], list[str]]:
    """(labels, texts) from lines `label<separator>text`; blank lines are skipped."""
    try:
        content = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = Path(path).read_bytes()[:e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8") from None
    labels, texts = [], []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition(separator)
        if not sep:
            raise DataError(f"{path}: line {number} has no {_show(separator)} between the label and the text")
        labels.append(label.strip())
        texts.append(text)
    if not texts:
        raise DataError(f"{path}: holds no labelled lines")
    return labels, texts


def _show(sep: str) -> str:
    return {"\t": "TAB", " ": "space", ",": "comma"}.get(sep, repr(sep))


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words of `text`: runs of letters and digits, punctuation dropped."""
    return WORD.findall(text.lower() if lowercase else text)


def build_vocabulary(token_lists, vocab_size: int) -> list[str]:
    """The vocab_size - 2 most frequent words (ties broken alphabetically); word i has id i + 2."""
    counts = Counter(t for tokens in token_lists for t in tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[: vocab_size - 2]]


def vocabulary_index(vocabulary: list[str]) -> dict[str, int]:
    """{word: id} of a vocabulary."""
    return {w: i + 2 for i, w in enumerate(vocabulary)}


def encode(token_lists, vocabulary: list[str], max_length: int, padding: str, truncating: str,
           index: dict | None = None) -> np.ndarray:
    """Token lists as padded id rows (`index`: the vocabulary's, when already made).

    Shapes: -> (len(token_lists), max_length) int32.
    """
    index = vocabulary_index(vocabulary) if index is None else index
    out = np.full((len(token_lists), max_length), PAD, dtype=np.int32)
    for row, tokens in enumerate(token_lists):
        ids = [index.get(t, OOV) for t in tokens]
        if len(ids) > max_length:
            ids = ids[-max_length:] if truncating == "pre" else ids[:max_length]
        if ids:
            if padding == "pre":
                out[row, max_length - len(ids):] = ids
            else:
                out[row, :len(ids)] = ids
    return out
