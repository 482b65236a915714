"""Lints: the layer-choice guidelines as warnings on a valid spec.

    diags = lint(spec, graph)   # Diagnostic(severity="warning"|"note", code="LC101", ...)

Each rule is one function with its code and explanation (`registry.rule`), in the module
of its topic; this module runs them on the validated spec and the compiled graph's shapes
and applies the file's `lint: {disable: [...]}` and the lines' `# layerc: disable=...`.
Nothing here imports numpy: the rules read shapes and the spec only.
"""
from __future__ import annotations

from ..spec.diagnostics import Diagnostic, did_you_mean
from . import capacity, output, sequence, structure  # noqa: F401  (they register their rules)
from .context import Context
from .registry import RULES, Rule, rule


@rule("LC001", "unknown-code-in-disable-comment",
      "a `# layerc: disable=` comment names no lint code")
def unknown_disable_code(ctx):
    """A `# layerc: disable=CODE` comment with a mistyped code silences nothing, and the warning
    it was meant for keeps coming back (or, worse, a later real one is not silenced where the
    author believes it is). Codes are the ones `layerc lint --list` prints.

    Fix: correct the code (the message suggests the nearest one), or remove the comment."""
    for line, codes in ctx.comments.items():
        for code, col in codes:
            if code not in RULES:
                hint = did_you_mean(code, RULES)
                yield ((line, col), False, f"`# layerc: disable={code}` names no lint code"
                       + (f"; {hint}" if hint else "; `layerc lint --list` lists them"))


for _code in sorted(RULES):  # code order for --list, --explain and SARIF
    RULES[_code] = RULES.pop(_code)


def lint(spec, graph) -> list[Diagnostic]:
    """Every lint finding on a valid spec and its compiled graph, suppressions applied, in file order."""
    smap = spec._source
    ctx = Context(spec, graph, smap.text if smap is not None else "")
    off = set(spec.lint.disable) if spec.lint is not None else set()
    by_line = {line: {code for code, _ in codes} for line, codes in ctx.comments.items()}
    out = []
    for code, r in RULES.items():
        if code in off:
            continue
        for where, key, message in r.check(ctx):
            d = _located(smap, where, message, key)
            d.severity, d.code = r.severity, code
            if code not in by_line.get(d.line, ()):
                out.append(d)
    return sorted(out, key=lambda d: (d.line or 0, d.col or 0, d.code))


def _located(smap, where, message, key) -> Diagnostic:
    if smap is None:
        return Diagnostic(message)
    if isinstance(where[0], int):  # a (line, col) already
        return Diagnostic(message, smap.file, *where)
    return smap.diagnostic(where, message, key=key)


def explain(code: str) -> str:
    """The text `layerc lint --explain CODE` prints."""
    r = RULES[code]
    return f"{r.code} {r.name} ({r.severity}): {r.summary}\n\n{r.explanation}\n"


__all__ = ["RULES", "Rule", "explain", "lint"]
