"""`tag verify --url` checks a tap as a resolver must (docs/resolver.md), through the console script:
replay floors, the URL's static part, and a closed batch that can still be verified and inspected."""

import functools
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tagsmith.batches.store import open_store
from tagsmith.batches.verify import read_manifest
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.provision.simpool import sim_pool
from tagsmith.workspace import Workspace

ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}


@pytest.fixture(scope="module")
def cli(tagsmith_cli):
    """The console script with the demo workspace's keystore passphrase."""
    return functools.partial(tagsmith_cli, env=ENV)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory, cli) -> Path:
    home = tmp_path_factory.mktemp("demo") / "ws"
    done = cli(home, "demo", "--units", "6", "--tear-rate", "0", "--seed", "4", "--json")
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def home(demo_template, tmp_path) -> Path:
    """A copy of the demo's workspace for one test (taps change the database and the chips)."""
    copy = tmp_path / "ws"
    shutil.copytree(demo_template, copy)
    return copy


def _units(cli, home: Path, batch: str | None = None) -> list[dict]:
    """The batch's units as the database holds them (serial, UID, counters, floor)."""
    with open_store(Workspace(home)) as store:
        return [{"serial": u.serial, "uid": u.uid.hex().upper(), "encode_counter": u.read_counter,
                 "floor": u.last_counter} for u in store.units(batch or _batch(cli, home))]


def _batch(cli, home: Path) -> str:
    return json.loads(cli(home, "batch", "list", "--json").stdout)[0]["id"]


def _tap(home: Path, uid: str) -> str:
    """The URL the unit's simulated chip gives a phone now (each tap advances its counter)."""
    pool = sim_pool(Workspace(home))
    chip = pool.load(bytes.fromhex(uid))
    chip.place()
    url = Ntag424Session(chip).read_ndef_as_phone()
    chip.remove()
    pool.save(chip)
    return url


def _verify(cli, home: Path, url: str) -> subprocess.CompletedProcess:
    return cli(home, "tag", "verify", "--url", url, "--json")


