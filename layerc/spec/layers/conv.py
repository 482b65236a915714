"""Layer specs: Convolutions."""
from typing import Literal

from pydantic import model_validator

from .base import PosInt, IntOrPair, IntOrSingle, Padding, KernelArgs, pair, single


class Conv2D(KernelArgs):
    type: Literal["Conv2D"] = "Conv2D"
    filters: PosInt
    kernel_size: IntOrPair
    strides: IntOrPair = 1
    padding: Padding = "valid"
    dilation_rate: IntOrPair = 1

    @model_validator(mode="after")
    def _strides_or_dilation(self):
        if pair(self.strides) != (1, 1) and pair(self.dilation_rate) != (1, 1):
            raise ValueError("strides > 1 and dilation_rate > 1 cannot be combined (as in Keras)")
        return self


class Conv1D(KernelArgs):
    type: Literal["Conv1D"] = "Conv1D"
    filters: PosInt
    kernel_size: IntOrSingle
    strides: IntOrSingle = 1
    padding: Literal["valid", "same", "causal"] = "valid"
    dilation_rate: IntOrSingle = 1

    @model_validator(mode="after")
    def _strides_or_dilation(self):
        if single(self.strides) != 1 and single(self.dilation_rate) != 1:
            raise ValueError("strides > 1 and dilation_rate > 1 cannot be combined (as in Keras)")
        return self
