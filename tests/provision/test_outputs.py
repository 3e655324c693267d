"""Outputs and file modes: an ``--out`` can never destroy the workspace, a special file or an existing
file without ``--force``; every file the workspace holds is 0600 whatever the umask or the folder's mode.

All through the ``tagsmith`` entry point (``tagsmith.cli.main``) on a real demo workspace.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from tagsmith.cli import main

PASSPHRASE = "tagsmith-demo-passphrase"
KEY_SET = "aurora-dw600-2026"


@pytest.fixture(scope="module")
def ws(tmp_path_factory, make_demo_home) -> dict[str, Path | str]:
    """A demo workspace (2 encoded units, a signed manifest, a label PDF) and a resolver public key."""
    root = tmp_path_factory.mktemp("outputs")
    home = make_demo_home(root)
    manifest = next((home / "exports").glob("*.manifest.jsonl"))
    pem = x25519.X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (root / "resolver.pem").write_bytes(pem)
    copy = root / "station-b.jsonl"  # the same units seen by a second station: a merge collapses them
    copy.write_bytes(manifest.read_bytes())
    (root / "station-b.jsonl.sig").write_bytes(Path(f"{manifest}.sig").read_bytes())
    return {"home": home, "batch": manifest.name.split(".")[0], "manifest": manifest, "pem": root / "resolver.pem",
            "root": root, "copy": copy}


def run(ws, argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", PASSPHRASE)
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(ws["home"]), *argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


# Every command that writes a file the user names with --out (the merged manifest's input is the demo's own).
WRITERS = {
    "manifest export": lambda w: ["manifest", "export", "--batch", w["batch"], "--without-qa", "--reason", "test"],
    "manifest merge": lambda w: ["manifest", "merge", str(w["manifest"]), str(w["copy"])],
    "keys export": lambda w: ["keys", "export", "--product", KEY_SET, "--for", str(w["pem"])],
    "labels print pdf": lambda w: ["labels", "print", "--batch", w["batch"], "--format", "pdf", "--reprint"],
    "labels print zpl": lambda w: ["labels", "print", "--batch", w["batch"], "--format", "zpl", "--reprint"],
    "labels print svg": lambda w: ["labels", "print", "--batch", w["batch"], "--format", "svg", "--serials",
                                   _first_serial(w)],
    "qa report": lambda w: ["qa", "report", "--batch", w["batch"]],
}


def _first_serial(w) -> str:
    first = w["manifest"].read_text().splitlines()[1]
    return first.split('"serial":"')[1].split('"')[0]


def _digests(home: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.iterdir()) if p.is_file()}


def _one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["keystore.json", "tagsmith.db", "audit.log", "tagsmith.db-wal", "sim-chips",
                                  "leases/st-1/20261205-001.sqlite"])
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_out_onto_workspace_state_is_refused_and_leaves_it_unchanged(ws, command, name, capsys, monkeypatch):
    home = ws["home"]
    before = _digests(home)
    for force in ([], ["--force"]):  # not even --force may replace workspace state
        code, _, err = run(ws, [*WRITERS[command](ws), "--out", str(home / name), *force], capsys, monkeypatch)
        _one_line_exit_2(code, err)
        assert "workspace" in err
    assert _digests(home) == before


@pytest.mark.parametrize("command", ["manifest export", "keys export", "labels print pdf"])
def test_out_reaching_workspace_state_through_a_symlink_or_dotdot_is_refused(ws, command, capsys, monkeypatch):
    link = ws["root"] / f"link-{command.replace(' ', '-')}"
    link.symlink_to(ws["home"] / "keystore.json")
    before = _digests(ws["home"])
    for out in (link, f"{ws['home']}/exports/../keystore.json"):
        code, _, err = run(ws, [*WRITERS[command](ws), "--out", str(out)], capsys, monkeypatch)
        _one_line_exit_2(code, err)
        assert "workspace" in err
    assert link.is_symlink() and _digests(ws["home"]) == before


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_out_that_is_not_a_regular_file_is_refused(ws, command, capsys, monkeypatch, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    special = [fifo, tmp_path]  # a FIFO, a directory
    if command != "labels print zpl":  # there a character device is a printer (see the next test)
        special.append(Path("/dev/full"))
    for out in special:
        code, _, err = run(ws, [*WRITERS[command](ws), "--out", str(out), "--force"], capsys, monkeypatch)
        _one_line_exit_2(code, err)
        assert "not a regular file" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_zpl_to_a_character_device_is_a_printer_and_allowed(ws, capsys, monkeypatch):
    code, out, err = run(ws, [*WRITERS["labels print zpl"](ws), "--out", "/dev/null", "--proof"], capsys, monkeypatch)
    assert code == 0, err


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_existing_out_is_replaced_only_with_force(ws, command, capsys, monkeypatch, tmp_path):
    out = tmp_path / ("report.html" if command == "qa report" else "out.file")
    out.write_bytes(b"precious")
    code, _, err = run(ws, [*WRITERS[command](ws), "--out", str(out)], capsys, monkeypatch)
    _one_line_exit_2(code, err)
    assert "--force" in err and out.read_bytes() == b"precious"
    code, _, err = run(ws, [*WRITERS[command](ws), "--out", str(out), "--force"], capsys, monkeypatch)
    assert code == 0, err
    assert out.read_bytes() != b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written by temp file + rename


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_empty_out_is_one_line_and_exit_2(ws, command, capsys, monkeypatch):
    code, _, err = run(ws, [*WRITERS[command](ws), "--out", ""], capsys, monkeypatch)
    _one_line_exit_2(code, err)
    assert "empty" in err


def test_manifest_export_refuses_a_sig_beside_it_that_is_workspace_state(ws, capsys, monkeypatch):
    """FILE.sig is written too: ``--out WS/keystore`` would put it on nothing, but ``--out WS/x`` with a
    FIFO at x.sig must not replace that FIFO."""
    out = ws["root"] / "m.jsonl"
    os.mkfifo(ws["root"] / "m.jsonl.sig")
    code, _, err = run(ws, [*WRITERS["manifest export"](ws), "--out", str(out)], capsys, monkeypatch)
    _one_line_exit_2(code, err)
    assert not out.exists()


@pytest.mark.parametrize("printer", ["keystore.json", "tagsmith.db", "audit.log"])
def test_station_label_printer_onto_workspace_state_is_refused(ws, printer, capsys, monkeypatch):
    before = _digests(ws["home"])
    code, _, err = run(ws, ["station", "run", "--batch", ws["batch"], "--sim", "--count", "1",
                            "--label-printer", str(ws["home"] / printer)], capsys, monkeypatch)
    _one_line_exit_2(code, err)
    assert _digests(ws["home"]) == before


def test_station_label_printer_fifo_is_refused(ws, capsys, monkeypatch, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    code, _, err = run(ws, ["station", "run", "--batch", ws["batch"], "--sim", "--count", "1",
                            "--label-printer", str(tmp_path / "fifo")], capsys, monkeypatch)
    _one_line_exit_2(code, err)


def test_every_workspace_file_is_0600_in_a_preexisting_0755_folder_under_umask_022(tmp_path):
    """The database (and its WAL/SHM), keystore, audit log, locks, exports, sim chips."""
    home = tmp_path / "ws"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    tagsmith = str(Path(sys.executable).with_name("tagsmith"))
    env = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}
    done = subprocess.run([tagsmith, "--home", str(home), "demo", "--units", "2", "--tear-rate", "0"], env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert done.returncode == 0, done.stderr
    # a reader holds the database open, so its -wal and -shm files exist while we look
    db = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                           "c.execute('select count(*) from units').fetchall(); print('open', flush=True); "
                           "sys.stdin.read()", str(home / "tagsmith.db")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert db.stdout.readline().strip() == "open"
        files = [p for p in home.rglob("*") if p.is_file()]
        assert {"tagsmith.db", "tagsmith.db-wal", "tagsmith.db-shm", "keystore.json", "audit.log"} <= {p.name for p in files}
        assert any(p.parent.name == "sim-chips" for p in files) and any(p.parent.name == "exports" for p in files)
        wide = {str(p.relative_to(home)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
                if stat.S_IMODE(p.stat().st_mode) != 0o600}
        assert wide == {}
    finally:
        db.communicate("", timeout=30)


def test_existing_world_readable_database_is_made_private_when_opened(tmp_path):
    from tagsmith.batches.store import open_store
    from tagsmith.workspace import Workspace

    workspace = Workspace(tmp_path)
    with open_store(workspace):
        pass
    os.chmod(workspace.database, 0o644)
    with open_store(workspace):
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o600}, modes
