"""Layer specs: Dense: the densely connected layer."""
from typing import Literal

from .base import PosInt, KernelArgs


class Dense(KernelArgs):
    type: Literal["Dense"] = "Dense"
    units: PosInt
