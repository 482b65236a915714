"""Layer specs: Activation as a layer of its own."""
from typing import Literal

from .base import ActivationName, LayerSpec


class Activation(LayerSpec):
    type: Literal["Activation"] = "Activation"
    activation: ActivationName
