"""`python -m layerc` and the `layerc` script: `--version`, `summary` and `validate` answered
before the Typer app loads (see layerc/cli/fast.py)."""
import gc
import sys


def main():
    args = sys.argv[1:]
    if args == ["--version"]:  # the CLI (typer, rich) costs most of start-up
        from . import __version__

        print(f"layerc {__version__}")
        return
    if args and args[0] in ("summary", "validate"):
        code = cli_module("fast").run(args)
        if code is not None:
            sys.stdout.flush()
            # the process ends here: frozen objects are left out of the interpreter's last
            # collection, a scan of every module and model that costs 6% of `layerc summary`
            gc.freeze()
            raise SystemExit(code)
    from .cli import main as cli_main

    cli_main()


def cli_module(name: str):
    """The module layerc.cli.NAME, imported without running layerc/cli/__init__.py (which
    imports Typer and builds the app); the same module object if the app loads later."""
    full = f"layerc.cli.{name}"
    if full not in sys.modules:
        from importlib.util import module_from_spec, spec_from_file_location
        from pathlib import Path

        spec = spec_from_file_location(full, Path(__file__).parent / "cli" / f"{name}.py")
        module = module_from_spec(spec)
        sys.modules[full] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full]
            raise
    return sys.modules[full]


if __name__ == "__main__":
    main()
