"""Layer specs: Layers that merge several inputs."""
from typing import Literal

from pydantic import StrictInt

from .base import LayerSpec


class Add(LayerSpec):
    type: Literal["Add"] = "Add"


class Concatenate(LayerSpec):
    type: Literal["Concatenate"] = "Concatenate"
    axis: StrictInt = -1
