"""A leased session in-process, its line's database a workspace SQLite file: what the tag loop sees.

The outage itself needs a server to stop (test_leases_line.py); here the session's state says the
database is away, as its worker sets it when a push fails.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tagsmith.batches.store import DatabaseUnreachable, open_store
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision import station
from tagsmith.provision.encode import process_tag
from tagsmith.provision.leasesession import LeaseSession
from tagsmith.provision.simpool import random_uid
from tagsmith.workspace import Workspace


def session_of(world, size=4, hours=8.0, name="st-a"):
    return LeaseSession(world.workspace, lambda: open_store(world.workspace), world.batch_id, name, size=size,
                        hours=hours)


def test_a_chip_the_line_knows_but_the_journal_does_not_is_refused(world):
    chip = SimulatedNtag424(uid=random_uid(random.Random(5)))
    assert process_tag(world.context("st-b"), chip).result == "encoded"  # at a station without a lease
    session = session_of(world)
    session.prepare()
    with session.store() as store:
        chip.remove()
        chip.place()
        outcome = process_tag(world.context("st-a", store=store), chip)
    assert outcome.result == "refused" and "not in this station's lease journal" in outcome.reason, outcome
    assert "station running without --lease" in outcome.reason


def test_a_leased_loop_encodes_from_its_journal_and_the_close_returns_the_rest(world):
    session = session_of(world, size=6)
    session.start()
    with session.store() as store:
        events = list(station.run(world.context("st-a", store=store), station.SimulatedSource(3, seed=2)))
    closed = session.close()
    assert [e.result for e in events if isinstance(e, station.Outcome)] == ["encoded"] * 3
    assert closed.state == "closed" and closed.detail["ended"]
    assert world.store.unit_counts(world.batch_id) == {"encoded": 3}
    assert [lease.state for lease in world.store.leases(world.batch_id)] == ["returned"]
    assert world.store.batch(world.batch_id).allocated == 3  # the three unused serials went back


def test_an_expired_lease_is_not_allocated_from_and_the_station_says_why(world):
    session = session_of(world, size=3, hours=0.0003)  # about a second
    session.prepare()
    session.reachable, session.reason = False, "database unreachable: the network is down"
    with session.store() as store:
        assert store.batch(world.batch_id).allocated < store.batch(world.batch_id).quantity
        time.sleep(1.2)
        with pytest.raises(DatabaseUnreachable, match=r"network is down; lease #1 expired at .*: no serial to encode"):
            store.batch(world.batch_id)
        assert store.lease(1).state == "expired"


@pytest.mark.parametrize("round_", range(3))
def test_heads_racing_for_the_last_leased_serials_wait_for_the_next_block(world, round_):
    """Three heads on blocks of three serials: a head that finds the block just emptied by another waits for
    the next one; no chip is refused as "batch full" while the line's batch still has serials to lease."""
    from dataclasses import replace

    from tagsmith.provision.heads import HeadEvent, run_heads
    from tagsmith.provision.leasesession import leased_events
    from tagsmith.provision.stationrun import simulated_heads

    batch_id = world.new_batch(30)
    session = LeaseSession(world.workspace, lambda: open_store(world.workspace), batch_id, "st-a", size=3, hours=8.0)
    first = session.start()
    with session.store() as journal:
        enc = world.context("st-a", batch_id=batch_id, store=journal)
        heads = simulated_heads(enc, world.workspace, 3, count=None, tear_rate=0.0, seed=round_,
                                left=session.serials_left)
        events = list(leased_events(run_heads(lambda: replace(enc, store=session.store()), heads), session, journal,
                                    first))
    session.close()
    results = [e.event.result for e in events if isinstance(e, HeadEvent) and isinstance(e.event, station.Outcome)]
    assert results == ["encoded"] * 30, [e.event.reason for e in events if isinstance(e, HeadEvent)
                                         and getattr(e.event, "result", "encoded") != "encoded"]
    assert station.store_batch_complete(world.store, batch_id) == (30, 30)
    assert len(world.store.leases(batch_id)) == 10


def test_a_lost_journal_is_named_at_the_next_start_and_its_chips_are_refused_as_foreign(world):
    """The journal's disk died: the next leased start names the lease it does not hold; a chip encoded
    from that journal and never pushed cannot be told from a foreign one and is refused, recorded."""
    from tagsmith.provision.leases import journal_path

    session = session_of(world, size=4)
    session.prepare()  # no worker: nothing is pushed
    with session.store() as store:
        chips = [SimulatedNtag424(uid=random_uid(random.Random(n))) for n in (11, 12)]
        assert [process_tag(world.context("st-a", store=store), chip).result for chip in chips] == ["encoded"] * 2
    journal_path(world.workspace, "st-a", world.batch_id).unlink()
    told = session_of(world, size=4).prepare()
    assert [event.state for event in told] == ["conflict"]
    assert "lease #1 of station st-a is not in this workspace's journal: revoke it" in told[0].reason
    for chip in chips:
        chip.remove()
        chip.place()
        outcome = process_tag(world.context("st-b"), chip)
        assert outcome.result == "refused", outcome
    assert world.store.auth_failure(chips[0].uid) is not None


