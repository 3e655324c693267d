"""Leased stations on one PostgreSQL: encoding through an outage, a crash, a revoked lease.

Each station is a ``station run --sim --lease N`` process with its own workspace (a copy of a demo
workspace) and its lease journal there. The server is stopped under a running station; a station is
killed by SIGKILL while the database is away; an engineer revokes a dead station's lease.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tagsmith.batches.store import open_store
from tagsmith.keystore import open_keystore
from tagsmith.provision.encode import EncodeContext, process_tag
from tagsmith.provision.simpool import SimChipPool
from tagsmith.workspace import Workspace

PASSPHRASE = "tagsmith-demo-passphrase"
TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


class Line:
    """A demo workspace copied into the line's database, and station workspaces made from it."""

    def __init__(self, root: Path, demo: Path, url: str) -> None:
        self.root, self.demo, self.url = root, demo, url
        self.env = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}
        assert self.cli(demo, "db", "copy", "--to", url, db=False).wait(60) == 0

    def cli(self, home: Path, *args: str, db: bool = True, url: str | None = None) -> subprocess.Popen:
        return subprocess.Popen([TAGSMITH, "--home", str(home), *(["--db", url or self.url] if db else []), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                env=self.env)

    def run(self, home: Path, *args: str, url: str | None = None) -> str:
        proc = self.cli(home, *args, url=url)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        return out

    def new_batch(self, quantity: int) -> str:
        return json.loads(self.run(self.demo, "batch", "create", "--product", "aurora-dw600", "--quantity",
                                   str(quantity), "--json"))["id"]

    def station_home(self, name: str) -> Path:
        home = self.root / name
        shutil.copytree(self.demo, home, ignore=shutil.ignore_patterns("sim-chips", "exports", "leases"))
        return home

    def station(self, home: Path, batch: str, name: str, *extra: str) -> subprocess.Popen:
        return self.cli(home, "station", "run", "--batch", batch, "--sim", "--station", name, "--json", *extra)

    def store(self):
        return open_store(Workspace.resolve(self.demo), url=self.url, create=False)


@pytest.fixture
def line(tmp_path, make_demo_home, pg_database) -> Line:
    return Line(tmp_path, make_demo_home(tmp_path / "demo"), pg_database)


def check_batch(line: Line, batch: str, homes: list[Path], quantity: int) -> None:
    """Every serial of the batch used once, by one chip each; every unit encoded and its chip verifies."""
    with line.store() as store:
        units = list(store.units(batch))
        assert len(units) == quantity, [u.state for u in units]
        assert len({u.serial for u in units}) == len({u.uid for u in units}) == quantity
        assert {u.state for u in units} == {"encoded"}, [u.state for u in units]
        assert store.batch(batch).allocated == quantity and not store.leases(batch, active_only=True)
        keys = open_keystore(Workspace.resolve(line.demo), PASSPHRASE)
        ctx = EncodeContext(store=store, keys=keys, product=store.batch_product(batch), batch_id=batch,
                            station="checker", allow_simulator_signature=True)
        chips = {uid: pool for home in homes for pool in [SimChipPool(home / "sim-chips")] for uid in pool.uids()}
        for unit in units:
            assert process_tag(ctx, chips[unit.uid].load(unit.uid)).result == "verified"


def events_of(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_a_leased_station_encodes_through_an_outage_and_syncs_after_it(line, pg_cluster):
    """The server stopped for 3 s under a leased station: it goes on encoding from its lease, waits once
    the lease is used up, pushes its journal when the server is back; the batch ends complete, no gap,
    no serial or UID twice."""
    batch, home = line.new_batch(24), line.station_home("station0")
    proc = line.station(home, batch, "st0", "--lease", "8", "--sim-latency-ms", "8")
    assert json.loads(proc.stdout.readline())["event"] == "tag"
    pg_cluster.stop("fast")
    time.sleep(3.0)
    pg_cluster.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = events_of(out)
    kinds = [(e["event"], e.get("state")) for e in events]
    offline, online = kinds.index(("lease", "offline")), kinds.index(("lease", "online"))
    during = [e for e in events[offline:online] if e["event"] == "tag" and e["result"] == "encoded"]
    assert during, "nothing encoded while the database was away"
    assert events[-2]["event"] == "lease" and events[-2]["state"] == "closed" and not events[-2]["conflicts"]
    assert events[-1]["batch_complete"] == {"done": 24, "quantity": 24}
    check_batch(line, batch, [home], 24)
    with line.store() as store:
        assert {lease.state for lease in store.leases(batch)} == {"returned"}


def test_a_leased_station_killed_offline_loses_nothing(line, pg_cluster):
    """SIGKILL while the database is away: `station sync` pushes what the journal holds, a rerun resumes the
    tag left in the field and finishes the batch from the same lease and the next ones."""
    batch, home = line.new_batch(16), line.station_home("station0")
    proc = line.station(home, batch, "st0", "--lease", "6", "--sim-latency-ms", "8")
    assert json.loads(proc.stdout.readline())["event"] == "tag"
    pg_cluster.stop("fast")
    try:
        seen = [json.loads(proc.stdout.readline()) for _ in range(3)]  # encoding on while the database is away
        time.sleep(0.05)  # a tag mid-field
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        pg_cluster.start()
    assert any(e["event"] == "tag" for e in seen)
    synced = json.loads(line.run(home, "station", "sync", "--json"))["journals"]
    assert synced[0]["batch"] == batch and not synced[0]["conflicts"]
    with line.store() as store:
        assert store.leases(batch, active_only=True), "the killed station's lease stays active"
        with open_store(Workspace.resolve(home), database=home / "leases" / "st0" / f"{batch}.sqlite") as journal:
            mine = {(u.serial, u.uid) for u in journal.units(batch)}
        assert mine == {(u.serial, u.uid) for u in store.units(batch)}  # every unit pushed, none twice
    out = line.run(home, "station", "run", "--batch", batch, "--sim", "--station", "st0", "--json", "--lease", "6")
    assert events_of(out)[-1]["batch_complete"] == {"done": 16, "quantity": 16}
    check_batch(line, batch, [home], 16)
    assert "no serial leases" not in line.run(home, "station", "leases", "--batch", batch)


def test_a_revoked_lease_is_finished_elsewhere_and_its_late_units_refused(line, pg_cluster):
    """A station dies offline with units the database never saw; an engineer revokes its lease; another
    station finishes the batch; the dead station's sync then reports each unit whose serial was used
    since as a conflict, recorded in the database, and nothing is merged."""
    batch = line.new_batch(12)
    dead, other = line.station_home("dead"), line.station_home("other")
    proc = line.station(dead, batch, "st-dead", "--lease", "8", "--sim-latency-ms", "8")
    assert json.loads(proc.stdout.readline())["event"] == "tag"
    pg_cluster.stop("fast")
    try:
        while json.loads(proc.stdout.readline())["event"] != "lease":
            pass  # the worker noticed: what follows is encoded offline
        offline = [json.loads(proc.stdout.readline()) for _ in range(3)]
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        pg_cluster.start()
    assert all(e["event"] == "tag" for e in offline)
    closing = line.cli(line.demo, "batch", "close", batch)
    assert closing.wait(60) == 7 and "active serial lease at station st-dead" in closing.stderr.read()
    revoked = json.loads(line.run(line.demo, "station", "revoke-lease", "st-dead", "--reason", "PC died", "--json"))
    assert revoked["revoked"][0]["state"] == "revoked"
    line.run(other, "station", "run", "--batch", batch, "--sim", "--station", "st-other", "--json")
    with line.store() as store:
        assert store.batch(batch).allocated == 12  # every serial given back was used at the other station
        pushed = {u.serial for u in store.units(batch) if u.station == "st-dead"}
    report = json.loads(line.run(dead, "station", "sync", "--json"))["journals"][0]
    refused = {c["serial"] for c in report["conflicts"]}
    assert refused and {e["serial"] for e in offline if e["result"] == "encoded"} - pushed <= refused
    listed = json.loads(line.run(line.demo, "station", "leases", "--batch", batch, "--json"))
    assert {c["serial"] for c in listed["conflicts"]} == refused
    check_batch(line, batch, [other, dead], 12)


def test_a_station_role_leases_syncs_and_returns_with_the_documented_grants(line, pg_cluster):
    """The station role of docs/deployment.md, as written, is enough for a leased run and a sync."""
    import psycopg

    block = re.search(r"```sql\n(-- the station role.*?)```", DEPLOYMENT.read_text(), re.S)
    assert block, "docs/deployment.md has no station role SQL block"
    dbname = line.url.split("?")[0].rsplit("/", 1)[1]
    sql = "\n".join(text for text in block.group(1).splitlines() if not text.startswith("--"))
    with psycopg.connect(line.url, autocommit=True) as conn:
        for statement in filter(None, (part.strip() for part in sql.split(";"))):
            try:
                conn.execute(statement.replace("tagsmith_line", dbname))
            except psycopg.errors.DuplicateObject:  # roles belong to the cluster: another test made them
                pass
    try:
        leased_with_the_station_role(line, pg_cluster.url(dbname, user="station_a"))
    finally:  # roles belong to the cluster: leave none behind for the next test that makes them
        with psycopg.connect(line.url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY station_a, tagsmith_station")
            conn.execute("DROP ROLE station_a")
            conn.execute("DROP ROLE tagsmith_station")


def leased_with_the_station_role(line: Line, station_url: str) -> None:
    batch, home = line.new_batch(6), line.station_home("station_a")
    line.run(home, "station", "run", "--batch", batch, "--sim", "--station", "st-a", "--lease", "4", "--count", "3",
             "--json", url=station_url)  # one serial of the lease unused: given back
    assert json.loads(line.run(home, "station", "sync", "--json", url=station_url))["journals"][0]["conflicts"] == []
    out = line.run(home, "station", "run", "--batch", batch, "--sim", "--station", "st-a", "--json", url=station_url)
    assert events_of(out)[-1]["batch_complete"] == {"done": 6, "quantity": 6}  # the given-back serial claimed again
    with line.store() as store:
        assert {lease.state for lease in store.leases(batch)} == {"returned"}
        assert store.unit_counts(batch) == {"encoded": 6}
        given_back = store.lease_serials(store.leases(batch)[0].id)[-1][1]
        assert store.unit_by_serial(given_back).station == "st-a"


def test_two_heads_of_a_leased_station_ride_through_an_outage(line, pg_cluster):
    """Both heads of one leased station encode from its journal while the server is stopped; the batch ends
    complete, every serial and chip once."""
    batch, home = line.new_batch(48), line.station_home("station0")
    proc = line.station(home, batch, "st0", "--heads", "2", "--lease", "30", "--sim-latency-ms", "8")
    assert json.loads(proc.stdout.readline())["event"] == "tag"
    pg_cluster.stop("fast")
    time.sleep(2.0)
    pg_cluster.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = events_of(out)
    kinds = [(e["event"], e.get("state")) for e in events]
    offline, online = kinds.index(("lease", "offline")), kinds.index(("lease", "online"))
    heads = {e["head"] for e in events[offline:online] if e["event"] == "tag" and e["result"] == "encoded"}
    assert heads == {"sim-1", "sim-2"}, "both heads encode while the database is away"
    assert events[-1]["batch_complete"] == {"done": 48, "quantity": 48}
    check_batch(line, batch, [home], 48)
