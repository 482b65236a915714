"""`layerc summary` and `layerc validate` answered without Typer (issue 18, point 13): the
same options, output and exit codes as the Typer app, which stays the CLI's one definition."""
from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
import typer

from tests.modules import modules_after

from layerc.__main__ import main as script_main
from layerc.cli import app, fast, main as typer_main

ROOT = Path(__file__).resolve().parents[2]
SPEC = "specs/mnist_cnn.yaml"


def _commands():
    group = typer.main.get_command(app)
    return {name: group.commands[name] for name in fast.OPTIONS}


@pytest.mark.parametrize("name", sorted(fast.OPTIONS))
def test_the_fast_table_is_the_typer_apps_options(name):
    command = _commands()[name]
    n_args, table = fast.OPTIONS[name]
    assert not any(p.envvar for p in command.params)
    [argument] = [p for p in command.params if p.param_type_name == "argument"]
    assert argument.nargs == (-1 if n_args == "+" else 1) and argument.required
    options = {o: p for p in command.params if p.param_type_name == "option" for o in p.opts}
    assert set(options) == set(table)
    for opt, kind in table.items():
        p, annotation = options[opt], options[opt].type_descriptor.annotation
        assert not p.multiple and not p.secondary_opts
        assert fast._DEFAULTS[name][p.name] == (p.default.value if hasattr(p.default, "value") else p.default)
        if kind is None:
            assert p.is_flag and annotation is bool
        elif kind is int:
            assert annotation is int and p.min == 1 and p.max is None
        else:
            assert not p.is_flag and tuple(e.value for e in annotation) == kind


def _bad_spec(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / SPEC).read_text().replace("units: 64", "units: -3"))
    return str(bad)


ARGVS = [
    ["summary", SPEC],
    ["summary", f"./{SPEC}", "--format", "json"],
    ["summary", "--format=dot", SPEC],
    ["summary", SPEC, "--format", "mermaid", "--batch-size", "7"],
    ["summary", "--batch-size=3", SPEC],
    ["summary", "missing.yaml"],
    ["summary", "BAD"],
    ["validate", SPEC, "specs/mnist_mlp.yaml"],
    ["validate", "--strict", SPEC, "BAD"],
    ["validate", SPEC, "--format", "json"],
    ["validate", "--format", "sarif", SPEC],
    ["validate", "missing.yaml", SPEC],
]
FALLBACK = [  # answered by Typer, whatever the fast path could do
    ["summary"],
    ["summary", "--help"],
    ["summary", SPEC, "-h"],
    ["summary", SPEC, "--format", "svg"],
    ["summary", SPEC, "--format"],
    ["summary", SPEC, "--batch-size", "0"],
    ["summary", SPEC, "--batch-size", "x"],
    ["summary", SPEC, "--batch-size", "1", "--batch-size", "2"],
    ["summary", SPEC, SPEC],
    ["summary", SPEC, "--strict"],
    ["summary", SPEC, "--debug"],
    ["summary", "--", SPEC],
    ["validate"],
    ["validate", SPEC, "--strict=yes"],
    ["validate", SPEC, "--format", "mermaid"],
    ["validate", SPEC, "--nope"],
]


def _run(capsys, call, argv) -> tuple:
    try:
        code = call(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code or 0, out.out, out.err


def _via_script(argv):
    old = sys.argv
    sys.argv = [old[0], *argv]
    try:
        script_main()
    finally:
        sys.argv = old
        gc.unfreeze()  # the script froze this process's objects before exiting


@pytest.mark.parametrize("argv", ARGVS + FALLBACK, ids=" ".join)
def test_the_script_answers_as_the_typer_app(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = [_bad_spec(tmp_path) if a == "BAD" else a for a in argv]
    assert (fast.parse(argv) is None) == (argv in FALLBACK or argv[1:] == [])
    typer_says = _run(capsys, typer_main, argv)
    script_says = _run(capsys, _via_script, argv)
    assert script_says == typer_says
    assert typer_says[1] or typer_says[2]  # each case prints something to compare
    assert "Traceback" not in typer_says[2]


def test_an_unexpected_error_is_one_line_on_both_paths(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    import layerc.summary

    def broken(model, batch_size=None):
        raise ValueError("no room [here]")

    monkeypatch.setattr(layerc.summary, "summarize", broken)
    typer_says = _run(capsys, typer_main, ["summary", SPEC])
    fast_says = _run(capsys, fast.run, ["summary", SPEC])
    assert fast_says == typer_says
    assert typer_says[0] == 1 and "error: no room [here]" in typer_says[2] and "Traceback" not in typer_says[2]


@pytest.mark.parametrize("argv", [["summary", SPEC], ["validate", SPEC], ["--version"]], ids=" ".join)
def test_summary_validate_and_version_load_neither_typer_nor_importlib_metadata(argv):
    out, mods = modules_after(*argv)
    assert out.strip()
    assert not {m for m in mods if m.split(".")[0] in ("typer", "click")}
    assert "importlib.metadata" not in mods and "layerc.cli" not in mods


def test_other_commands_still_go_through_typer():
    out, mods = modules_after("lint", "--list")
    assert "typer" in mods and "layerc.cli" in mods and out.strip()


def test_the_plugin_loader_stand_in_is_all_pydantic_takes_from_it():
    """pydantic imports nothing but `get_plugins` from its plugin loader, and with plugins
    disabled the real one returns no plugins, as the stand-in does."""
    import pydantic
    from pydantic.plugin import _loader

    uses = []
    for path in Path(pydantic.__file__).parent.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "_loader" in line and "import" in line and "get_plugins" in line:
                uses.append(line.strip())
            else:
                assert "plugin._loader" not in line and "from ._loader" not in line, (path, line)
    assert uses == ["from ._loader import get_plugins"]
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert tuple(_loader.get_plugins()) == tuple() == ()
