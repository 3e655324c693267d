"""Units stranded in `encoding`, through the console script: listed, shown, voided, and named by the
commands that must not go ahead without them (qa plan, manifest export, batch close)."""

import functools
import json
from pathlib import Path

import pytest

from tagsmith.batches.store import open_store
from tagsmith.workspace import Workspace

ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase", "TAGSMITH_USER": "Eng. Kim"}
STRANDED_UIDS = [bytes.fromhex(f"04C0FFEE0000{n:02X}") for n in range(7)]


@pytest.fixture
def cli(tagsmith_cli):
    """The console script with this module's passphrase and user."""
    return functools.partial(tagsmith_cli, env=ENV)


@pytest.fixture
def stranded(tmp_path, cli) -> tuple[Path, str, list[str]]:
    """A batch of 12: four encoded by a simulated station, seven left encoding (a Ctrl-C each)."""
    home = tmp_path / "ws"
    assert cli(home, "demo", "--units", "2", "--tear-rate", "0", "--json").returncode == 0
    created = cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "12", "--json")
    batch = json.loads(created.stdout)["id"]
    run = cli(home, "station", "run", "--batch", batch, "--sim", "--count", "4", "--sim-tear-rate", "0")
    assert run.returncode == 0, run.stderr
    with open_store(Workspace(home)) as store:
        serials = [store.allocate_unit(batch, uid, "st-9", start_encoding=True).serial for uid in STRANDED_UIDS]
    return home, batch, serials


def _one_line_naming(result, serials: list[str]) -> None:
    assert result.returncode == 7, (result.stdout, result.stderr)
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "7 unit(s) still being encoded" in line
    assert all(s in line for s in serials[:5]) and "+2 more" in line and serials[6] not in line


def test_batch_units_lists_units_and_filters_by_state(stranded, cli):
    home, batch, serials = stranded
    everything = json.loads(cli(home, "batch", "units", batch, "--json").stdout)
    assert len(everything) == 11
    assert {"serial", "uid", "state", "station", "key_versions", "floor"} <= set(everything[0])
    encoding = json.loads(cli(home, "batch", "units", batch, "--state", "encoding", "--json").stdout)
    assert [u["serial"] for u in encoding] == serials and all(u["station"] == "st-9" for u in encoding)
    table = cli(home, "batch", "units", batch, "--state", "encoding")
    assert table.returncode == 0 and serials[0] in table.stdout and "04C0FFEE000000" in table.stdout
    assert cli(home, "batch", "units", batch, "--state", "lost").returncode == 2
    assert cli(home, "batch", "units", "NOPE").returncode == 8


def test_unit_show_by_serial_or_uid_with_its_journal(stranded, cli):
    home, batch, serials = stranded
    by_serial = json.loads(cli(home, "unit", "show", serials[0], "--json").stdout)
    by_uid = json.loads(cli(home, "unit", "show", "04c0ffee000000", "--json").stdout)
    assert by_serial == by_uid and by_serial["state"] == "encoding"
    assert [e["event"] for e in by_serial["events"]] == ["allocated", "encoding_started"]
    text = cli(home, "unit", "show", serials[0])
    assert text.returncode == 0 and "encoding_started" in text.stdout
    missing = cli(home, "unit", "show", "NOSUCHSERIAL")
    assert missing.returncode == 8 and len(missing.stderr.strip().splitlines()) == 1


def test_qa_plan_manifest_export_and_batch_close_name_stranded_units_and_refuse(stranded, tmp_path, cli):
    home, batch, serials = stranded
    _one_line_naming(cli(home, "qa", "plan", "--batch", batch), serials)
    out = tmp_path / "m.jsonl"
    _one_line_naming(cli(home, "manifest", "export", "--batch", batch, "--out", str(out), "--without-qa",
                         "--reason", "test"), serials)
    assert not out.exists()
    _one_line_naming(cli(home, "batch", "close", batch), serials)
    assert json.loads(cli(home, "batch", "show", batch, "--json").stdout)["state"] == "open"
    assert cli(home, "batch", "close", batch, "--allow-incomplete").returncode == 2  # a reason is required
    assert cli(home, "batch", "close", batch, "--force").returncode == 2  # folded into --allow-incomplete


def test_allow_incomplete_with_a_reason_goes_ahead_and_is_recorded(stranded, tmp_path, cli):
    home, batch, serials = stranded
    plan = cli(home, "qa", "plan", "--batch", batch, "--allow-incomplete", "--reason", "jam at st-9", "--json")
    assert plan.returncode == 0, plan.stderr
    assert not set(json.loads(plan.stdout)["serials"]) & set(serials)  # the lot is the encoded units
    out = tmp_path / "m.jsonl"
    export = cli(home, "manifest", "export", "--batch", batch, "--out", str(out), "--without-qa",
                 "--allow-incomplete", "--reason", "jam at st-9")
    assert export.returncode == 0, export.stderr
    closed = cli(home, "batch", "close", batch, "--allow-incomplete", "--reason", "jam at st-9")
    assert closed.returncode == 0, closed.stderr
    with open_store(Workspace(home)) as store:
        overrides = store.incomplete_overrides(batch)
    assert [(o["action"], o["serials"], o["reason"], o["by"]) for o in overrides] == [
        (action, serials, "jam at st-9", "Eng. Kim") for action in ("qa plan", "manifest export", "batch close")]


def test_void_lost_chips_then_everything_goes_ahead_and_serials_are_never_reused(stranded, tmp_path, cli):
    home, batch, serials = stranded
    unconfirmed = cli(home, "unit", "void", serials[0], "--reason", "chip lost")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    for serial in serials:
        voided = cli(home, "unit", "void", serial, "--reason", "chip lost in the jam", "--yes", "--json")
        assert voided.returncode == 0, voided.stderr
        assert json.loads(voided.stdout)["state"] == "voided"
    shown = json.loads(cli(home, "unit", "show", serials[0], "--json").stdout)
    assert (shown["voided_by"], shown["void_reason"]) == ("Eng. Kim", "chip lost in the jam") and shown["voided_at"]
    assert shown["events"][-1]["detail"] == {"reason": "chip lost in the jam", "by": "Eng. Kim"}
    again = cli(home, "unit", "void", serials[0], "--reason", "twice", "--yes")
    assert again.returncode == 7
    assert cli(home, "qa", "plan", "--batch", batch, "--json").returncode == 0
    run = cli(home, "station", "run", "--batch", batch, "--sim", "--count", "1", "--sim-tear-rate", "0", "--json")
    assert run.returncode == 0, run.stderr
    units = json.loads(cli(home, "batch", "units", batch, "--json").stdout)
    assert len({u["serial"] for u in units}) == len(units) == 12  # the new unit took a fresh serial
    assert cli(home, "batch", "close", batch).returncode == 0


def test_voiding_an_encoded_unit_needs_encoded(stranded, cli):
    home, batch, _ = stranded
    encoded = json.loads(cli(home, "batch", "units", batch, "--state", "encoded", "--json").stdout)[0]
    refused = cli(home, "unit", "void", encoded["serial"], "--reason", "lost", "--yes")
    assert refused.returncode == 7 and "tag reset" in refused.stderr and "--encoded" in refused.stderr
    voided = cli(home, "unit", "void", encoded["serial"], "--reason", "lost after encoding", "--yes", "--encoded")
    assert voided.returncode == 0, voided.stderr
