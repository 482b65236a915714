"""Callbacks from the spec's `train.callbacks`, and the hooks the trainer reports through.

A callback sees `on_epoch_end(trainer, epoch, logs)` and may set `trainer.stop_training`
or change `trainer.optimizer.learning_rate`. Its `state()` is saved in checkpoints so a
resumed run continues exactly.
"""
from __future__ import annotations

import math


class Callback:
    """Hooks, all optional. The CLI's progress display and the run recorder are callbacks too."""

    def on_train_begin(self, trainer): ...
    def on_epoch_begin(self, trainer, epoch: int, steps: int): ...
    def on_batch_end(self, trainer, step: int, logs: dict): ...
    def on_epoch_end(self, trainer, epoch: int, logs: dict): ...
    def on_train_end(self, trainer, logs: dict): ...

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class _Monitor(Callback):
    """Tracks the best value of `monitor` with Keras's mode and min_delta rules."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0):
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = abs(min_delta)
        self.best = math.inf
        self.wait = 0

    def improved(self, logs: dict) -> bool | None:
        """Keras's rule: better than the best by more than min_delta (None: not logged)."""
        value = logs.get(self.monitor)
        if value is None:
            return None
        if self.sign * value < self.best - self.min_delta:
            self.best = self.sign * value
            return True
        return False

    def state(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state(self, state):
        self.best, self.wait = state["best"], state["wait"]


class EarlyStopping(_Monitor):
    """Keras's EarlyStopping: stop once `monitor` has not improved for `patience` epochs."""

    def __init__(self, spec):
        super().__init__(spec.monitor, spec.mode, spec.min_delta)
        self.patience = spec.patience
        self.restore = spec.restore_best_weights
        self.best_weights = None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            trainer.warn(f"early_stopping monitors {self.monitor!r}, which this run does not log "
                         f"(it logs {', '.join(logs)})")
            return
        if self.restore and self.best_weights is None:
            self.best_weights = trainer.model.get_weights()
        self.wait += 1
        if self.improved(logs):
            self.wait = 0
            if self.restore:
                self.best_weights = trainer.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            trainer.stop_training = True
            if self.restore and self.best_weights is not None:
                trainer.model.set_weights(self.best_weights)
                trainer.note(f"early stopping: restored the weights of the best epoch ({self.monitor})")
            else:
                trainer.note(f"early stopping: {self.monitor} did not improve for {self.wait} "
                             f"epoch{'' if self.wait == 1 else 's'}")


class ReduceLROnPlateau(_Monitor):
    """Keras's ReduceLROnPlateau, cooldown and min_lr included."""

    def __init__(self, spec):
        super().__init__(spec.monitor, spec.mode, spec.min_delta)
        self.spec = spec
        self.cooldown = 0

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            return
        if self.cooldown > 0:
            self.cooldown -= 1
            self.wait = 0
        if self.improved(logs):
            self.wait = 0
        elif self.cooldown == 0:
            self.wait += 1
            if self.wait >= self.spec.patience:
                old = trainer.optimizer.learning_rate
                if old > self.spec.min_lr:
                    new = max(old * self.spec.factor, self.spec.min_lr)
                    trainer.optimizer.learning_rate = new
                    trainer.note(f"reduce_lr_on_plateau: learning rate {old:.3g} -> {new:.3g}")
                    self.cooldown = self.spec.cooldown
                    self.wait = 0

    def state(self):
        return {**super().state(), "cooldown": self.cooldown}

    def load_state(self, state):
        super().load_state(state)
        self.cooldown = state["cooldown"]


class BestCheckpoint(_Monitor):
    """`checkpoint` callback: asks the run recorder to save best (and last) weights."""

    def __init__(self, spec):
        super().__init__(spec.monitor, spec.mode)
        self.spec = spec

    def on_epoch_end(self, trainer, epoch, logs):
        better = self.improved(logs)
        if better or (better is None and not self.spec.save_best_only):
            trainer.save_best = True


class EpochPrinter(Callback):
    """One plain line per epoch (Keras's verbose=2), for `Model.fit(verbose=1)`."""

    def on_epoch_end(self, trainer, epoch, logs):
        figures = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k not in ("seconds", "learning_rate"))
        print(f"Epoch {epoch + 1}: {figures}  ({logs['seconds']:.1f}s)")


def from_specs(specs) -> list[Callback]:
    """Callbacks for `train.callbacks` (terminate_on_nan is built into the trainer)."""
    makers = {"early_stopping": EarlyStopping, "reduce_lr_on_plateau": ReduceLROnPlateau,
              "checkpoint": BestCheckpoint}
    return [makers[s.type](s) for s in specs if s.type in makers]
