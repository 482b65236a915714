"""The array backend. Layers call array operations through this module only.

NumPy today; a GPU array library with NumPy's API (CuPy) could stand in here.
"""
from numpy import *  # noqa: F401,F403
import numpy as _np
from numpy.lib.stride_tricks import as_strided, sliding_window_view  # noqa: F401

ndarray = _np.ndarray
