"""`# layerc: disable=CODE[,CODE]` comments: the codes silenced on each line."""
from __future__ import annotations

import re

# a YAML comment starts at the line's start or after a blank, never inside a word
_COMMENT = re.compile(r"(?:^|\s)#\s*layerc:\s*disable\s*=\s*([^\s#,]+(?:\s*,\s*[^\s#,]+)*)")


def disabled(text: str) -> dict[int, list[tuple[str, int]]]:
    """{line: [(code, column), ...]} for every disable comment in the text (1-based)."""
    out: dict[int, list[tuple[str, int]]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = _COMMENT.search(line)
        if m is None:
            continue
        start = m.start(1)
        for part in re.finditer(r"[^\s,]+", m.group(1)):
            out.setdefault(number, []).append((part.group(), start + part.start() + 1))
    return out
