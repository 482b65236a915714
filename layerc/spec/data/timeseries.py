"""`format: timeseries`: one column of a CSV file, cut into windows."""

from typing import Literal

from pydantic import Field, StrictBool, StrictStr

from ..layers import PosInt, Strict
from .base import Column
from .files import _Numeric, _OneFile

class SeriesOptions(Strict):
    window: PosInt  # past values per sample
    horizon: PosInt = 1  # the target is this many steps after the window's last value
    stride: PosInt = 1  # steps between consecutive windows


class TimeseriesData(_OneFile, _Numeric, SeriesOptions):
    format: Literal["timeseries"]
    column: Column
    header: StrictBool = True
    delimiter: StrictStr = Field(default=",", min_length=1, max_length=1)
