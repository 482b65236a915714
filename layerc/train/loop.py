"""The training loop: Keras's fit and evaluate on a compiled model.

The trainer owns everything a resumed run needs (weights, optimizer state, epoch and
batch position, running figures, every random generator) and gives it out as plain
arrays and JSON through `state()` / `load_state()`.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..core import activations
from .callbacks import Callback, from_specs
from .losses import get_loss
from .metrics import make_metrics
from .optimizers import make_optimizer
from .regularizers import penalty


# A batch loss this many times the run's first batch loss is divergence, not noise: healthy
# runs start at their highest loss and spikes stay within a few hundred times the start.
DIVERGENCE = 1e6


class TrainingError(Exception):
    """Training cannot go on (a diverging loss, data that does not fit the model)."""


class Diverged(TrainingError):
    """The loss became non-finite or grew past DIVERGENCE times the first batch's."""


class Interrupted(Exception):
    """Training stopped at a batch boundary because a stop was requested (Ctrl-C, SIGTERM)."""


class _Head:
    """One model output and what trains it: its loss (fused with the output activation where
    stable), loss weight and metrics (named `<output>_<metric>` when the model has several)."""

    def __init__(self, name, layer, train, target_scale, prefix):
        self.name = name
        loss_spec = train.loss_for(name)
        self.loss = get_loss(loss_spec)
        self.activation = getattr(layer.spec, "activation", None)
        self.fused = self.loss.fuses(self.activation)
        self.train_loss = self.loss.logits_version() if self.fused else self.loss
        self.weight = train.weight_for(name)
        self.metric_specs, self.loss_type, self.prefix = train.metrics_for(name), loss_spec.type, prefix
        self.metrics = self.new_metrics(target_scale)

    def new_metrics(self, target_scale):
        metrics = make_metrics(self.metric_specs, self.loss_type, target_scale)
        for m in metrics:
            m.name = self.prefix + m.name
        return metrics

    def weighted(self, value, grad):
        if self.weight != 1.0:
            value *= self.weight
            if grad is not None:
                grad *= grad.dtype.type(self.weight)
        return value, grad


