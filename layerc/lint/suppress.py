"""`# layerc: disable=CODE[,CODE]` comments: the codes silenced on each line."""
from __future__ import annotations

import re

# a YAML comment starts at the line's start or after a blank, never inside a word
_COMMENT = re.compile(r"(?:^|(?<=[ \t]))#[ \t]*layerc:[ \t]*disable[ \t]*=[ \t]*"
                      r"([^\s#,]+(?:[ \t]*,[ \t]*[^\s#,]+)*)", re.M)


def disabled(text: str) -> dict[int, list[tuple[str, int]]]:
    """{line: [(code, column), ...]} for every disable comment in the text (1-based)."""
    out: dict[int, list[tuple[str, int]]] = {}
    line, counted, at = 1, 0, text.find("layerc:")
    while at != -1:  # only the lines that hold the word are read: a 10 MB file stays fast
        start, end = text.rfind("\n", 0, at) + 1, text.find("\n", at)
        end = len(text) if end == -1 else end
        line += text.count("\n", counted, start)
        counted = start
        m = _COMMENT.search(text, start, end)
        if m is not None:
            for part in re.finditer(r"[^\s,]+", m.group(1)):
                out.setdefault(line, []).append((part.group(), m.start(1) + part.start() - start + 1))
        at = text.find("layerc:", end)
    return out
