"""Transposed convolutions (Keras `Conv1DTranspose`, `Conv2DTranspose`), channels_last.

A transposed convolution is a convolution's input gradient: the forward pass is
`conv.fold` (one product per kernel offset, added into a strided slice of the output),
then Keras's crop (or zero extension) to its output size. The backward pass is the
convolution itself: dX = conv2d(dY, kernel), and the kernel gradient is that
convolution's own kernel gradient against X, so both run on conv2d's im2col/Winograd.
Conv1DTranspose runs through the 2-D code with a height of 1.
"""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .conv import conv2d, fold
from .parallel import one_blas_thread, split_batch
from ..spec.layers import pair, single


def transpose_out_size(n, k, stride, dilation, padding, output_padding):
    """Keras's `compute_conv_transpose_output_shape` for one axis (None stays None)."""
    if n is None:
        return None
    span = dilation * (k - 1) + 1
    if padding == "valid":
        op = max(span, stride) - span if output_padding is None else output_padding
        return (n - 1) * stride + span + op
    if output_padding is None:
        return n * stride
    return (n - 1) * stride + span % 2 + output_padding


def transpose_crops(k, stride, dilation, padding, output_padding):
    """(before, after) cut from the full (n - 1) * stride + span output of one axis to give
    Keras's output (negative: zeros added), from Keras's padding for JAX, which its torch
    backend also follows."""
    span = dilation * (k - 1) + 1
    if padding == "valid":
        op = max(span, stride) - span if output_padding is None else output_padding
        left, right = span - 1, span - 1 + op
    else:
        pad_len = stride + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
        left = min(pad_len // 2 + pad_len % 2, span - 1)
        right = pad_len - left
    return span - 1 - left, span - 1 - right


class _ConvTranspose(Layer):
    """Shared Conv1DTranspose/Conv2DTranspose logic on (N, H, W, C) arrays."""

    rank = 2
    splits_work = True

    def _geometry(self):
        """Per axis of the 2-D view: kernel, stride, dilation, padding, output_padding."""
        s = self.spec
        if self.rank == 1:
            op = None if s.output_padding is None else single(s.output_padding)
            return ((1, single(s.kernel_size)), (1, single(s.strides)), (1, single(s.dilation_rate)),
                    ("valid", s.padding), (None, op))
        op = None if s.output_padding is None else pair(s.output_padding)
        return (pair(s.kernel_size), pair(s.strides), pair(s.dilation_rate), (s.padding, s.padding),
                op or (None, None))

    def _spatial(self, input_shape):
        kind = type(self).__name__
        want = "(height, width, channels)" if self.rank == 2 else "(steps, channels)"
        if len(input_shape) != self.rank + 1:
            raise ShapeError(f"{kind} expects a {self.rank + 1}-D input {want}, got shape "
                             f"{tuple(input_shape)}", f"add a Reshape before it giving {want}")
        if input_shape[-1] is None:
            raise ShapeError(f"{kind} needs a known number of channels, got input shape "
                             f"{tuple(input_shape)}")
        k, st, d, pad, op = self._geometry()
        spatial = input_shape[:-1] if self.rank == 2 else (1, input_shape[0])
        out = [transpose_out_size(n, k[a], st[a], d[a], pad[a], op[a]) for a, n in enumerate(spatial)]
        if any(o is not None and o < 1 for o in out):
            raise ShapeError(f"{kind} gives an empty output for input shape {tuple(input_shape)} "
                             f"(output size {out if self.rank == 2 else out[1:]})",
                             "use padding: valid, an output_padding or an odd kernel_size")
        return out if self.rank == 2 else out[1:]

    def output_shape(self, input_shape):
        return (*self._spatial(input_shape), self.spec.filters)

    def weight_specs(self, input_shape):
        s = self.spec
        k = pair(s.kernel_size) if self.rank == 2 else (single(s.kernel_size),)
        ws = [WeightSpec("kernel", (*k, s.filters, input_shape[-1]), s.kernel_initializer,
                         regularizer=regularizer_factors(s.kernel_regularizer))]
        if s.use_bias:
            ws.append(WeightSpec("bias", (s.filters,), s.bias_initializer,
                                 regularizer=regularizer_factors(s.bias_regularizer)))
        return ws

    def macs(self, input_shape):
        self._spatial(input_shape)
        k, *_ = self._geometry()
        pixels = 1
        for n in input_shape[:-1]:
            pixels *= n or 1
        return pixels * k[0] * k[1] * input_shape[-1] * self.spec.filters

    def compute_mask(self, X, mask):
        return None

    def forward(self, X, training, mask=None):
        k, st, d, pad, op = self._geometry()
        X2 = X if self.rank == 2 else X[:, None]
        W = self.weights["kernel"]
        W2 = W if self.rank == 2 else W[None]
        N, H, Wd, C = X2.shape
        F = W2.shape[2]
        full = [(n - 1) * st[a] + d[a] * (k[a] - 1) + 1 for a, n in enumerate((H, Wd))]
        crops = [transpose_crops(k[a], st[a], d[a], pad[a], op[a]) for a in (0, 1)]
        out = [full[a] - sum(crops[a]) for a in (0, 1)]
        ext = [(max(0, -a), max(0, -b)) for a, b in crops]  # zeros added past the full output
        Yx = xp.zeros((N, full[0] + sum(ext[0]), full[1] + sum(ext[1]), F), X.dtype)
        region = Yx[:, ext[0][0]:ext[0][0] + full[0], ext[1][0]:ext[1][0] + full[1]]

        def part(b):
            fold(X2[b].reshape(-1, C), W2, region[b], [(0, 0)], st, (H, Wd), d)

        with one_blas_thread():
            split_batch(part, N, N * H * Wd * k[0] * k[1] * max(C, F))
        top, left = ext[0][0] + crops[0][0], ext[1][0] + crops[1][0]
        Z = Yx[:, top:top + out[0], left:left + out[1]]
        Z = Z + self.weights["bias"] if self.spec.use_bias else xp.ascontiguousarray(Z)
        if self.rank == 1:
            Z = Z[:, 0]
        Y, act_backprop = self.activate(Z, self.spec.activation)

        def backprop(dY):
            dZ = act_backprop(dY)
            if self.spec.use_bias:
                self.grads["bias"] = dZ.reshape(-1, F).sum(axis=0)
            dZ2 = dZ if self.rank == 2 else dZ[:, None]
            # the gradient of the full output: dZ placed back at its crop, zeros around it
            (t, bt), (l, r) = crops
            dZc = dZ2[:, max(0, -t):out[0] - max(0, -bt), max(0, -l):out[1] - max(0, -r)]
            pads = ((max(0, t), max(0, bt)), (max(0, l), max(0, r)))
            dX, conv_backprop = conv2d(xp.ascontiguousarray(dZc), W2, st, d, pads,
                                       input_grad=False, keep=True)
            dW = conv_backprop(X2)[1]
            self.grads["kernel"] = dW if self.rank == 2 else dW[0]
            if not self.input_grad:
                return None
            return dX if self.rank == 2 else dX[:, 0]

        return Y, backprop


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution (Keras `Conv2DTranspose`), channels_last.

    Shapes: X (batch, height, width, n_in) -> Y (batch, out_h, out_w, filters);
    kernel (kh, kw, filters, n_in), bias (filters,).
    """

    rank = 2


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution over steps (Keras `Conv1DTranspose`).

    Shapes: X (batch, steps, n_in) -> Y (batch, out_steps, filters);
    kernel (k, filters, n_in), bias (filters,).
    """

    rank = 1
