"""Training progress for the terminal: a live bar per epoch, or plain lines in logs and pipes."""
from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..train.callbacks import Callback
from .render import number

PLAIN_INTERVAL = 5.0  # seconds between plain progress lines within an epoch (logs, pipes)


def format_logs(logs: dict, skip=("seconds", "learning_rate")) -> str:
    return "  ".join(f"{k} {number(v)}" for k, v in logs.items() if k not in skip and isinstance(v, float))


class ProgressDisplay(Callback):
    """Renders the trainer's reports on a Rich console.

    Args:
        console: where to print.
        live: a progress bar per epoch (a terminal) or plain lines (logs, CI).
        interval: without `live`, seconds between plain progress lines (default PLAIN_INTERVAL).
        clock: the time source (tests pass a fake one).
    """

    def __init__(self, console, epochs: int, batch_size: int, live: bool, interval: float | None = None,
                 clock=time.perf_counter):
        self.console = console
        self.interval = PLAIN_INTERVAL if interval is None else interval
        self.clock = clock
        self.epochs = epochs
        self.batch_size = batch_size
        self.live = live
        self.progress = None
        self.task = None
        self.shown = 0

    def on_epoch_begin(self, trainer, epoch, steps):
        self.started = self.last_line = self.clock()
        self.start_step = trainer.step
        self.epoch, self.steps = epoch, steps
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
        now = self.clock()
        elapsed = now - self.started
        rate = (step - self.start_step) * self.batch_size / elapsed if elapsed > 0 else 0.0
        if self.progress is not None:
            self.progress.update(self.task, completed=step, rate=f"{rate:,.0f} samples/s", logs=format_logs(logs))
        elif not self.live and now - self.last_line >= self.interval and step < self.steps:
            self.last_line = now
            self.console.print(f"Epoch {self.epoch + 1}/{self.epochs}  batch {step}/{self.steps}  "
                               f"{rate:,.0f} samples/s  {format_logs(logs)}")

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
