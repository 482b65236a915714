"""Training progress for the terminal: a live bar per epoch, or one line per epoch in logs."""
from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..train.callbacks import Callback


def format_logs(logs: dict, skip=("seconds", "learning_rate")) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k not in skip and isinstance(v, float))


class ProgressDisplay(Callback):
    """Renders the trainer's reports on a Rich console.

    Args:
        console: where to print.
        live: a progress bar per epoch (a terminal) or plain lines (logs, CI).
    """

    def __init__(self, console, epochs: int, batch_size: int, live: bool):
        self.console = console
        self.epochs = epochs
        self.batch_size = batch_size
        self.live = live
        self.progress = None
        self.task = None
        self.shown = 0

    def on_epoch_begin(self, trainer, epoch, steps):
        self.started = time.perf_counter()
        self.start_step = trainer.step
        if not self.live:
            return
        self.progress = Progress(
            TextColumn(f"Epoch {epoch + 1}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[logs]}"),
            console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("", total=steps, completed=trainer.step, rate="", logs="")

    def on_batch_end(self, trainer, step, logs):
        self._flush_messages(trainer)
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self.started
        rate = (step - self.start_step) * self.batch_size / elapsed if elapsed > 0 else 0.0
        self.progress.update(self.task, completed=step, rate=f"{rate:,.0f} samples/s", logs=format_logs(logs))

    def on_epoch_end(self, trainer, epoch, logs):
        self.close()
        self.console.print(f"Epoch {epoch + 1}/{self.epochs}  {format_logs(logs)}  "
                           f"lr {logs['learning_rate']:.3g}  {logs['seconds']:.1f}s")
        self._flush_messages(trainer)

    def on_train_end(self, trainer, logs):
        self.close()

    def close(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _flush_messages(self, trainer):
        for text in trainer.messages[self.shown:]:
            self.console.print(f"[yellow]{text}[/]")
        self.shown = len(trainer.messages)
