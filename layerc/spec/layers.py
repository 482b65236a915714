"""Layer specs: one pydantic model per Keras layer type, Keras 3 argument names and defaults.

In YAML a layer is `- Type: {args}`, a bare `- Type`, or `- {type: Type, ...}`;
`layerc.spec.source` normalises all three to `{type: Type, ...}` before validation.
"""

from typing import Annotated, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

MAX_INT = 2**31 - 1  # sizes and counts; beyond it arrays and indices overflow
PosInt = Annotated[StrictInt, Field(gt=0, le=MAX_INT)]
NonNegInt = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
IntOrPair = Union[PosInt, tuple[PosInt, PosInt]]
IntOrSingle = Union[PosInt, tuple[PosInt]]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]
PosFloat = Annotated[float, Field(gt=0.0, strict=True, allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length=128)]

ActivationName = Literal[
    "linear", "relu", "sigmoid", "tanh", "softmax", "gelu", "elu", "selu",
    "leaky_relu", "silu", "swish", "softplus", "softsign", "hard_sigmoid",
]
InitializerName = Literal[
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "random_normal", "random_uniform",
    "uniform", "truncated_normal",
]
Padding = Literal["valid", "same"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class L1L2(Strict):
    """Weight penalty factors: loss += l1 * sum(|w|) + l2 * sum(w**2)."""

    l1: Annotated[float, Field(ge=0.0, strict=True)] = 0.0
    l2: Annotated[float, Field(ge=0.0, strict=True)] = 0.0


Regularizer = Optional[Union[Literal["l1", "l2", "l1_l2"], L1L2]]


class LayerSpec(Strict):
    """Fields every layer has."""

    kind: ClassVar[str] = "layer"  # family shown in the schema
    name: Optional[Name] = None
    inputs: Optional[Union[Name, list[Name]]] = None
    trainable: StrictBool = Field(True, description="false freezes the layer: its weights are not "
                                  "trained (BatchNormalization then uses its moving statistics)")


class KernelArgs(LayerSpec):
    activation: ActivationName = "linear"
    use_bias: StrictBool = True
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"
    kernel_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None


class Dense(KernelArgs):
    type: Literal["Dense"] = "Dense"
    units: PosInt


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


class MaxPooling2D(LayerSpec):
    type: Literal["MaxPooling2D"] = "MaxPooling2D"
    pool_size: IntOrPair = (2, 2)
    strides: Optional[IntOrPair] = None  # None: pool_size
    padding: Padding = "valid"


class AveragePooling2D(LayerSpec):
    type: Literal["AveragePooling2D"] = "AveragePooling2D"
    pool_size: IntOrPair = (2, 2)
    strides: Optional[IntOrPair] = None
    padding: Padding = "valid"


class MaxPooling1D(LayerSpec):
    type: Literal["MaxPooling1D"] = "MaxPooling1D"
    pool_size: IntOrSingle = 2
    strides: Optional[IntOrSingle] = None
    padding: Padding = "valid"


class GlobalAveragePooling1D(LayerSpec):
    type: Literal["GlobalAveragePooling1D"] = "GlobalAveragePooling1D"
    keepdims: StrictBool = False


class GlobalAveragePooling2D(LayerSpec):
    type: Literal["GlobalAveragePooling2D"] = "GlobalAveragePooling2D"
    keepdims: StrictBool = False


class GlobalMaxPooling2D(LayerSpec):
    type: Literal["GlobalMaxPooling2D"] = "GlobalMaxPooling2D"
    keepdims: StrictBool = False


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


class Dropout(LayerSpec):
    type: Literal["Dropout"] = "Dropout"
    rate: Fraction
    noise_shape: Optional[list[Optional[PosInt]]] = None  # without the batch axis
    seed: Optional[NonNegInt] = None


class BatchNormalization(LayerSpec):
    type: Literal["BatchNormalization"] = "BatchNormalization"
    axis: StrictInt = -1
    momentum: Fraction = 0.99
    epsilon: PosFloat = 1e-3
    center: StrictBool = True
    scale: StrictBool = True
    beta_initializer: InitializerName = "zeros"
    gamma_initializer: InitializerName = "ones"
    moving_mean_initializer: InitializerName = "zeros"
    moving_variance_initializer: InitializerName = "ones"


class LayerNormalization(LayerSpec):
    type: Literal["LayerNormalization"] = "LayerNormalization"
    axis: Union[StrictInt, list[StrictInt]] = -1
    epsilon: PosFloat = 1e-3
    center: StrictBool = True
    scale: StrictBool = True
    beta_initializer: InitializerName = "zeros"
    gamma_initializer: InitializerName = "ones"


class Embedding(LayerSpec):
    type: Literal["Embedding"] = "Embedding"
    input_dim: PosInt
    output_dim: PosInt
    embeddings_initializer: InitializerName = "uniform"
    embeddings_regularizer: Regularizer = None
    mask_zero: StrictBool = False


class Flatten(LayerSpec):
    type: Literal["Flatten"] = "Flatten"


class Activation(LayerSpec):
    type: Literal["Activation"] = "Activation"
    activation: ActivationName


class Reshape(LayerSpec):
    type: Literal["Reshape"] = "Reshape"
    target_shape: list[Annotated[StrictInt, Field(ge=-1, le=MAX_INT)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_unknown(self):
        if self.target_shape.count(-1) > 1 or 0 in self.target_shape:
            raise ValueError("target_shape takes positive sizes and at most one -1")
        return self


class Add(LayerSpec):
    type: Literal["Add"] = "Add"


class Concatenate(LayerSpec):
    type: Literal["Concatenate"] = "Concatenate"
    axis: StrictInt = -1


# -- attention, wrappers, sequence and noise layers ------------------------------------------
class MultiHeadAttention(LayerSpec):
    """Keras `MultiHeadAttention`: `inputs: [query, value]` or `[query, value, key]`; one input
    (or none) is self-attention."""

    type: Literal["MultiHeadAttention"] = "MultiHeadAttention"
    num_heads: PosInt
    key_dim: PosInt
    value_dim: Optional[PosInt] = None  # None: key_dim
    dropout: Fraction = 0.0
    use_bias: StrictBool = True
    output_shape: Optional[Union[PosInt, list[PosInt]]] = None  # None: the query's last dimension
    attention_axes: Optional[Union[StrictInt, list[StrictInt]]] = None
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"
    kernel_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    use_causal_mask: StrictBool = Field(False, description=(
        "each position attends only to itself and earlier ones; a call argument in Keras, "
        "a layer argument here since a spec has no calls"))
    seed: Optional[NonNegInt] = None


class TimeDistributed(LayerSpec):
    """Applies a layer to every time step: `layer: {Dense: {units: 8}}`."""

    type: Literal["TimeDistributed"] = "TimeDistributed"
    layer: "AnyLayer"


class PositionEmbedding(LayerSpec):
    """layerc's learned position embedding (Keras's core has none; keras_hub's
    PositionEmbedding has these arguments and weight): adds row t of `embeddings`
    (sequence_length, features) to step t of its input, passing the input's mask on."""

    type: Literal["PositionEmbedding"] = "PositionEmbedding"
    sequence_length: PosInt
    initializer: InitializerName = "glorot_uniform"


Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Rescaling(LayerSpec):
    """Keras `Rescaling`: x * scale + offset (a number, or one per channel of the last axis)."""

    type: Literal["Rescaling"] = "Rescaling"
    scale: Union[Real, list[Real]]
    offset: Union[Real, list[Real]] = 0.0


class RepeatVector(LayerSpec):
    type: Literal["RepeatVector"] = "RepeatVector"
    n: PosInt


class Permute(LayerSpec):
    type: Literal["Permute"] = "Permute"
    dims: list[PosInt] = Field(min_length=1)

    @model_validator(mode="after")
    def _a_permutation(self):
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"dims must be a permutation of 1..{len(self.dims)} (the batch axis "
                             f"is 0 and stays), got {self.dims}")
        return self


class GaussianNoise(LayerSpec):
    type: Literal["GaussianNoise"] = "GaussianNoise"
    stddev: Annotated[float, Field(ge=0.0, strict=True, allow_inf_nan=False)]
    seed: Optional[NonNegInt] = None


class SpatialDropout1D(LayerSpec):
    type: Literal["SpatialDropout1D"] = "SpatialDropout1D"
    rate: Fraction
    seed: Optional[NonNegInt] = None


class SpatialDropout2D(LayerSpec):
    type: Literal["SpatialDropout2D"] = "SpatialDropout2D"
    rate: Fraction
    data_format: Optional[Literal["channels_last", "channels_first"]] = None  # None: channels_last
    seed: Optional[NonNegInt] = None


LAYER_TYPES: dict[str, type[LayerSpec]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        Dense, Conv1D, Conv2D, MaxPooling1D, MaxPooling2D, AveragePooling2D,
        GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling2D,
        SimpleRNN, LSTM, GRU, Bidirectional, Dropout, BatchNormalization,
        LayerNormalization, Embedding, Flatten, Activation, Reshape, Add, Concatenate,
        MultiHeadAttention, TimeDistributed, PositionEmbedding, Rescaling, RepeatVector, Permute, GaussianNoise, SpatialDropout1D, SpatialDropout2D,
    )
}

AnyLayer = Annotated[
    Union[tuple(LAYER_TYPES.values())], Field(discriminator="type")  # type: ignore[valid-type]
]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def single(v):
    return v if isinstance(v, int) else v[0]

