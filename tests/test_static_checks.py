"""ruff and mypy over the repository, as configured in pyproject.toml, and the module-size rule.

The repository root is the package ``tagsmith`` (package-dir "."), so mypy is pointed at a temporary
directory holding one symlink ``tagsmith`` -> the root: it checks this working tree, never an
installed copy.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGE = {"tests", "bench", "build", "docs", ".venv", ".git", ".ci"}
MAX_MODULE_LINES = 400


def _package_modules() -> list[Path]:
    return [p for p in ROOT.rglob("*.py")
            if p.relative_to(ROOT).parts[0] not in NOT_PACKAGE and not p.relative_to(ROOT).parts[0].endswith(".egg-info")]


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--quiet", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_the_package(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tagsmith").symlink_to(ROOT, target_is_directory=True)
    env = {**os.environ, "MYPYPATH": str(tmp_path / "src")}
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                             "--cache-dir", str(tmp_path / "cache"), "-p", "tagsmith"],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_every_module_is_under_400_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in _package_modules()
            if (n := len(p.read_text().splitlines())) >= MAX_MODULE_LINES}
    assert not long, f"modules of {MAX_MODULE_LINES} lines or more: {long}"