def test_demo_manifest_carries_each_units_floor_including_qa_taps(demo_template, cli):
    manifest = next((demo_template / "exports").glob("*.manifest.jsonl"))
    _, _, records = read_manifest(manifest)
    records = list(records)
    # QA verified every sample unit at a counter above the station's read-back: the floor says so
    assert records and all(r["verified_counter"] is not None and r["verified_counter"] > r["encode_counter"]
                           for r in records)
    listed = cli(demo_template, "batch", "units", _batch(cli, demo_template), "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["serial"]: r["verified_counter"] for r in records} == \
        {u["serial"]: u["floor"] for u in json.loads(listed.stdout)}


def test_the_same_tap_twice_is_a_replay(home, cli):
    unit = _units(cli, home)[0]
    url = _tap(home, unit["uid"])
    first = _verify(cli, home, url)
    assert first.returncode == 0, first.stderr
    counter = json.loads(first.stdout)["read_counter"]
    assert {u["serial"]: u["floor"] for u in _units(cli, home)}[unit["serial"]] == counter  # recorded
    again = _verify(cli, home, url)
    assert again.returncode == 7, again.stderr
    line = again.stderr.strip()
    assert len(line.splitlines()) == 1 and "replay" in line and f"floor {counter}" in line


def test_a_lower_counter_after_a_higher_one_is_a_replay(home, cli):
    unit = _units(cli, home)[1]
    older, newer = _tap(home, unit["uid"]), _tap(home, unit["uid"])
    assert _verify(cli, home, newer).returncode == 0
    late = _verify(cli, home, older)
    assert late.returncode == 7 and "replay" in late.stderr
    shown = json.loads(cli(home, "unit", "show", unit["serial"], "--json").stdout)
    taps = [e for e in shown["events"] if e["event"] == "tap"]
    assert [t["detail"]["source"] for t in taps][-1] == "tag verify --url"


def test_a_tap_of_a_qa_scanned_unit_must_exceed_the_qa_counter(home, cli):
    """QA's counters count: the station's read-back counter is not the floor any more."""
    unit = _units(cli, home)[2]
    assert unit["floor"] > unit["encode_counter"]
    url = _tap(home, unit["uid"])
    assert json.loads(_verify(cli, home, url).stdout)["read_counter"] == unit["floor"] + 1


@pytest.mark.parametrize("change", [
    ("wrong GTIN", lambda u: u.replace("/01/09506000134376/", "/01/09506000134383/")),
    ("foreign host", lambda u: u.replace("https://id.example.com/", "https://id.example.org/")),
    ("http", lambda u: u.replace("https://", "http://")),
    ("extra lot segment", lambda u: u.replace("/21/", "/10/DEMO-LOT-1/21/")),
    ("duplicate c", lambda u: u + "&c=" + u.rsplit("c=", 1)[1]),
    ("extra parameter", lambda u: u + "&x=1"),
], ids=lambda c: c[0])
def test_a_valid_tap_with_another_static_part_is_refused(home, change, cli):
    unit = _units(cli, home)[0]
    url = _tap(home, unit["uid"])
    changed = change[1](url)
    assert changed != url
    refused = _verify(cli, home, changed)
    assert refused.returncode == 6, (changed, refused.stdout, refused.stderr)
    assert len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(refused.stdout)["check"] in ("url", "picc")
    ok = _verify(cli, home, url)  # the genuine tap itself still verifies: nothing was recorded by the refusals
    assert ok.returncode == 0, ok.stderr


def test_a_tap_moved_to_another_units_path_is_refused(home, cli):
    first, second = _units(cli, home)[:2]
    url = _tap(home, first["uid"])
    moved = url.replace(f"/21/{first['serial']}", f"/21/{second['serial']}")
    refused = _verify(cli, home, moved)
    assert refused.returncode == 6 and json.loads(refused.stdout)["check"] == "url"
    assert "moved tap" in refused.stderr


def test_a_closed_batch_can_still_be_verified_by_url_and_by_sim(home, cli):
    closed = cli(home, "batch", "close", _batch(cli, home))
    assert closed.returncode == 0, closed.stderr
    unit = _units(cli, home)[3]
    by_url = _verify(cli, home, _tap(home, unit["uid"]))
    assert by_url.returncode == 0, by_url.stderr
    by_sim = cli(home, "tag", "verify", "--sim", unit["uid"], "--json")
    assert by_sim.returncode == 0, by_sim.stderr
    assert json.loads(by_sim.stdout)["ok"] is True
    floor = {u["serial"]: u["floor"] for u in _units(cli, home)}[unit["serial"]]
    assert floor == json.loads(by_sim.stdout)["read_counter"] > json.loads(by_url.stdout)["read_counter"]


def test_a_closed_batch_can_still_be_qa_scanned(home, tmp_path, cli):
    created = cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "3", "--json")
    batch = json.loads(created.stdout)["id"]
    run = cli(home, "station", "run", "--batch", batch, "--sim", "--sim-tear-rate", "0", "--json")
    assert run.returncode == 0, run.stderr
    plan = cli(home, "qa", "plan", "--batch", batch, "--seed", "1", "--json")
    assert plan.returncode == 0, plan.stderr
    assert cli(home, "batch", "close", batch).returncode == 0
    sample = set(json.loads(plan.stdout)["serials"])
    labels = tmp_path / "labels.txt"  # the door labels a handheld scanner would read
    labels.write_text("".join(f"https://id.example.com/01/09506000134376/21/{s}\n" for s in sorted(sample)))
    scan = cli(home, "qa", "scan", "--batch", batch, "--sim", "--labels", str(labels), "--json")
    assert scan.returncode == 0, scan.stderr
    assert json.loads(scan.stdout.splitlines()[-1])["decision"] == "accept"
    listed = _units(cli, home, batch)
    assert sample and all(u["floor"] > u["encode_counter"] for u in listed if u["serial"] in sample)  # QA's counters


def test_a_tap_of_a_voided_unit_is_refused_as_a_state(home, cli):
    unit = _units(cli, home)[4]
    url = _tap(home, unit["uid"])
    with open_store(Workspace(home)) as store:
        store.void_unit(store.unit_by_serial(unit["serial"]).id, "lost after encoding")
    refused = _verify(cli, home, url)
    assert refused.returncode == 7 and json.loads(refused.stdout)["check"] == "state"
    assert "voided" in refused.stderr


def test_a_url_that_is_not_a_digital_link_is_bad_input(home, cli):
    refused = _verify(cli, home, "https://id.example.com/products/42?p=00&c=00")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_a_genuine_tap_of_a_chip_not_in_the_database_exits_8(home, cli):
    unit = _units(cli, home)[0]
    url = _tap(home, unit["uid"])  # a valid SUN: the chip is genuine, personalised with our keys
    with sqlite3.connect(Workspace(home).database) as db:  # the database forgets the chip: another UID there
        db.execute("UPDATE units SET uid = ? WHERE serial = ?", (bytes.fromhex("04EEEEEEEEEEEE"), unit["serial"]))
    db.close()
    refused = cli(home, "tag", "verify", "--url", url)
    assert refused.returncode == 8
    assert refused.stderr.strip().splitlines() == [
        f"error: unit check failed: the PICC data names chip {unit['uid']}, which is not a unit in this database"]
    assert json.loads(_verify(cli, home, url).stdout)["check"] == "unit"
