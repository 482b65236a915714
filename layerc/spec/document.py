"""The top-level spec: format version, inputs, layers, outputs, data and train sections."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, InstanceOf, PrivateAttr, SerializeAsAny, StrictInt, StrictStr, model_validator

from .data import DataSpec
from .layers import LayerSpec, Name, NonNegInt, Strict
from .train import TrainSpec

FORMAT_VERSION = 1


class InputSpec(Strict):
    """One model input: its shape without the batch axis (null for a variable length)."""

    shape: list[Optional[Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]]] = Field(min_length=1, max_length=8)
    dtype: Literal["float32", "float64", "int32"] = "float32"


class Spec(Strict):
    """A whole layerc spec file."""

    layerc: Literal[1] = 1
    name: Optional[Name] = None
    description: Optional[StrictStr] = None
    seed: NonNegInt = 0
    dtype: Literal["float32", "float64"] = "float32"
    input: Optional[InputSpec] = None
    inputs: Optional[dict[Name, InputSpec]] = Field(default=None, min_length=1)
    # each layer is validated on its own by its type's model (validate._layer), so only the
    # models a spec uses are ever built; schema.py puts the layer forms back into the schema
    layers: list[SerializeAsAny[InstanceOf[LayerSpec]]] = Field(min_length=1)
    outputs: Optional[Union[Name, list[Name]]] = None
    data: Optional[DataSpec] = None
    train: Optional[TrainSpec] = None

    _source = PrivateAttr(default=None)  # the SourceMap the spec was read from
    _path = PrivateAttr(default=None)  # the spec file's path, for relative data paths
    _raw = PrivateAttr(default=None)  # the data as written (overrides applied), for spec.yaml

    @model_validator(mode="after")
    def _one_input_form(self):
        if (self.input is None) == (self.inputs is None):
            raise ValueError("give exactly one of `input: {shape: [...]}` or `inputs: {name: {shape: [...]}}`")
        return self

    def input_specs(self) -> dict[str, InputSpec]:
        """Model inputs by name (a single `input:` is named `input_layer`, as in Keras)."""
        return dict(self.inputs) if self.inputs is not None else {"input_layer": self.input}
