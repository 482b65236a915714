"""The contract every layer implements.

A layer is constructed from its validated spec, answers pure shape questions
(`output_shape`, `weight_specs`, `macs`) without allocating anything, allocates its
weights in `build`, and computes in `forward`, which returns the output and a
`backprop` closure (thinc style): `backprop(dY)` stores the parameter gradients in
`self.grads` (replacing earlier values) and returns `dX`. A backprop never modifies
the `dY` it is given (layers such as Add hand the same array to several inputs).

Shapes never include the batch axis; `None` is a dimension unknown until run time
(a variable sequence length).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import activations, initializers
from . import xp

Shape = tuple  # of int | None, batch axis excluded
Backprop = Callable[[Any], Any]


class ShapeError(ValueError):
    """A layer cannot take the shape it is given.

    Args:
        message: what is wrong, in the user's words ("Conv2D expects ...").
        hint: what would fix it, or None.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class WeightSpec:
    """One weight: its Keras name, shape, initializer and whether it is trained."""

    name: str
    shape: tuple
    initializer: Any = "zeros"  # a name from `initializers`, or a callable(shape, rng, dtype)
    trainable: bool = True
    regularizer: tuple | None = None  # (l1, l2) penalty factors, Keras's semantics

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def regularizer_factors(reg) -> tuple | None:
    """(l1, l2) from a spec's regularizer value: None, 'l1', 'l2', 'l1_l2' or {l1:, l2:}."""
    if reg is None:
        return None
    if isinstance(reg, str):
        return {"l1": (0.01, 0.0), "l2": (0.0, 0.01), "l1_l2": (0.01, 0.01)}[reg]
    return (float(reg.l1), float(reg.l2))


def kernel_and_bias(spec, kernel_shape) -> list[WeightSpec]:
    """Keras's `kernel`, then `bias` (sized by the kernel's last axis) when use_bias."""
    ws = [WeightSpec("kernel", tuple(kernel_shape), spec.kernel_initializer,
                     regularizer=regularizer_factors(spec.kernel_regularizer))]
    if spec.use_bias:
        ws.append(WeightSpec("bias", (kernel_shape[-1],), spec.bias_initializer,
                             regularizer=regularizer_factors(spec.bias_regularizer)))
    return ws


def elements(shape) -> int:
    """Values per sample in `shape` (unknown dimensions count as 1)."""
    n = 1
    for d in shape:
        n *= d or 1
    return n


class Layer:
    """Base class of all layers.

    Args:
        spec: the validated layer spec (a pydantic model from `layerc.spec.layers`).
        name: the layer's unique name in the model.
        seed: seed of this layer's random generator (initialisation, dropout).
        dtype: "float32" or "float64".
    """

    multi_input = False  # True: forward takes a list of arrays and backprop returns a list
    splits_work = False  # True: splits its products over the batch on threads (see core.parallel)

    def __init__(self, spec, name: str, seed: int, dtype: str = "float32"):
        self.spec = spec
        self.name = name
        self.seed = seed
        self.dtype_name = dtype
        self._rng = None
        self.weights: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.trainable: dict[str, bool] = {}
        self.regularizers: dict[str, tuple] = {}
        self.input_shape = None
        # Set by the model while training with a loss that fuses this output layer's
        # activation (softmax or sigmoid + crossentropy): the layer then returns its
        # pre-activation logits and the loss works from logits, stably.
        self.fused_output = False
        # False when the input is the model's data: backprop may then skip dX (return None).
        self.input_grad = True

    # NumPy objects are made on first use, so compiling a spec never imports NumPy.
    @property
    def dtype(self):
        return xp.dtype(self.dtype_name)

    @property
    def rng(self):
        """This layer's random generator (initialisation, dropout), seeded from the spec."""
        if self._rng is None:
            self._rng = xp.random.default_rng(self.seed)
        return self._rng

    @rng.setter
    def rng(self, generator):
        self._rng = generator

    @property
    def frozen(self) -> bool:
        """The spec's `trainable: false`: no weight of this layer is trained (Keras's layer.trainable)."""
        return not getattr(self.spec, "trainable", True)

    # -- pure shape questions -------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        raise NotImplementedError

    def weight_specs(self, input_shape: Shape) -> list[WeightSpec]:
        return []

    def macs(self, input_shape: Shape) -> int:
        """Multiply-accumulates per sample for one forward pass."""
        return 0

    # -- allocation ------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Allocate the weights for `input_shape` with their initializers."""
        self.input_shape = input_shape
        self.weights, self.grads = {}, {}
        for w in self.weight_specs(input_shape):
            init = w.initializer if callable(w.initializer) else initializers.get(w.initializer)
            self.weights[w.name] = init(w.shape, self.rng, self.dtype)
            self.grads[w.name] = xp.zeros(w.shape, self.dtype)
            self.trainable[w.name] = w.trainable and not self.frozen
            if w.regularizer is not None:
                self.regularizers[w.name] = w.regularizer

    # -- compute ----------------------------------------------------------------
    def forward(self, X, training: bool, mask=None) -> tuple[Any, Backprop]:
        raise NotImplementedError

    def compute_mask(self, X, mask):
        """The mask of this layer's output (Keras's `compute_mask`); default passes it on."""
        return mask

    # -- helpers for subclasses -----------------------------------------------------
    def activate(self, Z, name: str):
        """Apply activation `name` to Z; returns (Y, backprop), or (Z, identity) when fused."""
        if self.fused_output:
            return Z, _identity
        return activations.get(name)(Z)


def _identity(dY):
    return dY
