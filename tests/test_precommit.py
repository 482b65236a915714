"""The repository's pre-commit hook, through `pre-commit try-repo` in a new git repository:
a good spec passes, a bad one fails with its located error, other YAML is left alone."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_layerc_validate_hook_through_try_repo(tmp_path):
    if not Path(PRE_COMMIT).exists():
        pytest.skip("pre-commit is not installed")
    if shutil.which("git") is None or _git(ROOT, "rev-parse", "HEAD").returncode != 0:
        pytest.skip("needs git and the repository as a git checkout")
    repo = tmp_path / "project"
    (repo / "specs").mkdir(parents=True)
    _git(repo, "init", "-q")
    shutil.copy(ROOT / "specs" / "mnist_mlp.yaml", repo / "specs" / "good.yaml")
    (repo / "specs" / "bad.yaml").write_text("input: {shape: [4]}\nlayers:\n  - Dense: {units: 3, activaton: relu}\n")
    (repo / "ci.yaml").write_text("jobs: [not, a, spec]\n")  # other YAML: not the hook's business
    _git(repo, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PRE_COMMIT_COLOR": "never"}
    r = subprocess.run([PRE_COMMIT, "try-repo", str(ROOT), "layerc-validate", "--all-files"], cwd=repo,
                       capture_output=True, text=True, env=env, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "layerc validate" in out and "Failed" in out
    assert "specs/bad.yaml:3:23: error: unknown key 'activaton' for Dense" in out
    assert "specs/good.yaml: ok (10 layers, 538,890 params)" in out
    assert "ci.yaml" not in out.replace("pre-commit-config.yaml", "").replace("pre-commit-hooks.yaml", "")
