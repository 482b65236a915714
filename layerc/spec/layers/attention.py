"""Layer specs: attention."""
from typing import Literal, Optional, Union

from pydantic import Field, StrictBool, StrictInt

from .base import Fraction, InitializerName, LayerSpec, NonNegInt, PosInt, Regularizer


class MultiHeadAttention(LayerSpec):
    """Keras `MultiHeadAttention`: `inputs: [query, value]` or `[query, value, key]`; one input
    (or none) is self-attention."""

    type: Literal["MultiHeadAttention"] = "MultiHeadAttention"
    num_heads: PosInt
    key_dim: PosInt
    value_dim: Optional[PosInt] = None  # None: key_dim
    dropout: Fraction = 0.0
    use_bias: StrictBool = True
    output_shape: Optional[Union[PosInt, list[PosInt]]] = None  # None: the query's last dimension
    attention_axes: Optional[Union[StrictInt, list[StrictInt]]] = None
    kernel_initializer: InitializerName = "glorot_uniform"
    bias_initializer: InitializerName = "zeros"
    kernel_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    use_causal_mask: StrictBool = Field(False, description=(
        "each position attends only to itself and earlier ones; a call argument in Keras, "
        "a layer argument here since a spec has no calls"))
    seed: Optional[NonNegInt] = None
