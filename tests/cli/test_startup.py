"""Start-up (issue 18, point 13) and `--debug` after the subcommand (point 7)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.modules import modules_after

from layerc.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("layerc.spec", "layerc.cli", "pydantic", "numpy", "rich", "typer", "yaml")


def _modules_after(code: str) -> tuple[str, set[str]]:
    """(stdout, top-level heavy modules imported) of `code` run in a fresh interpreter."""
    probe = (f"{code}\nimport sys\n"
             f"print('MODULES', *sorted(m for m in sys.modules if m.startswith({HEAVY!r})))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 0, r.stderr
    out, _, mods = r.stdout.rpartition("MODULES")
    return out, set(mods.split())


def test_version_loads_neither_the_cli_nor_the_spec_package():
    out, mods = _modules_after("import sys; sys.argv = ['layerc', '--version']\n"
                               "from layerc.__main__ import main; main()")
    assert out.strip() == "layerc 0.1.0"
    assert mods == set()


def test_import_layerc_is_cheap_and_its_names_still_work():
    _, mods = _modules_after("import layerc")
    assert mods == set()
    out, mods = _modules_after("import layerc; from layerc import parse_spec\n"
                               "print(layerc.load_spec is parse_spec.__globals__['load_spec'], "
                               "issubclass(layerc.SpecError, Exception))")
    assert out.split() == ["True", "True"] and "layerc.spec" in mods
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import layerc

        layerc.nope


def test_summary_loads_rich_console_only_and_no_numpy():
    out, mods = modules_after("summary", "specs/mnist_cnn.yaml")
    assert "Total params" in out or "params" in out
    assert "rich.console" in mods and "rich.table" in mods
    unwanted = {"numpy", "rich.traceback", "rich.pretty", "rich.markdown", "rich.syntax", "rich._emoji_codes",
                "typer.rich_utils"}
    assert not unwanted & mods


def test_the_consoles_print_emoji_codes_as_written(capsys):
    from layerc.cli import console

    console.print("layer :thumbs_up: x")
    assert capsys.readouterr().out.strip() == "layer :thumbs_up: x"


def test_bench_times_start_up_of_an_installed_copy():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.time_startup(runs=1)
    assert "not editable" in res["install"]
    rows = bench.rows({"throughput": {}, "startup": res})
    assert [r["metric"] for r in rows] == ["`layerc --version` s", "`layerc summary specs/mnist_cnn.yaml` s"]
    for r in rows:
        assert 0 < r["layerc"] < 30 and r["target"] == "≤ 0.3 s" and r["ok"] in (True, False)
        assert "≤ 0.3 s" in " ".join(bench._cells(r))


def test_console_script_is_the_fast_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'layerc = "layerc.__main__:main"' in text


def test_python_dash_m_still_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "layerc", "schema"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 0, r.stderr
    assert '"$schema"' in r.stdout or '"properties"' in r.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_subcommand(tmp_path, where):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\nlayers: []\ndata: {dataset: mnist}\n")
    args = ["train", str(bad)]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    with pytest.raises(Exception) as info:  # the exception itself, not a SystemExit
        main(args)
    assert not isinstance(info.value, SystemExit)


def test_without_debug_the_same_failure_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\nlayers: []\ndata: {dataset: mnist}\n")
    with pytest.raises(SystemExit) as info:
        main(["train", str(bad)])
    assert info.value.code == 1
    assert "Traceback" not in capsys.readouterr().err


def test_debug_after_a_double_dash_is_an_argument_not_the_flag(tmp_path):
    with pytest.raises(SystemExit) as info:  # `--debug` is then a (missing) spec file's name
        main(["validate", "--", "--debug"])
    assert info.value.code == 2


def test_summary_builds_only_the_models_its_spec_names():
    """`data:` and `train:` are validated by the models they name, not as whole unions: no
    schema built for `summary` holds an optimizer, loss, metric, callback or data format the
    seed spec does not use (the unions still report errors and make `layerc schema`)."""
    code = ("import sys; sys.argv = ['layerc', 'summary', 'specs/mnist_cnn.yaml']\n"
            "from layerc.__main__ import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "from pydantic import BaseModel\n"
            "mods = [m for n, m in list(sys.modules.items()) if n.startswith('layerc.spec')]\n"
            "print('FAMILIES', *sorted(n for n in sys.modules if n.startswith('layerc.spec.layers.')))\n"
            "built = {c for m in mods for c in vars(m).values()\n"
            "         if isinstance(c, type) and issubclass(c, BaseModel) and c.__dict__.get('__pydantic_complete__')}\n"
            "print('BUILT', *sorted(c.__name__ for c in built))\n"
            "print('SCHEMAS', *{repr(c.__pydantic_core_schema__) for c in built})")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 0, r.stderr
    built = r.stdout.partition("BUILT")[2].partition("\n")[0].split()
    schemas = r.stdout.partition("SCHEMAS")[2]
    assert {"Spec", "Adam", "BuiltinData", "SparseCategoricalCrossentropy", "Conv2D", "Dense"} <= set(built)
    # layer specs are imported by family, when a spec first names one of its types
    families = r.stdout.partition("FAMILIES")[2].partition("\n")[0].split()
    assert set(families) == {f"layerc.spec.layers.{m}" for m in ("base", "conv", "pooling", "reshape",
                                                                  "dense", "dropout")}, families
    for unused in ("SGD", "AdamW", "Huber", "BinaryCrossentropy", "AUC", "EarlyStopping", "CsvData",
                   "TextData", "TimeseriesData", "LSTM", "Embedding"):
        assert unused not in built and f"'{unused}'" not in schemas, unused
