"""What every layer spec shares: the argument types, the base classes and their helpers."""

from typing import Annotated, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

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
    "hard_silu", "hard_swish",
]
InitializerName = Literal[
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "random_normal", "random_uniform",
    "uniform", "truncated_normal",
]
Padding = Literal["valid", "same"]
NonNegPair = tuple[NonNegInt, NonNegInt]
Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]


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


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def single(v):
    return v if isinstance(v, int) else v[0]
