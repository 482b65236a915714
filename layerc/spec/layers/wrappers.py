"""Layer specs: wrappers of another layer (Bidirectional, which wraps only recurrent layers,
is with them)."""
from typing import Literal

from .base import LayerSpec


class TimeDistributed(LayerSpec):
    """Applies a layer to every time step: `layer: {Dense: {units: 8}}`."""

    type: Literal["TimeDistributed"] = "TimeDistributed"
    layer: "AnyLayer"


# The wrapped layer may be of any type: the union of every family, imported when a spec
# first uses a wrapper (this module is then partly initialised, with its class defined).
from . import any_layer  # noqa: E402

AnyLayer = any_layer()
