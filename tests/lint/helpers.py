"""Lint a spec text through the library, and find where a piece of text sits in it."""
from __future__ import annotations

import layerc
from layerc.lint import lint


def lints(text: str, file: str = "spec.yaml"):
    spec = layerc.parse_spec(text, file)
    return lint(spec, layerc.build(spec).graph)


def codes(text: str) -> list[str]:
    return [d.code for d in lints(text)]


def pos(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, col) of the nth occurrence of `needle` in `text`."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1
