"""Layer specs: Embedding: integer ids to vectors."""
from typing import Literal

from pydantic import StrictBool

from .base import PosInt, InitializerName, Regularizer, LayerSpec


class Embedding(LayerSpec):
    type: Literal["Embedding"] = "Embedding"
    input_dim: PosInt
    output_dim: PosInt
    embeddings_initializer: InitializerName = "uniform"
    embeddings_regularizer: Regularizer = None
    mask_zero: StrictBool = False
