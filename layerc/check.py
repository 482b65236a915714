"""Validate a spec file end to end: YAML, schema, graph and shapes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .spec.diagnostics import Diagnostic, SpecError

OK, INVALID, UNREADABLE = 0, 1, 2


@dataclass
class CheckResult:
    """The outcome of checking one file: status 0 valid, 1 invalid, 2 unreadable."""

    file: str
    status: int
    diagnostics: list[Diagnostic] = field(default_factory=list)
    model: object = None

    def count(self, severity: str) -> int:
        return sum(d.severity == severity for d in self.diagnostics)

    def to_dict(self) -> dict:
        return {"file": self.file, "valid": self.status == OK,
                "status": ["valid", "invalid", "unreadable"][self.status],
                "warnings": self.count("warning"), "notes": self.count("note"),
                "diagnostics": [d.to_dict() for d in self.diagnostics]}


def check_file(path, lint: bool = False) -> CheckResult:
    """Load, validate and compile one spec file, collecting diagnostics instead of raising;
    with `lint`, a valid spec's diagnostics are its lint warnings and notes."""
    from . import build, load_spec
    from .data.peek import data_diagnostics

    name = str(path)
    try:
        spec = load_spec(Path(path))
        model = build(spec)
        data_errors = data_diagnostics(spec, model)  # the data's shapes, from headers only
        if data_errors:
            return CheckResult(name, INVALID, data_errors)
        if lint:
            from .lint import lint as run_lints

            return CheckResult(name, OK, run_lints(spec, model.graph), model)
        return CheckResult(name, OK, model=model)
    except SpecError as e:
        return CheckResult(name, INVALID, e.diagnostics)
    except IsADirectoryError:
        return CheckResult(name, UNREADABLE, [Diagnostic("is a directory, not a spec file", name)])
    except FileNotFoundError:
        return CheckResult(name, UNREADABLE, [Diagnostic("no such file", name)])
    except PermissionError:
        return CheckResult(name, UNREADABLE, [Diagnostic("permission denied", name)])
    except OSError as e:
        return CheckResult(name, UNREADABLE, [Diagnostic(f"cannot read: {e.strerror or e}", name)])
