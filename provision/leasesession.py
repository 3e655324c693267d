"""A leased station session: the tag loop on the station's journal, a sync worker beside it.

The tag loop (one per reader head) encodes against :class:`LeasedStore`, the station's journal
(leases.py) with three differences: a tag whose UID the journal does not know is looked up in the
line's database while it is reachable (another station's unit, or a chip refused there, is refused
here too); when the leased serials are used up the loop waits for the next block, reported as the
database being unreachable when it is (the station's usual "database unreachable: waiting"); and a
lease past its expiry is no longer allocated from. The worker, a thread with its own connections,
pushes the journal to the line's database, takes the next block when the lease runs low and ends
revoked leases, backing off while the database is away; the tag loop never waits for it otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from tagsmith import StateError, TagsmithError
from tagsmith.batches.leaserecords import LeaseConflict, LeaseState
from tagsmith.batches.records import AuthFailure, Unit
from tagsmith.batches.store import DatabaseUnreachable, Store, utc_now
from tagsmith.workspace import Workspace

from . import leases
from .factory_session import TagRefused
from .station import RETRY_FIRST, RETRY_MAX, Summary, store_batch_complete

SYNC_SECONDS = 0.2  # the worker's pace while the database answers
RECONNECT_MAX = 1.0  # the worker's longest wait between attempts to reach it (a refused connect costs nothing)
WAIT_SLICE = 1.0  # how long the tag loop waits at a time for the worker to lease the next block


@dataclass(frozen=True)
class LeaseEvent:
    """The station's lease, for the operator: offline (encoding from the lease), online, a refused push, a
    lease revoked under it, closed."""

    state: str  # "offline", "online", "conflict", "revoked" or "closed"
    reason: str
    serials_left: int | None = None
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"event": "lease", "state": self.state, "reason": self.reason, "serials_left": self.serials_left,
                **(self.detail or {})}


class LeaseSession:
    """One station's leases of one batch for one ``station run``: the journal, the worker, the lookups."""

    def __init__(self, workspace: Workspace, open_central: Callable[[], Store], batch_id: str, station: str, *,
                 size: int, hours: float) -> None:
        self.workspace, self.open_central, self.batch_id, self.station = workspace, open_central, batch_id, station
        self.size, self.hours = size, hours
        self._changed = threading.Condition()
        self.reachable, self.reason, self.exhausted, self.expired = True, "", False, ""
        self._conflicts: list[LeaseConflict] = []
        self._revoked: list[LeaseEvent] = []  # leases the line's database ended under this station
        self._told: tuple[bool, int, int] = (True, 0, 0)  # what the operator was last told: reachable, conflicts, revoked
        self._stop, self._wake = threading.Event(), threading.Event()
        self._worker: threading.Thread | None = None
        self._since: int | None = None  # the worker's last sync reached the journal's events up to this one
        self.closed: LeaseEvent | None = None
        self.next_expiry = ""  # the earliest expiry of the journal's active leases ("" for none)
        self.serials_left = 0  # at the start: the journal's free serials and those the batch may still lease
        self.first: list[LeaseEvent] = []  # what the start has to tell the operator
        self.complete_there: tuple[int, int] | None = None  # at the close: (done, quantity) of a complete batch

    # ---------------------------------------------------------------- start and stop
    def start(self) -> list[LeaseEvent]:
        """Sync what the journal holds, lease a first block if needed, start the worker (the database must answer)."""
        self.first = self.prepare()
        self._worker = threading.Thread(target=self._work, name="lease sync", daemon=True)
        self._worker.start()
        return self.first

    def prepare(self) -> list[LeaseEvent]:
        """The start without the worker: what the operator is told about leases this journal does not hold."""
        told: list[LeaseEvent] = []
        with self.open_central() as central, leases.open_journal(self.workspace, self.station, self.batch_id) as journal:
            report = leases.sync_journal(journal, central, self.batch_id)  # an unsynced journal goes first
            self._note(report.conflicts)
            for lease in leases.strays(journal, central, self.batch_id, self.station):
                told.append(LeaseEvent("conflict", f"lease #{lease.id} of station {self.station} is not in this "
                                       f"workspace's journal: revoke it (tagsmith station revoke-lease {self.station} "
                                       "--reason TEXT)"))
            leases.expire_due(journal, self.batch_id)
            try:
                leases.top_up(journal, central, self.batch_id, self.station, self.size, self.hours)
            except StateError:
                self.exhausted = True
                if not leases.free_serials(journal, self.batch_id) and not journal.leases(self.batch_id):
                    raise
            self._refresh_expiry(journal)
            batch = central.batch(self.batch_id)
            self.serials_left = leases.free_serials(journal, self.batch_id) + batch.quantity - batch.allocated
        return told

    def close(self) -> LeaseEvent:
        """Stop the worker; a final sync, then the unused serials go back (the lease stays while the database is away)."""
        if self.closed is not None:
            return self.closed
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join()
        try:
            with self.open_central() as central, \
                    leases.open_journal(self.workspace, self.station, self.batch_id) as journal:
                report = leases.sync_journal(journal, central, self.batch_id, give_back=True)
                self.complete_there = store_batch_complete(central, self.batch_id)
            self._note(report.conflicts)
            self.closed = LeaseEvent("closed", f"journal synced ({report.accepted} unit(s) in the last push, "
                                     f"{len(report.conflicts)} refused) and the unused serials returned",
                                     detail=report.to_dict())
        except DatabaseUnreachable as exc:
            self.closed = LeaseEvent("closed", f"{exc}: the lease stays active with this workspace's journal; run "
                                     "tagsmith station sync (or station run --lease) once the database is back",
                                     detail={"synced": False})
        return self.closed

    # ---------------------------------------------------------------- the worker
    def _work(self) -> None:
        """Push, expire, top up; back off while the database is away. Its own journal and database connections."""
        journal = leases.open_journal(self.workspace, self.station, self.batch_id)
        central: Store | None = None
        delay = SYNC_SECONDS
        try:
            while not self._stop.is_set():
                try:
                    if central is None:
                        central = self.open_central()
                    elif not self.reachable:
                        central.reconnect()
                    self._cycle(journal, central)
                    self._set(reachable=True, reason="")
                    delay = SYNC_SECONDS
                except DatabaseUnreachable as exc:
                    self._set(reachable=False, reason=str(exc))
                    delay = min(max(2 * delay, RETRY_FIRST), RECONNECT_MAX)
                except TagsmithError as exc:  # a batch closed meanwhile, a refused right: said, and tried again later
                    self._set(reason=str(exc))
                    delay = RETRY_MAX
                self._wake.wait(delay)
                self._wake.clear()
        finally:
            journal.close()
            if central is not None:
                central.close()

    def _cycle(self, journal: Store, central: Store) -> None:
        leases.expire_due(journal, self.batch_id)
        report = leases.sync_journal(journal, central, self.batch_id, since_event=self._since)
        self._since = report.newest  # only once the sync went through: a failed one is looked at again
        self._note(report.conflicts)
        self._note_revoked(journal, report.ended)
        try:
            leases.top_up(journal, central, self.batch_id, self.station, self.size, self.hours)
            self._set(exhausted=False)
        except StateError:
            leases.follow_close(journal, central, self.batch_id, self.station)
            self._set(exhausted=True)
        self._refresh_expiry(journal)

    def _refresh_expiry(self, journal: Store) -> None:
        self.next_expiry = min((lease.expires_at for lease in journal.leases(self.batch_id, active_only=True)),
                               default="")

    def _set(self, **state: Any) -> None:
        with self._changed:
            for name, value in state.items():
                setattr(self, name, value)
            self._changed.notify_all()

    def _note(self, conflicts: list[LeaseConflict]) -> None:
        if conflicts:
            with self._changed:
                self._conflicts += conflicts

    def _note_revoked(self, journal: Store, ended: dict[int, str]) -> None:
        """Leases an engineer revoked (or a batch close ended) while this station held them: said once each."""
        for lease_id, state in ended.items():
            if state == LeaseState.REVOKED:
                lease = journal.lease(lease_id)
                with self._changed:
                    self._revoked.append(LeaseEvent("revoked", f"lease #{lease_id} was revoked in the line's database "
                                                    f"({lease.reason}): its unused serials left this station"))

    # ---------------------------------------------------------------- what the tag loops ask
    def store(self) -> Store:
        """A store for one tag loop (one head): a new connection to the journal, leased-session aware."""
        return cast(Store, LeasedStore(leases.open_journal(self.workspace, self.station, self.batch_id), self))

    def await_serials(self, journal: Store) -> None:
        """Return once the journal has a free serial or no more can be leased; DatabaseUnreachable while it
        has none and the database is away (the station waits, as for any outage)."""
        while leases.free_serials(journal, self.batch_id) <= 0 and not self.exhausted:
            if not self.reachable:
                left = self.expired or "the leased serials are used up"
                raise DatabaseUnreachable(f"{self.reason}; {left}")
            self._wake.set()
            with self._changed:
                self._changed.wait(WAIT_SLICE)

    def expire(self, journal: Store) -> None:
        """No allocation from a lease past its expiry; the reason is kept for the operator."""
        if not self.next_expiry or utc_now() < self.next_expiry:
            return
        self.next_expiry = ""
        for lease in leases.expire_due(journal, self.batch_id):
            self.expired = f"lease #{lease.id} expired at {lease.expires_at}: no serial to encode from"

    def changes(self, journal: Store | None = None) -> list[LeaseEvent]:
        """What the operator has not been told yet: the database gone or back, pushes refused."""
        with self._changed:
            reachable, conflicts, revoked = self.reachable, list(self._conflicts), list(self._revoked)
        told, self._told = self._told, (reachable, len(conflicts), len(revoked))
        events = [LeaseEvent("conflict", c.reason, detail=c.to_dict()) for c in conflicts[told[1]:]] + revoked[told[2]:]
        if reachable != told[0]:
            left = leases.free_serials(journal, self.batch_id) if journal is not None else None
            events.insert(0, LeaseEvent("online", "database back: the journal is being pushed", left) if reachable else
                          LeaseEvent("offline", f"{self.reason}: encoding from the lease", left))
        return events


