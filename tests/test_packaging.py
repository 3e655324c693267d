"""Guards for the root-as-package layout: the repository root is the package `tagsmith` (package-dir maps it to ".")."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "bench", "build", "docs", ".venv", ".git", ".ci", "products"}


def _listed_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed_for_the_wheel():
    found = {"tagsmith"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and (rel.parts[0] in NOT_SHIPPED or rel.parts[0].endswith(".egg-info")):
            continue
        if rel.parts:
            found.add("tagsmith." + ".".join(rel.parts))
    assert found == _listed_packages()


# The package root holds the entry (cli.py, __main__.py) and a few small shared modules that every
# folder may use and that import no tagsmith folder themselves (docs/architecture.md).
ROOT_MODULES = ["__init__.py", "__main__.py", "atomicfile.py", "cli.py", "fastaes.py", "keyslots.py", "workspace.py"]


def test_only_entry_and_shared_modules_at_the_root():
    assert sorted(p.name for p in ROOT.glob("*.py")) == sorted(ROOT_MODULES)


def test_no_init_files_under_tests():
    assert not list((ROOT / "tests").rglob("__init__.py"))


def test_subpackages_import_under_tagsmith_only():
    import importlib.util

    assert importlib.util.find_spec("tagsmith.encoders") is not None
    for loose in ("labels", "cli", "encoders", "keystore", "batches", "provision"):
        assert importlib.util.find_spec(loose) is None, f"{loose} must not import at top level"
