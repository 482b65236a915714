"""The array backend. Layers call array operations through this module only.

NumPy today; a GPU array library with NumPy's API (CuPy) could stand in here. Names
resolve on first use (PEP 562) and are then cached here, so importing this module
does not import NumPy's optional submodules (testing, f2py, ...).
"""
import numpy as _np
from numpy.lib.stride_tricks import as_strided, sliding_window_view  # noqa: F401

ndarray = _np.ndarray


def __getattr__(name):
    value = getattr(_np, name)
    globals()[name] = value
    return value
