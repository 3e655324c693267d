"""The protocol layer imports only the standard library, pycryptodome, cryptography and ndeflib (docs/architecture.md)."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_MODULES = [
    *sorted((ROOT / "encoders" / "ntag424").glob("*.py")),
    *sorted((ROOT / "encoders" / "simulator").glob("*.py")),
    ROOT / "encoders" / "apdu.py",
    ROOT / "encoders" / "connection.py",
    ROOT / "keystore" / "diversify.py",
]
ALLOWED_THIRD_PARTY = {"Crypto", "cryptography", "ndef"}  # cryptography: OpenSSL ECDSA for the originality check
ALLOWED_OWN = ("tagsmith.encoders.ntag424", "tagsmith.encoders.apdu", "tagsmith.encoders.connection",
               "tagsmith.encoders.simulator", "tagsmith.keystore.diversify")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_protocol_layer_imports_only_stdlib_crypto_libraries_and_ndeflib():
    bad = []
    for path in PROTOCOL_MODULES:
        if not path.exists():
            continue
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY or top == "__future__":
                continue
            if name == "tagsmith" or name.startswith(ALLOWED_OWN):
                continue
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, bad


def test_only_pcsc_module_imports_pyscard_and_only_nfcpy_module_imports_nfc():
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", "bench", ".venv", "build"}:
            continue
        tops = {n.split(".")[0] for n in _imports(path)}
        if "smartcard" in tops:
            assert rel.as_posix() == "encoders/pcsc.py", rel
        if "nfc" in tops:
            assert rel.as_posix() == "encoders/nfcpy.py", rel


def test_rich_is_drawn_only_by_the_cli():
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", "bench", ".venv", "build"} or rel.as_posix() == "cli.py":
            continue
        assert "rich" not in {n.split(".")[0] for n in _imports(path)}, rel
