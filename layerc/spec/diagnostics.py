"""Located diagnostics: what is wrong, where in the YAML, and what would fix it."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Diagnostic:
    """One problem in a spec file.

    Args:
        message: what is wrong, one line.
        file: the spec's path as given by the user.
        line, col: 1-based position of the offending key or value (None if unknown).
        hint: what would fix it, or None.
        severity: "error", or a lint's "warning" or "note".
        code: the lint's code (`LC101`), None for errors.
    """

    message: str
    file: str = "<spec>"
    line: int | None = None
    col: int | None = None
    hint: str | None = None
    severity: str = "error"
    code: str | None = None

    def format(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        text = f"{where}: {self.severity}: {self.message}"
        text = f"{text} ({self.hint})" if self.hint else text
        return f"{text} [{self.code}]" if self.code else text

    def to_dict(self) -> dict:
        return asdict(self)


class SpecError(Exception):
    """A spec that cannot be used; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(d.format() for d in diagnostics))
        self.diagnostics = diagnostics


def did_you_mean(word, candidates) -> str | None:
    """A "did you mean 'x'?" hint for a near miss, or None."""
    import difflib

    if not isinstance(word, str):
        return None
    lowered = {c.lower(): c for c in candidates if isinstance(c, str)}
    close = [lowered[word.lower()]] if word.lower() in lowered else []
    close = close or difflib.get_close_matches(word, list(lowered.values()), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
