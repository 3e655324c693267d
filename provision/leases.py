"""Serial leases at a station: its local journal, pushed to the line's database, topped up, returned.

A station that runs with ``--lease N`` encodes against a journal of its own, a SQLite store in its
workspace (``leases/<station>/<batch>.sqlite``) holding the batch's product version, the serials
leased to it and every unit, step and refusal, each committed there before the chip's first key
changes, as on any store. The functions here move that journal's facts to the line's database and
serials back: one push per lease, repeated harmlessly after a crash; the next block when the lease
runs low; the end of a lease (expired, returned at a normal close, revoked by an engineer).
The session that runs them beside the tag loop is in leasesession.py (docs/deployment.md, "Leases").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsmith import NotFoundError, StateError
from tagsmith.batches.leaserecords import Lease, LeaseConflict, LeaseState
from tagsmith.batches.store import Store, check_station_name, open_store, utc_now
from tagsmith.workspace import Workspace


def journal_path(workspace: Workspace, station: str, batch_id: str) -> Path:
    """Where a station keeps its lease journal of one batch, in its own workspace."""
    check_station_name(station)
    return workspace.leases / station / f"{batch_id}.sqlite"


def journals(workspace: Workspace, station: str | None = None, batch_id: str | None = None) -> list[tuple[str, str, Path]]:
    """(station, batch, path) of every lease journal in the workspace, of one station or batch if given."""
    root = workspace.leases
    found = sorted(root.glob("*/*.sqlite")) if root.is_dir() else []
    return [(path.parent.name, path.stem, path) for path in found
            if (station is None or path.parent.name == station) and (batch_id is None or path.stem == batch_id)]


def open_journal(workspace: Workspace, station: str, batch_id: str) -> Store:
    """The station's lease journal of ``batch_id``: a SQLite store of the workspace, made on first use."""
    return open_store(workspace, database=journal_path(workspace, station, batch_id))


@dataclass
class SyncReport:
    """What one sync did: units the database took in, conflicts it refused, leases that ended."""

    accepted: int = 0
    conflicts: list[LeaseConflict] = field(default_factory=list)
    ended: dict[int, str] = field(default_factory=dict)  # lease id -> the state the database gave it
    newest: int = 0  # the journal's newest event when the sync began (the next sync looks after it)

    def add(self, other: SyncReport) -> None:
        self.accepted += other.accepted
        self.conflicts += other.conflicts
        self.ended.update(other.ended)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "conflicts": [c.to_dict() for c in self.conflicts],
                "ended": {str(k): v for k, v in self.ended.items()}}


def push(journal: Store, central: Store, lease: Lease) -> SyncReport:
    """Push the journal's units of one lease changed since its last push; take in the lease's state there."""
    report, after = SyncReport(), lease.synced_event
    while True:
        units, through = journal.lease_push(lease.id, after)
        if not units:
            break
        done = central.sync_lease(lease.id, lease.station, units, used=journal.lease_used(lease.id),
                                  through_event=through, refusals=journal.refusals_to_push())
        journal.mark_lease(lease.id, synced_event=through)  # a crash before this only repeats the push
        report.accepted += done.accepted
        report.conflicts += done.conflicts
        after = through
    if lease.state not in (LeaseState.ACTIVE, LeaseState.EXPIRED):
        return report  # ended here too: nothing to learn there (the worker pushes every 0.2 s)
    there = central.lease(lease.id)
    if not there.is_active:
        journal.mark_lease(lease.id, state=there.state, reason=there.reason)  # revoked: its free serials go
        report.ended[lease.id] = there.state
    return report


def sync_journal(journal: Store, central: Store, batch_id: str, *, give_back: bool = False,
                 since_event: int | None = None) -> SyncReport:
    """Push every lease of the journal; an expired one (or, with ``give_back``, every active one) is
    returned once it is pushed, its unused serials going back to the batch.

    With ``since_event`` (the worker's ``report.newest`` of its last sync) an ended lease is looked at
    only when one of its units has an event after it: a long batch gathers hundreds of ended leases,
    and the worker syncs every 0.2 s."""
    report = SyncReport()
    ids, report.newest = journal.leases_to_push(since_event)
    for lease in (journal.lease(lease_id) for lease_id in ids):
        if lease.batch_id != batch_id:
            continue
        report.add(push(journal, central, lease))
        if lease.id in report.ended:
            continue
        if lease.state == LeaseState.EXPIRED or (give_back and lease.state == LeaseState.ACTIVE):
            central.return_lease(lease.id)
            journal.mark_lease(lease.id, state=LeaseState.RETURNED)
            report.ended[lease.id] = LeaseState.RETURNED
    return report


def free_serials(journal: Store, batch_id: str) -> int:
    """Serials the journal may still allocate (its leases' unused ones; none before its first lease)."""
    try:
        batch = journal.batch(batch_id)
    except NotFoundError:
        return 0
    return batch.quantity - batch.allocated


def top_up(journal: Store, central: Store, batch_id: str, station: str, size: int, hours: float) -> Lease | None:
    """Lease the next block when a quarter of one or less is left; the new lease, or None (enough left).

    StateError when the batch has no serial left to lease (or is closed)."""
    if free_serials(journal, batch_id) > size // 4:
        return None
    lease, serials = central.take_lease(batch_id, station, size, hours)
    journal.receive_lease(central, lease, serials)
    return lease


def follow_close(journal: Store, central: Store, batch_id: str, station: str) -> None:
    """The batch was closed in the line's database: close it in the journal too, so the station refuses a
    new chip as "closed" and not as "full" (what the journal held was pushed or refused already)."""
    there = central.batch(batch_id)
    if not there.is_open and free_serials(journal, batch_id) <= 0 and journal.batch(batch_id).is_open:
        journal.close_batch(batch_id, incomplete_reason=f"closed in the line's database at {there.closed_at}",
                            by=station)


def expire_due(journal: Store, batch_id: str, now: str | None = None) -> list[Lease]:
    """Stop allocating from the journal's leases past their expiry (their free serials leave it)."""
    now = now or utc_now()
    due = [lease for lease in journal.leases(batch_id, active_only=True) if lease.expires_at <= now]
    for lease in due:
        journal.mark_lease(lease.id, state=LeaseState.EXPIRED, reason=f"expired at {lease.expires_at}")
    return due


def strays(journal: Store, central: Store, batch_id: str, station: str) -> list[Lease]:
    """The station's active leases in the line's database that this journal does not hold (a journal
    lost, or a crash between taking a lease and journaling it): an engineer revokes them."""
    mine = {lease.id for lease in journal.leases(batch_id)}
    return [lease for lease in central.leases(batch_id, station, active_only=True) if lease.id not in mine]


def sync_workspace(workspace: Workspace, central: Store, *, station: str | None = None, batch_id: str | None = None,
                   give_back: bool = False) -> list[dict[str, Any]]:
    """``station sync``: push every lease journal of the workspace (after a crash, or once the database is
    back); with ``give_back`` also return its active leases. One report per journal."""
    found = journals(workspace, station, batch_id)
    if not found:
        raise StateError(f"no lease journal in {workspace.leases}"
                         + (f" for station {station}" if station else "") + (f" and batch {batch_id}" if batch_id else ""))
    reports = []
    for name, batch, path in found:
        with open_store(workspace, database=path) as journal:
            report = sync_journal(journal, central, batch, give_back=give_back)
            leases = [central.lease(lease.id).to_dict() for lease in journal.leases(batch)]
        reports.append({"station": name, "batch": batch, **report.to_dict(), "leases": leases})
    return reports
