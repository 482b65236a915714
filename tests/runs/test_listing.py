"""`layerc runs list` and `runs show` on real short runs: the values training printed and
wrote, statuses (finished, interrupted, diverged, failed, running), sorting, JSON, and
folders that are half-written, corrupt or not runs at all."""
import csv
import json
import shutil
import warnings

import pytest

from layerc import jobs
from layerc.cli import main
from layerc.runs import load_checkpoint, run_lock
from layerc.runs.listing import find_runs, read_run
from layerc.train.callbacks import Callback

from .conftest import SEED, SHORT, layerc, printed_epochs, printed_test


def csv_rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def listed(root, *args):
    code, out = layerc("runs", "list", root, "--format", "json", *args)
    assert code == 0, out
    rows = json.JSONDecoder().raw_decode(out[out.index("["):])[0]  # notes follow, on stderr
    return {row["run_id"]: row for row in rows}


def one_line_error(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[1:] in ([], ["(run with --debug for the traceback)"]), lines  # one line, no traceback
    return e.value.code, lines[0]


def test_listed_values_are_run_json_and_metrics_csv(trained):
    rows = listed(trained.root)
    for run in (trained.finished, trained.faster):
        row, info, history = rows[run.name], json.loads((run / "run.json").read_text()), csv_rows(run)
        assert row["status"] == "finished" and row["name"] == "mnist-cnn" and row["epochs"] == 2
        assert row["test"] == info["test_metrics"]
        best = max(history, key=lambda r: float(r["val_accuracy"]))
        assert row["best"] == {"metric": "val_accuracy", "value": float(best["val_accuracy"]),
                               "epoch": int(best["epoch"])}
        assert row["seconds"] == pytest.approx(sum(float(r["seconds"]) for r in history), abs=1e-12)
        assert row["started"] == info["started"]


def test_listed_values_are_what_training_printed(trained):
    code, out = layerc("runs", "list", trained.root)
    assert code == 0, out
    for run in (trained.finished, trained.faster):
        printed = trained.printed[run]
        epochs = printed_epochs(printed)
        assert sorted(epochs) == [1, 2]
        best = max(epochs, key=lambda e: float(epochs[e]["val_accuracy"]))
        test = printed_test(printed)
        assert set(test) == {"loss", "accuracy"}
        line = next(line for line in out.splitlines() if run.name in line)
        assert f"val_accuracy {epochs[best]['val_accuracy']} (epoch {best})" in line
        assert f"loss {test['loss']}, accuracy {test['accuracy']}" in line
        caption = printed.split("epochs, ")[1].split("s of training")[0]
        assert f" {caption}s " in line  # the same time as train's final table


def test_metrics_csv_holds_the_figures_at_full_precision(trained):
    history = load_checkpoint(trained.finished)[1]["history"]
    for row, exact in zip(csv_rows(trained.finished), history):
        assert {k: float(v) for k, v in row.items()} == {k: float(v) for k, v in exact.items()}


def test_newest_first_and_statuses(trained):
    rows = listed(trained.root)
    assert list(rows) == ["4-diverged", "3-interrupted", "2-faster", "1-finished"]
    assert rows["3-interrupted"]["status"] == "interrupted"
    assert rows["3-interrupted"]["epochs"] == 1 and rows["3-interrupted"]["epochs_planned"] == 2
    assert rows["4-diverged"]["status"] == "diverged"
    assert "the loss" in rows["4-diverged"]["error"] and "learning rate" in rows["4-diverged"]["error"]
    code, out = layerc("runs", "list", trained.root)
    line = next(line for line in out.splitlines() if "3-interrupted" in line)
    assert "interrupted" in line and " 1/2 " in line


def test_a_run_holding_its_lock_is_running(trained, tmp_path):
    run = tmp_path / "mnist-cnn" / "live"
    shutil.copytree(trained.finished, run)
    with run_lock(run):
        assert listed(tmp_path)["live"]["status"] == "running"
    assert listed(tmp_path)["live"]["status"] == "finished"


def test_a_run_failing_for_another_reason_is_failed(tmp_path):
    class Boom(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        jobs.train(SEED, overrides=SHORT[1::2], run_dir=tmp_path / "mnist-cnn" / "boom", callbacks=[Boom()])
    row = listed(tmp_path)["boom"]
    assert row["status"] == "failed" and row["error"] == "disk on fire"


def test_resuming_to_the_end_makes_an_interrupted_run_finished(trained, tmp_path):
    run = tmp_path / "mnist-cnn" / "again"
    shutil.copytree(trained.interrupted, run)
    assert read_run(run).status == "interrupted"
    code, out = layerc("train", "--resume", run, "-q")
    assert code == 0, out
    assert read_run(run).status == "finished" and read_run(run).epochs_done == 2


def test_sort_by_a_metric_best_first(trained):
    by_loss = listed(trained.root, "--sort", "val_loss")
    lows = {rid: min(float(r["val_loss"]) for r in csv_rows(trained.root / "mnist-cnn" / rid))
            for rid in ("1-finished", "2-faster", "3-interrupted")}
    assert list(by_loss)[:3] == sorted(lows, key=lows.get)
    assert [row["sort"]["value"] for row in list(by_loss.values())[:3]] == sorted(lows.values())
    by_test = listed(trained.root, "--sort", "test_accuracy")
    tests = {rid: json.loads((trained.root / "mnist-cnn" / rid / "run.json").read_text())["test_metrics"]["accuracy"]
             for rid in ("1-finished", "2-faster")}
    assert list(by_test)[:2] == sorted(tests, key=tests.get, reverse=True)
    assert set(list(by_test)[2:]) == {"3-interrupted", "4-diverged"}  # no test figures: last
    code, out = layerc("runs", "list", trained.root, "--sort", "val_loss")
    assert code == 0 and "best val_loss" in out


def test_sort_by_an_unknown_metric_is_one_line(trained, capsys):
    code, err = one_line_error(capsys, "runs", "list", trained.root, "--sort", "val_f1")
    assert code == 1
    assert "no run has 'val_f1'" in err and "val_accuracy" in err and "test_accuracy" in err


def test_half_written_corrupt_and_foreign_folders(trained, tmp_path):
    root = tmp_path / "runs"
    good = root / "mnist-cnn" / "good"
    shutil.copytree(trained.finished, good)
    half = root / "mnist-cnn" / "half"  # killed before run.json was written
    half.mkdir()
    (half / "spec.yaml").write_text("name: x\n")
    (half / "train.lock").write_text("123\n")
    garbage = root / "mnist-cnn" / "garbage"
    garbage.mkdir()
    (garbage / "run.json").write_bytes(b"\x89PNG\x00\xff" * 100)
    (garbage / "metrics.csv").write_bytes(b"epoch,loss\n1,0.5\n2,\xff\xfe\n")
    odd = root / "mnist-cnn" / "odd"
    odd.mkdir()
    (odd / "run.json").write_text(json.dumps({"spec": 5, "epochs": "many", "test_metrics": [1, 2],
                                              "status": {"a": 1}, "started": 3}))
    (odd / "metrics.csv").write_text("epoch,loss,accuracy\n1,0.5,0.9\n2,0.4\nnot a row at all\n")
    listlike = root / "other" / "listlike"
    listlike.mkdir(parents=True)
    (listlike / "run.json").write_text("[1, 2, 3]")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("not a run")
    (root / "empty").mkdir()

    rows = listed(root)
    assert rows["good"]["status"] == "finished"
    assert rows["half"]["status"] == "unknown" and "no run.json" in rows["half"]["notes"][0]
    assert rows["garbage"]["status"] == "unknown"
    assert any("run.json is corrupt" in n for n in rows["garbage"]["notes"])
    assert any("corrupt" in n for n in rows["garbage"]["notes"])
    assert rows["odd"]["status"] == "failed" and rows["odd"]["test"] == {} and rows["odd"]["epochs_planned"] is None
    assert rows["odd"]["epochs"] == 2 and rows["odd"]["name"] == "mnist-cnn"
    assert rows["listlike"]["status"] == "unknown" and "run.json is corrupt" in rows["listlike"]["notes"]
    assert set(rows) == {"good", "half", "garbage", "odd", "listlike"}
    code, out = layerc("runs", "list", root)
    assert code == 0 and "Traceback" not in out
    assert f"skipped {root / 'notes'}: not a layerc run directory" in out
    for name in ("half", "garbage", "odd", "listlike"):
        code, out = layerc("runs", "show", root / ("other" if name == "listlike" else "mnist-cnn") / name)
        assert code == 0 and "Traceback" not in out, out


def test_oversized_files_are_noted_not_read(tmp_path):
    run = tmp_path / "big"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with open(run / "metrics.csv", "wb") as f:
        f.truncate(17 << 20)
    r = read_run(run)
    assert r.history == [] and any("over 16 MB" in n for n in r.notes)


def test_root_errors_are_one_line(tmp_path, capsys, trained):
    code, err = one_line_error(capsys, "runs", "list", tmp_path / "nowhere")
    assert code == 1 and err == f"error: {tmp_path / 'nowhere'}: no such directory of runs"
    code, out = layerc("runs", "list", tmp_path)
    assert code == 0 and f"no runs under {tmp_path}" in out
    assert [r.run_id for r in find_runs(trained.finished)[0]] == ["1-finished"]  # a run as the root


def test_show_spec_summary_epochs_and_files(trained):
    code, out = layerc("runs", "show", trained.finished)
    assert code == 0, out
    assert "status: finished" in out and "conv2d (Conv2D)" in out and "Total params: 121,930" in out
    epochs = printed_epochs(trained.printed[trained.finished])
    for e, figures in epochs.items():
        line = next(line for line in out.splitlines() if line.startswith(f"│     {e} │"))
        for value in figures.values():
            assert value in line
    for name in ("checkpoint.npz", "metrics.csv", "run.json", "spec.yaml", "weights.npz", "train/", "validation/"):
        assert f"│ {name} " in out
    code, out = layerc("runs", "show", trained.finished, "--format", "json")
    shown = json.loads(out)
    assert shown["history"] == [{k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                                for row in csv_rows(trained.finished)]
    assert shown["summary"]["total_params"] == 121930 and shown["status"] == "finished"
    assert {f["name"] for f in shown["files"]} >= {"weights.npz", "run.json"}


def test_show_refuses_what_is_not_a_run(tmp_path, capsys):
    code, err = one_line_error(capsys, "runs", "show", tmp_path)
    assert code == 1 and "is not a layerc run directory" in err
    code, err = one_line_error(capsys, "runs", "show", tmp_path / "missing")
    assert code == 1 and "no such run directory" in err


def test_a_diverged_run_says_so_in_one_line_and_lists_as_diverged(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        code, err = one_line_error(capsys, "train", SEED, *SHORT, "--set", "train.optimizer.learning_rate=1e30",
                                   "--run-dir", tmp_path / "mnist-cnn" / "div")
    assert code == 1 and err.startswith("error: the loss ")  # not "Diverged: ..."
    row = listed(tmp_path)["div"]
    assert row["status"] == "diverged" and err.endswith(row["error"])
