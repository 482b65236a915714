"""`format: text`: labelled texts in one file, and the vocabulary options of the text formats."""

from typing import Annotated, Literal, Optional

from pydantic import Field, StrictBool, StrictInt, StrictStr

from ..layers import PosInt, Strict
from .base import Side
from .files import _OneFile

class VocabOptions(Strict):
    """How texts become padded token ids (the text and text_files formats)."""

    lowercase: StrictBool = True
    vocab_size: Annotated[StrictInt, Field(ge=3)] = 10000  # ids 0 (pad) and 1 (out of vocabulary) included
    max_length: Optional[PosInt] = None  # default: the model's input length, else the longest text
    padding: Side = "post"
    truncating: Side = "post"


class TextOptions(VocabOptions):
    separator: StrictStr = Field(default="\t", min_length=1)  # between the label and the text
    labels: Optional[list[StrictStr]] = Field(default=None, min_length=1)  # class names, id order

class TextData(_OneFile, TextOptions):
    format: Literal["text"]
    one_hot: StrictBool = False
