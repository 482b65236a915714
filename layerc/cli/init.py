"""`layerc init`: a starter spec from a template."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def init(
    file: Optional[Path] = typer.Argument(None, metavar="FILE", help="The spec file to write."),
    template: str = typer.Option("image-classifier", "--template", "-t", metavar="NAME",
                                 help="Which template (see --list)."),
    list_: bool = typer.Option(False, "--list", help="List the templates."),
    force: bool = typer.Option(False, "--force", help="Replace FILE if it exists."),
):
    """Write a starter spec that trains on a built-in dataset as it is: layerc init --template NAME FILE."""
    from .. import templates
    from . import CliError, console

    if list_:
        for name in templates.names():
            console.print(f"[bold]{name:<24}[/] {templates.summary(name)}")
        return
    if file is None:
        raise CliError("give the spec file to write: layerc init [--template NAME] FILE", 2)
    try:
        path = templates.write(template, file, force)
    except templates.TemplateError as e:
        raise CliError(str(e), 1) from None
    import shlex

    quoted = shlex.quote(str(path))
    console.print(f"wrote {path} from the {template} template; next: layerc validate {quoted} && "
                  f"layerc train {quoted}")
