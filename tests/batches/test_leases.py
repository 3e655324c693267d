"""Serial leases in the store, on both engines: taken, given back, revoked, and a station's journal pushed.

The journal is what a leased station encodes against: a SQLite store of its workspace holding only
the serials leased to it. Pushing it is idempotent; a unit that would use a serial or UID twice is
refused and recorded, never merged.
"""

from __future__ import annotations

import pytest

from tagsmith import NotFoundError, StateError
from tagsmith.batches.leaserecords import LeaseState
from tagsmith.batches.store import open_store
from tagsmith.workspace import Workspace

KEYS = {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}


def uid(n: int) -> bytes:
    return bytes.fromhex(f"04C0FFEE00{n:04X}")


@pytest.fixture
def journal(tmp_path):
    """A station's lease journal (always SQLite, in the station's workspace)."""
    ws = Workspace(tmp_path / "station")
    with open_store(ws, database=ws.home / "leases" / "st-a" / "batch.sqlite") as j:
        yield j


def encode(store, batch_id, n, station="st-a"):
    unit = store.allocate_unit(batch_id, uid(n), station, start_encoding=True)
    return store.mark_encoded(unit.id, KEYS, 1, station)


def lease_to(store, journal, batch_id, count, station="st-a"):
    lease, serials = store.take_lease(batch_id, station, count, 8)
    journal.receive_lease(store, lease, serials)
    return lease, serials


def push(store, journal, lease_id, station="st-a"):
    units, through = journal.lease_push(lease_id, 0)
    return store.sync_lease(lease_id, station, units, used=journal.lease_used(lease_id), through_event=through,
                            refusals=journal.refusals_to_push())


def test_a_lease_holds_its_serials_and_gives_back_the_unused_ones_first(store, product):
    batch = store.create_batch(product.id, 10)
    lease, serials = store.take_lease(batch.id, "st-a", 4, 8)
    assert [seq for seq, _ in serials] == [1, 2, 3, 4] and lease.is_active and lease.unused == 4
    assert store.batch(batch.id).allocated == 4  # held by the lease
    other = encode(store, batch.id, 100, station="st-b")
    assert other.serial not in {s for _, s in serials}  # never a leased serial
    encode(store, batch.id, 1)  # ... the counter's next again: the lease's serials stay its own
    ended = store.return_lease(lease.id)
    assert ended.state == "returned" and store.batch(batch.id).allocated == 2
    assert store.return_lease(lease.id) == ended  # idempotent
    again = [encode(store, batch.id, 200 + i, station="st-b").serial for i in range(5)]
    assert again[:4] == [s for _, s in serials] and again[4] not in {s for _, s in serials}  # given back first, in order
    assert store.batch(batch.id).allocated == 7


def test_a_lease_is_refused_on_a_closed_or_full_batch(store, product):
    batch = store.create_batch(product.id, 3)
    store.take_lease(batch.id, "st-a", 5, 8)  # as many as are left
    with pytest.raises(StateError, match="no serials left to lease"):
        store.take_lease(batch.id, "st-b", 1, 8)
    with pytest.raises(StateError, match="is full"):
        store.allocate_unit(batch.id, uid(1), "st-b")
    closed = store.create_batch(product.id, 3)
    store.close_batch(closed.id)
    with pytest.raises(StateError, match="is closed"):
        store.take_lease(closed.id, "st-a", 1, 8)


def test_batch_close_is_refused_while_a_lease_holds_serials(store, product):
    batch = store.create_batch(product.id, 3)
    lease, _ = store.take_lease(batch.id, "st-a", 2, 8)
    with pytest.raises(StateError, match="active serial lease at station st-a .2 serial.s. not synced"):
        store.close_batch(batch.id)
    let_through = store.require_complete(batch.id, "manifest export", "the station's PC burnt", by="eng")
    assert len(let_through) == 2 and store.incomplete_overrides(batch.id)[0]["reason"] == "the station's PC burnt"
    store.return_lease(lease.id)
    assert store.close_batch(batch.id).state == "closed"


def test_a_pushed_journal_lands_once_however_often_it_is_pushed(store, product, journal):
    batch = store.create_batch(product.id, 10)
    lease, serials = lease_to(store, journal, batch.id, 5)
    assert journal.batch(batch.id).allocated == 10 - 5  # the journal may allocate its leased serials only
    done = [encode(journal, batch.id, n) for n in range(3)]
    journal.mark_verified(done[0].id, 2, "st-a")
    assert [u.serial for u in done] == [s for _, s in serials[:3]]
    first = push(store, journal, lease.id)
    again = push(store, journal, lease.id)
    assert first.accepted == again.accepted == 3 and not first.conflicts and not again.conflicts
    units = list(store.units(batch.id))
    assert [(u.serial, u.uid, u.state) for u in units] == [(u.serial, u.uid, "verified" if u is done[0] else "encoded")
                                                             for u in done]
    events = [e.event for e in store.unit_events(units[0].id)]
    assert events == ["allocated", "encoding_started", "encoded", "verified"]  # each event once
    assert (again.lease.synced, again.lease.used, again.lease.unused) == (3, 3, 2)
    journal.mark_verified(done[1].id, 4, "st-a")  # a later change moves the unit forward
    units_now, through = journal.lease_push(lease.id, first.lease.synced_event)
    assert [u["serial"] for u in units_now] == [done[1].serial]
    store.sync_lease(lease.id, "st-a", units_now, used=3, through_event=through)
    assert store.unit_by_serial(done[1].serial).state == "verified"


