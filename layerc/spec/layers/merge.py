"""Layer specs: layers that merge several inputs."""
from typing import Literal

from pydantic import StrictInt

from .base import LayerSpec


class Add(LayerSpec):
    type: Literal["Add"] = "Add"


class Concatenate(LayerSpec):
    type: Literal["Concatenate"] = "Concatenate"
    axis: StrictInt = -1


class Multiply(LayerSpec):
    type: Literal["Multiply"] = "Multiply"


class Subtract(LayerSpec):
    type: Literal["Subtract"] = "Subtract"


class Average(LayerSpec):
    type: Literal["Average"] = "Average"


class Maximum(LayerSpec):
    type: Literal["Maximum"] = "Maximum"


class Minimum(LayerSpec):
    type: Literal["Minimum"] = "Minimum"
