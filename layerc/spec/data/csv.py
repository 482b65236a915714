"""`format: csv`: a CSV table."""

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictStr, model_validator

from ..layers import Name
from .base import Column, Columns, Number
from .files import _Numeric, _OneFile

class CsvData(_OneFile, _Numeric):
    """A CSV table; for a model with several inputs or outputs, `features` and `target` map each
    model input/output to its columns (`features: {a: [c1, c2], b: [c3]}`, `target: {kind: species}`)."""

    format: Literal["csv"]
    target: Union[Columns, dict[Name, Columns]]
    features: Optional[Union[Annotated[list[Column], Field(min_length=1)], dict[Name, list[Column]]]] = None
    header: StrictBool = True
    delimiter: StrictStr = Field(default=",", min_length=1, max_length=1)
    missing: Literal["error", "drop", "fill"] = "error"
    fill_value: Number = 0.0
    labels: Optional[list[StrictStr]] = Field(default=None, min_length=1)  # class names, id order
    one_hot: StrictBool = False

    @model_validator(mode="after")
    def _targets(self):
        if isinstance(self.target, list) and not self.target:
            raise ValueError("`target` names at least one column")
        return self

    def single(self) -> "CsvData":
        """This section with a one-key `features`/`target` mapping (a single-input, single-output
        model's) in the list/column form."""
        update = {k: next(iter(v.values())) for k in ("features", "target")
                  if isinstance(v := getattr(self, k), dict) and len(v) == 1}
        return self.model_copy(update=update) if update else self

    def check_names(self, inputs: list[str], outputs: list[str]) -> list[tuple]:
        """(path, message, hint) where the `features`/`target` mappings do not name the model's
        inputs/outputs, each with at least one column (or a model with several needs them)."""
        from ..diagnostics import did_you_mean

        problems = []
        for key, names, what, given in (("features", inputs, "input", self.features),
                                         ("target", outputs, "output", self.target)):
            if not isinstance(given, dict):
                if len(names) > 1:
                    problems.append((("data", key), f"a model with several {what}s names the columns of each: "
                                     f"`{key}: {{{names[0]}: [...], {names[1]}: [...]}}`",
                                     f"{what}s: {', '.join(names)}"))
                continue
            for name, cols in given.items():
                if name not in names:
                    problems.append((("data", key, name), f"`data.{key}` names {name!r}, which is no model {what}",
                                     did_you_mean(name, names) or f"{what}s: {', '.join(names)}"))
                elif cols == []:
                    problems.append((("data", key, name), f"{what} {name!r} has no columns", None))
            missing = [n for n in names if n not in given]
            if missing and not problems:
                problems.append((("data", key), f"`data.{key}` gives no columns for {what} {missing[0]!r}",
                                 f"add `{missing[0]}: [...]`"))
        return problems
