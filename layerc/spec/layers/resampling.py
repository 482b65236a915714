"""Layer specs: upsampling, zero padding and cropping."""
from typing import Literal, Union

from .base import IntOrPair, LayerSpec, NonNegInt, NonNegPair, PosInt


class UpSampling1D(LayerSpec):
    type: Literal["UpSampling1D"] = "UpSampling1D"
    size: PosInt = 2


class UpSampling2D(LayerSpec):
    type: Literal["UpSampling2D"] = "UpSampling2D"
    size: IntOrPair = (2, 2)
    interpolation: Literal["nearest", "bilinear"] = "nearest"


class ZeroPadding1D(LayerSpec):
    type: Literal["ZeroPadding1D"] = "ZeroPadding1D"
    padding: Union[NonNegInt, NonNegPair] = 1


class ZeroPadding2D(LayerSpec):
    type: Literal["ZeroPadding2D"] = "ZeroPadding2D"
    padding: Union[NonNegInt, NonNegPair, tuple[NonNegPair, NonNegPair]] = (1, 1)


class Cropping1D(LayerSpec):
    type: Literal["Cropping1D"] = "Cropping1D"
    cropping: Union[NonNegInt, NonNegPair] = (1, 1)


class Cropping2D(LayerSpec):
    type: Literal["Cropping2D"] = "Cropping2D"
    cropping: Union[NonNegInt, NonNegPair, tuple[NonNegPair, NonNegPair]] = ((0, 0), (0, 0))
