"""`format: text_files`: text documents in class folders."""

from typing import Literal

from .files import _Folders
from .text import VocabOptions

class TextFilesData(_Folders, VocabOptions):
    """Text documents (.txt, UTF-8) in one subfolder per class."""

    format: Literal["text_files"]
