"""Layer specs: Activation as a layer of its own, and Keras's activation layers (ReLU,
LeakyReLU, PReLU, ELU, Softmax, LayerScale), with Keras 3's arguments and defaults."""
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StrictInt

from .base import ActivationName, InitializerName, LayerSpec, PosInt, Real, Regularizer

NonNegReal = Annotated[float, Field(ge=0.0, strict=True, allow_inf_nan=False)]


class Activation(LayerSpec):
    type: Literal["Activation"] = "Activation"
    activation: ActivationName


class ReLU(LayerSpec):
    """Keras `ReLU`: x above threshold (clipped at max_value), negative_slope * (x - threshold) below."""

    type: Literal["ReLU"] = "ReLU"
    max_value: Optional[NonNegReal] = None
    negative_slope: NonNegReal = 0.0
    threshold: NonNegReal = 0.0


class LeakyReLU(LayerSpec):
    """Keras `LeakyReLU`: x for x >= 0, negative_slope * x below."""

    type: Literal["LeakyReLU"] = "LeakyReLU"
    negative_slope: NonNegReal = 0.3


class PReLU(LayerSpec):
    """Keras `PReLU`: x for x >= 0, alpha * x below, with a learned `alpha` per value
    (shared along `shared_axes`, numbered with the batch axis as 0)."""

    type: Literal["PReLU"] = "PReLU"
    alpha_initializer: InitializerName = "zeros"
    alpha_regularizer: Regularizer = None
    shared_axes: Optional[Union[PosInt, list[PosInt]]] = None


class ELU(LayerSpec):
    """Keras `ELU`: x for x > 0, alpha * (exp(x) - 1) below."""

    type: Literal["ELU"] = "ELU"
    alpha: Real = 1.0


class Softmax(LayerSpec):
    """Keras `Softmax` over `axis` (an axis or a list, counted with the batch axis as 0; -1 the
    last); an incoming mask (Embedding's mask_zero) gives masked positions 0, as in Keras."""

    type: Literal["Softmax"] = "Softmax"
    axis: Union[StrictInt, list[StrictInt]] = -1


class LayerScale(LayerSpec):
    """ConvNeXt's `LayerScale` (keras.applications.convnext): x * gamma, gamma a learned vector
    of `projection_dim` values (the last axis) starting at `init_values`."""

    type: Literal["LayerScale"] = "LayerScale"
    init_values: Real
    projection_dim: PosInt