class LeasedStore:
    """The journal as a tag loop's store (see the module's docstring); everything else is the journal's own."""

    def __init__(self, journal: Store, session: LeaseSession) -> None:
        self.journal, self.session = journal, session
        self._central: Store | None = None  # this loop's own connection for lookups, opened on first use

    def __getattr__(self, name: str) -> Any:
        return getattr(self.journal, name)

    def __enter__(self) -> LeasedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            if self._central is not None:
                self._central.close()

    def _there(self, look: Callable[[Store], Any]) -> Any:
        """``look`` run on the line's database while it answers; None when it does not."""
        if not self.session.reachable:
            return None
        try:
            if self._central is None:
                self._central = self.session.open_central()
            return look(self._central)
        except DatabaseUnreachable:
            if self._central is not None:
                self._central.close()
            self._central = None
            return None

    def batch(self, batch_id: str) -> Any:
        """The journal's batch once a serial is free or none can come; DatabaseUnreachable while waiting offline.

        Read again after each wait: another head can take the last free serial between the wait and the
        read, and a chip refused as "batch full" then would be a chip refused with serials still to come."""
        self.session.expire(self.journal)
        while True:
            self.session.await_serials(self.journal)
            batch = self.journal.batch(batch_id)
            if batch.allocated < batch.quantity or self.session.exhausted:
                return batch

    def reconnect(self) -> None:
        """Back when a serial is free again (the next block leased) or none can come."""
        self.session.await_serials(self.journal)

    def allocate_unit(self, batch_id: str, uid: bytes, station: str, **options: Any) -> Unit:
        """The journal's next leased serial; when other heads took the last ones, wait for the next block
        (as often as they do) until the line's batch has no serial left to lease."""
        again = False  # a block can land between the refusal and the count: one more try then
        while True:
            try:
                return self.journal.allocate_unit(batch_id, uid, station, **options)
            except StateError:
                if leases.free_serials(self.journal, batch_id) > 0:
                    if again:
                        raise  # refused for another reason than serials (the batch closed, a voided chip)
                    again = True
                    continue
                if self.session.exhausted:
                    raise  # the line's batch has no serial left to lease
            again = False
            self.session.await_serials(self.journal)

    def unit_by_uid(self, uid: bytes) -> Unit | None:
        """The journal's unit; a chip it does not know but the line's database does is refused here."""
        unit = self.journal.unit_by_uid(uid)
        if unit is None:
            there = self._there(lambda central: central.unit_by_uid(uid))
            if there is not None:
                raise TagRefused(f"unit {there.serial} of batch {there.batch_id} ({there.state} at {there.station}) "
                                 "in the line's database, not in this station's lease journal: finish it at a "
                                 "station running without --lease", uid)
        return unit

    def auth_failure(self, uid: bytes) -> AuthFailure | None:
        """A refusal recorded here, or in the line's database while it answers."""
        found: AuthFailure | None = self.journal.auth_failure(uid)
        return found if found is not None else self._there(lambda central: central.auth_failure(uid))



