"""The formats whose samples come as a features file and a labels file: idx and npy."""

from typing import Literal

from .files import _Pairs

class IdxData(_Pairs):
    format: Literal["idx"]


class NpyData(_Pairs):
    format: Literal["npy"]
    x_dtype: Literal["float32", "int32"] = "float32"
