"""TensorBoard event files from real short runs, read back with tensorboardX's own protobufs
(and TensorBoard's EventAccumulator where it is installed): the logged scalars per epoch,
the spec, resume without lost or doubled steps, `train.tensorboard: false`, and training
without tensorboardX."""
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from layerc import jobs
from layerc.runs import CHECKPOINT, load_arrays, load_checkpoint
from layerc.train.callbacks import Callback

from .conftest import SEED, SHORT, StopAfterEpoch, layerc


def records(path):
    """The records of a TFRecord file, each CRC checked (tensorboardX's masked CRC32C)."""
    from tensorboardX.record_writer import masked_crc32c

    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == masked_crc32c(header)
        body = data[i + 12:i + 12 + length]
        assert struct.unpack("<I", data[i + 12 + length:i + 16 + length])[0] == masked_crc32c(body)
        out.append(body)
        i += 16 + length
    return out


def events(folder):
    """Every event of a folder's event files, in file order (TensorBoard reads them so)."""
    from tensorboardX.proto.event_pb2 import Event

    files = sorted(folder.glob("events.out.tfevents.*"))
    return [Event.FromString(r) for f in files for r in records(f)]


def visible(folder):
    """{tag: [(step, value)]} as TensorBoard shows it: a START session log at step S drops
    the earlier events at steps >= S (its purge after a restart)."""
    from tensorboardX.proto.event_pb2 import SessionLog

    seen = {}
    for e in events(folder):
        if e.HasField("session_log") and e.session_log.status == SessionLog.START:
            seen = {t: [(s, v) for s, v in pts if s < e.step] for t, pts in seen.items()}
        for v in e.summary.value:
            if v.HasField("simple_value"):
                seen.setdefault(v.tag, []).append((e.step, v.simple_value))
    return seen


def expected(run):
    """{(split, tag): [(epoch, float32 value)]} from the checkpoint's exact history."""
    out = {}
    for row in load_checkpoint(run)[1]["history"]:
        for key, value in row.items():
            if key in ("epoch", "seconds"):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            out.setdefault((split, f"epoch_{name}"), []).append((row["epoch"], float(np.float32(value))))
    return out


def logged(run):
    return {(split, tag): pts for split in ("train", "validation") for tag, pts in visible(run / split).items()}


def test_every_epochs_scalars_are_logged_exactly(trained):
    run = trained.finished
    got = logged(run)
    assert got == expected(run)
    assert set(got) == {("train", "epoch_loss"), ("train", "epoch_accuracy"), ("train", "epoch_learning_rate"),
                        ("validation", "epoch_loss"), ("validation", "epoch_accuracy")}
    assert [s for s, _ in got[("train", "epoch_loss")]] == [1, 2]


def test_the_resolved_spec_is_logged_as_text(trained):
    texts = [v for e in events(trained.finished / "train") for v in e.summary.value if v.tag == "spec/text_summary"]
    assert len(texts) == 1
    assert texts[0].metadata.plugin_data.plugin_name == "text"
    logged_text = texts[0].tensor.string_val[0].decode()
    spec = (trained.finished / "spec.yaml").read_text()
    assert logged_text == "\n".join("    " + line for line in spec.splitlines())


def test_tensorboards_own_reader_agrees(trained):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    EventAccumulator = accumulator.EventAccumulator
    acc = EventAccumulator(str(trained.finished / "validation"))
    acc.Reload()
    assert [(s.step, s.value) for s in acc.Scalars("epoch_loss")] == expected(trained.finished)[("validation", "epoch_loss")]


def test_a_resumed_run_continues_the_steps(tmp_path):
    run = tmp_path / "run"
    result = jobs.train(SEED, overrides=["data.limit=300", "train.epochs=3"], run_dir=run,
                        callbacks=[StopAfterEpoch(1)])
    assert result.interrupted
    assert [s for s, _ in visible(run / "train")["epoch_loss"]] == [1]
    code, out = layerc("train", "--resume", run, "-q")
    assert code == 0, out
    assert logged(run) == expected(run)
    assert [s for s, _ in visible(run / "train")["epoch_loss"]] == [1, 2, 3]
    steps = [e.step for e in events(run / "train") if e.summary.value and e.summary.value[0].tag == "epoch_loss"]
    assert steps == [1, 2, 3]  # written once each, not only shown once
    assert len(list((run / "train").glob("events.out.tfevents.*"))) == 2


