"""The simulated chip is written from NXP's documents, not from our encoder, so it can check the encoder.

Tests that drive ``encoders.ntag424`` against ``encoders.simulator`` prove something only while the
two share no protocol code. So the simulator may import, from tagsmith, only itself, the package
root (its error types), the APDU status words and the Connection contract, and importing it must
not load the encoder.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR = ROOT / "encoders" / "simulator"
PACKAGE = "tagsmith.encoders.simulator"
#: What the simulator may import from tagsmith outside its own package (``tagsmith.encoders`` is the
#: package those two live in: importing them runs its ``__init__`` anyway).
ALLOWED = {"tagsmith", "tagsmith.encoders", "tagsmith.encoders.apdu", "tagsmith.encoders.connection"}


def is_module(name: str) -> bool:
    """Whether a dotted tagsmith name is a module or package of this repository (not an attribute)."""
    path = ROOT.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def tagsmith_imports(path: Path, package: str) -> set[str]:
    """Every tagsmith module a file of ``package`` imports, relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names if is_module(f"{module}.{alias.name}")}
    return {name for name in found if name == "tagsmith" or name.startswith("tagsmith.")}


def outside_imports(source: Path, package: str) -> dict[str, set[str]]:
    """File -> the tagsmith modules it imports beyond its own package and ALLOWED."""
    problems = {}
    for path in sorted(source.rglob("*.py")):
        rel = path.relative_to(source)
        own = ".".join((package, *rel.parent.parts))
        bad = {name for name in tagsmith_imports(path, own)
               if name not in ALLOWED and name != package and not name.startswith(package + ".")}
        if bad:
            problems[rel.as_posix()] = bad
    return problems


def test_simulator_imports_nothing_from_the_encoder() -> None:
    assert SIMULATOR.is_dir()
    assert outside_imports(SIMULATOR, PACKAGE) == {}


def test_importing_the_simulator_does_not_load_the_encoder() -> None:
    code = ("import sys, tagsmith.encoders.simulator as s, tagsmith.encoders.simulator.pcscd, "
            "tagsmith.encoders.simulator.serve, tagsmith.encoders.simulator.vpicc; "
            "print(sorted(m for m in sys.modules if m.startswith('tagsmith.encoders.ntag424')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_the_check_catches_an_encoder_import(tmp_path: Path) -> None:
    """The static check fails on each way of reaching the encoder (so a pass above means something)."""
    (tmp_path / "ok.py").write_text("from tagsmith.encoders.apdu import SW\nfrom .core import ChipCore\n")
    (tmp_path / "direct.py").write_text("import tagsmith.encoders.ntag424.crypto\n")
    (tmp_path / "named.py").write_text("from tagsmith.encoders import ntag424\n")
    (tmp_path / "relative.py").write_text("from ..ntag424 import crypto\n")
    (tmp_path / "other.py").write_text("from tagsmith.keystore.diversify import diversify_aes128\n")
    assert outside_imports(tmp_path, PACKAGE) == {
        "direct.py": {"tagsmith.encoders.ntag424.crypto"},
        "named.py": {"tagsmith.encoders.ntag424"},
        "relative.py": {"tagsmith.encoders.ntag424", "tagsmith.encoders.ntag424.crypto"},
        "other.py": {"tagsmith.keystore.diversify"},
    }
