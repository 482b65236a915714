"""Image augmentation (Keras 3's RandomFlip ... RandomBrightness), channels_last.

Each layer draws its random parameters from its own generator (seeded from the spec's
seed, or its `seed:`, and saved in checkpoints, so resume is exact) while training, and is
the identity at inference, except RandomCrop, which then takes the centred window (as
Keras documents). For fixed draws every layer is linear in its input (up to the clipping
of contrast and brightness), so backprop is the same sampling transposed.
"""
from __future__ import annotations

import math

from . import xp
from .base import Layer, ShapeError
from .parallel import split_batch
from ..spec.layers.augmentation import factor_range


def _mirror(i, size):
    s = size - 1
    return xp.abs((i + s) % (2 * s) - s) if s > 0 else xp.zeros_like(i)


_FIX = {  # an integer pixel index outside [0, size) -> the pixel it reads (Keras's index fixers)
    "constant": lambda i, size: xp.clip(i, 0, size - 1),
    "nearest": lambda i, size: xp.clip(i, 0, size - 1),
    "wrap": lambda i, size: i % size,
    "reflect": lambda i, size: (_mirror(2 * i + 1, 2 * size + 1) - 1) // 2,
}


def _taps(coord, size, interpolation, fill_mode, itype):
    """[(index, weight, inside)] along one axis for real coordinates `coord`."""
    if interpolation == "nearest":
        nodes = [(xp.round(coord).astype(itype), coord.dtype.type(1))]
    else:
        low = xp.floor(coord)
        upper = coord - low
        low = low.astype(itype)
        nodes = [(low, 1 - upper), (low + 1, upper)]
    taps = []
    for i, w in nodes:
        inside = (i >= 0) & (i < size)
        if not inside.all():  # only the points outside need fixing (the modulo is slow)
            i = i.copy()
            i[~inside] = _FIX[fill_mode](i[~inside], size)
        taps.append((i, w, inside))
    return taps


def affine_transform(X, T, interpolation="bilinear", fill_mode="constant", fill_value=0.0, size=None):
    """Keras's `ops.image.affine_transform`, with its backprop.

    Output pixel (x, y) reads the input at (a0 x + a1 y + a2, b0 x + b1 y + b2), sampled
    bilinearly or at the nearest pixel (halves to even); points outside are filled by
    `fill_mode`: reflect (d c b a | a b c d), wrap, constant (fill_value), nearest.

    Args:
        X: images (batch, height, width, channels).
        T: (batch, 8) or (8,), Keras's [a0, a1, a2, b0, b1, b2, c0, c1] (c0 = c1 = 0).
        size: the output's (height, width); default the input's.
    Returns:
        (Y, backprop), Y (batch, *size, channels).
    """
    B, H, W, C = X.shape
    Ho, Wo = size or (H, W)
    T = xp.broadcast_to(xp.asarray(T, X.dtype).reshape(-1, 8), (B, 8))  # in X's precision, as Keras
    Y = xp.empty((B, Ho, Wo, C), X.dtype)
    backs = {}

    def run(part):
        Y[part], backs[part.start] = _sample(X[part], T[part], interpolation, fill_mode, fill_value, Ho, Wo)

    work = Y.size * 8
    split_batch(run, B, work)

    def backprop(dY):
        dX = xp.empty_like(X)

        def back(part):
            dX[part] = backs[part.start](dY[part])

        split_batch(back, B, work)
        return dX

    return Y, backprop


def _sample(X, T, interpolation, fill_mode, fill_value, Ho, Wo):
    """affine_transform on one part of the batch: (Y, backprop)."""
    B, H, W, C = X.shape
    itype = xp.int32 if X.size < 2**31 else xp.int64
    a0, a1, a2, b0, b1, b2 = (T[:, k, None, None] for k in range(6))
    y, x = xp.arange(Ho, dtype=X.dtype)[:, None], xp.arange(Wo, dtype=X.dtype)[None, :]
    xs, ys = a0 * x + a1 * y + a2, b0 * x + b1 * y + b2  # (B, Ho, Wo)
    base = (xp.arange(B, dtype=itype) * (H * W))[:, None, None]
    x_taps = _taps(xs, W, interpolation, fill_mode, itype)
    taps, outside = [], 0
    for iy, wy, vy in _taps(ys, H, interpolation, fill_mode, itype):
        row = base + iy * W
        for ix, wx, vx in x_taps:
            w = xp.broadcast_to(wy * wx, xs.shape)
            if fill_mode == "constant":
                inside = vy & vx
                outside = outside + w * ~inside
                w = w * inside
            taps.append(((row + ix).ravel(), w.ravel()))
    Xf = X.reshape(B * H * W, C)
    Y = sum(w[:, None] * Xf.take(i, axis=0) for i, w in taps)
    if fill_mode == "constant" and fill_value != 0:
        Y += (X.dtype.type(fill_value) * outside).reshape(-1, 1)

    def backprop(dY):
        index = xp.concatenate([i for i, _ in taps])
        dYc = xp.ascontiguousarray(dY.reshape(-1, C).T)  # (C, pixels)
        dX = xp.empty((B * H * W, C), X.dtype)
        for c in range(C):
            weight = xp.concatenate([w * dYc[c] for _, w in taps])
            dX[:, c] = xp.bincount(index, weight, minlength=B * H * W)
        return dX.reshape(X.shape)

    return Y.reshape(B, Ho, Wo, C), backprop


