"""The top-level spec: format version, inputs, layers, outputs, data and train sections."""

import functools
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, InstanceOf, PrivateAttr, SerializeAsAny, StrictInt, StrictStr, create_model, model_validator
from pydantic_core import core_schema

from .data import data_spec
from .data.base import _Common
from .layers import LayerSpec, Name, NonNegInt, Strict
from .lint import LintSpec
from .train import TrainSpec

FORMAT_VERSION = 1


class _Validated:
    """`Annotated[T, _Validated(T)]`: a value validated before the model (an isinstance check
    only, so building the model builds nothing of T's own schema)."""

    def __init__(self, cls):
        self.cls = cls

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.is_instance_schema(self.cls)


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
    # like layers, `data:` and `train:` come validated section by section by the models they
    # name (validate._sections); full_spec() is this model with the whole unions, for the
    # located errors of a spec that does not validate so, and for the JSON Schema
    data: Optional[Annotated[_Common, _Validated(_Common)]] = None
    train: Optional[Annotated[TrainSpec, _Validated(TrainSpec)]] = None
    lint: Optional[LintSpec] = Field(None, description="lint settings for this file: `disable: [CODE, ...]`")

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


@functools.cache
def full_spec() -> type[Spec]:
    """Spec with `data:` and `train:` validated as whole unions (builds every model in them)."""
    return create_model("Spec", __base__=Spec, __doc__=Spec.__doc__, __module__=__name__,
                        data=(Optional[data_spec()], None), train=(Optional[TrainSpec], None))
