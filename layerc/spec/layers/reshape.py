"""Layer specs: Flatten and Reshape."""
from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from .base import MAX_INT, LayerSpec


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
