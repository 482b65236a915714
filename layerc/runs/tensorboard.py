"""TensorBoard event files for a run, written with tensorboardX by a training callback.

As Keras's TensorBoard callback lays them out: `<run>/train/` and `<run>/validation/` hold
`epoch_loss`, `epoch_<metric>` (and `epoch_learning_rate` in train/) with the epoch number
as the step, so `tensorboard --logdir runs` overlays each run's two curves. The resolved
spec is the text `spec` at step 0. A resumed run appends a new file per folder that starts
with TensorBoard's purge marker at its first epoch, so a step written before a crash but
after the last checkpoint is replaced, never doubled.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..train.callbacks import Callback

INSTALL = 'pip install "layerc[plot]"'


def load_tensorboardx():
    """tensorboardX's writer pieces: (EventsWriter, Event, SessionLog, scalar, text). ImportError if absent.

    tensorboardX imports torch, when it is installed, only to accept its tensors; we give it
    floats, so torch is kept out (it would cost training ~1.7 s and a few hundred MB)."""
    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.summary import scalar, text
    finally:
        if blocked:
            del sys.modules["torch"]
    return EventsWriter, Event, SessionLog, scalar, text


def event_logger(run_dir: Path, train_spec, spec_text: str) -> tuple["TensorBoardLogger | None", str]:
    """(the callback, or None when off or tensorboardX is missing; a line saying which)."""
    if not getattr(train_spec, "tensorboard", True):
        return None, "TensorBoard: off (train.tensorboard: false)"
    try:
        tbx = load_tensorboardx()
    except ImportError:
        return None, f"TensorBoard: no event files (tensorboardX is not installed: {INSTALL})"
    return (TensorBoardLogger(run_dir, spec_text, tbx),
            f"TensorBoard: event files in {Path(run_dir) / 'train'} and validation/")


class TensorBoardLogger(Callback):
    """Writes each finished epoch's figures to the run's event files, flushed at once.

    Args:
        run_dir: the run directory (event files go to its train/ and validation/).
        spec_text: the resolved spec, logged as text on a fresh run.
        tbx: what `load_tensorboardx()` returned.
    """

    def __init__(self, run_dir: Path, spec_text: str, tbx):
        self.run_dir = Path(run_dir)
        self.spec_text = spec_text
        self.EventsWriter, self.Event, self.SessionLog, self.scalar, self.text = tbx
        self.writers: dict = {}
        self.purge_step = None

    def on_train_begin(self, trainer):
        if trainer.epoch or trainer.step:  # resumed: TensorBoard drops what a crash left from here on
            self.purge_step = trainer.epoch + 1
        else:
            code = "\n".join("    " + line for line in self.spec_text.splitlines())  # Markdown code block
            self._write("train", 0, self.text("spec", code))

    def on_epoch_end(self, trainer, epoch, logs):
        for key, value in logs.items():
            if key == "seconds" or not isinstance(value, (int, float)):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._write(split, epoch + 1, self.scalar(f"epoch_{name}", float(value)))
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, trainer, logs):
        self.close()

    def close(self):
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def _write(self, split: str, step: int, summary) -> None:
        writer = self.writers.get(split)
        if writer is None:
            folder = self.run_dir / split
            folder.mkdir(exist_ok=True)
            # tensorboardX names files by the second: the suffix keeps a quick resume's file apart
            writer = self.writers[split] = self.EventsWriter(str(folder / "events"), f".{time.time_ns()}")
            if self.purge_step is not None:
                writer.write_event(self.Event(step=self.purge_step, wall_time=time.time(),
                                              session_log=self.SessionLog(status=self.SessionLog.START)))
        writer.write_event(self.Event(step=step, wall_time=time.time(), summary=summary))
