"""Layer specs: Dropout."""
from typing import Literal, Optional

from .base import PosInt, NonNegInt, Fraction, LayerSpec


class Dropout(LayerSpec):
    type: Literal["Dropout"] = "Dropout"
    rate: Fraction
    noise_shape: Optional[list[Optional[PosInt]]] = None  # without the batch axis
    seed: Optional[NonNegInt] = None
