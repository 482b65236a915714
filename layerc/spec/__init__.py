"""The spec language: pydantic models, safe YAML loading, located diagnostics. No numpy here."""
from .diagnostics import Diagnostic, SpecError
from .validate import load_spec, parse_spec

__all__ = ["Diagnostic", "SpecError", "load_spec", "parse_spec"]
