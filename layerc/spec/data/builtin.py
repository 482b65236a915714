"""`dataset: <name>`: a shipped dataset."""

from typing import Annotated, Literal, Optional

from pydantic import Field, StrictBool, StrictInt, model_validator

from ..layers import PosInt
from . import BUILTIN_DATASETS, IMAGE_DATASETS, SERIES_DATASETS, TEXT_DATASETS
from .base import Number, Side, Standardize, _Common

class BuiltinData(_Common):
    """A shipped dataset with its standard preprocessing; keys given here override it."""

    dataset: Literal[BUILTIN_DATASETS]  # type: ignore[valid-type]
    one_hot: StrictBool = False
    rescale: Optional[Number] = None
    standardize: Optional[Standardize] = None
    vocab_size: Optional[Annotated[StrictInt, Field(ge=3)]] = None
    max_length: Optional[PosInt] = None
    lowercase: Optional[StrictBool] = None
    padding: Optional[Side] = None
    truncating: Optional[Side] = None
    window: Optional[PosInt] = None
    horizon: Optional[PosInt] = None
    stride: Optional[PosInt] = None

    @model_validator(mode="before")
    @classmethod
    def _not_both(cls, value):
        if isinstance(value, dict) and "format" in value:
            raise ValueError("give `dataset: <name>` or `format: <format>`, not both")
        return value

    @model_validator(mode="after")
    def _applies(self):
        given = self.model_fields_set
        wrong = []
        if self.dataset not in TEXT_DATASETS:
            wrong += [k for k in ("vocab_size", "max_length", "lowercase", "padding", "truncating") if k in given]
        if self.dataset not in SERIES_DATASETS:
            wrong += [k for k in ("window", "horizon", "stride") if k in given]
        if self.dataset in TEXT_DATASETS:
            wrong += [k for k in ("rescale", "standardize") if k in given]
        if self.dataset in SERIES_DATASETS and "one_hot" in given:
            wrong.append("one_hot")
        if self.dataset in IMAGE_DATASETS:
            wrong += [k for k in ("test", "test_split") if k in given]
        if wrong:
            keys = ", ".join(f"`{k}`" for k in wrong)
            raise ValueError(f"{keys} {'does' if len(wrong) == 1 else 'do'} not apply to dataset {self.dataset}")
        return self
