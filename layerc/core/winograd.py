"""Winograd F(2x2, 3x3) for a 3x3, stride-1 convolution (and a 2x2 max pooling after it).

The output is cut into 2x2 tiles; with pooling, each tile is one pooling window. A tile
comes from a 4x4 input tile d (tiles 2 pixels apart): Y = A^T [(G g G^T) * (B^T d B)] A.
With the 16 transformed positions stacked, the convolution is 16 products
(tiles, C) @ (C, F) -- 16 multiplies per tile and channel pair instead of 36 -- and the
transforms are small matrix products over the 16 positions (Kronecker products of B^T,
G, A^T). Backprop is the same algebra transposed: the kernel gradient is G^T-transformed
(V^T @ dM), the input gradient B-transformed (dM @ U^T) and added back over the
overlapping tiles.

All coefficients are 0, +-1 and +-1/2, so the float32 results stay within rounding of the
direct convolution's.
"""
from __future__ import annotations

from functools import lru_cache

from . import xp


@lru_cache(maxsize=4)
def _matrices(dtype_str):
    """(BB, GG, AA): kron(B^T, B^T) (16, 16), kron(G, G) (16, 9), kron(A^T, A^T) (4, 16)."""
    BT = xp.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype_str)
    G = xp.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype_str)
    AT = xp.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype_str)
    return xp.kron(BT, BT), xp.kron(G, G), xp.kron(AT, AT)


def usable(kernel, strides, dilation, pool, channels, filters, out=None):
    """Whether conv2d may take this path: 3x3, stride 1, no dilation, no pooling or 2x2
    pooling, channels x filters big enough for the 16 products to pay for the
    transforms (`python benchmarks/conv_paths.py`, 128 images: 32 -> 64 and 64 -> 64
    channels train 1.3-1.5x faster than im2col and infer as fast or faster; 32 -> 32
    on 28x28 infers ~30% slower), and an output `out` (h, w, before pooling) of at least
    MIN_OUTPUT_SIDE a side when given."""
    return (tuple(kernel) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1)
            and (pool is None or tuple(pool) == (2, 2)) and channels >= 8
            and channels * filters >= MIN_CHANNEL_PRODUCT
            and (out is None or min(out) >= MIN_OUTPUT_SIDE))


MIN_CHANNEL_PRODUCT = 2048  # channels x filters from which the Winograd path is taken
# Smaller outputs take im2col: a 2x2 or 3x3 output is one or four tiles an image, mostly
# padding, and the products are as many rows as tiles, bound by reading U (16/9 the size
# of the kernel). 16 images, 3x3 same, 512 -> 512 channels on 2x2 trains 1.9x faster by
# im2col, on 3x3 1.8x; on 4x4 Winograd is 1.2x faster (256 and 512 channels alike).
MIN_OUTPUT_SIDE = 4


def tiles_for(out):
    """The (th, tw) 2x2 output tiles covering an (h, w) output (the last ones may stick out)."""
    return (out[0] + 1) // 2, (out[1] + 1) // 2


def untile(Y4, Y):
    """Write the tile outputs Y4 (4, n, th, tw, F) into Y (n, h, w, F), dropping what
    sticks out past Y's edge."""
    h, w = Y.shape[1:3]
    for u in range(2):
        for v in range(2):
            Y[:, u::2, v::2] = Y4[2 * u + v][:, :(h - u + 1) // 2, :(w - v + 1) // 2]


def tile(dY, tiles):
    """The transpose of `untile`: dY4 (4, n, th, tw, F) from dY (n, h, w, F), zero for
    tile pixels past the edge."""
    n, h, w, F = dY.shape
    dY4 = (xp.empty if (2 * tiles[0], 2 * tiles[1]) == (h, w) else xp.zeros)((4, n, *tiles, F), dY.dtype)
    for u in range(2):
        for v in range(2):
            dY4[2 * u + v][:, :(h - u + 1) // 2, :(w - v + 1) // 2] = dY[:, u::2, v::2]
    return dY4


def transform_kernel(W):
    """U (16, C, F) from the kernel W (3, 3, C, F)."""
    _, GG, _ = _matrices(W.dtype.str)
    C, F = W.shape[2:]
    return (GG @ W.reshape(9, C * F)).reshape(16, C, F)


def kernel_grad(dU):
    """dW (3, 3, C, F) from the gradient of U (16, C, F)."""
    _, GG, _ = _matrices(dU.dtype.str)
    C, F = dU.shape[1:]
    return (GG.T @ dU.reshape(16, C * F)).reshape(3, 3, C, F)


def _tiles(Xp, tiles):
    """The 16 views (n, th, tw, C) of Xp (n, H, W, C): element (a, b) of every 4x4 tile."""
    th, tw = tiles
    return [Xp[:, a:a + 2 * th - 1:2, b:b + 2 * tw - 1:2] for a in range(4) for b in range(4)]


_TILE_BLOCK = 128  # tiles transformed and multiplied at a time: their 16 products stay in L2


def forward(Xp, U, tiles):
    """(Y4, V): the four outputs of every 2x2 tile, Y4 (4, n, th, tw, F) (tile pixel
    (u, v) at 2u + v), and the transformed input V (16, n * th * tw, C) for backward."""
    BB, _, AA = _matrices(Xp.dtype.str)
    n, C, F = len(Xp), Xp.shape[3], U.shape[2]
    T = n * tiles[0] * tiles[1]
    D = xp.empty((16, n, *tiles, C), Xp.dtype)
    for k, view in enumerate(_tiles(Xp, tiles)):
        xp.copyto(D[k], view)
    D = D.reshape(16, T, C)
    V = xp.empty((16, T, C), Xp.dtype)
    Y4 = xp.empty((4, T, F), Xp.dtype)
    for t0 in range(0, T, _TILE_BLOCK):
        t = slice(t0, min(T, t0 + _TILE_BLOCK))
        v = xp.matmul(BB, D[:, t].reshape(16, -1), out=V[:, t].reshape(16, -1))
        M = xp.matmul(v.reshape(16, -1, C), U)
        xp.matmul(AA, M.reshape(16, -1), out=Y4[:, t].reshape(4, -1))
    return Y4.reshape(4, n, *tiles, F), V


def backward(dY4, V, U, dXp=None):
    """dU (16, C, F) from dY4 (4, n, th, tw, F); when dXp (n, H, W, C) is given, the input
    gradient is added into it."""
    BB, _, AA = _matrices(dY4.dtype.str)
    T, C = V.shape[1:]
    F = U.shape[2]
    tiles = dY4.shape[2:4]
    dY4 = dY4.reshape(4, T, F)
    dU = xp.zeros((16, C, F), V.dtype)
    dD = xp.empty((16, T, C), V.dtype) if dXp is not None else None
    for t0 in range(0, T, _TILE_BLOCK):
        t = slice(t0, min(T, t0 + _TILE_BLOCK))
        dM = (AA.T @ dY4[:, t].reshape(4, -1)).reshape(16, -1, F)
        dU += xp.matmul(V[:, t].transpose(0, 2, 1), dM)
        if dD is not None:
            dV = xp.matmul(dM, U.transpose(0, 2, 1))
            xp.matmul(BB.T, dV.reshape(16, -1), out=dD[:, t].reshape(16, -1))
    if dD is not None:
        dD = dD.reshape(16, len(dXp), *tiles, C)
        for k, view in enumerate(_tiles(dXp, tiles)):
            view += dD[k]
    return dU
