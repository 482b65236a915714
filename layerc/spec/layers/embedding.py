"""Layer specs: Embedding (integer ids to vectors) and layerc's PositionEmbedding."""
from typing import Literal

from pydantic import StrictBool

from .base import InitializerName, LayerSpec, PosInt, Regularizer


class Embedding(LayerSpec):
    type: Literal["Embedding"] = "Embedding"
    input_dim: PosInt
    output_dim: PosInt
    embeddings_initializer: InitializerName = "uniform"
    embeddings_regularizer: Regularizer = None
    mask_zero: StrictBool = False


class PositionEmbedding(LayerSpec):
    """layerc's learned position embedding (Keras's core has none; keras_hub's
    PositionEmbedding has these arguments and weight): adds row t of `embeddings`
    (sequence_length, features) to step t of its input, passing the input's mask on."""

    type: Literal["PositionEmbedding"] = "PositionEmbedding"
    sequence_length: PosInt
    initializer: InitializerName = "glorot_uniform"
