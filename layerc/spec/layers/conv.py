"""Layer specs: convolutions (plain, transposed, depthwise and separable)."""
from typing import Literal, Optional, Union

from pydantic import StrictBool, model_validator

from .base import (
    ActivationName, InitializerName, IntOrPair, IntOrSingle, KernelArgs, LayerSpec, NonNegInt, NonNegPair,
    Padding, PosInt, Regularizer, pair, single,
)


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


OutputPadding2 = Optional[Union[NonNegInt, NonNegPair]]
OutputPadding1 = Optional[Union[NonNegInt, tuple[NonNegInt]]]


class _TransposeArgs(KernelArgs):
    """Keras's argument checks of a transposed convolution."""

    @model_validator(mode="after")
    def _transpose_args(self):
        tup = pair if self.type == "Conv2DTranspose" else (lambda v: (single(v),))
        strides = tup(self.strides)
        if max(strides) > 1 and max(tup(self.dilation_rate)) > 1:
            raise ValueError("strides > 1 and dilation_rate > 1 cannot be combined (as in Keras)")
        if self.output_padding is not None:
            for op, s in zip(tup(self.output_padding), strides):
                if op >= s:
                    raise ValueError(f"output_padding must be smaller than strides on every axis "
                                     f"(as in Keras): output_padding {op} with strides {s}")
        return self


class Conv2DTranspose(_TransposeArgs):
    type: Literal["Conv2DTranspose"] = "Conv2DTranspose"
    filters: PosInt
    kernel_size: IntOrPair
    strides: IntOrPair = 1
    padding: Padding = "valid"
    output_padding: OutputPadding2 = None
    dilation_rate: IntOrPair = 1


class Conv1DTranspose(_TransposeArgs):
    type: Literal["Conv1DTranspose"] = "Conv1DTranspose"
    filters: PosInt
    kernel_size: IntOrSingle
    strides: IntOrSingle = 1
    padding: Padding = "valid"
    output_padding: OutputPadding1 = None
    dilation_rate: IntOrSingle = 1


class DepthwiseConv2D(LayerSpec):
    type: Literal["DepthwiseConv2D"] = "DepthwiseConv2D"
    kernel_size: IntOrPair
    strides: IntOrPair = 1
    padding: Padding = "valid"
    depth_multiplier: PosInt = 1
    dilation_rate: IntOrPair = 1
    activation: ActivationName = "linear"
    use_bias: StrictBool = True
    depthwise_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"
    depthwise_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None


class SeparableConv2D(DepthwiseConv2D):
    type: Literal["SeparableConv2D"] = "SeparableConv2D"  # type: ignore[assignment]
    filters: PosInt
    pointwise_initializer: InitializerName = "glorot_uniform"
    pointwise_regularizer: Regularizer = None
