"""Issue 18, `layerc train`: divergence, resume checks (spec hash, run.json, writable),
extending a run, and a double Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from layerc import build, jobs, load_spec
from layerc.cli import main
from layerc.runs import RunError, load_arrays, load_checkpoint
from layerc.train.callbacks import Callback
from layerc.train.loop import Trainer, TrainingError


def same_weights(a, b):
    wa, wb = load_arrays(a / "weights.npz"), load_arrays(b / "weights.npz")
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


class StopAfterEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch + 1 == self.epoch:
            trainer.stop_requested = True


def interrupted_run(tiny_spec, tmp_path, epochs=4, stop=2):
    run = tmp_path / "run"
    result = jobs.train(tiny_spec(epochs=epochs), run_dir=run, callbacks=[StopAfterEpoch(stop)])
    assert result.interrupted == "stop"
    return run


# -- point 3: a finite loss that grows by orders of magnitude --------------------------------
def test_a_diverging_finite_loss_stops_with_epoch_batch_and_hint(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec(epochs=3))
    trainer = Trainer(build(spec), spec.train)
    values = iter([1.1, 0.9, 5.0] + [5e21] * 100)
    trainer.train_step = lambda xb, yb: next(values)
    x = np.zeros((64, 12), np.float32)
    with pytest.raises(TrainingError) as e:
        trainer.fit(x, np.zeros(64, np.int64), shuffle=False)
    msg = str(e.value)
    assert "diverged at epoch 1, batch 4" in msg and "5e+21" in msg and "learning rate" in msg


def test_divergence_keeps_the_last_good_checkpoint(tiny_spec, tmp_path):
    run = interrupted_run(tiny_spec, tmp_path, epochs=4, stop=1)
    before = load_arrays(run / "checkpoint.npz")

    class Blow(Callback):
        def on_epoch_begin(self, trainer, epoch, steps):
            trainer.train_step = lambda xb, yb: 1e12
    with pytest.raises(TrainingError, match="diverged"):
        jobs.train(resume=run, callbacks=[Blow()])
    after = load_arrays(run / "checkpoint.npz")
    assert all(np.array_equal(before[k], after[k]) for k in before if k.startswith("weights/"))


def test_healthy_runs_with_steep_or_tiny_losses_are_not_stopped(tiny_spec, tmp_path):
    jobs.train(tiny_spec(epochs=3, lr=0.05), run_dir=tmp_path / "r")  # a high but sane rate


# -- point 10: extending a run ---------------------------------------------------------------
def test_extending_a_finished_run_equals_a_longer_run_bit_for_bit(tiny_spec, tmp_path):
    whole = jobs.train(tiny_spec(epochs=4, name="w.yaml"), run_dir=tmp_path / "whole").run_dir
    short = jobs.train(tiny_spec(epochs=2, name="s.yaml"), run_dir=tmp_path / "short").run_dir
    result = jobs.train(resume=short, epochs=4)
    assert len(result.history) == 4 and same_weights(whole, short)
    info = json.loads((short / "run.json").read_text())
    assert info["epochs"] == 4 and info["extended"][0]["from_epochs"] == 2
    assert "epochs: 4" in (short / "spec.yaml").read_text()
    jobs.train(resume=short, epochs=5)  # the edited spec.yaml still passes the hash check


def cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return e.value.code, " ".join((out.out + out.err).split())


def test_cli_extends_with_set_train_epochs_and_refuses_other_sets(tiny_spec, tmp_path, capsys):
    run = jobs.train(tiny_spec(epochs=1), run_dir=tmp_path / "run").run_dir
    code, text = cli(capsys, "train", "--resume", str(run), "--set", "train.batch_size=4")
    assert code == 2 and "except --set train.epochs=N" in text
    code, text = cli(capsys, "train", str(tiny_spec()), "--resume", str(run))
    assert code == 2 and "either a spec file or --resume" in text
    code, text = cli(capsys, "train", "--resume", str(run), "--set", "train.epochs=2", "-q")
    assert code == 0, text
    assert load_checkpoint(run)[1]["epoch"] == 2
    with pytest.raises(RunError, match="does not extend"):
        jobs.train(resume=run, epochs=2)


def test_a_run_ended_by_early_stopping_is_not_extended(tiny_spec, tmp_path):
    path = tiny_spec(epochs=30)
    path.write_text(path.read_text() + "  callbacks:\n    - {type: early_stopping, monitor: loss, "
                    "patience: 1, min_delta: 10}\n")
    run = jobs.train(path, run_dir=tmp_path / "run").run_dir
    with pytest.raises(RunError, match="early stopping"):
        jobs.train(resume=run, epochs=40)


# -- point 19: the spec is checked on resume ----------------------------------------------------
def rename_dropout(doc):
    doc["layers"][2] = {"Dropout": {"rate": 0.3, "name": "drop"}}


def set_activation(doc):
    doc["layers"][0]["Dense"]["activation"] = "tanh"


def set_rate(doc):
    doc["train"]["optimizer"]["learning_rate"] = 0.02


@pytest.mark.parametrize("edit,where", [
    (set_activation, "layers.0.Dense.activation: 'relu' -> 'tanh'"),
    (set_rate, "train.optimizer.learning_rate: 0.01 -> 0.02"),
    (rename_dropout, "layers.2.Dropout.name added"),
])
def test_resume_refuses_an_edited_spec_naming_the_difference(tiny_spec, tmp_path, capsys, edit, where):
    run = interrupted_run(tiny_spec, tmp_path)
    doc = yaml.safe_load((run / "spec.yaml").read_text())
    edit(doc)
    (run / "spec.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(RunError) as e:
        jobs.train(resume=run)
    assert "edited after the run started" in str(e.value) and where in str(e.value)
    code, text = cli(capsys, "train", "--resume", str(run))
    assert code == 1 and "KeyError" not in text and "Traceback" not in text


def test_a_comment_added_to_spec_yaml_still_resumes(tiny_spec, tmp_path):
    run = interrupted_run(tiny_spec, tmp_path)
    (run / "spec.yaml").write_text((run / "spec.yaml").read_text() + "# a note\n")
    assert len(jobs.train(resume=run).history) == 4


# -- point 20: corrupt run.json, read-only run directory, double Ctrl-C -----------------------------
@pytest.mark.parametrize("text", ["[]", "{}", '"x"', '{"spec_sha256": 3}', '{"spec_sha256": "a", "spec_path": 1}'])
def test_a_corrupt_run_json_is_one_line(tiny_spec, tmp_path, capsys, text):
    run = interrupted_run(tiny_spec, tmp_path)
    (run / "run.json").write_text(text)
    code, out = cli(capsys, "train", "--resume", str(run))
    assert code == 1 and "run.json is corrupt" in out and "Traceback" not in out


@pytest.fixture
def read_only(tmp_path):
    """A read-only bind mount of a folder (a real EROFS, which root cannot write either)."""
    mounted = []

    def make(src):
        dst = tmp_path / "ro"
        dst.mkdir()
        ok = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True).returncode == 0
        if not ok:
            pytest.skip("mount is not permitted here")
        mounted.append(dst)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(dst)], check=True)
        return dst
    yield make
    for d in mounted:
        subprocess.run(["umount", str(d)], check=True)


def test_resume_on_a_read_only_run_directory_refuses_before_training(tiny_spec, tmp_path, read_only):
    run = read_only(interrupted_run(tiny_spec, tmp_path))
    started = []
    with pytest.raises(RunError, match="is not writable"):
        jobs.train(resume=run, on_start=lambda *a: started.append(1))
    assert not started


def test_a_second_ctrl_c_inside_a_zip_member_write_is_still_a_stop(tiny_spec, tmp_path, monkeypatch):
    """Seen in CI: the second SIGINT came while np.savez closed a member, so zipfile's own
    close raised "open writing handle" in place of the stop, and train failed with it. The
    stop now waits for the write: the checkpoint is the stop's, whole, and resumes exactly."""
    import zipfile

    whole = jobs.train(tiny_spec(epochs=4), run_dir=tmp_path / "whole").run_dir
    run = interrupted_run(tiny_spec, tmp_path, epochs=4, stop=1)
    close = zipfile._ZipWriteFile.close
    state = {}

    def interrupted_close(self):
        if state.get("trainer") is not None and state["trainer"].stop_requested and not state.get("sent"):
            state["sent"] = True
            signal.raise_signal(signal.SIGINT)  # the handler raises before the member is closed
        close(self)

    class FirstCtrlC(Callback):
        def on_batch_end(self, trainer, batch, logs):
            if not trainer.stop_requested:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(zipfile._ZipWriteFile, "close", interrupted_close)
    result = jobs.train(resume=run, callbacks=[FirstCtrlC()],
                        on_start=lambda trainer, *a: state.update(trainer=trainer))
    assert state.get("sent") and result.abandoned and result.interrupted == "SIGINT"
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert load_checkpoint(run)[1]["epoch"] == 1  # mid-epoch 2, at the first stop's batch
    assert not jobs.train(resume=run).interrupted
    assert same_weights(whole, run)


