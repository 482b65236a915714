"""The CLI in-process, as its console script runs it."""
import io
import sys

import pytest

from layerc.cli import main


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the CLI as the console script does: returns (exit code, stdout, stderr)."""

    def invoke(*args, input=None):
        if input is not None:
            data = input.encode() if isinstance(input, str) else input
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
