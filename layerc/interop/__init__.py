"""Models in and out of layerc: ONNX and Keras files.

Each format is one module; its library (onnx, h5py) is imported inside the functions that
need it, so the core never pays for it.
"""
from __future__ import annotations

from pathlib import Path

FORMATS = {".onnx": "onnx", ".keras": "keras"}


class ExportError(ValueError):
    """A model that cannot be written as asked (format, opset, a missing extra); one line."""


def export_format(path, format=None) -> str:
    """The format to write: `format` ('onnx' or 'keras'), else the one the suffix names."""
    if format is not None:
        if format not in FORMATS.values():
            raise ExportError(f"unknown export format {format!r}; use onnx or keras")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
                          "name the file .onnx or .keras, or give --format onnx|keras")
    return FORMATS[suffix]


def export(model, path, format=None, opset=None, class_names=None) -> str:
    """Write a layerc Model with its current weights to `path`; returns the format written.

    Args:
        format: 'onnx' or 'keras'; None takes it from the suffix (.onnx, .keras).
        opset: the ONNX opset (default 17); ONNX only.
        class_names: the classes' names, kept in the ONNX file's metadata.
    """
    fmt = export_format(path, format)
    if fmt == "onnx":
        from .onnx import DEFAULT_OPSET, save_onnx

        save_onnx(model, path, DEFAULT_OPSET if opset is None else opset, class_names)
        return fmt
    if opset is not None:
        raise ExportError("--opset applies to ONNX export only")
    try:
        from .keras import save_keras
    except ImportError as e:
        if e.name != f"{__name__}.keras":  # a library the module needs: its own message
            raise
        raise ExportError("Keras (.keras) export is not available in this version of layerc") from None
    save_keras(model, path)
    return fmt
