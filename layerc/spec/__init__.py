"""The spec language: pydantic models, safe YAML loading, located diagnostics. No numpy here.

Importing this package is cheap: pydantic and the models are imported by the first
`load_spec` or `parse_spec` call, so `layerc --version` never pays for them.
"""
from .diagnostics import Diagnostic, SpecError


def load_spec(path, overrides=()):
    """Read and validate a spec file (see `layerc.spec.validate.load_spec`)."""
    from .validate import load_spec as load

    return load(path, overrides)


def parse_spec(text: str, file: str = "<spec>", overrides=(), default_name=None):
    """Validate spec text (see `layerc.spec.validate.parse_spec`)."""
    from .validate import parse_spec as parse

    return parse(text, file, overrides, default_name)


__all__ = ["Diagnostic", "SpecError", "load_spec", "parse_spec"]
