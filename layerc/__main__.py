"""`python -m layerc` and the `layerc` script: `--version` answered before the CLI loads."""
import sys


def main():
    if sys.argv[1:] == ["--version"]:  # the CLI (typer, rich) costs most of start-up
        from . import __version__

        print(f"layerc {__version__}")
        return
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