def test_a_push_never_moves_a_unit_back(store, product, journal):
    batch = store.create_batch(product.id, 4)
    lease, _ = lease_to(store, journal, batch.id, 2)
    unit = encode(journal, batch.id, 1)
    push(store, journal, lease.id)
    there = store.unit_by_serial(unit.serial)
    store.mark_verified(there.id, 9, "qa-desk")  # verified at the line meanwhile
    push(store, journal, lease.id)
    assert store.unit(there.id).state == "verified" and store.unit(there.id).verified_counter == 9


def test_a_revoked_lease_takes_units_whose_serials_are_free_and_refuses_the_rest(store, product, journal):
    batch = store.create_batch(product.id, 6)
    lease, serials = lease_to(store, journal, batch.id, 4)
    offline = [encode(journal, batch.id, n) for n in range(3)]  # encoded, never pushed: the station died
    ended = store.revoke_leases("st-a", "station PC died", "eng", batch.id)
    assert [e.state for e in ended] == ["revoked"] and ended[0].reason == "station PC died" and ended[0].by == "eng"
    assert store.batch(batch.id).allocated == 0  # all four given back
    taken = encode(store, batch.id, 50, station="st-b")  # another station takes the first given back
    assert taken.serial == offline[0].serial
    report = push(store, journal, lease.id)
    assert report.accepted == 2 and [c.serial for c in report.conflicts] == [offline[0].serial]
    assert "held here by tag" in report.conflicts[0].reason
    assert store.unit_by_serial(offline[1].serial).uid == uid(1)  # taken in: its serial was still free
    assert store.batch(batch.id).allocated == 3
    push(store, journal, lease.id)  # pushed again: the same conflict, recorded once
    assert len(store.lease_conflicts(batch.id)) == 1 and store.lease(lease.id).conflicts == 1
    assert store.lease_conflicts(lease_id=lease.id)[0].uid == uid(0)


def test_a_chip_holding_another_serial_here_is_refused(store, product, journal):
    batch = store.create_batch(product.id, 6)
    lease, _ = lease_to(store, journal, batch.id, 2)
    encode(store, batch.id, 7, station="st-b")  # this chip got a serial at another station
    encode(journal, batch.id, 7)  # and one from the lease, offline
    report = push(store, journal, lease.id)
    assert report.accepted == 0 and "holds serial" in report.conflicts[0].reason


def test_a_serial_given_back_and_leased_again_is_refused(store, product, journal):
    batch = store.create_batch(product.id, 2)
    lease, serials = lease_to(store, journal, batch.id, 2)
    unit = encode(journal, batch.id, 1)
    store.revoke_leases("st-a", "lost", "eng")
    store.take_lease(batch.id, "st-b", 2, 8)  # both serials leased to another station
    report = push(store, journal, lease.id)
    assert report.accepted == 0 and report.conflicts[0].serial == unit.serial
    assert "held by another lease" in report.conflicts[0].reason


def test_revoke_needs_an_active_lease_and_a_reason(store, product):
    batch = store.create_batch(product.id, 2)
    with pytest.raises(NotFoundError, match="st-a holds no active serial lease"):
        store.revoke_leases("st-a", "x", "eng")
    store.take_lease(batch.id, "st-a", 1, 8)
    with pytest.raises(Exception, match="needs a reason"):
        store.revoke_leases("st-a", " ", "eng")
    listed = store.leases(batch.id)
    assert [(lease.station, lease.size, lease.state) for lease in listed] == [("st-a", 1, "active")]
    assert store.leases(station="st-b") == []


def test_a_journal_stops_allocating_from_an_ended_lease(store, product, journal):
    batch = store.create_batch(product.id, 5)
    lease, _ = lease_to(store, journal, batch.id, 3)
    encode(journal, batch.id, 1)
    journal.mark_lease(lease.id, state=LeaseState.EXPIRED, reason="expired at then")
    with pytest.raises(StateError, match="is full"):
        encode(journal, batch.id, 2)
    assert journal.lease(lease.id).state == "expired"


def test_closing_over_a_lease_revokes_it_and_a_closed_batch_takes_no_new_unit(store, product, journal):
    """An engineer closes the batch with --allow-incomplete while a station holds a lease: the lease ends
    (revoked, "batch closed: ..."), what the station had pushed stays, a push repeated changes nothing,
    and a unit encoded offline and pushed after the close is refused and recorded, not added."""
    batch = store.create_batch(product.id, 6)
    lease, _ = lease_to(store, journal, batch.id, 4)
    before = encode(journal, batch.id, 1)
    assert push(store, journal, lease.id).accepted == 1
    closed = store.close_batch(batch.id, incomplete_reason="end of shift, station 3 offline", by="eng")
    assert closed.state == "closed"
    ended = store.lease(lease.id)
    assert (ended.state, ended.reason, ended.by) == ("revoked", "batch closed: end of shift, station 3 offline", "eng")
    late = encode(journal, batch.id, 2)  # the station never heard: it encoded on from its journal
    report = push(store, journal, lease.id)
    assert report.accepted == 1  # the unit it had pushed before, unchanged
    assert [c.serial for c in report.conflicts] == [late.serial]
    assert f"batch {batch.id} was closed" in report.conflicts[0].reason
    assert store.unit_by_serial(late.serial) is None and store.unit_by_serial(before.serial).state == "encoded"
