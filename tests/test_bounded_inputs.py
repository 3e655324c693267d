"""Bounded inputs: every file the CLI reads is bounded before it is parsed, every layout text line
is bounded, and nested TOML or a NaN/inf number is one line and exit 2 (never exit 70 or gigabytes).

Through the ``tagsmith`` entry point (``tagsmith.cli.main``); the huge inputs are ``/dev/zero`` and
sparse files (2 GiB that take no disk).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from tagsmith.cli import main
from tagsmith.labels.place import PT_MM, _cut

PASSPHRASE = "tagsmith-demo-passphrase"
KEY_SET = "aurora-dw600-2026"
ROOT = Path(__file__).parents[1]
PRODUCT = ROOT / "batches" / "products" / "dishwasher.toml"
LAYOUT = ROOT / "labels" / "layouts" / "a4-24up-70x37.toml"


@pytest.fixture(scope="module")
def ws(tmp_path_factory, make_demo_home) -> dict[str, Path | str]:
    root = tmp_path_factory.mktemp("bounded")
    home = make_demo_home(root)
    manifest = next((home / "exports").glob("*.manifest.jsonl"))
    huge = root / "huge"  # 2 GiB of zeros, sparse
    with open(huge, "wb") as fh:
        fh.truncate(2 << 30)
    return {"home": home, "batch": manifest.name.split(".")[0], "manifest": manifest, "huge": huge, "root": root}


def run(ws, argv: list[str], capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", PASSPHRASE)
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(ws["home"]), *argv])
    return exc.value.code, capsys.readouterr().err


def one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


READERS = {
    "product add": lambda w, f: ["product", "add", f],
    "keys import --file": lambda w, f: ["keys", "import", "--product", KEY_SET, "--slot", "4", "--file", f],
    "keys export --for": lambda w, f: ["keys", "export", "--product", KEY_SET, "--for", f,
                                       "--out", str(w["root"] / "never.json")],
    "manifest verify --public-key": lambda w, f: ["manifest", "verify", str(w["manifest"]), "--public-key", f],
    "manifest merge --public-key": lambda w, f: ["manifest", "merge", str(w["manifest"]), str(w["manifest"]),
                                                 "--public-key", f, "--out", str(w["root"] / "never.jsonl")],
    "labels print --layout": lambda w, f: ["labels", "print", "--batch", w["batch"], "--layout", f, "--format", "svg",
                                           "--reprint", "--out", str(w["root"] / "never.svg")],
}


@pytest.mark.parametrize("source", ["/dev/zero", "huge"])
@pytest.mark.parametrize("command", sorted(READERS))
def test_endless_or_huge_file_is_refused_after_a_bounded_read(ws, command, source, capsys, monkeypatch):
    path = str(ws["huge"]) if source == "huge" else source
    code, err = run(ws, READERS[command](ws, path), capsys, monkeypatch)
    if command == "labels print --layout" and source == "/dev/zero":  # a layout path must be a regular file
        assert code == 8 and err.strip().count("\n") == 0, err  # 'not found': nothing is read
    else:
        one_line_exit_2(code, err)
        assert "larger than" in err
    assert not list(ws["root"].glob("never*"))


def _layout(tmp_path: Path, text: str) -> str:
    path = tmp_path / "layout.toml"
    path.write_text(text)
    return str(path)


def test_layout_text_line_of_10k_characters_is_refused(ws, capsys, monkeypatch, tmp_path):
    layout = _layout(tmp_path, LAYOUT.read_text() + f'\n[[text]]\ntext = "{"W" * 10_000}"\nx = 35.0\ny = 35.0\n')
    code, err = run(ws, READERS["labels print --layout"](ws, layout), capsys, monkeypatch)
    one_line_exit_2(code, err)
    assert "at most 256" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", ["size", "dpi"])
def test_layout_with_nan_or_inf_is_refused(ws, key, value, capsys, monkeypatch, tmp_path):
    text = LAYOUT.read_text()
    text = text.replace("size = 31.0", f"size = {value}") if key == "size" else f"dpi = {value}\n" + text
    code, err = run(ws, READERS["labels print --layout"](ws, _layout(tmp_path, text)), capsys, monkeypatch)
    one_line_exit_2(code, err)
    assert "finite" in err


@pytest.mark.parametrize("nesting", ["array", "inline table", "dotted key"])
@pytest.mark.parametrize("kind", ["product", "layout"])
def test_deeply_nested_toml_is_refused(ws, kind, nesting, capsys, monkeypatch, tmp_path):
    deep = {"array": "deep = " + "[" * 5000 + "]" * 5000,
            "inline table": "deep = " + "{ a = " * 5000 + "1" + " }" * 5000,
            "dotted key": "deep" + ".a" * 5000 + " = 1"}[nesting]
    base = PRODUCT.read_text() if kind == "product" else LAYOUT.read_text()
    path = tmp_path / f"{kind}.toml"
    path.write_text(deep + "\n" + base)
    argv = READERS["product add"](ws, str(path)) if kind == "product" else READERS["labels print --layout"](ws, str(path))
    code, err = run(ws, argv, capsys, monkeypatch)
    one_line_exit_2(code, err)
    assert "nested deeper" in err


def test_manifest_whose_first_line_never_ends_is_refused(ws, capsys, monkeypatch, tmp_path):
    """A manifest is streamed: its header line is read up to a bound, not to the end of the file."""
    manifest = tmp_path / "m.jsonl"
    with open(manifest, "wb") as fh:
        fh.write(b"{")
        fh.truncate(1 << 30)  # 1 GiB without a newline
    sig = tmp_path / "m.jsonl.sig"
    os.symlink("/dev/zero", sig)
    code, err = run(ws, ["manifest", "verify", str(manifest)], capsys, monkeypatch)
    assert code == 6 and "larger than" in err and len(err.strip().splitlines()) == 1, err


def test_qa_scan_labels_from_an_endless_file_is_refused(ws, capsys, monkeypatch):
    """``qa scan --labels`` reads one scanned URL per line, each line bounded."""
    code, out = run(ws, ["batch", "create", "--product", "aurora-dw600", "--quantity", "2", "--json"], capsys,
                    monkeypatch)
    assert code == 0, out
    batch = next(b["id"] for b in _batches(ws, capsys, monkeypatch) if b["id"] != ws["batch"])
    for argv in (["station", "run", "--batch", batch, "--sim", "--json"], ["qa", "plan", "--batch", batch, "--json"]):
        code, err = run(ws, argv, capsys, monkeypatch)
        assert code == 0, err
    code, err = run(ws, ["qa", "scan", "--batch", batch, "--sim", "--labels", "/dev/zero", "--json"], capsys,
                    monkeypatch)
    one_line_exit_2(code, err)
    assert "longer than" in err


def _batches(ws, capsys, monkeypatch) -> list[dict]:
    import json

    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", PASSPHRASE)
    with pytest.raises(SystemExit):
        main(["--home", str(ws["home"]), "batch", "list", "--json"])
    return json.loads(capsys.readouterr().out)


def _cut_linear(text: str, font: str, size: float, room: float) -> str:
    """The old one-character-at-a-time cut, as the reference the bisection must match."""
    if stringWidth(text, font, size) * PT_MM <= room:
        return text
    while len(text) > 1 and stringWidth(text + "...", font, size) * PT_MM > room:
        text = text[:-1]
    return text.rstrip() + "..."


def test_text_cut_by_bisection_matches_the_character_by_character_cut():
    rng = random.Random(21)
    for _ in range(200):
        text = "".join(rng.choice("WiMl .-0123456789ABCabc") for _ in range(rng.randint(1, 120)))
        room = rng.uniform(1.0, 60.0)
        font = rng.choice(["Helvetica", "Helvetica-Bold"])
        assert _cut(text, font, 6.0, room) == _cut_linear(text, font, 6.0, room), (text, room)