def test_the_worker_looks_at_an_ended_lease_only_when_its_units_changed(world):
    """A long batch gathers ended leases; the worker's sync every 0.2 s skips those with nothing new, and
    still pushes a later step of a unit on one (here an engineer voiding it at the station)."""
    from tagsmith.provision import leases

    with leases.open_journal(world.workspace, "st-a", world.batch_id) as journal:
        leases.top_up(journal, world.store, world.batch_id, "st-a", 2, 8.0)
        chips = [SimulatedNtag424(uid=random_uid(random.Random(n))) for n in (21, 22)]
        assert [process_tag(world.context("st-a", store=journal), c).result for c in chips] == ["encoded"] * 2
        first = leases.sync_journal(journal, world.store, world.batch_id, give_back=True)
        assert first.accepted == 2 and first.ended == {1: "returned"}
        idle = leases.sync_journal(journal, world.store, world.batch_id, since_event=first.newest)
        assert (idle.accepted, idle.newest) == (0, first.newest)
        unit = journal.unit_by_uid(chips[0].uid)
        journal.void_unit(unit.id, "label torn at packing", "st-a", by="engineer")
        later = leases.sync_journal(journal, world.store, world.batch_id, since_event=idle.newest)
    assert later.accepted == 1 and later.newest > idle.newest
    assert world.store.unit_by_serial(unit.serial).state == "voided"


def test_a_batch_closed_under_a_leased_station_is_said_and_its_next_new_chip_refused(world):
    """The engineer closes the batch over the station's lease (--allow-incomplete): the worker's next sync
    learns the lease was revoked, the operator is told once, and a fresh chip is refused, not encoded."""
    session = session_of(world, size=6)
    session.start()
    try:
        with session.store() as store:
            first = SimulatedNtag424(uid=random_uid(random.Random(31)))
            assert process_tag(world.context("st-a", store=store), first).result == "encoded"
            deadline = time.monotonic() + 10
            while getattr(world.store.unit_by_uid(first.uid), "state", None) != "encoded" and time.monotonic() < deadline:
                time.sleep(0.05)  # pushed by the worker
            world.store.close_batch(world.batch_id, incomplete_reason="line stopped", by="eng")
            told: list = []
            while not any(e.state == "revoked" for e in told) and time.monotonic() < deadline:
                time.sleep(0.05)
                told += session.changes(store)
            assert [e.reason for e in told if e.state == "revoked"] == [
                "lease #1 was revoked in the line's database (batch closed: line stopped): its unused serials left "
                "this station"]
            assert not [e for e in session.changes(store) if e.state == "revoked"]  # said once
            fresh = process_tag(world.context("st-a", store=store), SimulatedNtag424(uid=random_uid(random.Random(32))))
            assert fresh.result == "refused" and fresh.reason.endswith("is closed: no new tag is encoded for it"), fresh
    finally:
        session.close()
    assert world.store.unit_counts(world.batch_id) == {"encoded": 1}


def test_ctrl_c_at_a_leased_station_returns_the_unused_serials_before_the_summary(tmp_path, make_demo_home):
    """SIGINT mid-run (the CLI, on the workspace's own database): exit 130, the lease closed (journal pushed,
    unused serials back) said before the interrupted summary, and the batch holds only what was encoded."""
    tagsmith = str(Path(sys.executable).with_name("tagsmith"))
    home = make_demo_home(tmp_path)
    env = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}
    made = subprocess.run([tagsmith, "--home", str(home), "batch", "create", "--product", "aurora-dw600", "--quantity",
                           "100", "--json"], capture_output=True, text=True, env=env, timeout=60)
    batch = json.loads(made.stdout)["id"]
    proc = subprocess.Popen([tagsmith, "--home", str(home), "station", "run", "--batch", batch, "--sim", "--lease", "10",
                             "--sim-latency-ms", "8", "--station", "st-c", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    for _ in range(3):
        assert json.loads(proc.stdout.readline())["event"] == "tag"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    *_, closed, summary = [json.loads(line) for line in out.splitlines()]
    assert closed["event"] == "lease" and closed["state"] == "closed" and not closed["conflicts"]
    assert summary["event"] == "summary" and summary["interrupted"] is True
    with open_store(Workspace.resolve(home)) as store:
        assert {lease.state for lease in store.leases(batch)} == {"returned"}
        assert store.batch(batch).allocated == sum(store.unit_counts(batch).values()) >= 3
