"""Starter specs for `layerc init`: one YAML file a kind of model, each training on a
built-in dataset as it is, with comments on why its layers were chosen."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

DEFAULT = "image-classifier"


class TemplateError(Exception):
    """An unknown template, or a file that `init` will not write."""


def names() -> list[str]:
    """The templates' names, sorted."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def text(name: str) -> str:
    """A template's YAML text."""
    if name not in names():
        from ..spec.diagnostics import did_you_mean

        hint = did_you_mean(name, names())
        raise TemplateError(f"no template {name!r}{f' ({hint})' if hint else ''}; "
                            f"`layerc init --list` shows them: {', '.join(names())}")
    return (resources.files(__name__) / f"{name}.yaml").read_text(encoding="utf-8")


def summary(name: str) -> str:
    """The template's first comment line: what it is for."""
    first = text(name).splitlines()[0]
    return first.lstrip("# ").strip()


def write(name: str, path, force: bool = False) -> Path:
    """Write template `name` to `path` (atomically), named after the file; refuses an
    existing file unless `force`."""
    from ..runs import atomic_write
    from ..spec.validate import name_from_file

    path = Path(path)
    body = text(name)
    if path.is_dir():
        raise TemplateError(f"{path} is a directory; give the spec file to write")
    if path.exists() and not force:
        raise TemplateError(f"{path} exists; not overwriting it (--force replaces it)")
    if not path.parent.is_dir():
        raise TemplateError(f"{path.parent} is not a directory")
    body = re.sub(r"(?m)^name: .*$", f"name: {name_from_file(path)}", body, count=1)
    try:
        atomic_write(path, body.encode("utf-8"))
    except OSError as e:
        raise TemplateError(f"{path}: cannot write: {e.strerror or e}") from None
    return path
