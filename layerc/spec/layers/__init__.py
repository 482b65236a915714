"""Layer specs: one pydantic model per Keras layer type, Keras 3 argument names and defaults.

In YAML a layer is `- Type: {args}`, a bare `- Type`, or `- {type: Type, ...}`;
`layerc.spec.source` normalises all three to `{type: Type, ...}` before validation.

One module per layer family, as in `layerc.core`, imported when a spec first uses one of its
types: `LAYER_TYPES["Dense"]` imports `dense.py` only, so a spec pays for the layers it has
(the schema and `layerc schema` import them all). `from layerc.spec.layers import Dense`
works as for a plain module.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from ..lazy import LazyModels
from .base import (  # noqa: F401  the argument types, for the other spec modules
    MAX_INT, ActivationName, Fraction, InitializerName, IntOrPair, IntOrSingle, KernelArgs, L1L2,
    LayerSpec, Name, NonNegInt, Padding, PosFloat, PosInt, Regularizer, Strict, pair, single,
)

FAMILIES = {
    "dense": ["Dense"],
    "conv": ["Conv1D", "Conv2D", "Conv1DTranspose", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"],
    "pooling": ["MaxPooling1D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling1D",
                "GlobalAveragePooling2D", "GlobalMaxPooling2D", "AveragePooling1D", "GlobalMaxPooling1D"],
    "recurrent": ["SimpleRNN", "LSTM", "GRU", "Bidirectional"],
    "dropout": ["Dropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D"],
    "normalization": ["BatchNormalization", "LayerNormalization", "Normalization"],
    "embedding": ["Embedding", "PositionEmbedding"],
    "reshape": ["Flatten", "Reshape", "RepeatVector", "Permute"],
    "attention": ["MultiHeadAttention"],
    "wrappers": ["TimeDistributed"],
    "preprocessing": ["Rescaling"],
    "activation": ["Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "LayerScale"],
    "merge": ["Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum", "Minimum"],
    "resampling": ["UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D"],
    "augmentation": ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop",
                     "RandomContrast", "RandomBrightness"],
}
MODULE_OF = {type_name: module for module, types in FAMILIES.items() for type_name in types}

# type name -> spec class; names and membership without importing, a class on lookup
LAYER_TYPES: Mapping[str, type[LayerSpec]] = LazyModels(__name__, {t: (m, t) for t, m in MODULE_OF.items()})


def any_layer():
    """The discriminated union of every layer spec (imports every family)."""
    from typing import Annotated, Union

    from pydantic import Field

    return Annotated[Union[tuple(LAYER_TYPES.values())], Field(discriminator="type")]


def __getattr__(name: str):
    if name in MODULE_OF:
        return LAYER_TYPES[name]
    if name == "AnyLayer":
        return any_layer()
    if name == "RecurrentSpec":
        return importlib.import_module(f"{__name__}.recurrent").RecurrentSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
