"""Layer specs: pooling and global pooling."""
from typing import Literal, Optional

from pydantic import StrictBool

from .base import IntOrPair, IntOrSingle, LayerSpec, Padding


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


class AveragePooling1D(LayerSpec):
    type: Literal["AveragePooling1D"] = "AveragePooling1D"
    pool_size: IntOrSingle  # required, as in Keras
    strides: Optional[IntOrSingle] = None
    padding: Padding = "valid"


class GlobalMaxPooling1D(LayerSpec):
    type: Literal["GlobalMaxPooling1D"] = "GlobalMaxPooling1D"
    keepdims: StrictBool = False
