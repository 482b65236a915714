"""Streaming metrics over batches, Keras 3 semantics and log names.

Metrics read probabilities: when the trainer fuses the output activation into the loss
it must apply the activation to the logits before `update`.
"""
from __future__ import annotations

import math

from ..core import xp

EPSILON = 1e-7


def _same_rank(T, Y):
    """(N,) against (N, 1): reshape the targets to the predictions' shape, as Keras."""
    T = xp.asarray(T)
    if T.shape != Y.shape and T.size == Y.size:
        T = T.reshape(Y.shape)
    return T


class Metric:
    """Base class: `update(y_true, y_pred)` per batch, `result()`, `reset()`; `name` is the log key."""

    def __init__(self, name: str):
        self.name = name
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, y_true, y_pred) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    state_names: tuple = ()  # the attributes that hold the running state

    def get_state(self) -> dict:
        """The running state as plain arrays (saved in checkpoints)."""
        return {k: xp.asarray(getattr(self, k)) for k in self.state_names}

    def set_state(self, state: dict) -> None:
        for k in self.state_names:
            old = getattr(self, k)
            v = state[k]
            setattr(self, k, xp.array(v) if isinstance(old, xp.ndarray) else type(old)(v))


class MeanMetric(Metric):
    """The mean of per-sample values over everything seen (Keras MeanMetricWrapper)."""

    state_names = ("total", "count")

    def reset(self):
        self.total, self.count = 0.0, 0

    def update(self, y_true, y_pred):
        values = self._values(y_true, xp.asarray(y_pred))
        self.total += float(xp.sum(values, dtype=xp.float64))
        self.count += values.size

    def result(self):
        return self.total / self.count if self.count else 0.0

    def _values(self, y_true, Y):
        raise NotImplementedError


class BinaryAccuracy(MeanMetric):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def _values(self, y_true, Y):
        T = _same_rank(y_true, Y)
        return T == (Y > self.threshold)


class CategoricalAccuracy(MeanMetric):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def _values(self, y_true, Y):
        return xp.argmax(xp.asarray(y_true), axis=-1) == xp.argmax(Y, axis=-1)


def _sparse_labels(y_true, Y):
    labels = xp.asarray(y_true)
    if labels.ndim == Y.ndim and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    return labels.astype(xp.intp, copy=False)


class SparseCategoricalAccuracy(MeanMetric):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def _values(self, y_true, Y):
        return _sparse_labels(y_true, Y) == xp.argmax(Y, axis=-1)


def _is_sparse(y_true, Y):
    """Keras's rule: labels have lower rank, or a last axis of 1 against several classes."""
    T = xp.asarray(y_true)
    return T.ndim < Y.ndim or (T.shape[-1] == 1 and Y.shape[-1] > 1)


class Accuracy(MeanMetric):
    """"accuracy" for losses that do not decide it: Keras 3's shape rule on the first batch."""

    def __init__(self, name="accuracy"):
        self.inner = None
        super().__init__(name)

    def _values(self, y_true, Y):
        if self.inner is None:
            if Y.shape[-1] == 1:
                self.inner = BinaryAccuracy()
            elif _is_sparse(y_true, Y):
                self.inner = SparseCategoricalAccuracy()
            else:
                self.inner = CategoricalAccuracy()
        return self.inner._values(y_true, Y)


class TopKAccuracy(MeanMetric):
    """Whether the true class is among the k highest scores (sparse or one-hot labels)."""

    def __init__(self, name="top_k_accuracy", k=5):
        self.k = k
        super().__init__(name)

    def _values(self, y_true, Y):
        labels = (_sparse_labels(y_true, Y) if _is_sparse(y_true, Y)
                  else xp.argmax(xp.asarray(y_true), axis=-1))
        true_score = xp.take_along_axis(Y, labels[..., None], axis=-1)
        return xp.sum(Y > true_score, axis=-1) < self.k


class _Confusion(Metric):
    """Counts over every element, a positive prediction being y_pred > thresholds."""

    state_names = ("tp", "fp", "fn")

    def __init__(self, name, thresholds=0.5):
        self.thresholds = thresholds
        super().__init__(name)

    def reset(self):
        self.tp = self.fp = self.fn = 0

    def update(self, y_true, y_pred):
        Y = xp.asarray(y_pred)
        T = _same_rank(y_true, Y).astype(bool)
        P = Y > self.thresholds
        tp = int(xp.count_nonzero(T & P))
        self.tp += tp
        self.fp += int(xp.count_nonzero(P)) - tp
        self.fn += int(xp.count_nonzero(T)) - tp


class Precision(_Confusion):
    def __init__(self, name="precision", thresholds=0.5):
        super().__init__(name, thresholds)

    def result(self):
        d = self.tp + self.fp
        return self.tp / d if d else 0.0


class Recall(_Confusion):
    def __init__(self, name="recall", thresholds=0.5):
        super().__init__(name, thresholds)

    def result(self):
        d = self.tp + self.fn
        return self.tp / d if d else 0.0


