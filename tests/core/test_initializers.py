"""Initializers: shapes, dtypes, statistics, orthogonality and Keras's fan rules."""
from __future__ import annotations

import math

import numpy as np
import pytest

from layerc.core import initializers
from layerc.spec import layers as S

NAMES = sorted(initializers.INITIALIZERS)
TRUNC_STD = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def draw(name, shape, seed=0, dtype=np.float32):
    return initializers.get(name)(shape, np.random.default_rng(seed), np.dtype(dtype))


def test_every_spec_initializer_is_implemented():
    assert set(S.InitializerName.__args__) == set(initializers.INITIALIZERS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(7,), (5, 3), (3, 3, 4, 8), (3, 6, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_and_reproducibility(name, shape, dtype):
    W = draw(name, shape, dtype=dtype)
    assert W.shape == shape and W.dtype == dtype
    np.testing.assert_array_equal(W, draw(name, shape, dtype=dtype))
    assert np.isfinite(W).all()


@pytest.mark.parametrize("shape,fans", [
    ((), (1, 1)),
    ((7,), (7, 7)),
    ((5, 3), (5, 3)),
    ((3, 6, 2), (18, 6)),           # Conv1D kernel (k, in, out)
    ((3, 3, 4, 8), (36, 72)),       # Conv2D kernel (kh, kw, in, out)
])
def test_fans_follow_keras(shape, fans):
    assert initializers._fans(shape) == fans


def test_fans_equal_keras_compute_fans(keras):
    from keras.src.initializers.random_initializers import compute_fans
    for shape in [(), (7,), (5, 3), (3, 6, 2), (3, 3, 4, 8), (2, 5, 5, 3, 4)]:
        assert initializers._fans(shape) == compute_fans(shape), shape


# name -> (fan_mode, scale, distribution) of Keras's VarianceScaling definitions
SCALED = {
    "glorot_uniform": ("fan_avg", 1.0, "uniform"),
    "glorot_normal": ("fan_avg", 1.0, "truncated"),
    "he_uniform": ("fan_in", 2.0, "uniform"),
    "he_normal": ("fan_in", 2.0, "truncated"),
    "lecun_uniform": ("fan_in", 1.0, "uniform"),
    "lecun_normal": ("fan_in", 1.0, "truncated"),
}


@pytest.mark.parametrize("name", sorted(SCALED))
@pytest.mark.parametrize("shape", [(400, 300), (3, 3, 40, 60)])
def test_variance_scaling_statistics(name, shape):
    mode, scale, dist = SCALED[name]
    fan_in, fan_out = initializers._fans(shape)
    n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    W = draw(name, shape, dtype=np.float64)
    assert abs(W.mean()) < 0.02 * std
    assert abs(W.std() / std - 1) < 0.02
    if dist == "uniform":
        limit = math.sqrt(3 * scale / n)
        assert W.max() <= limit and W.min() >= -limit and W.max() > 0.99 * limit
    else:
        bound = 2 * std / TRUNC_STD
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound


@pytest.mark.parametrize("name,std,bound", [
    ("random_normal", 0.05, None),
    ("truncated_normal", 0.05 * TRUNC_STD, 0.1),
    ("random_uniform", 0.05 / math.sqrt(3), 0.05),
    ("uniform", 0.05 / math.sqrt(3), 0.05),
])
def test_fixed_scale_statistics(name, std, bound):
    W = draw(name, (500, 400), dtype=np.float64)
    assert abs(W.mean()) < 0.01 * std
    assert abs(W.std() / std - 1) < 0.01
    if bound is not None:
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound


def test_constants():
    np.testing.assert_array_equal(draw("zeros", (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(draw("ones", (4,)), np.ones(4))


@pytest.mark.parametrize("shape", [(64, 64), (30, 50), (50, 30), (3, 4, 20), (7,)])
def test_orthogonal(shape):
    W = draw("orthogonal", shape, dtype=np.float64)
    M = W.reshape(-1, shape[-1]) if len(shape) > 1 else W.reshape(1, -1)
    rows, cols = M.shape
    G = M @ M.T if rows <= cols else M.T @ M
    np.testing.assert_allclose(G, np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_is_not_biased_by_qr_signs():
    # sign correction makes Q Haar-distributed: the diagonal averages to 0, not 1
    diag = np.array([np.diag(draw("orthogonal", (8, 8), seed=s, dtype=np.float64))
                     for s in range(300)])
    assert abs(diag.mean()) < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_statistics_match_keras(keras, name):
    shape = (300, 200) if name != "orthogonal" else (200, 200)
    keras.utils.set_random_seed(0)  # deterministic reference draws
    K = keras.ops.convert_to_numpy(keras.initializers.get(name)(shape, dtype="float32"))
    W = draw(name, shape)
    assert K.shape == W.shape
    if name in ("zeros", "ones"):
        np.testing.assert_array_equal(W, K)
        return
    assert abs(W.std() / K.std() - 1) < 0.03, (W.std(), K.std())
    # tails via a high quantile (Keras's torch truncation can, rarely, leave one outlier)
    q = [np.quantile(np.abs(A), 0.99) for A in (W, K)]
    assert abs(q[0] / q[1] - 1) < 0.05, q
    if name == "orthogonal":
        np.testing.assert_allclose(K.T @ K, np.eye(200), atol=1e-4)
