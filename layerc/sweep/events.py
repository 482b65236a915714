"""Trial events from Ray Tune to whoever shows them (the CLI's live table).

A module of its own, imported only once Ray is: Tune pickles its callbacks with the
experiment for `Tuner.restore`, so the callback holds no display, only names, and finds
the listener of the running process here (and leaves the trials it saw).
"""
from __future__ import annotations

from ray import tune

listener = None  # called with (kind, trial id, data)
trials: list = []  # Tune's trials as the last step saw them


class Events(tune.Callback):
    """Tells `listener` when a trial starts, reports an epoch, completes or fails."""

    def __init__(self, keys, metric):
        self.keys, self.metric = list(keys), metric

    def on_step_end(self, iteration, trials, **info):
        _seen(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        _seen(trials)
        _emit("start", trial, {"values": {k: trial.config.get(k) for k in self.keys}})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        _emit("result", trial, {"epoch": result.get("epoch"), "metric": result.get(self.metric),
                                "node": result.get("node_id")})

    def on_trial_complete(self, iteration, trials, trial, **info):
        _emit("complete", trial, {})

    def on_trial_error(self, iteration, trials, trial, **info):
        _emit("error", trial, {})


def _emit(kind, trial, data):
    if listener is not None:
        listener(kind, trial.trial_id, data)


def _seen(now):
    global trials
    trials = list(now)
