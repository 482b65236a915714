"""What every `data:` section shares: the value types, a split's file source and the common keys."""

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from ..layers import Fraction, PosInt, Strict
from . import STREAMED_FORMATS

FilePath = Annotated[StrictStr, Field(min_length=1)]
Column = Union[Annotated[StrictInt, Field(ge=0)], Annotated[StrictStr, Field(min_length=1)]]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0, strict=True)]
Split = Union[PosInt, OpenFraction]  # a count of samples (time steps for series) or a fraction
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Side = Literal["pre", "post"]
Standardize = Union[StrictBool, Literal["feature", "global"]]

class Source(Strict):
    """Where one split's samples are: one file (`path`) or a features/labels pair (`x`, `y`)."""

    path: Optional[FilePath] = Field(default=None, description="one file (or folder) holding the samples")
    x: Optional[FilePath] = Field(default=None, description="the features file")
    y: Optional[FilePath] = Field(default=None, description="the labels file")
    x_key: Optional[StrictStr] = Field(default=None, description="the features array's name inside an .npz")
    y_key: Optional[StrictStr] = Field(default=None, description="the labels array's name inside an .npz")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"path": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler.resolve_ref_schema(handler(core_schema))
        return {"anyOf": [{"type": "string", "minLength": 1, "description": "one file (or folder): `path`"},
                          dict(schema)]}

    @model_validator(mode="after")
    def _one_form(self):
        if (self.path is None) == (self.x is None):
            raise ValueError("a source is one file (`path`) or a pair of files (`x` and `y`)")
        if self.x is not None and self.y is None:
            raise ValueError("`x` needs its labels file `y`")
        if self.path is None and self.y is not None and self.x is None:
            raise ValueError("`y` needs its features file `x`")
        if (self.x_key or self.y_key) and self.path is None:
            raise ValueError("`x_key`/`y_key` name arrays inside one .npz file given as `path`")
        return self


class _Common(Strict):
    """Keys every data section takes."""

    validation_split: Fraction = 0.0
    validation: Optional[Source] = None
    test: Optional[Source] = None
    test_split: Optional[Split] = None
    shuffle: StrictBool = True  # seeded from the spec's seed
    limit: Optional[PosInt] = None  # the first N training samples
    stream: Optional[StrictBool] = None  # read from disk as training goes; default: when it does not fit memory

    @model_validator(mode="after")
    def _one_of_each(self):
        if self.validation is not None and self.validation_split > 0:
            raise ValueError("give `validation` or `validation_split`, not both")
        if self.stream and getattr(self, "format", None) not in STREAMED_FORMATS:
            raise ValueError(f"`stream` applies to {' and '.join(f'format: {f}' for f in STREAMED_FORMATS)}, "
                             "which reads one file a sample; this data is read whole")
        if self.test is not None and self.test_split is not None:
            raise ValueError("give `test` or `test_split`, not both")
        return self

    def sources(self) -> dict[str, Source]:
        """The file sources given, by split name."""
        out = {"train": getattr(self, "train", None), "validation": self.validation, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}
Columns = Union[Column, list[Column]]