class WithLeaseEvents(Generator[Any, None, None]):
    """A station loop's events with the lease's own between them; at the loop's end the lease is closed
    (final sync, unused serials returned) and said so before the summary. A Ctrl-C thrown in goes to the loop."""

    def __init__(self, events: Generator[Any, None, None], session: LeaseSession, journal: Store,
                 first: list[LeaseEvent]) -> None:
        self.events, self.session, self.journal = events, session, journal
        self.pending: list[Any] = list(first)

    def send(self, value: None) -> Any:
        if not self.pending:
            self._take(self.events.send(value))
        return self.pending.pop(0)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._take(self.events.throw(typ, val, tb))
        return self.pending.pop(0)

    def _take(self, event: Any) -> None:
        self.pending += self.session.changes(self.journal)
        if isinstance(event, Summary):
            self.pending.append(self.session.close())
            if event.complete is not None:  # this journal has nothing left: is the line's batch complete too?
                event.complete = self.session.complete_there
        self.pending.append(event)


def leased_events(events: Iterator[Any], session: LeaseSession, journal: Store, first: list[LeaseEvent]) -> Any:
    """See :class:`WithLeaseEvents` (``events`` is a station loop's generator)."""
    return WithLeaseEvents(cast(Generator[Any, None, None], events), session, journal, first)
