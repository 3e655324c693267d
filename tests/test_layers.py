"""The package's layers as a tested graph (docs/architecture.md), computed with ast over every module.

cli.py and commands/ -> provision -> encoders | keystore | batches | labels; those four import one
another never, only the shared modules at the package root, which import no folder at all. Every
third-party library has named homes; the protocol layer stays on the standard library and its
crypto libraries; the simulated chip imports nothing from the encoder it is the reference for.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGE = {"tests", "bench", "build", "docs", ".venv", ".git"}

ENTRY, SHARED = "entry", "shared"
FOLDERS = ("provision", "encoders", "keystore", "batches", "labels")
#: layer -> the layers its modules may import (each may import itself)
ALLOWED = {
    ENTRY: {ENTRY, "provision", "encoders", "keystore", "batches", "labels", SHARED},
    "provision": {"provision", "encoders", "keystore", "batches", "labels", SHARED},
    "encoders": {"encoders", SHARED},
    "keystore": {"keystore", SHARED},
    "batches": {"batches", SHARED},
    "labels": {"labels", SHARED},
    SHARED: {SHARED},
}
#: the package root: the entry point and the small shared modules every folder may use
ROOT_LAYERS = {"__init__.py": SHARED, "__main__.py": ENTRY, "cli.py": ENTRY, "workspace.py": SHARED,
               "fastaes.py": SHARED, "atomicfile.py": SHARED, "keyslots.py": SHARED, "limits": SHARED,
               "commands": ENTRY}

_SQL = {"batches/store/*"}
_CLI = {"cli.py", "commands/*"}
#: library (top-level import name) -> the modules allowed to import it; "*" covers a folder
ONE_HOME = {
    "smartcard": {"encoders/pcsc.py"},
    "nfc": {"encoders/nfcpy.py"},
    "ndef": {"encoders/ntag424/template.py"},
    "pkcs11": {"keystore/pkcs11.py"},
    # the simulator signs Read_Sig with its own test key: it may not share the keystore's code
    "Crypto": {"keystore/signing.py", "keystore/file.py", "keystore/export.py", "keystore/pkcs11.py",
               "keystore/bundle.py", "keystore/station.py",
               "encoders/simulator/signing.py"},
    # AES for the host protocol and the keystore (fastaes), the originality ECDSA, the simulator's own AES
    # and LRP (it may not share the encoder's code)
    "cryptography": {"fastaes.py", "encoders/ntag424/originality.py", "encoders/simulator/sm.py",
                     "encoders/simulator/lrp.py"},
    "reportlab": {"labels/place.py", "labels/pdf.py", "provision/qa_report.py"},
    "PIL": {"labels/preview.py", "labels/check.py"},
    "segno": {"labels/qr.py", "labels/masks.py"},
    "rich": _CLI, "typer": _CLI, "click": _CLI,
    "sqlite3": _SQL, "sqlite_utils": _SQL, "psycopg": _SQL,
}


def _modules() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in NOT_PACKAGE and not rel.parts[0].endswith(".egg-info"):
            yield path


def _dotted(rel: Path) -> list[str]:
    parts = list(rel.with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _is_module(parts: list[str]) -> bool:
    target = ROOT.joinpath(*parts)
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def _imports(path: Path) -> Iterator[tuple[str, list[str] | None]]:
    """(name as written, path inside tagsmith or None for another distribution) of every import."""
    rel = path.relative_to(ROOT)
    package = _dotted(rel) if rel.name == "__init__.py" else _dotted(rel)[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                yield alias.name, parts[1:] if parts[0] == "tagsmith" else None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "tagsmith":
                base = node.module.split(".")[1:]
            else:
                yield node.module or "", None
                continue
            for alias in node.names:  # "from tagsmith.batches import db" depends on the module db
                target = base + [alias.name] if _is_module(base + [alias.name]) else base
                yield ".".join(["tagsmith", *target]), target


def _layer(parts: list[str]) -> str:
    if not parts:
        return SHARED  # tagsmith/__init__: the error classes and the version
    first = parts[0] if len(parts) > 1 or parts[0] in FOLDERS else parts[0] + ".py"
    if first in FOLDERS:
        return first
    return ROOT_LAYERS.get(first) or ROOT_LAYERS[parts[0]]


def _homed(rel: str, homes: set[str]) -> bool:
    return any(rel == home or (home.endswith("/*") and rel.startswith(home[:-1])) for home in homes)


def test_every_root_module_has_a_layer():
    found = {p.name for p in ROOT.glob("*.py")} | {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert found - set(FOLDERS) - NOT_PACKAGE <= set(ROOT_LAYERS), found - set(FOLDERS) - set(ROOT_LAYERS)


def test_folders_import_only_the_layers_below_them():
    offending = []
    for path in _modules():
        rel = path.relative_to(ROOT)
        source = _layer(_dotted(rel) or [])
        for name, inside in _imports(path):
            if inside is not None and _layer(inside) not in ALLOWED[source]:
                offending.append(f"{rel.as_posix()} ({source}) imports {name} ({_layer(inside)})")
    assert not offending, "\n".join(sorted(set(offending)))


def test_each_third_party_library_is_imported_only_by_its_homes():
    offending = []
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        for name, inside in _imports(path):
            top = name.split(".")[0]
            if inside is not None or top == "__future__" or (top in sys.stdlib_module_names and top not in ONE_HOME):
                continue
            if top not in ONE_HOME:
                offending.append(f"{rel} imports {name}: a library with no home in ONE_HOME (decide one)")
            elif not _homed(rel, ONE_HOME[top]):
                offending.append(f"{rel} imports {name}; its homes are {sorted(ONE_HOME[top])}")
    assert not offending, "\n".join(sorted(set(offending)))


def test_protocol_layer_imports_only_stdlib_crypto_libraries_and_ndeflib():
    """The encoder and the simulator are bytes in, bytes out: nothing of the line, no transport."""
    allowed_own = {"ntag424": {("encoders", "ntag424"), ("encoders", "apdu"), ("encoders", "connection")},
                   "simulator": {("encoders", "simulator"), ("encoders", "apdu"), ("encoders", "connection")}}
    offending = []
    for folder, own in allowed_own.items():
        for path in sorted((ROOT / "encoders" / folder).glob("*.py")):
            for name, inside in _imports(path):
                top = name.split(".")[0]
                if inside is None:
                    if top not in sys.stdlib_module_names | {"__future__", "Crypto", "cryptography", "ndef"}:
                        offending.append(f"{path.relative_to(ROOT)} imports {name}")
                elif _layer(inside) != SHARED and tuple(inside[:2]) not in own:
                    offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, "\n".join(offending)


def test_the_simulator_imports_nothing_from_the_encoder_it_checks():
    """Written from NXP's documents alone, so a misreading in the encoder cannot be mirrored by it."""
    offending = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / "encoders" / "simulator").glob("*.py"))
                 for name, inside in _imports(path) if inside is not None and inside[:2] == ["encoders", "ntag424"]]
    assert not offending, offending


def test_the_graph_sees_relative_and_from_package_imports():
    """The checks above would pass vacuously if the walker missed an import form."""
    provision = dict(_imports(ROOT / "provision" / "demo.py"))
    assert provision["tagsmith.provision.station"] == ["provision", "station"]  # from . import station
    assert provision["tagsmith.workspace"] == ["workspace"]  # from ..workspace import Workspace
    assert _layer(["batches", "db"]) == "batches" and _layer(["workspace"]) == SHARED and _layer(["cli"]) == ENTRY
    assert _layer(["limits"]) == SHARED and _layer([]) == SHARED
