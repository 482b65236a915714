"""The array backend. Layers call array operations through this module only.

NumPy today; a GPU array library with NumPy's API (CuPy) could stand in here. Names
resolve on first use (PEP 562) and are then cached here, so importing the layers does
not import NumPy: `layerc validate` and `summary` answer from shapes alone, fast.
"""
import importlib

_STRIDE_TRICKS = ("as_strided", "sliding_window_view")


def __getattr__(name):
    np = importlib.import_module("numpy")
    if name in _STRIDE_TRICKS:
        value = getattr(importlib.import_module("numpy.lib.stride_tricks"), name)
    else:
        value = getattr(np, name)
    globals()[name] = value
    return value
