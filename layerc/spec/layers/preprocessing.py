"""Layer specs: preprocessing inside the model."""
from typing import Literal, Union

from .base import LayerSpec, Real


class Rescaling(LayerSpec):
    """Keras `Rescaling`: x * scale + offset (a number, or one per channel of the last axis)."""

    type: Literal["Rescaling"] = "Rescaling"
    scale: Union[Real, list[Real]]
    offset: Union[Real, list[Real]] = 0.0
