"""The one map from a spec's layer type to its layer class.

Entries are "module:Class" strings, imported on first use, so a command that needs
only some layer families never imports the others.
"""
from __future__ import annotations

import importlib

LAYERS = {
    "Dense": "dense:Dense",
    "Conv1D": "conv:Conv1D",
    "Conv2D": "conv:Conv2D",
    "MaxPooling1D": "pooling:MaxPooling1D",
    "MaxPooling2D": "pooling:MaxPooling2D",
    "AveragePooling2D": "pooling:AveragePooling2D",
    "GlobalAveragePooling1D": "pooling:GlobalAveragePooling1D",
    "GlobalAveragePooling2D": "pooling:GlobalAveragePooling2D",
    "GlobalMaxPooling2D": "pooling:GlobalMaxPooling2D",
    "SimpleRNN": "recurrent:SimpleRNN",
    "LSTM": "lstm:LSTM",
    "GRU": "gru:GRU",
    "Bidirectional": "bidirectional:Bidirectional",
    "Dropout": "dropout:Dropout",
    "BatchNormalization": "normalization:BatchNormalization",
    "LayerNormalization": "normalization:LayerNormalization",
    "Embedding": "embedding:Embedding",
    "Flatten": "reshape:Flatten",
    "Reshape": "reshape:Reshape",
    "Activation": "activation:Activation",
    "Add": "merge:Add",
    "Concatenate": "merge:Concatenate",
    # transposed, depthwise and separable convolutions, resampling, more merges
    "Conv1DTranspose": "conv_transpose:Conv1DTranspose",
    "Conv2DTranspose": "conv_transpose:Conv2DTranspose",
    "DepthwiseConv2D": "depthwise:DepthwiseConv2D",
    "SeparableConv2D": "depthwise:SeparableConv2D",
    "UpSampling1D": "resampling:UpSampling1D",
    "UpSampling2D": "resampling:UpSampling2D",
    "ZeroPadding1D": "resampling:ZeroPadding1D",
    "ZeroPadding2D": "resampling:ZeroPadding2D",
    "Cropping1D": "resampling:Cropping1D",
    "Cropping2D": "resampling:Cropping2D",
    "AveragePooling1D": "pooling:AveragePooling1D",
    "GlobalMaxPooling1D": "pooling:GlobalMaxPooling1D",
    "Multiply": "merge:Multiply",
    "Subtract": "merge:Subtract",
    "Average": "merge:Average",
    "Maximum": "merge:Maximum",
    "Minimum": "merge:Minimum",
    # attention, wrappers, sequence and noise layers
    "MultiHeadAttention": "attention:MultiHeadAttention",
    "TimeDistributed": "time_distributed:TimeDistributed",
    "PositionEmbedding": "position:PositionEmbedding",
    "Rescaling": "rescaling:Rescaling",
    "RepeatVector": "sequence:RepeatVector",
    "Permute": "sequence:Permute",
    "GaussianNoise": "noise:GaussianNoise",
    "SpatialDropout1D": "noise:SpatialDropout1D",
    "SpatialDropout2D": "noise:SpatialDropout2D",
    # Keras's activation layers and ConvNeXt's LayerScale
    "ReLU": "activation_layers:ReLU",
    "LeakyReLU": "activation_layers:LeakyReLU",
    "PReLU": "activation_layers:PReLU",
    "ELU": "activation_layers:ELU",
    "Softmax": "activation_layers:Softmax",
    "LayerScale": "activation_layers:LayerScale",
    "Normalization": "normalization_pre:Normalization",
}


def layer_class(type_name: str):
    """The layer class for a spec type name."""
    module, cls = LAYERS[type_name].split(":")
    return getattr(importlib.import_module(f"layerc.core.{module}"), cls)


def make_layer(spec, name: str, seed: int, dtype: str = "float32"):
    """Construct the layer for a validated layer spec."""
    return layer_class(spec.type)(spec, name, seed, dtype)
