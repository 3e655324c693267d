"""Station enrolment through the CLI: an engineer's workspace bundles a product's keys for a station's
key, the station imports them and encodes a simulated tag with them; every refusal is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith import TagsmithError
from tagsmith.cli import app
from tagsmith.keystore.audit import read_audit

SHIPPED = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
PRODUCT, KEY_SET, UID = "aurora-dw600", "aurora-dw600-2026", "04AABBCCDDEEFF"


@pytest.fixture
def line(tmp_path, passphrase, monkeypatch):
    """run(home, *args): tagsmith in-process; an engineer workspace with the product and its key set."""
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", passphrase)
    runner, seen = CliRunner(), []

    def run(home: str, *args: str, ok: bool = True):
        result = runner.invoke(app, ["--home", str(tmp_path / home), *args])
        seen.extend([result.stdout, result.stderr, str(result.exception or "")])
        if ok:
            assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
        return result

    for home in ("eng", "st1", "st2"):
        run(home, "keys", "init", "--scrypt-cost", "1024")
    run("eng", "product", "add", str(SHIPPED))
    run("eng", "keys", "create", "--product", KEY_SET)
    run("st1", "keys", "station-key", "--name", "st1", "--out", str(tmp_path / "st1.pub"))
    run("st2", "keys", "station-key", "--name", "st2", "--out", str(tmp_path / "st2.pub"))
    (tmp_path / "line.pem").write_text(json.loads(run("eng", "keys", "manifest-key", "--json").stdout)["public_key"])
    run.tmp, run.seen = tmp_path, seen
    return run


def _derive(line, home: str, slot: int) -> str:
    out = line(home, "keys", "derive", "--key-set", KEY_SET, "--slot", str(slot), "--uid", UID, "--reveal", "--json")
    return json.loads(out.stdout)["key"]


def _one_line_refusal(result, code: int) -> str:
    """A tagsmith error (the entry point prints it as one line and exits with its code), no key in it."""
    error = result.exception
    assert isinstance(error, TagsmithError) and error.exit_code == code, (result.stdout, result.stderr, error)
    message = str(error)
    assert len(message.splitlines()) == 1 and "key\": \"" not in message, message
    return message


def _bundle(line, station: str = "st1", name: str = "b.bundle") -> Path:
    out = line.tmp / name
    line("eng", "keys", "export", "--for-station", str(line.tmp / f"{station}.pub"), "--product", PRODUCT,
         "--out", str(out))
    return out


def test_round_trip_station_encodes_with_the_engineers_keys(line):
    bundle = _bundle(line)
    assert json.loads(bundle.read_text())["station"]["name"] == "st1"
    imported = json.loads(line("st1", "keys", "import-bundle", str(bundle), "--public-key", str(line.tmp / "line.pem"),
                               "--json").stdout)
    assert imported["changed"] and imported["key_sets"][0]["added"] == [{"slot": s, "version": 1} for s in range(5)]
    for slot in (0, 2, 3, 4):  # every diversified slot derives the same chip key on both sides
        assert _derive(line, "st1", slot) == _derive(line, "eng", slot)
    assert _fingerprints(line, "st1") == _fingerprints(line, "eng")

    # the station encodes and verifies a simulated tag with the imported keys
    line("st1", "product", "add", str(SHIPPED))
    batch = json.loads(line("st1", "batch", "create", "--product", PRODUCT, "--quantity", "1", "--json").stdout)
    line("st1", "station", "run", "--batch", batch["id"], "--sim", "--count", "1", "--sim-tear-rate", "0")
    (unit,) = json.loads(line("st1", "batch", "units", batch["id"], "--json").stdout)
    assert unit["state"] == "encoded" and set(unit["key_versions"].values()) == {1}, unit  # encoded and read back as a phone

    # both ends audited; importing the same bundle again is a no-op that writes nothing
    exported = [r for r in read_audit(line.tmp / "eng" / "audit.log") if r["op"] == "bundle-export"]
    assert exported[0]["key_sets"] == KEY_SET and exported[0]["station_fingerprint"] == imported_fp(line, "st1")
    records = len(read_audit(line.tmp / "st1" / "audit.log"))
    again = json.loads(line("st1", "keys", "import-bundle", str(bundle), "--public-key", str(line.tmp / "line.pem"),
                            "--json").stdout)
    assert not again["changed"] and again["key_sets"][0]["already_present"] == 5
    assert len(read_audit(line.tmp / "st1" / "audit.log")) == records
    assert [r["op"] for r in read_audit(line.tmp / "st1" / "audit.log")].count("bundle-import") == 1
    for text in line.seen:  # no master key ever printed
        assert not any(k in text for k in _masters(line))


def _fingerprints(line, home: str) -> dict[int, list[str]]:
    (key_set,) = json.loads(line(home, "keys", "list", "--json").stdout)["key_sets"]
    return {s["slot"]: [v["fingerprint"] for v in s["versions"]] for s in key_set["slots"]}


def imported_fp(line, station: str) -> str:
    return json.loads((line.tmp / f"{station}.pub").read_text())["fingerprint"]


def _masters(line) -> list[str]:
    from tagsmith.keystore import open_keystore
    from tagsmith.workspace import Workspace

    with open_keystore(Workspace(line.tmp / "eng")) as store:
        return [store._extract_master((KEY_SET, s, 1)).hex().upper() for s in range(5)]


def test_the_station_key_is_made_once(line):
    first = json.loads(line("st1", "keys", "station-key", "--json").stdout)
    again = json.loads(line("st1", "keys", "station-key", "--json").stdout)
    assert first["fingerprint"] == again["fingerprint"] == imported_fp(line, "st1") and not again["created"]
    assert first["station"] == "st1" and imported_fp(line, "st1") != imported_fp(line, "st2")
    renamed = line("st1", "keys", "station-key", "--name", "elsewhere", ok=False)
    assert "was made as 'st1'" in _one_line_refusal(renamed, 2)
    assert [r["op"] for r in read_audit(line.tmp / "st1" / "audit.log")].count("station-key") == 1


def test_a_bundle_for_another_station_is_refused(line):
    bundle = _bundle(line, "st2")
    result = line("st1", "keys", "import-bundle", str(bundle), "--public-key", str(line.tmp / "line.pem"), ok=False)
    assert "is for station 'st2'" in _one_line_refusal(result, 2)
    assert json.loads(line("st1", "keys", "list", "--json").stdout)["key_sets"] == []


@pytest.mark.parametrize("where", ["signed", "signature", "structure"])
def test_a_tampered_bundle_or_wrong_signature_is_refused(line, where):
    bundle = _bundle(line)
    raw = bundle.read_bytes()
    if where == "signed":
        at = raw.index(b'"ciphertext": "') + 20
    elif where == "signature":
        at = raw.index(b'"signature": "') + 20
    else:
        at = raw.index(b"\n") + 1
    bundle.write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:])
    result = line("st1", "keys", "import-bundle", str(bundle), "--public-key", str(line.tmp / "line.pem"), ok=False)
    _one_line_refusal(result, 6)
    assert json.loads(line("st1", "keys", "list", "--json").stdout)["key_sets"] == []


def test_a_bundle_signed_by_another_line_is_refused(line):
    bundle = _bundle(line)
    other = json.loads(line("st2", "keys", "manifest-key", "--json").stdout)["public_key"]
    (line.tmp / "other.pem").write_text(other)
    result = line("st1", "keys", "import-bundle", str(bundle), "--public-key", str(line.tmp / "other.pem"), ok=False)
    assert "signature does not verify" in _one_line_refusal(result, 6)
    assert json.loads(line("st1", "keys", "list", "--json").stdout)["key_sets"] == []


def test_a_different_key_set_of_the_same_name_is_never_overwritten(line):
    line("st1", "keys", "create", "--product", KEY_SET, "--system-id", "4155524F5241")  # same name, its own masters
    before = line("st1", "keys", "list", "--json").stdout
    result = line("st1", "keys", "import-bundle", str(_bundle(line)), "--public-key", str(line.tmp / "line.pem"), ok=False)
    assert "holds a different aurora-dw600-2026 slot 0 v1" in _one_line_refusal(result, 7)
    assert line("st1", "keys", "list", "--json").stdout == before


def test_export_refusals(line):
    pub = str(line.tmp / "st1.pub")
    unknown = line("eng", "keys", "export", "--for-station", pub, "--product", "nope", "--out", str(line.tmp / "x"), ok=False)
    assert "no product 'nope'" in _one_line_refusal(unknown, 8)
    unused = line("eng", "keys", "export", "--for-station", pub, "--product", PRODUCT, "--only-key-set", "other",
                  "--out", str(line.tmp / "x"), ok=False)
    assert "does not use key set other" in _one_line_refusal(unused, 2)
    (line.tmp / "bad.pub").write_text((line.tmp / "st1.pub").read_text().replace('"st1"', '"st9"', 1)
                                      .replace('"fingerprint": "', '"fingerprint": "0', 1))
    for bad in (str(line.tmp / "line.pem"), str(line.tmp / "bad.pub")):
        result = line("eng", "keys", "export", "--for-station", bad, "--product", PRODUCT, "--out", str(line.tmp / "x"),
                      ok=False)
        _one_line_refusal(result, 2)
    both = line("eng", "keys", "export", "--for-station", pub, "--for", str(line.tmp / "line.pem"), "--product", PRODUCT,
                "--out", str(line.tmp / "x"), ok=False)
    assert "give one of --for" in _one_line_refusal(both, 2)
    assert not (line.tmp / "x").exists()
    assert not [r for r in read_audit(line.tmp / "eng" / "audit.log") if r["op"] == "bundle-export"]