@pytest.mark.parametrize("gap", [0.005, 0.05, 0.3])
def test_a_double_ctrl_c_stops_at_once_with_a_resume_hint(tiny_spec, tmp_path, gap):
    spec = tiny_spec(epochs=60)
    whole = jobs.train(spec, run_dir=tmp_path / "whole").run_dir
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "layerc", "train", str(spec), "--run-dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    end = time.time() + 60
    # the first epoch's checkpoint, not metrics.csv: the epoch's row is written before its
    # checkpoint, and a second Ctrl-C between the two rightly leaves no checkpoint to resume
    while not (run / "checkpoint.npz").exists():
        assert proc.poll() is None and time.time() < end, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)  # two signals at once would reach Python's handler as one
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"Resume with: layerc train --resume {run}" in out
    load_checkpoint(run)
    resumed = subprocess.run([sys.executable, "-m", "layerc", "train", "--resume", str(run), "-q"],
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert same_weights(whole, run)


# -- point 11: --init-weights -------------------------------------------------------------------
def test_init_weights_loads_matching_layers_and_reports_the_others(tiny_spec, tmp_path, capsys):
    first = jobs.train(tiny_spec(epochs=1), run_dir=tmp_path / "first").run_dir
    trained = load_arrays(first / "weights.npz")
    path = tiny_spec(name="tune.yaml")
    path.write_text(path.read_text().replace("  - Dense: {units: 3, activation: softmax}",
                                             "  - Dense: {units: 3, activation: softmax, name: head}"))
    seen = {}
    result = jobs.train(path, run_dir=tmp_path / "tune", init_weights=first,
                        on_start=lambda t, r, d: seen.update({k: v.copy() for k, v in t.model.named_weights().items()}))
    assert np.array_equal(seen["dense/kernel"], trained["dense/kernel"])
    assert np.array_equal(seen["batch_normalization/moving_mean"], trained["batch_normalization/moving_mean"])
    assert seen["head/kernel"].shape == trained["dense_1/kernel"].shape
    assert not np.array_equal(seen["head/kernel"], trained["dense_1/kernel"])
    report = "loaded 2 layers from " + str(first / "weights.npz") + "; skipped 1 not in it: head"
    assert any(report in m for m in result.messages)
    assert report in json.loads((tmp_path / "tune" / "run.json").read_text())["init_weights"]["report"]
    code, text = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "cli"), "-q",
                     "--init-weights", str(first / "weights.npz"))
    assert code == 0 and "skipped 1 not in it: head" in text


def test_init_weights_with_a_same_named_layer_of_another_shape_is_one_line(tiny_spec, tmp_path, capsys):
    first = jobs.train(tiny_spec(epochs=1), run_dir=tmp_path / "first").run_dir
    path = tiny_spec(name="wide.yaml")
    path.write_text(path.read_text().replace("units: 16", "units: 8"))
    code, text = cli(capsys, "train", str(path), "--run-dir", str(tmp_path / "w"), "--init-weights", str(first))
    assert code == 1 and "weight dense/kernel has shape (12, 16); this spec's layer needs (12, 8)" in text
    assert "Traceback" not in text and not (tmp_path / "w" / "run.json").exists()
