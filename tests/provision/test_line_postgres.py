"""A line: several ``station run --sim`` processes, each with its own workspace, on one PostgreSQL.

Each station's workspace is a copy of a demo workspace (its keystore; its own sim-chips pool) and
names the line's database with ``--db``. A tag torn or left on a station killed by SIGKILL is
carried to another station as an operator would: its chip file moves to that station's pool, where
``station run --sim`` places it first. The database server is stopped and started under a running
station, and a station's role holds only the rights docs/deployment.md grants it.
"""

from __future__ import annotations

import json
import os
import random
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
from tagsmith.provision.plan import FACTORY_VERSION
from tagsmith.provision.simpool import SimChipPool
from tagsmith.workspace import Workspace

PASSPHRASE = "tagsmith-demo-passphrase"
TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
NO_SERIAL_HERE = "has no serials left and its unfinished units have no simulated chip here"


class Line:
    """A demo workspace copied into a line's database, and station workspaces made from it."""

    def __init__(self, root: Path, demo: Path, url: str) -> None:
        self.root, self.demo, self.url = root, demo, url
        self.env = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}
        assert self.cli(demo, "db", "copy", "--to", url, db=None).wait(60) == 0

    def cli(self, home: Path, *args: str, db: str | None = "line") -> subprocess.Popen:
        where = ["--db", self.url if db == "line" else db] if db else []
        return subprocess.Popen([TAGSMITH, "--home", str(home), *where, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=self.env)

    def new_batch(self, quantity: int) -> str:
        out, err = self.cli(self.demo, "batch", "create", "--product", "aurora-dw600", "--quantity", str(quantity),
                            "--json").communicate(timeout=60)
        return json.loads(out)["id"]

    def station_home(self, name: str) -> Path:
        """A station PC's workspace: the demo keystore copied, no chips of its own yet."""
        home = self.root / name
        shutil.copytree(self.demo, home, ignore=shutil.ignore_patterns("sim-chips", "exports", "leases"))
        return home

    def store(self):
        return open_store(Workspace.resolve(self.demo), url=self.url, create=False)


@pytest.fixture
def line(tmp_path, make_demo_home, pg_database) -> Line:
    return Line(tmp_path, make_demo_home(tmp_path / "demo"), pg_database)


def pools(homes: list[Path]) -> list[SimChipPool]:
    return [SimChipPool(home / "sim-chips") for home in homes]


def check_line(store, batch: str, homes: list[Path]) -> list[tuple[int, Path]]:
    """No serial or UID twice; no keyed chip on any bench without its unit; the in-progress chips and where."""
    units = list(store.units(batch))
    assert len({u.serial for u in units}) == len(units)
    assert len({u.uid for u in units}) == len(units)
    by_uid = {u.uid: u for u in units}
    waiting = []
    for pool in pools(homes):
        for uid in pool.uids():
            if any(v != FACTORY_VERSION for v in pool.load(uid).view.key_versions):
                assert uid in by_uid, f"keyed chip {uid.hex()} has no unit record"
            if uid in by_uid and by_uid[uid].state in ("allocated", "encoding"):
                waiting.append((by_uid[uid].id, pool.path(uid)))
    return waiting


def carry_to_other_stations(waiting: list[tuple[int, Path]], homes: list[Path], rng: random.Random) -> None:
    """The operator takes each unfinished tag to another station (its chip file moves to that pool)."""
    for _unit, path in waiting:
        others = [h / "sim-chips" for h in homes if h / "sim-chips" != path.parent]
        target = rng.choice(others)
        target.mkdir(exist_ok=True, mode=0o700)
        path.rename(target / path.name)


def run_stations(line: Line, homes: list[Path], batch: str, seed: int, *extra: str) -> list[subprocess.Popen]:
    return [line.cli(home, "station", "run", "--batch", batch, "--sim", "--seed", str(seed * 10 + i),
                     "--station", f"st{i}", "--json", *extra) for i, home in enumerate(homes)]


def finished(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0 or NO_SERIAL_HERE in err, err  # nothing left for it: the others finish


def check_every_chip_verifies(line: Line, store, batch: str, homes: list[Path]) -> None:
    keys = open_keystore(Workspace.resolve(line.demo), PASSPHRASE)
    ctx = EncodeContext(store=store, keys=keys, product=store.batch_product(batch), batch_id=batch,
                        station="checker", allow_simulator_signature=True)
    chips = {uid: pool for pool in pools(homes) for uid in pool.uids()}
    for unit in store.units(batch):
        outcome = process_tag(ctx, chips[unit.uid].load(unit.uid))  # as a phone: the SUN verifies
        assert outcome.result == "verified", outcome


def test_three_stations_killed_and_rerun_share_one_batch(line):
    """Three stations on one batch, SIGKILLed at random moments, then run again with the torn tags
    carried to other stations: every unit encoded once, no serial or UID twice, the batch complete."""
    batch, rng = line.new_batch(24), random.Random(17)
    homes = [line.station_home(f"station{i}") for i in range(3)]
    store = line.store()
    moved: set[int] = set()
    for attempt in range(3):
        # 3 ms per APDU: about 50 ms a tag, so that a kill lands mid-tag on a machine of any speed
        procs = run_stations(line, homes, batch, attempt, "--sim-tear-rate", "0.2", "--sim-latency-ms", "3")
        for proc in procs:
            proc.stdout.readline()  # this station is in its loop
        time.sleep(rng.uniform(0.0, 0.1))
        for proc in procs:
            time.sleep(rng.uniform(0.0, 0.03))
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        waiting = check_line(store, batch, homes)
        moved.update(unit for unit, _ in waiting)
        carry_to_other_stations(waiting, homes, rng)
    assert moved, "no kill landed mid-tag"
    for attempt in range(3, 7):  # undisturbed runs until the batch is complete
        for proc in run_stations(line, homes, batch, attempt):
            finished(proc)
        if not check_line(store, batch, homes) and store.batch(batch).allocated == 24:
            break
    units = list(store.units(batch))
    assert len(units) == 24 and {u.state for u in units} == {"encoded"}, [u.state for u in units]
    resumed_elsewhere = [u for u in units if u.id in moved and
                         len({e.station for e in store.unit_events(u.id)} - {None}) > 1]
    assert resumed_elsewhere, "no unit torn at one station was finished at another"
    check_every_chip_verifies(line, store, batch, homes)
    store.close()


def test_the_database_stopped_mid_run_is_waited_for(line, pg_cluster):
    """The server stopped under a running station: it says so (JSON event), waits, and carries on by
    itself once the server is back; nothing lost or duplicated, every chip keyed only with its record."""
    batch = line.new_batch(20)
    homes = [line.station_home("station0")]
    proc = run_stations(line, homes, batch, 0, "--sim-latency-ms", "8")[0]
    assert json.loads(proc.stdout.readline())["event"] == "tag"  # a station mid-run (~130 ms a tag)
    pg_cluster.stop("fast")
    time.sleep(2.0)
    pg_cluster.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    database = [e for e in events if e["event"] == "database"]
    assert [e["state"] for e in database[:2]] == ["unreachable", "back"], database
    assert database[0]["reason"].startswith("database unreachable: ")
    assert events[-1]["batch_complete"] == {"done": 20, "quantity": 20}
    store = line.store()
    assert not check_line(store, batch, homes)
    assert {u.state for u in store.units(batch)} == {"encoded"}
    check_every_chip_verifies(line, store, batch, homes)
    store.close()


def deployment_grants() -> list[str]:
    """The station role's SQL, exactly as docs/deployment.md gives it."""
    block = re.search(r"```sql\n(-- the station role.*?)```", DEPLOYMENT.read_text(), re.S)
    assert block, "docs/deployment.md has no station role SQL block"
    sql = "\n".join(line for line in block.group(1).splitlines() if not line.startswith("--"))
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def test_a_station_role_encodes_and_cannot_close_the_batch(line, pg_cluster):
    """The GRANTs of docs/deployment.md: a station works with them; closing the batch is refused, one line."""
    import psycopg

    dbname = line.url.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(line.url, autocommit=True) as conn:
        for statement in deployment_grants():
            conn.execute(statement.replace("tagsmith_line", dbname))
    station_url = pg_cluster.url(dbname, user="station_a")
    batch = line.new_batch(3)
    home = line.station_home("station_a")
    run = line.cli(home, "station", "run", "--batch", batch, "--sim", "--station", "st-a", db=station_url)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    closing = line.cli(home, "batch", "close", batch, db=station_url)
    out, err = closing.communicate(timeout=60)
    assert closing.returncode == 1
    assert err.strip() == "error: this database role may not do that: permission denied for table batches"
    with line.store() as store:
        assert store.batch(batch).state == "open" and store.unit_counts(batch)["encoded"] == 3


def test_an_outage_mid_tag_is_reported_waited_out_and_the_tag_retried(world, monkeypatch):
    """In-process: the first allocation finds the database gone; the loop reports it, reconnects after
    its backoff, and the tag, untouched, is placed again (as a torn one) and encoded; the operator's
    line and view say so."""
    from tagsmith.batches.store import DatabaseUnreachable
    from tagsmith.commands.station import OperatorView, outcome_line
    from tagsmith.provision import station

    allocate, calls = world.store.allocate_unit, []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise DatabaseUnreachable("database unreachable: server closed the connection unexpectedly")
        return allocate(*args, **kwargs)

    monkeypatch.setattr(world.store, "allocate_unit", flaky)
    monkeypatch.setattr(station, "RETRY_FIRST", 0.01)
    events = list(station.run(world.context(), station.SimulatedSource(2, seed=3)))
    database = [e for e in events if isinstance(e, station.DatabaseEvent)]
    assert [e.to_dict()["state"] for e in database] == ["unreachable", "back"]
    outcomes = [e for e in events if isinstance(e, station.Outcome)]
    assert [o.result for o in outcomes] == ["torn", "encoded", "encoded"], outcomes
    assert "database went away" in outcomes[0].reason
    assert len(calls) == 3 and calls[0][1] in {c[1] for c in calls[1:]}  # that chip, placed again, got its serial
    assert "database unreachable: waiting" in outcome_line(database[0])
    view = OperatorView(world.store, world.batch_id)
    view.add(database[0])
    assert "database unreachable: waiting" in str(view._last_tag())