def rotation_matrix(angles, height, width):
    """Keras's matrix of a rotation by `angles` (degrees, counter-clockwise) about the centre."""
    t = xp.asarray(angles, xp.float64) * (math.pi / 180.0)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    a0, a1, b0, b1 = xp.cos(t), -xp.sin(t), xp.sin(t), xp.cos(t)
    zero = xp.zeros_like(t)
    return xp.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1, zero, zero], axis=1)


def zoom_matrix(height_zoom, width_zoom, height, width):
    """Keras's zoom matrix: zoom > 1 samples a larger area (zooms out), about the centre."""
    zy, zx = xp.asarray(height_zoom, xp.float64), xp.asarray(width_zoom, xp.float64)
    zero = xp.zeros_like(zx)
    return xp.stack([zx, zero, (width - 1) / 2 * (1 - zx), zero, zy, (height - 1) / 2 * (1 - zy), zero, zero],
                    axis=1)


def translation_matrix(dy, dx):
    """Keras's translation matrix: the output is the input moved by (dx, dy) pixels."""
    dy, dx = xp.asarray(dy, xp.float64), xp.asarray(dx, xp.float64)
    one, zero = xp.ones_like(dx), xp.zeros_like(dx)
    return xp.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)


class _Image(Layer):
    """An augmentation layer on (height, width, channels) images; `seed:` overrides the spec's."""

    def __init__(self, spec, name, seed, dtype="float32"):
        super().__init__(spec, name, seed if spec.seed is None else spec.seed, dtype)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.spec.type} expects images (height, width, channels), got shape "
                             f"{tuple(input_shape)}", "add a Reshape before it giving (height, width, channels)")
        return tuple(input_shape)

    def compute_mask(self, X, mask):
        return None

    def forward(self, X, training, mask=None):
        if not training:
            return X, _identity
        Y, backprop = self.augment(X)
        return Y, backprop if self.input_grad else _no_input_grad


class _Affine(_Image):
    def matrices(self, B, H, W):
        raise NotImplementedError

    def augment(self, X):
        s = self.spec
        B, H, W = X.shape[:3]
        return affine_transform(X, self.matrices(B, H, W), s.interpolation, s.fill_mode, s.fill_value)


class RandomFlip(_Image):
    """Flips each image with probability 1/2 (Keras `RandomFlip`); in `horizontal_and_vertical`
    mode one draw flips both axes, as in Keras.

    Shapes: X (batch, height, width, channels) -> Y, same shape.
    """

    def augment(self, X):
        flips = self.rng.uniform(size=len(X)) <= 0.5
        mode = self.spec.mode
        axes = (slice(None, None, -1) if mode != "horizontal" else slice(None),
                slice(None, None, -1) if mode != "vertical" else slice(None))

        def flip(A):
            B = A.copy()
            B[flips] = A[flips][:, axes[0], axes[1]]
            return B

        return flip(X), flip


class RandomRotation(_Affine):
    """Rotates each image by a random angle, counter-clockwise for positive angles (Keras
    `RandomRotation`).

    Shapes: X (batch, height, width, channels) -> Y, same shape.
    """

    def matrices(self, B, H, W):
        lower, upper = factor_range(self.spec.factor, -1.0)
        return rotation_matrix(self.rng.uniform(lower * 360.0, upper * 360.0, B), H, W)


class RandomZoom(_Affine):
    """Zooms each image in or out by a random factor per axis (Keras `RandomZoom`).

    Shapes: X (batch, height, width, channels) -> Y, same shape.
    """

    def matrices(self, B, H, W):
        hl, hu = factor_range(self.spec.height_factor, -1.0)
        zy = self.rng.uniform(1.0 + hl, 1.0 + hu, B)
        zx = zy
        if self.spec.width_factor is not None:
            wl, wu = factor_range(self.spec.width_factor, -1.0)
            zx = self.rng.uniform(1.0 + wl, 1.0 + wu, B)
        return zoom_matrix(zy, zx, H, W)


