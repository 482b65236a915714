"""Layer specs: Flatten, Reshape, RepeatVector and Permute."""
from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from .base import MAX_INT, LayerSpec, PosInt


class Flatten(LayerSpec):
    type: Literal["Flatten"] = "Flatten"


class Reshape(LayerSpec):
    type: Literal["Reshape"] = "Reshape"
    target_shape: list[Annotated[StrictInt, Field(ge=-1, le=MAX_INT)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_unknown(self):
        if self.target_shape.count(-1) > 1 or 0 in self.target_shape:
            raise ValueError("target_shape takes positive sizes and at most one -1")
        return self


class RepeatVector(LayerSpec):
    type: Literal["RepeatVector"] = "RepeatVector"
    n: PosInt


class Permute(LayerSpec):
    type: Literal["Permute"] = "Permute"
    dims: list[PosInt] = Field(min_length=1)

    @model_validator(mode="after")
    def _a_permutation(self):
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"dims must be a permutation of 1..{len(self.dims)} (the batch axis "
                             f"is 0 and stays), got {self.dims}")
        return self
