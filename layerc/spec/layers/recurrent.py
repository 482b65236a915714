"""Layer specs: Recurrent layers (SimpleRNN, LSTM, GRU) and the Bidirectional wrapper."""
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StrictBool, field_validator

from .base import PosInt, NonNegInt, Fraction, ActivationName, InitializerName, Regularizer, LayerSpec


class RecurrentArgs(LayerSpec):
    units: PosInt
    activation: ActivationName = "tanh"
    use_bias: StrictBool = True
    kernel_initializer: InitializerName = "glorot_uniform"
    recurrent_initializer: InitializerName = "orthogonal"
    bias_initializer: InitializerName = "zeros"
    kernel_regularizer: Regularizer = None
    recurrent_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    dropout: Fraction = 0.0
    recurrent_dropout: Fraction = 0.0
    return_sequences: StrictBool = False
    go_backwards: StrictBool = False
    seed: Optional[NonNegInt] = None

    @field_validator("activation", "recurrent_activation", check_fields=False)
    @classmethod
    def _elementwise(cls, v):
        if v == "softmax":
            raise ValueError("recurrent layers take element-wise activations; softmax is not supported")
        return v


class SimpleRNN(RecurrentArgs):
    type: Literal["SimpleRNN"] = "SimpleRNN"


class LSTM(RecurrentArgs):
    type: Literal["LSTM"] = "LSTM"
    recurrent_activation: ActivationName = "sigmoid"
    unit_forget_bias: StrictBool = True


class GRU(RecurrentArgs):
    type: Literal["GRU"] = "GRU"
    recurrent_activation: ActivationName = "sigmoid"
    reset_after: StrictBool = True


RecurrentSpec = Annotated[Union[LSTM, GRU, SimpleRNN], Field(discriminator="type")]


class Bidirectional(LayerSpec):
    """Wraps a recurrent layer, written like any layer: `layer: {LSTM: {units: 64}}`."""

    type: Literal["Bidirectional"] = "Bidirectional"
    layer: RecurrentSpec
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat"
