"""The `lint:` section: `lint: {disable: [LC203]}` silences lint codes for the whole file.

The codes are the lint registry's (`layerc.lint`), imported only when a spec has a `lint:`
key or the JSON Schema is made, so a spec without one never loads the rules.
"""
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

from .diagnostics import did_you_mean
from .layers import Strict


def _rules():
    from ..lint import RULES

    return RULES


def _known_code(code: str) -> str:
    rules = _rules()
    if code in rules:
        return code
    by_name = {r.name: r.code for r in rules.values()}
    hint = (f"write its code, '{by_name[code]}'" if code in by_name
            else did_you_mean(code, rules) or "`layerc lint --list` lists the codes")
    raise ValueError(f"unknown lint code {code!r}; {hint}")


def _code_enum(schema: dict) -> None:
    schema["enum"] = list(_rules())


LintCode = Annotated[StrictStr, AfterValidator(_known_code), Field(json_schema_extra=_code_enum)]


class LintSpec(Strict):
    """Lint settings for the whole file."""

    disable: list[LintCode] = Field(default=[], description="lint codes silenced in this file "
                                    "(`layerc lint --list`); `# layerc: disable=CODE` silences one line")