class AUC(Metric):
    """Binary ROC AUC with Keras's approximation.

    Keras's num_thresholds thresholds (-eps, 1/(n-1), ..., (n-2)/(n-1), 1+eps), streaming
    confusion counts at each, and the trapezoid rule over (FPR, TPR). Every element of a
    multi-column prediction is one binary decision, as Keras with multi_label=False.
    """

    state_names = ("pos", "neg")

    def __init__(self, name="auc", num_thresholds=200):
        n = num_thresholds
        self.thresholds = xp.array([-EPSILON] + [(i + 1) / (n - 1) for i in range(n - 2)]
                                   + [1.0 + EPSILON])
        super().__init__(name)

    def reset(self):
        n = self.thresholds.size
        self.pos = xp.zeros(n + 1, xp.int64)  # positives by how many thresholds they exceed
        self.neg = xp.zeros(n + 1, xp.int64)

    def update(self, y_true, y_pred):
        Y = xp.asarray(y_pred, dtype=xp.float64).ravel()
        T = _same_rank(y_true, xp.asarray(y_pred)).astype(bool).ravel()
        above = xp.searchsorted(self.thresholds, Y, side="left")  # thresholds < y
        n = self.thresholds.size + 1
        self.pos += xp.bincount(above[T], minlength=n)
        self.neg += xp.bincount(above[~T], minlength=n)

    def result(self):
        # counts of predictions above threshold j: those exceeding more than j thresholds
        tp = xp.cumsum(self.pos[::-1])[::-1][1:].astype(xp.float64)
        fp = xp.cumsum(self.neg[::-1])[::-1][1:].astype(xp.float64)
        P, N = float(self.pos.sum()), float(self.neg.sum())
        tpr = tp / P if P else xp.zeros_like(tp)
        fpr = fp / N if N else xp.zeros_like(fp)
        return float(xp.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


class _Error(MeanMetric):
    """A regression error; `scale` turns errors on standardised targets back into the data's units."""

    def __init__(self, name, scale: float = 1.0):
        super().__init__(name)
        self.scale = scale

    def _errors(self, y_true, Y):
        D = Y - _same_rank(y_true, Y)
        return D * D.dtype.type(self.scale) if self.scale != 1.0 else D


class MeanAbsoluteError(_Error):
    def __init__(self, name="mae", scale=1.0):
        super().__init__(name, scale)

    def _values(self, y_true, Y):
        D = xp.abs(self._errors(y_true, Y))
        return xp.mean(D, axis=-1) if D.ndim > 1 else D


class MeanSquaredError(_Error):
    def __init__(self, name="mse", scale=1.0):
        super().__init__(name, scale)

    def _values(self, y_true, Y):
        D = self._errors(y_true, Y)
        D *= D
        return xp.mean(D, axis=-1) if D.ndim > 1 else D


class RootMeanSquaredError(_Error):
    """sqrt of the mean squared error over every element (Keras RootMeanSquaredError)."""

    def __init__(self, name="rmse", scale=1.0):
        super().__init__(name, scale)

    def _values(self, y_true, Y):
        D = self._errors(y_true, Y)
        return D * D

    def result(self):
        return math.sqrt(super().result())


_ACCURACY_FOR_LOSS = {
    "binary_crossentropy": BinaryAccuracy,
    "categorical_crossentropy": CategoricalAccuracy,
    "sparse_categorical_crossentropy": SparseCategoricalAccuracy,
}
_SIMPLE = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy, "mae": MeanAbsoluteError,
    "mse": MeanSquaredError, "rmse": RootMeanSquaredError,
}


def make_metric(metric_spec, loss_name: str | None = None, target_scale: float = 1.0) -> Metric:
    """One Metric from a metric spec model (or a bare name); see `make_metrics`."""
    kind = metric_spec if isinstance(metric_spec, str) else metric_spec.type
    if kind in ("accuracy", "acc"):
        return _ACCURACY_FOR_LOSS.get(loss_name, Accuracy)(name="accuracy")
    if kind in ("mae", "mse", "rmse"):
        return _SIMPLE[kind](name=kind, scale=target_scale)
    if kind in _SIMPLE:
        return _SIMPLE[kind](name=kind)
    args = ({} if isinstance(metric_spec, str) else
            {k: getattr(metric_spec, k) for k in type(metric_spec).model_fields if k != "type"})
    if kind == "top_k_accuracy":
        return TopKAccuracy(name=kind, **args)
    if kind == "precision":
        return Precision(name=kind, **args)
    if kind == "recall":
        return Recall(name=kind, **args)
    if kind == "auc":
        return AUC(name=kind, **args)
    raise ValueError(f"unknown metric {kind!r}")


def make_metrics(metric_specs, loss_name=None, target_scale: float = 1.0) -> list[Metric]:
    """Metrics for the `metrics:` list; "accuracy" follows the loss.

    Args:
        metric_specs: metric spec models or names.
        loss_name: the loss's name, a loss spec model, or a Loss. Binary, categorical
            and sparse categorical crossentropy choose binary, categorical and sparse
            categorical accuracy; with other losses Keras 3's shape rule decides on
            the first batch (one output column: binary; integer labels: sparse).
        target_scale: the data's units per target unit (a standardised series' std), by
            which mae, mse and rmse are reported in the data's units.
    """
    if loss_name is not None and not isinstance(loss_name, str):
        loss_name = getattr(loss_name, "type", None) or getattr(loss_name, "name", None)
    return [make_metric(m, loss_name, target_scale) for m in metric_specs]