class RandomTranslation(_Affine):
    """Shifts each image by a random fraction of its height and width (Keras `RandomTranslation`).

    Shapes: X (batch, height, width, channels) -> Y, same shape.
    """

    def matrices(self, B, H, W):
        hl, hu = factor_range(self.spec.height_factor, -1.0)
        dy = self.rng.uniform(hl, hu, B) * H
        wl, wu = factor_range(self.spec.width_factor, -1.0)
        dx = self.rng.uniform(wl, wu, B) * W
        return translation_matrix(dy, dx)


def centre_window(H, W, height, width):
    """Keras's largest centred window of the aspect ratio height:width: (top, left, rows, cols)."""
    rows = max(min(H, int(float(W * height) / width)), 1)
    cols = max(min(W, int(float(H * width) / height)), 1)
    return int(float(H - rows) / 2), int(float(W - cols) / 2), rows, cols


def resize_matrix(rows, cols, height, width):
    """The affine matrix of a bilinear resize from rows x cols to height x width (half-pixel
    centres, as Keras's `ops.image.resize` without antialias; use fill_mode nearest)."""
    sy, sx = rows / height, cols / width
    return xp.asarray([sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5, 0.0, 0.0])


class RandomCrop(_Image):
    """A random height x width window of the batch while training (one place for the whole
    batch, as in Keras); at inference, and for images smaller than the window, the largest
    centred window of that aspect ratio, resized bilinearly to height x width (Keras's
    documented behaviour; see the README).

    Shapes: X (batch, rows, cols, channels) -> Y (batch, height, width, channels).
    """

    def output_shape(self, input_shape):
        super().output_shape(input_shape)
        if None in input_shape[:2]:
            raise ShapeError(f"RandomCrop needs images of known height and width, got shape {tuple(input_shape)}")
        return (self.spec.height, self.spec.width, input_shape[2])

    def forward(self, X, training, mask=None):
        h, w = self.spec.height, self.spec.width
        H, W = X.shape[1:3]
        if training and H >= h and W >= w:
            top, left = int(self.rng.integers(0, H - h + 1)), int(self.rng.integers(0, W - w + 1))
            rows, cols = h, w
        else:
            top, left, rows, cols = centre_window(H, W, h, w)
        window = (slice(None), slice(top, top + rows), slice(left, left + cols))
        Y, resize_back = X[window], _identity
        if (rows, cols) != (h, w):
            Y, resize_back = affine_transform(Y, resize_matrix(rows, cols, h, w), "bilinear", "nearest", size=(h, w))

        def backprop(dY):
            dX = xp.zeros_like(X)
            dX[window] = resize_back(dY)
            return dX

        return Y, backprop if self.input_grad else _no_input_grad


def _clip(Z, value_range):
    """Z clipped to value_range, with the backprop of the clipping."""
    lo, hi = value_range
    inside = (Z >= lo) & (Z <= hi)
    return xp.clip(Z, lo, hi), lambda dY: dY * inside


class RandomContrast(_Image):
    """(x - mean) * c + mean per image and channel, c drawn per image, clipped to value_range
    (Keras `RandomContrast`).

    Shapes: X (batch, height, width, channels) -> Y, same shape.
    """

    def augment(self, X):
        lower, upper = factor_range(self.spec.factor, 0.0)
        c = self.rng.uniform(1.0 - lower, 1.0 + upper, (len(X), 1, 1, 1)).astype(X.dtype)
        mean = X.mean(axis=(1, 2), keepdims=True)
        Y, clip_back = _clip((X - mean) * c + mean, self.spec.value_range)

        def backprop(dY):
            dZ = clip_back(dY)
            return dZ * c + dZ.mean(axis=(1, 2), keepdims=True) * (1 - c)

        return Y, backprop


class RandomBrightness(_Image):
    """Adds d * (high - low) per image, d drawn in [lower, upper], clipped to value_range
    (Keras `RandomBrightness`).

    Shapes: X (batch, height, width, channels) -> Y, same shape.
    """

    def augment(self, X):
        lower, upper = factor_range(self.spec.factor, -1.0)
        lo, hi = self.spec.value_range
        d = (self.rng.uniform(lower, upper, (len(X), 1, 1, 1)) * (hi - lo)).astype(X.dtype)
        return _clip(X + d, self.spec.value_range)


def _identity(dY):
    return dY


def _no_input_grad(dY):
    return None  # the input is the model's data
