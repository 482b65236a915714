"""Which modules a layerc command imports: the command run in a fresh interpreter."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules_after(*argv: str) -> tuple[str, set[str]]:
    """(stdout, the names in sys.modules) after `layerc ARGV...` ran from the repository root."""
    code = (f"import sys; sys.argv = ['layerc', *{list(argv)!r}]\n"
            "from layerc.__main__ import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('MODULES', *sorted(sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 0, r.stderr
    out, _, mods = r.stdout.rpartition("MODULES")
    return out, set(mods.split())
