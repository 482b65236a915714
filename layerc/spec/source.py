"""Safe YAML loading that remembers where every key and value came from.

`load_yaml(text, file)` returns plain Python data and a `SourceMap` from paths
(tuples of keys and indices) to 1-based (line, col). Only YAML's safe types are
constructed; any other tag is an error, never executed. Aliases are expanded with
a budget, so an alias bomb is refused instead of exhausting memory.
"""
from __future__ import annotations

import re
import sys

# PyYAML's reader compiles, at import, the class of characters YAML allows, written as
# ranges up to U+10FFFF; `re` spends ~7 ms on it (half of yaml's import), expanding the
# ranges below U+10000 one code point at a time. The same class written as its complement
# (what is not allowed) compiles in a sixth of that: put it in `re`'s cache under PyYAML's
# pattern, so that yaml's import finds it compiled. tests/spec/test_source.py checks that
# both match the same code points and that yaml's reader uses this one.
YAML_NON_PRINTABLE = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"
NOT_PRINTABLE = "[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uD800-\uDFFF\uFFFE\uFFFF]"


def _precompile_yaml_reader_class():
    cache = getattr(re, "_cache", None)  # CPython's: (type, pattern, flags) -> compiled
    if "yaml" not in sys.modules and isinstance(cache, dict):
        cache.setdefault((str, YAML_NON_PRINTABLE, 0), re.compile(NOT_PRINTABLE))


_precompile_yaml_reader_class()

import yaml  # noqa: E402

from .diagnostics import Diagnostic, SpecError  # noqa: E402

MAX_NODES = 200_000  # values after alias expansion
MAX_DEPTH = 64
MAX_BYTES = 20 * 1024 * 1024


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading exponent floats without a dot (`1e-3`) as numbers,
    as YAML 1.2 and every user expects (YAML 1.1 reads them as strings)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class SourceMap:
    """Paths into the loaded data mapped to positions in the file."""

    def __init__(self, file: str):
        self.file = file
        self.values: dict[tuple, tuple[int, int]] = {}
        self.keys: dict[tuple, tuple[int, int]] = {}
        self.aliases: dict[tuple, tuple] = {}  # normalised path prefix -> source path prefix
        self.overrides: dict[tuple, str] = {}  # path set on the command line -> its `--set` text
        self.text = ""  # the file's text, for the lints' `# layerc: disable=` comments

    def locate(self, path: tuple, key: bool = False) -> tuple[int | None, int | None]:
        """Position of `path`'s key (key=True) or value, else of its nearest ancestor."""
        path = self.source_path(tuple(path))
        while True:
            table = self.keys if key else self.values
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            if not path:
                return (None, None)
            path = path[:-1]

    def source_path(self, path: tuple) -> tuple:
        """Translate a path in normalised data into the path as written in the file."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.aliases:
                return self.aliases[path[:n]] + path[n:]
        return path

    def diagnostic(self, path, message: str, hint: str | None = None, key: bool = False):
        source = self.source_path(tuple(path))
        for n in range(len(source), 0, -1):
            if source[:n] in self.overrides:
                return Diagnostic(message, self.overrides[source[:n]], None, None, hint)
        line, col = self.locate(tuple(path), key=key)
        return Diagnostic(message, self.file, line, col, hint)


class _Builder:
    def __init__(self, smap: SourceMap):
        self.smap = smap
        self.count = 0
        self.constructor = _Loader("")  # only its scalar construction is used

    def build(self, node, path: tuple, depth: int):
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError([self._at(node, f"the YAML expands to more than {MAX_NODES:,} values "
                                             "(an alias bomb?); refused")])
        if depth > MAX_DEPTH:
            raise SpecError([self._at(node, f"the YAML nests deeper than {MAX_DEPTH} levels")])
        self.smap.values.setdefault(path, _pos(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, "tag:yaml.org,2002:seq")
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise SpecError([self._at(node, f"the YAML tag {node.tag} is not allowed "
                                            "(only plain YAML values are)")]) from None
        except (ValueError, TypeError, OverflowError) as e:
            raise SpecError([self._at(node, f"bad YAML value {node.value!r}: {e}")]) from None

    def _mapping(self, node, path, depth):
        self._check_tag(node, "tag:yaml.org,2002:map")
        out = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError([self._at(key_node, "YAML merge keys (<<) are not supported")])
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError([self._at(key_node, "a mapping key must be a plain value")])
            key = self.build(key_node, path + ("<key>",), depth + 1)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise SpecError([self._at(key_node, f"unsupported key {key!r}")])
            if key in out:
                first = self.smap.keys[path + (key,)]
                raise SpecError([self._at(key_node, f"duplicate key '{key}' (first defined on line {first[0]})")])
            self.smap.keys[path + (key,)] = _pos(key_node)
            out[key] = self.build(value_node, path + (key,), depth + 1)
        self.smap.values.pop(path + ("<key>",), None)
        return out

    def _check_tag(self, node, default):
        if node.tag != default:
            raise SpecError([self._at(node, f"the YAML tag {node.tag} is not allowed "
                                            "(only plain YAML values are)")])

    def _at(self, node, message):
        line, col = _pos(node)
        return Diagnostic(message, self.smap.file, line, col)


def _pos(node):
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, file: str = "<spec>"):
    """Parse YAML text safely into (data, SourceMap); raises SpecError."""
    smap = SourceMap(file)
    smap.text = text
    if len(text) > MAX_BYTES:
        raise too_large(file)
    if "\x00" in text:
        raise SpecError([Diagnostic("the file is binary, not YAML text", file, 1, 1)])
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = e.problem or e.context or "invalid YAML"
        if "expected a single document" in str(e):
            problem = "the file holds more than one YAML document"
        return _raise(Diagnostic(f"YAML syntax error: {problem}", file, line, col))
    except yaml.YAMLError as e:
        return _raise(Diagnostic(f"YAML error: {e}", file, 1, 1))
    except RecursionError:
        return _raise(Diagnostic("the YAML nests too deeply", file, 1, 1))
    if node is None:
        return _raise(Diagnostic("the file is empty; a spec needs at least `input:` and `layers:`", file, 1, 1))
    try:
        data = _Builder(smap).build(node, (), 0)
    except RecursionError:
        return _raise(Diagnostic("the YAML nests too deeply", file, 1, 1))
    return data, smap


def too_large(file) -> SpecError:
    return SpecError([Diagnostic(f"the file is larger than {MAX_BYTES // 2**20} MiB", file)])


def _raise(diagnostic):
    raise SpecError([diagnostic])
