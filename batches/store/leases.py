"""Serial leases: a block of a batch's serials held by one station, pushed back unit by unit.

Taking a lease claims its serials as an allocation claims one (serials given back first, then the
counter), in one durable transaction; the serials stay held (counted in ``allocated``) until a unit
takes each or the lease ends. Returned by the station or revoked by an engineer, a lease gives the
serials without a unit back (``free_serials``), and they are claimed again before the counter.

A station pushes its units with their events: a unit new here is inserted, one known here moves
only forward (allocated, encoding, encoded, verified, voided), and each event carries its origin,
so a push repeated after a crash adds nothing. A serial another chip holds here, a chip holding
another serial here, or a serial a revoked lease gave back and another lease or unit took since,
is refused and recorded as a conflict, never merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tagsmith import ConfigError, NotFoundError, StateError

from ..leaserecords import Lease, LeaseConflict, LeaseState, LeaseSync
from ..records import Unit, UnitState
from .common import check_uid
from .units import UnitQueries

if TYPE_CHECKING:
    from .api import Store

#: the order a unit's state moves in; a push never moves a unit back
RANK = {UnitState.ALLOCATED: 0, UnitState.ENCODING: 1, UnitState.ENCODED: 2, UnitState.VERIFIED: 3,
        UnitState.VOIDED: 4}
#: a unit's columns a push carries (the database numbers its own ids)
UNIT_COLUMNS = ("batch_id", "serial", "uid", "state", "station", "key_versions", "read_counter", "verified_counter",
                "qa_status", "allocated_at", "encoding_at", "encoded_at", "verified_at", "voided_at", "void_reason",
                "qa_at", "updated_at", "voided_by")
_LEASES = ("SELECT l.*, (SELECT COUNT(*) FROM leased_serials ls JOIN serials s ON s.batch_id = ls.batch_id "
           "AND s.seq = ls.seq JOIN units u ON u.serial = s.serial WHERE ls.lease_id = l.id) AS synced, "
           "(SELECT COUNT(*) FROM leased_serials ls JOIN serials s ON s.batch_id = ls.batch_id AND s.seq = ls.seq "
           "WHERE ls.lease_id = l.id AND l.state = 'active' AND NOT EXISTS "
           "(SELECT 1 FROM units u WHERE u.serial = s.serial)) AS unused, "
           "(SELECT COUNT(*) FROM lease_conflicts c WHERE c.lease_id = l.id) AS conflicts FROM serial_leases l")


def expiry(now: str, hours: float) -> str:
    """``now`` (the store's ISO 8601 UTC stamp) plus ``hours``, in the same form."""
    start = datetime.strptime(now[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class LeaseQueries(UnitQueries):
    # ---------------------------------------------------------------- the line's database
    def take_lease(self, batch_id: str, station: str, count: int, hours: float) -> tuple[Lease, list[tuple[int, str]]]:
        """Lease up to ``count`` free serials of an open batch to ``station`` for ``hours``: the lease and its
        (seq, serial) pairs, in order. Durable before it returns: the station encodes from it offline."""
        if count < 1 or hours <= 0:
            raise ConfigError("a lease needs at least one serial and a time to live above zero")
        with self._write(durable=True):
            self._lock_row("batches", batch_id)
            batch = self.batch(batch_id)
            if not batch.is_open:
                raise StateError(f"batch {batch_id} is closed")
            seqs = self._claim_seqs(batch_id, count)
            if not seqs:
                raise StateError(f"batch {batch_id} has no serials left to lease")
            now = self._touch_station(station)
            lease_id = self._scalar("INSERT INTO serial_leases (batch_id, station, size, leased_at, expires_at, state) "
                                    "VALUES (?, ?, ?, ?, ?, 'active') RETURNING id",
                                    (batch_id, station, len(seqs), now, expiry(now, hours)))
            self._many("INSERT INTO leased_serials (lease_id, batch_id, seq) VALUES (?, ?, ?)",
                       [(lease_id, batch_id, seq) for seq in seqs])
        return self.lease(lease_id), self.lease_serials(lease_id)

    def lease_serials(self, lease_id: int) -> list[tuple[int, str]]:
        """(seq, serial) of every serial of the lease, in order."""
        return [(int(r[0]), r[1]) for r in self._exec(
            "SELECT s.seq, s.serial FROM leased_serials ls JOIN serials s ON s.batch_id = ls.batch_id AND s.seq = ls.seq "
            "WHERE ls.lease_id = ? ORDER BY s.seq", (lease_id,)).fetchall()]

    def lease(self, lease_id: int) -> Lease:
        row = self._one(f"{_LEASES} WHERE l.id = ?", (lease_id,))
        if row is None:
            raise NotFoundError(f"no serial lease #{lease_id}")
        return Lease.from_row(row)

    def leases(self, batch_id: str | None = None, station: str | None = None, active_only: bool = False) -> list[Lease]:
        """Leases, oldest first: of one batch, of one station, only the active ones."""
        where = [(clause, value) for clause, value in (("l.batch_id = ?", batch_id), ("l.station = ?", station))
                 if value is not None] + ([("l.state = ?", LeaseState.ACTIVE.value)] if active_only else [])
        sql = _LEASES + (" WHERE " + " AND ".join(c for c, _ in where) if where else "") + " ORDER BY l.id"
        return [Lease.from_row(row) for row in self._rows(sql, [v for _, v in where])]

    def return_lease(self, lease_id: int) -> Lease:
        """The station is done with the lease: its serials without a unit go back to the batch (idempotent)."""
        return self._end_lease(lease_id, LeaseState.RETURNED, None, None)

    def revoke_leases(self, station: str, reason: str, by: str, batch_id: str | None = None) -> list[Lease]:
        """End a dead station's active leases for an engineer: their serials without a unit here go back.

        Units the station encoded offline and pushes later are taken in while their serials are
        still free, and refused as conflicts once another station or lease has them.
        """
        if not reason or not reason.strip():
            raise ConfigError("revoking a lease needs a reason, for the record")
        active = self.leases(batch_id, station, active_only=True)
        if not active:
            raise NotFoundError(f"station {station} holds no active serial lease" + (f" in batch {batch_id}" if batch_id else ""))
        return [self._end_lease(lease.id, LeaseState.REVOKED, reason.strip(), by) for lease in active]

    def _end_lease(self, lease_id: int, state: LeaseState, reason: str | None, by: str | None) -> Lease:
        batch_id = self.lease(lease_id).batch_id
        with self._write():
            self._lock_row("batches", batch_id)
            if self._scalar("SELECT state FROM serial_leases WHERE id = ?", (lease_id,)) == LeaseState.ACTIVE:
                self._end_lease_rows(lease_id, batch_id, state.value, reason, by)
        return self.lease(lease_id)

    def lease_conflicts(self, batch_id: str | None = None, lease_id: int | None = None) -> list[LeaseConflict]:
        """Pushed units the database refused, oldest first."""
        where, params = ("lease_id = ?", (lease_id,)) if lease_id is not None else ("batch_id = ?", (batch_id,))
        return [LeaseConflict(r["lease_id"], r["batch_id"], r["station"], r["serial"], bytes(r["uid"]), r["reason"],
                              r["at"]) for r in self._rows(
            f"SELECT * FROM lease_conflicts WHERE {where} ORDER BY id", params)]

    def sync_lease(self, lease_id: int, station: str, units: Iterable[dict[str, Any]], *, used: int,
                   through_event: int, refusals: Iterable[tuple[bytes, int, str, str | None, str]] = ()) -> LeaseSync:
        """Take in what the station did with the lease, in one transaction (see the module's docstring).

        Each unit is a dict of its columns (UNIT_COLUMNS), ``events`` (the station's event id,
        event, detail, station, at) and ``prints`` (layout, format, station, at, proof).
        ``refusals`` are chips that refused an authentication there (uid, key_no, status, station, at).
        """
        batch_id = self.lease(lease_id).batch_id
        accepted, conflicts = 0, []
        with self._write(durable=True):
            self._lock_row("batches", batch_id)  # a revoke waits, or went first and is seen here
            lease = self.lease(lease_id)
            if lease.station != station:
                raise StateError(f"serial lease #{lease_id} belongs to station {lease.station}, not {station}")
            now = self._touch_station(station)
            batch = self.batch(lease.batch_id)
            closed_at = None if batch.is_open else batch.closed_at or "meanwhile"
            for unit in units:
                refused = self._take_unit(lease, unit, closed_at)
                if refused is None:
                    accepted += 1
                    continue
                conflict = LeaseConflict(lease.id, lease.batch_id, station, unit["serial"], bytes(unit["uid"]), refused, now)
                self._exec("INSERT INTO lease_conflicts (lease_id, batch_id, station, serial, uid, reason, at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (lease.id, lease.batch_id, station, conflict.serial, conflict.uid, refused, now))
                conflicts.append(conflict)
            self._many("INSERT INTO auth_failures (uid, key_no, status, station, at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT DO NOTHING", list(refusals))
            self._exec("UPDATE serial_leases SET used = ?, synced_event = ?, synced_at = ? WHERE id = ?",
                       (used, through_event, now, lease.id))
        return LeaseSync(self.lease(lease.id), accepted, tuple(conflicts))

    def _take_unit(self, lease: Lease, pushed: dict[str, Any], closed_at: str | None) -> str | None:
        """Insert or move forward one pushed unit and add its events and prints; why not, when refused.

        A closed batch takes no new unit and no unit further along (closing stops encoding, as for a
        station on line): a repeated push of what it already holds still passes."""
        serial, uid = pushed["serial"], check_uid(bytes(pushed["uid"]))
        seq = self._scalar("SELECT seq FROM serials WHERE batch_id = ? AND serial = ?", (lease.batch_id, serial))
        if seq is None or not self._scalar("SELECT 1 FROM leased_serials WHERE lease_id = ? AND seq = ?", (lease.id, seq)):
            return f"serial {serial} is not a serial of lease #{lease.id}"
        unit = self.unit_by_serial(serial)
        if unit is not None and unit.uid != uid:
            return f"serial {serial} is held here by tag {unit.uid.hex().upper()} ({unit.state} at {unit.station})"
        if closed_at is not None and (unit is None or RANK[UnitState(pushed["state"])] > RANK[unit.state]):
            return (f"batch {lease.batch_id} was closed ({closed_at}) before this unit's {pushed['state']} "
                    "reached the line's database: set the chip aside")
        if unit is None:
            holder = self.unit_by_uid(uid)
            if holder is not None and holder.state != UnitState.VOIDED:
                return f"tag {uid.hex().upper()} holds serial {holder.serial} here ({holder.state})"
            if not lease.is_active and not self._reclaim(lease, int(seq)):
                return (f"serial {serial} was given back when lease #{lease.id} was {lease.state} and is "
                        "held by another lease since")
            row = self._one(f"INSERT INTO units ({', '.join(UNIT_COLUMNS)}) VALUES ({', '.join('?' * len(UNIT_COLUMNS))}) "
                            "RETURNING *", [pushed[c] for c in UNIT_COLUMNS])
            assert row is not None
            unit = Unit.from_row(row)
        else:
            self._move_forward(unit, pushed)
        origin = f"lease:{lease.id}:"
        self._many("INSERT INTO unit_events (unit_id, event, detail, station, at, origin) VALUES (?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT DO NOTHING", [(unit.id, event, detail, by, at, f"{origin}{event_id}")
                                              for event_id, event, detail, by, at in pushed["events"]])
        self._many("INSERT INTO label_prints (unit_id, layout, format, station, at, proof) SELECT ?, ?, ?, ?, ?, ? "
                   "WHERE NOT EXISTS (SELECT 1 FROM label_prints WHERE unit_id = ? AND at = ? AND layout = ?)",
                   [(unit.id, layout, fmt, by, at, proof, unit.id, at, layout)
                    for layout, fmt, by, at, proof in pushed["prints"]])
        return None

    def _reclaim(self, lease: Lease, seq: int) -> bool:
        """A serial of a lease that ended, still free: claim it again for the unit that used it offline."""
        if not self._exec("DELETE FROM free_serials WHERE batch_id = ? AND seq = ?", (lease.batch_id, seq)).rowcount:
            return False
        self._exec("UPDATE batches SET allocated = allocated + 1 WHERE id = ?", (lease.batch_id,))
        return True

    def _move_forward(self, unit: Unit, pushed: dict[str, Any]) -> None:
        """The pushed state of a unit known here, when it is further along; counters only ever rise."""
        if RANK[UnitState(pushed["state"])] > RANK[unit.state]:
            columns = [c for c in UNIT_COLUMNS if c not in ("batch_id", "serial", "uid", "verified_counter", "qa_status",
                                                            "qa_at")]
            self._exec(f"UPDATE units SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                       [*(pushed[c] for c in columns), unit.id])
        if pushed["verified_counter"] is not None:
            self._exec(f"UPDATE units SET verified_counter = {self.dialect.greatest}(COALESCE(verified_counter, -1), ?) "
                       "WHERE id = ?", (pushed["verified_counter"], unit.id))

    # ---------------------------------------------------------------- a station's own journal of its leases
    def receive_lease(self, source: Store, lease: Lease, serials: list[tuple[int, str]]) -> None:
        """Journal a lease the line's database (``source``) gave: its product version and batch on first use,
        the lease, and its serials as this journal's own free ones (everything else counts as allocated)."""
        batch = source.batch(lease.batch_id)
        if self._scalar("SELECT 1 FROM batches WHERE id = ?", (batch.id,)) is None:
            self.add_product(source.product(batch.product_id, batch.product_sha256))
            with self._write():
                self._exec("INSERT INTO batches (id, product_id, product_sha256, lot, line, quantity, allocated, state, "
                           "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                           (batch.id, batch.product_id, batch.product_sha256, batch.lot, batch.line, batch.quantity,
                            batch.quantity, batch.created_at))
        with self._write(durable=True):
            self._touch_station(lease.station)
            self._exec("INSERT INTO serial_leases (id, batch_id, station, size, leased_at, expires_at, state) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'active')",
                       (lease.id, lease.batch_id, lease.station, lease.size, lease.leased_at, lease.expires_at))
            self._many("INSERT INTO serials (batch_id, seq, serial) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                       [(lease.batch_id, seq, serial) for seq, serial in serials])
            self._many("INSERT INTO leased_serials (lease_id, batch_id, seq) VALUES (?, ?, ?)",
                       [(lease.id, lease.batch_id, seq) for seq, _serial in serials])
            self._many("INSERT INTO free_serials (batch_id, seq) VALUES (?, ?)",
                       [(lease.batch_id, seq) for seq, _serial in serials])
            self._exec("UPDATE batches SET allocated = allocated - ? WHERE id = ?", (len(serials), lease.batch_id))

    def lease_push(self, lease_id: int, after_event: int, limit: int = 2000) -> tuple[list[dict[str, Any]], int]:
        """This journal's units of a lease with events after ``after_event`` (the next ``limit`` events), each
        with all its events and prints, and the event id the push reaches (the next push starts after it)."""
        of_lease = ("FROM unit_events e JOIN units u ON u.id = e.unit_id JOIN serials s ON s.serial = u.serial "
                    "JOIN leased_serials ls ON ls.batch_id = s.batch_id AND ls.seq = s.seq WHERE ls.lease_id = ? ")
        through = self._scalar(f"SELECT MAX(id) FROM (SELECT e.id {of_lease}AND e.id > ? ORDER BY e.id LIMIT ?) page",
                               (lease_id, after_event, limit))
        if through is None:
            return [], after_event
        changed = [int(r[0]) for r in self._exec(f"SELECT DISTINCT e.unit_id {of_lease}AND e.id > ? AND e.id <= ?",
                                                 (lease_id, after_event, through)).fetchall()]
        units = []
        for unit_id in sorted(changed):
            row = self._one(f"SELECT {', '.join(UNIT_COLUMNS)} FROM units WHERE id = ?", (unit_id,))
            assert row is not None
            events = [tuple(r) for r in self._exec("SELECT id, event, detail, station, at FROM unit_events "
                                                   "WHERE unit_id = ? ORDER BY id", (unit_id,)).fetchall()]
            prints = [tuple(r) for r in self._exec("SELECT layout, format, station, at, proof FROM label_prints "
                                                   "WHERE unit_id = ? ORDER BY id", (unit_id,)).fetchall()]
            units.append({**row, "events": events, "prints": prints})
        return units, int(through)

    def leases_to_push(self, event_id: int | None) -> tuple[list[int], int]:
        """Ids of this journal's leases a worker's sync looks at after ``event_id`` (its last sync's newest):
        every one not ended yet, and each ended one with a unit event since (None: every lease); and the
        newest event id now, where the next look starts (ids only grow: none at or below it can appear)."""
        newest = int(self._scalar("SELECT COALESCE(MAX(id), 0) FROM unit_events"))
        if event_id is None:
            return [int(r[0]) for r in self._exec("SELECT id FROM serial_leases ORDER BY id").fetchall()], newest
        ids = {int(r[0]) for r in self._exec(
            "SELECT id FROM serial_leases WHERE state IN ('active', 'expired') UNION "
            "SELECT ls.lease_id FROM unit_events e JOIN units u ON u.id = e.unit_id "
            "JOIN serials s ON s.serial = u.serial JOIN leased_serials ls ON ls.batch_id = s.batch_id AND ls.seq = s.seq "
            "WHERE e.id > ? AND e.id <= ?", (event_id, newest)).fetchall()}
        return sorted(ids), newest

    def lease_used(self, lease_id: int) -> int:
        """Units this journal holds on the lease's serials."""
        used: int = self._scalar("SELECT COUNT(*) FROM leased_serials ls JOIN serials s ON s.batch_id = ls.batch_id "
                                 "AND s.seq = ls.seq JOIN units u ON u.serial = s.serial WHERE ls.lease_id = ?",
                                 (lease_id,))
        return used

    def refusals_to_push(self) -> list[tuple[bytes, int, str, str | None, str]]:
        """Every standing refusal this journal recorded (pushed with each sync; the database keeps the first)."""
        return [(bytes(r[0]), r[1], r[2], r[3], r[4]) for r in self._exec(
            "SELECT uid, key_no, status, station, at FROM auth_failures WHERE cleared_at IS NULL").fetchall()]

    def mark_lease(self, lease_id: int, *, synced_event: int | None = None, state: LeaseState | None = None,
                   reason: str | None = None) -> None:
        """Journal a push's high-water mark, or the lease's end: an ended lease's free serials leave this journal."""
        with self._write():
            if synced_event is not None:
                self._exec("UPDATE serial_leases SET synced_event = ?, synced_at = ? WHERE id = ?",
                           (synced_event, self._now(), lease_id))
            if state is not None and state != LeaseState.ACTIVE:
                dropped = self._exec("DELETE FROM free_serials WHERE (batch_id, seq) IN (SELECT batch_id, seq "
                                     "FROM leased_serials WHERE lease_id = ?)", (lease_id,)).rowcount
                self._exec("UPDATE batches SET allocated = allocated + ? WHERE id = "
                           "(SELECT batch_id FROM serial_leases WHERE id = ?)", (dropped, lease_id))
                self._exec("UPDATE serial_leases SET state = ?, closed_at = ?, reason = COALESCE(?, reason) "
                           "WHERE id = ? AND state != ?", (state.value, self._now(), reason, lease_id, state.value))