def test_an_epoch_logged_after_the_last_checkpoint_is_replaced_not_doubled(tmp_path):
    """A kill between an epoch's events and its checkpoint: the resumed run redoes that
    epoch, and TensorBoard's purge marker hides the first copy."""
    run = tmp_path / "run"

    class KeepFirstCheckpoint(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 0:
                shutil.copy(run / CHECKPOINT, tmp_path / "epoch1.npz")

    jobs.train(SEED, overrides=["data.limit=300", "train.epochs=3"], run_dir=run,
               callbacks=[KeepFirstCheckpoint(), StopAfterEpoch(2)])
    shutil.copy(tmp_path / "epoch1.npz", run / CHECKPOINT)  # as if killed before epoch 2's checkpoint
    jobs.train(resume=run)
    steps = [e.step for e in events(run / "train") if e.summary.value and e.summary.value[0].tag == "epoch_loss"]
    assert steps == [1, 2, 2, 3]  # epoch 2 is in the files twice ...
    assert [s for s, _ in visible(run / "train")["epoch_loss"]] == [1, 2, 3]  # ... and shown once
    assert logged(run) == expected(run)


def test_tensorboard_false_writes_no_event_files_and_training_is_unchanged(trained, tmp_path):
    run = tmp_path / "off"
    code, out = layerc("train", SEED, *SHORT, "--set", "train.tensorboard=false", "--run-dir", run, "-v")
    assert code == 0, out
    assert "TensorBoard: off (train.tensorboard: false)" in out
    assert not list(run.rglob("*tfevents*")) and not (run / "train").exists()
    on, off = load_arrays(trained.finished / "weights.npz"), load_arrays(run / "weights.npz")
    assert all(np.array_equal(on[k], off[k]) for k in on)  # the event writer changes nothing


def test_verbose_says_where_the_events_go(tmp_path):
    code, out = layerc("train", SEED, *SHORT, "--run-dir", tmp_path / "r", "-v")
    assert code == 0 and f"TensorBoard: event files in {tmp_path / 'r' / 'train'}" in out
    code, out = layerc("train", SEED, *SHORT, "--run-dir", tmp_path / "q")
    assert code == 0 and "TensorBoard" not in out


def test_without_tensorboardx_training_works_and_verbose_says_so(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorboardX"] + ["tensorboardX"]:
        monkeypatch.setitem(sys.modules, name, None)
    code, out = layerc("train", SEED, *SHORT, "--run-dir", tmp_path / "r", "--verbose")
    assert code == 0, out
    assert 'TensorBoard: no event files (tensorboardX is not installed: pip install "layerc[plot]")' in out
    assert (tmp_path / "r" / "weights.npz").exists() and not list((tmp_path / "r").rglob("*tfevents*"))
    code, out = layerc("train", SEED, *SHORT, "--run-dir", tmp_path / "q")
    assert code == 0 and "tensorboardX" not in out


def test_loading_tensorboardx_keeps_torch_out():
    code = ("import sys; from layerc.runs.tensorboard import load_tensorboardx; load_tensorboardx(); "
            "print(sys.modules.get('torch', 'absent'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "absent"  # not imported, and not left blocked for later imports


@pytest.mark.parametrize("bad", ["'yes'", "1"])
def test_tensorboard_must_be_a_boolean(tmp_path, bad, capsys):
    from layerc.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", SEED, *SHORT, "--set", f"train.tensorboard={bad}", "--run-dir", str(tmp_path / "r")])
    assert e.value.code == 1 and "train.tensorboard must be a valid boolean" in capsys.readouterr().err
