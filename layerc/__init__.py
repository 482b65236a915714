"""layerc: Keras-style neural networks written as YAML, trained from the command line.

    spec = layerc.load_spec("specs/mnist_cnn.yaml")
    model = layerc.build(spec)
"""
from __future__ import annotations

__version__ = "0.1.0"

from .spec import SpecError, load_spec, parse_spec  # noqa: E402


def build(spec):
    """Compile a Spec (or a spec file's path) into a Model; raises SpecError if the graph is bad."""
    from .compiler import compile_graph
    from .model import Model

    if not hasattr(spec, "layers"):
        spec = load_spec(spec)
    return Model(compile_graph(spec))


__all__ = ["SpecError", "build", "load_spec", "parse_spec", "__version__"]
