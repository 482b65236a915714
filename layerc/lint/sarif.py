"""SARIF 2.1.0 output for code scanning (GitHub's `upload-sarif`): every lint code is a rule
in `tool.driver.rules`, every diagnostic a result at its file, line and column."""
from __future__ import annotations

from pathlib import PurePath

from . import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SPEC_ERROR = "spec-error"  # the rule of every error: a spec layerc cannot use


def _rules() -> list[dict]:
    rules = [{"id": SPEC_ERROR, "name": "invalid-spec",
              "shortDescription": {"text": "the spec is not valid: YAML, schema, graph or shapes"},
              "fullDescription": {"text": "layerc cannot load, validate or compile the spec."},
              "help": {"text": "Fix what the message says; `layerc validate` prints the same errors."},
              "defaultConfiguration": {"level": "error"}}]
    for r in RULES.values():
        rules.append({"id": r.code, "name": r.name, "shortDescription": {"text": r.summary},
                      "fullDescription": {"text": r.explanation.split("\n\n")[0].replace("\n", " ")},
                      "help": {"text": r.explanation, "markdown": r.explanation},
                      "defaultConfiguration": {"level": r.severity}})
    return rules


def _uri(file: str) -> str:
    """A relative path as a relative URI reference (what code scanning matches against the
    repository), an absolute one as a file:// URI."""
    from urllib.parse import quote

    path = PurePath(file)
    return path.as_uri() if path.is_absolute() else quote(path.as_posix())


def sarif(results, version: str) -> dict:
    """The SARIF log of `check_file` results."""
    rules = _rules()
    index = {r["id"]: i for i, r in enumerate(rules)}
    out = []
    for res in results:
        for d in res.diagnostics:
            rule_id = d.code or SPEC_ERROR
            where = {"artifactLocation": {"uri": _uri(d.file)}}
            if d.line is not None:
                where["region"] = {"startLine": d.line, "startColumn": d.col or 1}
            text = f"{d.message} ({d.hint})" if d.hint else d.message
            out.append({"ruleId": rule_id, "ruleIndex": index[rule_id],
                        "level": d.severity if d.severity in ("warning", "note") else "error",
                        "message": {"text": text}, "locations": [{"physicalLocation": where}]})
    return {"$schema": SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "layerc", "version": version,
                                          "rules": rules}},
                      "results": out}]}
