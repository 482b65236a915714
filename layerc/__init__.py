"""layerc: Keras-style neural networks written as YAML, trained from the command line.

    spec = layerc.load_spec("specs/mnist_cnn.yaml")
    model = layerc.build(spec)
"""
from __future__ import annotations

__version__ = "0.1.0"

# `import layerc` (and so `layerc --version`) stays cheap: the spec package (pydantic)
# is imported on first use of one of its names.
_FROM_SPEC = ("SpecError", "load_spec", "parse_spec")


def __getattr__(name):
    if name in _FROM_SPEC:
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'layerc' has no attribute {name!r}")


def build(spec):
    """Compile a Spec (or a spec file's path) into a Model; raises SpecError if the graph is bad."""
    from .compiler import compile_graph
    from .model import Model
    from .spec import load_spec

    if not hasattr(spec, "layers"):
        spec = load_spec(spec)
    return Model(compile_graph(spec))


def import_keras(path, weights=None):
    """A Keras 3 `.keras` file (or a config `.json` with a `.weights.h5`) as `(spec, weights)`:
    a validated Spec and {'layer/weight': array}; needs h5py (`pip install "layerc[keras]"`)."""
    from .interop.keras import import_keras as read

    return read(path, weights)


def export(model, path, format=None, opset=None, class_names=None) -> str:
    """Write a Model (its current weights) to an ONNX (.onnx) or Keras (.keras) file; the
    format comes from the suffix unless given. Returns the format written. ONNX needs
    `pip install "layerc[onnx]"`; opset defaults to 17."""
    from .interop import export as export_model

    return export_model(model, path, format, opset, class_names)


__all__ = ["SpecError", "build", "export", "import_keras", "load_spec", "parse_spec", "__version__"]