class Trainer:
    """Fits a model with the settings of a spec's `train:` section.

    Args:
        model: a `layerc.model.Model`; with several outputs, x and y are lists of arrays in
            input and output order.
        train: the validated `TrainSpec`.
        callbacks: extra `Callback`s (progress display, run recorder).
        target_scale: the data's units per target unit, for mae/mse/rmse (the loss stays
            on the targets as trained).
    """

    def __init__(self, model, train, callbacks=(), target_scale: float = 1.0):
        self.model = model.build()
        self.spec = train
        self.multi = len(model.output_names) > 1
        self.heads = [_Head(name, layer, train, target_scale, f"{name}_" if self.multi else "")
                      for name, layer in zip(model.output_names, model.output_layers())]
        head = self.heads[0]
        self.loss, self.output_activation, self.fused = head.loss, head.activation, head.fused
        self.train_loss = head.train_loss
        self.optimizer = make_optimizer(train.optimizer)
        self.target_scale = target_scale
        self.metrics = [m for h in self.heads for m in h.metrics]
        self.slots = model.trainable_slots()
        self.spec_callbacks = from_specs(train.callbacks)
        self.callbacks: list[Callback] = [*self.spec_callbacks, *callbacks]
        self.epoch = 0  # epochs finished
        self.step = 0  # batches finished in the current epoch
        self.totals = {"loss": 0.0, "count": 0}
        self.first_loss = None  # the run's first batch loss, the scale divergence is measured on
        self.history: list[dict] = []
        self.stop_training = False
        self.stop_requested = False  # set from a signal handler
        self.save_best = False
        self.messages: list[str] = []
        self.details: list[str] = []  # shown with --verbose only

    # -- reporting hooks ---------------------------------------------------------------
    def note(self, text: str):
        self.messages.append(text)

    def warn(self, text: str):
        if text not in self.messages:
            self.messages.append(text)

    # -- one step ----------------------------------------------------------------------------
    def train_step(self, xb, yb) -> float:
        """Forward, loss, backward and one optimizer update; returns the batch loss."""
        fused = [h.fused for h in self.heads] if self.multi else self.fused
        out, backprop = self.model.forward(xb, training=True, logits=fused)
        if self.multi:
            parts = [h.weighted(*h.train_loss(t, o)) for h, t, o in zip(self.heads, yb, out)]
            self.head_values = [v for v, _ in parts]
            value = sum(self.head_values)
            backprop([g for _, g in parts])
        else:
            value, dY = self.heads[0].weighted(*self.train_loss(yb, out))
            backprop(dY)
        params, grads = [], []
        for layer, name in self.slots:
            W, g = layer.weights[name], layer.grads[name]
            reg = layer.regularizers.get(name)
            if reg is not None:
                v, dW = penalty(W, *reg)
                value += v
                g = g + dW
            params.append(W)
            grads.append(g)
        self.optimizer.step(params, grads)
        for h, t, o in (zip(self.heads, yb, out) if self.multi else [(self.heads[0], yb, out)]):
            probs = activations.get(h.activation)(o)[0] if h.fused else o
            for m in h.metrics:
                m.update(t, probs)
        return value

    # -- fit ---------------------------------------------------------------------------------------
    def fit(self, x, y, *, epochs=None, batch_size=None, validation_data=None, shuffle=None,
            seed: int = 0) -> list[dict]:
        """Train from the current position (epoch, batch) to `epochs`; returns the history.

        Shapes: x an array (or list of arrays) with samples first; y with the same count.
        """
        epochs = epochs or self.spec.epochs
        batch_size = batch_size or self.spec.batch_size
        shuffle = self.spec.shuffle if shuffle is None else shuffle
        xs = x if isinstance(x, (list, tuple)) else [x]
        n = len(y[0]) if self.multi else len(y)
        if n == 0:
            raise TrainingError("the training set is empty")
        from .adapt import adapt

        for line in adapt(self.model, xs, batch_size):  # Normalization's statistics, before the first step
            self.note(line)
        steps = math.ceil(n / batch_size)
        for cb in self.callbacks:
            cb.on_train_begin(self)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a non-finite loss is reported below
            self._epochs(xs, y, epochs, batch_size, validation_data, shuffle, seed, n, steps)
        final = self.history[-1] if self.history else {}
        for cb in self.callbacks:
            cb.on_train_end(self, final)
        return self.history

    def _epochs(self, xs, y, epochs, batch_size, validation_data, shuffle, seed, n, steps):
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch
            order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
            if self.step == 0:
                self._reset_running()
                self.epoch_started = time.perf_counter()
                self.epoch_seconds = 0.0
            else:
                self.epoch_started = time.perf_counter() - self.epoch_seconds
            for cb in self.callbacks:
                cb.on_epoch_begin(self, epoch, steps)
            while self.step < steps:
                idx = order[self.step * batch_size:(self.step + 1) * batch_size]
                if shuffle:
                    idx = np.sort(idx)  # gathers in memory order are faster; the set is what is random
                xb, yb = [a[idx] for a in xs], ([a[idx] for a in y] if self.multi else y[idx])
                value = self.train_step(xb if len(xb) > 1 else xb[0], yb)
                if not math.isfinite(value):
                    raise Diverged(
                        f"the loss became {value} at epoch {epoch + 1}, batch {self.step + 1}; "
                        "training stopped (try a lower learning rate, clipnorm, or check the data "
                        "for extreme values)")
                if self.first_loss is None:
                    self.first_loss = float(value)
                elif value > DIVERGENCE * max(abs(self.first_loss), 1e-3):
                    raise Diverged(
                        f"the loss diverged at epoch {epoch + 1}, batch {self.step + 1}: {value:.3g}, "
                        f"over {DIVERGENCE:.0e} times the first batch's {self.first_loss:.3g}; training "
                        "stopped, the last good checkpoint is kept (try a lower learning rate, clipnorm, "
                        "or check the data for extreme values)")
                self.totals["loss"] += value * len(idx)
                self.totals["count"] += len(idx)
                for h, v in zip(self.heads if self.multi else (), getattr(self, "head_values", ())):
                    self.totals[f"{h.name}_loss"] = self.totals.get(f"{h.name}_loss", 0.0) + v * len(idx)
                self.step += 1
                self.epoch_seconds = time.perf_counter() - self.epoch_started
                logs = self.running_logs()
                for cb in self.callbacks:
                    cb.on_batch_end(self, self.step, logs)
                if self.stop_requested:
                    raise Interrupted()
            logs = self.running_logs()
            if validation_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(*validation_data, batch_size).items()})
            logs["learning_rate"] = self.optimizer.learning_rate
            logs["seconds"] = time.perf_counter() - self.epoch_started
            self.epoch, self.step = epoch + 1, 0
            self.save_best = False
            self.history.append({"epoch": epoch + 1, **logs})
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)

    def running_logs(self) -> dict:
        logs = {"loss": self.totals["loss"] / max(self.totals["count"], 1)}
        for h in self.heads if self.multi else ():
            logs[f"{h.name}_loss"] = self.totals.get(f"{h.name}_loss", 0.0) / max(self.totals["count"], 1)
        logs.update({m.name: m.result() for m in self.metrics})
        return logs

    def _reset_running(self):
        self.totals = {"loss": 0.0, "count": 0}
        for m in self.metrics:
            m.reset()

    # -- evaluate --------------------------------------------------------------------------------
    def evaluate(self, x, y, batch_size=None) -> dict:
        """Loss and metrics on (x, y) in inference mode, Keras's weighting by batch size."""
        batch_size = batch_size or self.spec.batch_size
        xs = x if isinstance(x, (list, tuple)) else [x]
        ys = y if self.multi else [y]
        metrics = [h.new_metrics(self.target_scale) for h in self.heads]
        total, count, per_head = 0.0, 0, [0.0] * len(self.heads)
        for start in range(0, len(ys[0]), batch_size):
            xb = [a[start:start + batch_size] for a in xs]
            yb = [a[start:start + batch_size] for a in ys]
            out, _ = self.model.forward(xb if len(xb) > 1 else xb[0], training=False)
            outs = out if self.multi else [out]
            for k, (h, t, o) in enumerate(zip(self.heads, yb, outs)):
                value, _ = h.weighted(h.loss(t, o)[0], None)
                total += value * len(t)
                per_head[k] += value * len(t)
                for m in metrics[k]:
                    m.update(t, o)
            count += len(yb[0])
        reg = sum(penalty(layer.weights[k], *layer.regularizers[k])[0]
                  for layer, k in self.slots if k in layer.regularizers)
        result = {"loss": total / max(count, 1) + reg}
        for h, v in zip(self.heads if self.multi else (), per_head):
            result[f"{h.name}_loss"] = v / max(count, 1)
        return {**result, **{m.name: m.result() for ms in metrics for m in ms}}

    # -- state for checkpoints ----------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        """(arrays, meta): everything needed to continue exactly where this trainer is."""
        arrays = {f"weights/{k}": v for k, v in self.model.named_weights().items()}
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.get_state().items()})
        for i, m in enumerate(self.metrics):
            arrays.update({f"metric{i}/{k}": np.asarray(v) for k, v in m.get_state().items()})
        for i, cb in enumerate(self.spec_callbacks):
            for j, w in enumerate(getattr(cb, "best_weights", None) or []):
                arrays[f"callback{i}/best/{j:04d}"] = w
        meta = {
            "epoch": self.epoch,
            "step": self.step,
            "totals": self.totals,
            "first_loss": self.first_loss,
            "epoch_seconds": getattr(self, "epoch_seconds", 0.0),
            "history": self.history,
            "rng": {n.name: n.layer.rng.bit_generator.state for n in self.model.nodes},
            "callbacks": [cb.state() for cb in self.spec_callbacks],
        }
        return arrays, meta

    def load_state(self, arrays: dict, meta: dict) -> None:
        """Restore what `state()` gave (weights are checked against the model)."""
        weights = self.model.named_weights()
        for k, store in weights.items():
            a = arrays.get(f"weights/{k}")
            if a is None or a.shape != store.shape:
                raise TrainingError(f"the checkpoint does not match the spec (weight {k})")
            store[...] = a
        self.optimizer.set_state({k[len("optimizer/"):]: v for k, v in arrays.items()
                                  if k.startswith("optimizer/")})
        for i, m in enumerate(self.metrics):
            m.set_state({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"metric{i}/")})
        for i, (cb, st) in enumerate(zip(self.spec_callbacks, meta["callbacks"])):
            cb.load_state(st)
            best = sorted(k for k in arrays if k.startswith(f"callback{i}/best/"))
            if best:
                cb.best_weights = [arrays[k].copy() for k in best]
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.totals = dict(meta["totals"])
        self.first_loss = meta.get("first_loss")
        self.epoch_seconds = meta.get("epoch_seconds", 0.0)
        self.history = list(meta["history"])
        for node in self.model.nodes:
            if node.name not in meta["rng"]:
                raise TrainingError(f"the checkpoint does not match the spec (no layer {node.name!r})")
            node.layer.rng.bit_generator.state = meta["rng"][node.name]
