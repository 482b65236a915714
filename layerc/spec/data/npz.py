"""`format: npz`: an .npz archive."""

from typing import Literal, Optional

from pydantic import StrictBool, StrictStr

from ..layers import Name
from .files import _Numeric, _OneFile

class NpzData(_OneFile, _Numeric):
    """An .npz archive: arrays `x` and `y`; for a model with several inputs or outputs, one
    array per input and per output, named after them (`x_keys`/`y_keys` map a model input or
    output to the file's own array name)."""

    format: Literal["npz"]
    one_hot: StrictBool = False
    x_dtype: Literal["float32", "int32"] = "float32"
    x_keys: Optional[dict[Name, StrictStr]] = None
    y_keys: Optional[dict[Name, StrictStr]] = None

    def check_names(self, inputs: list[str], outputs: list[str]) -> list[tuple]:
        """(path, message, hint) for x_keys/y_keys that name no model input/output, or that a
        model with one input and one output does not take."""
        if (self.x_keys or self.y_keys) and len(inputs) == 1 and len(outputs) == 1:
            key = "x_keys" if self.x_keys else "y_keys"
            return [(("data", key), f"`{key}` names the arrays of a model with several inputs or outputs",
                     "name this model's arrays with `x_key`/`y_key` in the source")]
        problems = []
        for key, names, what in (("x_keys", inputs, "input"), ("y_keys", outputs, "output")):
            for name in getattr(self, key) or {}:
                if name not in names:
                    problems.append((("data", key, name), f"`data.{key}` names {name!r}, which is no model "
                                     f"{what}", f"{what}s: {', '.join(names)}"))
        return problems
