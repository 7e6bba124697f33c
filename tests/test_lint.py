"""The package, the build tools and the tests pass ruff with the repository's settings (ruff.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing_in_the_package_tools_and_tests():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is not installed: it is pinned in requirements/test.txt"
    result = subprocess.run([ruff, "check", "--no-cache", "code/src", "tools", "tests"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
