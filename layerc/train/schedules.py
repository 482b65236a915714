"""Learning-rate schedules: callables `step -> learning rate` with Keras 3's formulas.

`step` is the optimizer's update count (Keras's `optimizer.iterations`), starting at 0.
"""
from __future__ import annotations

import bisect
import math


class Constant:
    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def __call__(self, step: int) -> float:
        return self.learning_rate


class ExponentialDecay:
    """initial_learning_rate * decay_rate ** (step / decay_steps), floored exponent if staircase."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = staircase

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class StepDecay:
    """Keras PiecewiseConstantDecay: values[0] while step <= boundaries[0], and so on."""

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError("values needs one more entry than boundaries")
        self.boundaries = list(boundaries)
        self.values = [float(v) for v in values]

    def __call__(self, step: int) -> float:
        return self.values[bisect.bisect_left(self.boundaries, step)]


class CosineDecay:
    """Keras 3 CosineDecay: linear warmup from initial_learning_rate to warmup_target over
    warmup_steps (when warmup_target is set), then cosine decay to alpha * peak over decay_steps."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.alpha = float(alpha)
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, peak):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * step / self.warmup_steps + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, float(self.warmup_target))


SCHEDULES = {"exponential_decay": ExponentialDecay, "step_decay": StepDecay,
             "cosine_decay": CosineDecay}


def make_schedule(learning_rate_spec):
    """A callable `step -> learning rate` from a float or a schedule spec model.

    Args:
        learning_rate_spec: a positive number (a constant), a schedule model from
            `layerc.spec.train`, or a callable (returned as is).
    """
    if isinstance(learning_rate_spec, (int, float)):
        return Constant(learning_rate_spec)
    if callable(learning_rate_spec):
        return learning_rate_spec
    spec = learning_rate_spec
    args = {k: getattr(spec, k) for k in type(spec).model_fields if k != "type"}
    return SCHEDULES[spec.type](**args)
