"""Layer specs: dropout and noise (the regularization layers)."""
from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Fraction, LayerSpec, NonNegInt, PosInt


class Dropout(LayerSpec):
    type: Literal["Dropout"] = "Dropout"
    rate: Fraction
    noise_shape: Optional[list[Optional[PosInt]]] = None  # without the batch axis, or with it first
    seed: Optional[NonNegInt] = None


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
