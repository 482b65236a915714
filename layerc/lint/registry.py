"""The one map from a lint code to its rule: a check function with its explanation.

A rule is written once, as a function decorated with `@rule(...)`; the decorator records
its code, name, severity and explanation here, so `layerc lint --list`, `--explain`, the
SARIF rules table and the spec's `lint: {disable: [...]}` all read the same entries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

SEVERITIES = ("warning", "note")


@dataclass(frozen=True)
class Rule:
    """One lint.

    Args:
        code: short and stable (`LC101`); never reused for another rule.
        name: a readable kebab-case name (`loss-needs-probabilities`).
        severity: "warning" (fails `validate --strict`) or "note" (informational).
        summary: one line, for `--list` and SARIF's shortDescription.
        explanation: why the rule exists and how to fix what it reports.
        check: `check(ctx)` yields (path, message) pairs; see `lint.context.Context`.
    """

    code: str
    name: str
    severity: str
    summary: str
    explanation: str
    check: Callable


RULES: dict[str, Rule] = {}


def rule(code: str, name: str, summary: str, severity: str = "warning"):
    """Register the decorated function as the rule `code`; its docstring is the explanation."""
    assert severity in SEVERITIES and code not in RULES, code

    def register(fn):
        text = "\n".join(line.strip() for line in (fn.__doc__ or "").strip().splitlines())
        RULES[code] = Rule(code, name, severity, summary, text, fn)
        return fn

    return register
