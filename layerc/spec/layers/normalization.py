"""Layer specs: Batch and layer normalization, and the Normalization preprocessing layer."""
from typing import Literal, Optional, Union

from pydantic import StrictBool, StrictInt, model_validator

from .base import Fraction, PosFloat, InitializerName, LayerSpec, Real


class BatchNormalization(LayerSpec):
    type: Literal["BatchNormalization"] = "BatchNormalization"
    axis: StrictInt = -1
    momentum: Fraction = 0.99
    epsilon: PosFloat = 1e-3
    center: StrictBool = True
    scale: StrictBool = True
    beta_initializer: InitializerName = "zeros"
    gamma_initializer: InitializerName = "ones"
    moving_mean_initializer: InitializerName = "zeros"
    moving_variance_initializer: InitializerName = "ones"


class LayerNormalization(LayerSpec):
    type: Literal["LayerNormalization"] = "LayerNormalization"
    axis: Union[StrictInt, list[StrictInt]] = -1
    epsilon: PosFloat = 1e-3
    center: StrictBool = True
    scale: StrictBool = True
    beta_initializer: InitializerName = "zeros"
    gamma_initializer: InitializerName = "ones"


Reals = Union[Real, list[Real], list[list[Real]], list[list[list[Real]]]]


def _shape_of(v) -> tuple:
    shape = []
    while isinstance(v, list):
        shape.append(len(v))
        v = v[0] if v else None
    return tuple(shape)


def _values(v):
    return [x for item in v for x in _values(item)] if isinstance(v, list) else [v]


class Normalization(LayerSpec):
    """Keras `Normalization`: (x - mean) / max(sqrt(variance), 1e-7) per position along `axis`
    (batch axis 0; null for one mean over everything), or the inverse with `invert`. Without
    `mean` and `variance` they are weights adapted from the training data before training
    starts (Keras's `adapt`), saved with the other weights."""

    type: Literal["Normalization"] = "Normalization"
    axis: Optional[Union[StrictInt, list[StrictInt]]] = -1
    mean: Optional[Reals] = None
    variance: Optional[Reals] = None
    invert: StrictBool = False

    @model_validator(mode="after")
    def _mean_and_variance(self):
        if (self.mean is None) != (self.variance is None):
            raise ValueError("give both mean and variance, or neither (they are then adapted from the "
                             "training data)")
        if self.mean is not None:
            if _shape_of(self.mean) != _shape_of(self.variance):
                raise ValueError(f"mean has shape {list(_shape_of(self.mean))} but variance "
                                 f"{list(_shape_of(self.variance))}; they must be the same")
            if any(v < 0 for v in _values(self.variance)):
                raise ValueError("variance must be >= 0")
            axes = 0 if self.axis is None else 1 if isinstance(self.axis, int) else len(self.axis)
            if len(_shape_of(self.mean)) > axes:
                raise ValueError(f"mean has {len(_shape_of(self.mean))} dimensions, more than the "
                                 f"{axes} axes it is kept along (axis {self.axis})")
        return self
