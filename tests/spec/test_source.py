"""The YAML reader's character class, compiled ahead of `import yaml` (layerc/spec/source.py)."""
import re
import subprocess
import sys

import pytest

from layerc.spec import SpecError
from layerc.spec.source import NOT_PRINTABLE, YAML_NON_PRINTABLE, load_yaml


def test_complement_matches_the_same_code_points():
    every = "".join(map(chr, range(0x110000)))
    theirs = [m.start() for m in re.compile(YAML_NON_PRINTABLE).finditer(every)]
    ours = [m.start() for m in re.compile(NOT_PRINTABLE).finditer(every)]
    assert ours == theirs and len(ours) == 2111


def test_the_key_is_pyyamls_own_pattern():
    code = ("import sys, yaml.reader; from layerc.spec.source import YAML_NON_PRINTABLE; "
            "sys.exit(yaml.reader.Reader.NON_PRINTABLE.pattern != YAML_NON_PRINTABLE)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_yaml_reader_uses_the_precompiled_class():
    code = ("import sys, layerc.spec.source as s, yaml.reader; "
            "sys.exit(yaml.reader.Reader.NON_PRINTABLE.pattern != s.NOT_PRINTABLE)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("char", ["\x07", "\x1b", "\ufffe"])
def test_non_printable_characters_are_still_refused(char):
    with pytest.raises(SpecError) as e:
        load_yaml(f"a: 1\nb: x{char}y\n", "f.yaml")
    (d,) = e.value.diagnostics
    assert d.file == "f.yaml" and f"unacceptable character #x{ord(char):04x}" in d.message
