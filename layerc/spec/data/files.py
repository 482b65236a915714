"""The bases of the file formats: numeric preprocessing, a features/labels pair, one file, class folders."""

from typing import Literal, Optional

from pydantic import Field, StrictBool, StrictStr, model_validator

from .base import Number, Source, Standardize, _Common

class _Numeric(_Common):
    rescale: Optional[Number] = None  # x * rescale, before standardize
    standardize: Standardize = False  # statistics fitted on the training part only


class _Pairs(_Numeric):
    """Formats whose samples come as a features file and a labels file."""

    train: Source
    one_hot: StrictBool = False

    @model_validator(mode="after")
    def _pairs(self):
        for name, src in self.sources().items():
            if src.x is None:
                raise ValueError(f"`{name}` of format {self.format} needs `x:` and `y:` files")
        return self

class _OneFile(_Common):
    train: Source

    @model_validator(mode="after")
    def _one_file(self):
        for name, src in self.sources().items():
            if src.path is None:
                raise ValueError(f"`{name}` of format {self.format} is one file: `{name}: file`")
            if (src.x_key or src.y_key) and self.format != "npz":
                raise ValueError("`x_key`/`y_key` apply to the npz format only")
        return self

class _Folders(_OneFile):
    """Files in one subfolder per class, as Keras's `image_dataset_from_directory` and
    `text_dataset_from_directory` read them: classes are the sorted subfolder names (or
    `class_names`, in that order), files sorted within each."""

    class_names: Optional[list[StrictStr]] = Field(default=None, min_length=1)
    label_mode: Optional[Literal["int", "categorical", "binary"]] = None  # default: the form the loss takes
    follow_links: StrictBool = False
    bad_files: Literal["error", "skip"] = "error"  # skip: train without the files that cannot be read
