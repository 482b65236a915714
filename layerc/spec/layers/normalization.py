"""Layer specs: Batch and layer normalization."""
from typing import Literal, Union

from pydantic import StrictBool, StrictInt

from .base import Fraction, PosFloat, InitializerName, LayerSpec


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
