"""`layerc diff`: exit codes, what a reviewer reads, git revisions and git's textconv."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_errors import cli
from tests.spec.test_diff import BASE, REFORMATTED

ROOT = Path(__file__).resolve().parents[2]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def files(tmp_path):
    def write(name, text):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def test_equal_specs_exit_0(files):
    code, out = cli("diff", files("a.yaml", BASE), files("b.yaml", REFORMATTED))
    assert code == 0, out
    assert "no change in meaning" in out and "params: 347,146 -> 347,146" in out


def test_changes_exit_1_with_the_effect(files):
    changed = BASE.replace("units: 64", "units: 128").replace("epochs: 12", "epochs: 3")
    code, out = cli("diff", files("a.yaml", BASE), files("b.yaml", changed))
    assert code == 1, out
    assert "~ dense.units: 64 -> 128" in out and "~ train.epochs: 12 -> 3" in out
    assert "params: 347,146 -> 693,962 (+346,816)" in out and "MACs: 541,440 -> 888,192 (+346,752)" in out


def test_json_format(files):
    inserted = BASE.replace("  - Dense: {units: 10", "  - Dropout: {rate: 0.5}\n  - Dense: {units: 10")
    code, out = cli("diff", files("a.yaml", BASE), files("b.yaml", inserted), "--format", "json")
    assert code == 1
    result = json.loads(out)
    assert result["same"] is False and result["params"] == [347146, 347146]
    assert [(c["kind"], c["path"]) for c in result["changes"]] == [("added", "dropout")]


def test_an_invalid_or_missing_spec_is_exit_2_located(files, tmp_path):
    bad = files("bad.yaml", BASE.replace("units: 64", "units: -1"))
    code, out = cli("diff", files("a.yaml", BASE), bad)
    assert code == 2 and f"{bad}:8:" in out and "Traceback" not in out
    code, out = cli("diff", files("a.yaml", BASE), str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: no such file" in out
    code, out = cli("diff", files("a.yaml", BASE))
    assert code == 2 and "give two specs" in out


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"})


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "specs" / "x.yaml").write_text(BASE)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


@needs_git
def test_a_git_revision(repo, monkeypatch):
    (repo / "specs" / "x.yaml").write_text(REFORMATTED)
    git(repo, "commit", "-q", "-am", "reformat")
    (repo / "specs" / "x.yaml").write_text(BASE.replace("units: 64", "units: 32"))
    monkeypatch.chdir(repo)
    code, out = cli("diff", "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert code == 0, out
    code, out = cli("diff", "HEAD~1:specs/x.yaml", "specs/x.yaml")
    assert code == 1 and "dense.units: 64 -> 32" in out
    monkeypatch.chdir(repo / "specs")  # the path is relative to the current folder, like B's
    code, out = cli("diff", "HEAD:x.yaml", "x.yaml")
    assert code == 1 and "dense.units: 64 -> 32" in out
    code, out = cli("diff", "HEAD~7:x.yaml", "x.yaml")
    assert code == 2 and "HEAD~7:x.yaml: git show failed:" in out and len(out.strip().splitlines()) == 1
    code, out = cli("diff", "HEAD:missing.yaml", "x.yaml")
    assert code == 2 and "git show failed" in out


@needs_git
def test_textconv_through_git_diff(repo):
    layerc = f"env PYTHONPATH={ROOT} {sys.executable} -m layerc diff --textconv"
    git(repo, "config", "diff.layerc.textconv", layerc)
    (repo / ".gitattributes").write_text("*.yaml diff=layerc\n")
    spec = repo / "specs" / "x.yaml"

    def git_diff():
        return subprocess.run(["git", "diff", "--", "specs/x.yaml"], cwd=repo, capture_output=True, text=True,
                              env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"})

    spec.write_text(REFORMATTED)  # a reformat: no line changes
    r = git_diff()
    assert r.returncode == 0 and "@@" not in r.stdout, r.stdout
    spec.write_text(REFORMATTED.replace("units: 64", "units: 128"))
    r = git_diff()
    hunk = [l for l in r.stdout.splitlines() if l[:1] in "+-" and not l.startswith(("+++", "---"))]
    assert hunk == ["-layers.dense.units: 64", "+layers.dense.units: 128"], r.stdout
    spec.write_text("layers: [\n")  # not a valid spec: git diff still works, on the raw text
    r = git_diff()
    assert r.returncode == 0 and "+layers: [" in r.stdout, r.stderr


def test_textconv_prints_the_canonical_form_or_the_raw_text(files, capsys):
    code, _ = cli("diff", "--textconv", files("a.yaml", BASE))
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("# layerc canonical form") and "layers.dense.units: 64\n" in out
    code, _ = cli("diff", "--textconv", files("other.yaml", "repos: [1, 2]\n"))
    assert code == 0 and capsys.readouterr().out == "repos: [1, 2]\n"
