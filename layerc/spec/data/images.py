"""`format: images`: image files in class folders or listed in a CSV file."""

from typing import Annotated, Literal

from pydantic import Field, StrictBool, model_validator

from ..layers import PosInt
from .base import Column
from .files import _Folders, _Numeric

class ImagesData(_Folders, _Numeric):
    """Image files (JPEG, PNG, BMP, GIF's first frame): a folder with one subfolder per class, or
    a CSV file listing each image's path (relative to the CSV) and label."""

    format: Literal["images"]
    image_size: Annotated[list[PosInt], Field(min_length=2, max_length=2)] = [256, 256]  # height, width
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    crop_to_aspect_ratio: StrictBool = False
    pad_to_aspect_ratio: StrictBool = False
    path_column: Column = "path"  # a CSV listing's columns
    label_column: Column = "label"

    @model_validator(mode="after")
    def _one_fit(self):
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("give `crop_to_aspect_ratio` or `pad_to_aspect_ratio`, not both")
        return self

    def channels(self) -> int:
        return {"grayscale": 1, "rgb": 3, "rgba": 4}[self.color_mode]
