"""Units: a chip's serial allocated in order, its state changes, taps, label prints and step journal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tagsmith import ConfigError, NotFoundError, StateError

from ..records import Unit, UnitEvent, UnitState
from .api import ReplayError
from .batches import BatchQueries
from .common import check_uid, step_detail
from .journal import StepJournal


class UnitQueries(BatchQueries):
    def allocate_unit(self, batch_id: str, uid: bytes, station: str, *, after_reset: bool = False,
                      start_encoding: bool = False, overlap_sync: bool = False) -> Unit:
        """The unit for this chip: the batch's next serial in order, or the unit it already has.

        One transaction under the write lock, synced to disk before the chip's keys change. A UID of
        another batch, a voided UID, a closed batch or a full batch is a StateError. ``after_reset``
        allocates a new serial for a chip whose only units are voided (it was reset for rework).
        ``start_encoding`` journals a new unit as encoding in the same transaction (the station
        writes the chip next), saving a second commit per tag. ``overlap_sync`` returns before the
        commit is on disk: the caller must call :meth:`wait_synced` before it changes a key.
        """
        uid = check_uid(uid)
        with self._write(durable=True, overlap_sync=overlap_sync):
            self._lock_row("batches", batch_id)  # a chip placed at two stations at once gets one unit
            unit = self.unit_by_uid(uid)
            if unit is not None and not (after_reset and unit.state == UnitState.VOIDED):
                if unit.batch_id != batch_id:
                    raise StateError(f"tag {uid.hex().upper()} already belongs to batch {unit.batch_id} (serial {unit.serial})")
                if unit.state == UnitState.VOIDED:
                    raise StateError(f"tag {uid.hex().upper()} was voided ({unit.void_reason}); set it aside")
                return unit
            seq = self._claim_seq(batch_id)  # only from an open batch with serials left; never a leased one
            if seq is None:
                batch = self.batch(batch_id)  # NotFoundError for no such batch
                if not batch.is_open:
                    raise StateError(f"batch {batch_id} is closed")
                raise StateError(f"batch {batch_id} is full: all {batch.quantity} serials are allocated")
            serial = self._scalar("SELECT serial FROM serials WHERE batch_id = ? AND seq = ?", (batch_id, seq))
            if serial is None:
                raise StateError(f"batch {batch_id} has no serial #{seq} minted (run mint_serials)")
            now = self._touch_station(station)
            state, encoding_at = ("encoding", now) if start_encoding else ("allocated", None)
            row = self._one("INSERT INTO units (batch_id, serial, uid, state, station, allocated_at, encoding_at, "
                            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                            (batch_id, serial, uid, state, station, now, encoding_at, now))
            assert row is not None
            unit = Unit.from_row(row)
            events: list[tuple[str, dict[str, Any] | None]] = [("allocated", {"serial": serial, "uid": uid.hex().upper()})]
            if start_encoding:
                events.append(("encoding_started", None))
            self._events(unit.id, events, station, now)
            return unit

    def unit(self, unit_id: int) -> Unit:
        row = self._one("SELECT * FROM units WHERE id = ?", (unit_id,))
        if row is None:
            raise NotFoundError(f"no unit #{unit_id}")
        return Unit.from_row(row)

    def unit_by_uid(self, uid: bytes) -> Unit | None:
        """The chip's live unit, else its most recent voided one (a chip reset for rework)."""
        row = self._one("SELECT * FROM units WHERE uid = ? ORDER BY state = 'voided', id DESC LIMIT 1", (check_uid(uid),))
        return Unit.from_row(row) if row else None

    def unit_by_serial(self, serial: str) -> Unit | None:
        row = self._one("SELECT * FROM units WHERE serial = ?", (serial,))
        return Unit.from_row(row) if row else None

    def find_unit(self, ref: str) -> Unit:
        """A unit by its serial, else by its chip's UID in hex (NotFoundError naming what was tried)."""
        unit = self.unit_by_serial(ref)
        if unit is None and re.fullmatch(r"[0-9A-Fa-f]{14}", ref):
            unit = self.unit_by_uid(bytes.fromhex(ref))
        if unit is None:
            raise NotFoundError(f"no unit with serial or UID {ref!r}")
        return unit

    def units(self, batch_id: str, states: Iterable[str] | None = None) -> Iterator[Unit]:
        """Stream the batch's units in allocation order (a cursor, not a list)."""
        wanted = tuple(states or ())
        where = f" AND state IN ({', '.join('?' * len(wanted))})" if wanted else ""
        for row in self._rows(f"SELECT * FROM units WHERE batch_id = ?{where} ORDER BY id", (batch_id, *wanted)):
            yield Unit.from_row(row)

    def start_encoding(self, unit_id: int, station: str) -> Unit:
        """Journal that the station starts writing the chip (allocated -> encoding)."""
        return self._change(unit_id, station, ("allocated", "encoding"), "encoding", "encoding_started", None,
                            {"encoding_at": None}, encoding=True)

    def step_journal(self, unit_id: int, station: str) -> StepJournal:
        """A journal of one unit's personalisation steps, committed with the placement's outcome."""
        return StepJournal(self, unit_id, station)

    def _insert_steps(self, unit_id: int, steps: list[tuple[str, bool, str]], station: str, guarded: bool) -> None:
        """Insert journaled steps inside the caller's transaction.

        ``guarded``: the INSERT itself requires the unit to be encoding in an open batch (without
        re-reading it). Unguarded only inside a state change whose own guarded UPDATE, refused,
        rolls the steps back with it.
        """
        if station not in self._stations_touched:  # a station first seen here needs its row (foreign key)
            self._touch_station(station)
        rows = [(step_detail(step, found), station, at, unit_id) for step, found, at in steps]
        if not guarded:
            self._many("INSERT INTO unit_events (detail, station, at, unit_id, event) VALUES (?, ?, ?, ?, 'step')", rows)
            return
        inserted = self._many(
            "INSERT INTO unit_events (detail, station, at, unit_id, event) "
            "SELECT ?, ?, ?, u.id, 'step' FROM units u JOIN batches b ON b.id = u.batch_id "
            "WHERE u.id = ? AND u.state = 'encoding' AND b.state = 'open'", rows)  # the same rows: unit_id last
        if inserted != len(steps):
            raise self._refusal(unit_id, ("encoding",), f"step {steps[0][0]}")

    def mark_encoded(self, unit_id: int, key_versions: dict[int, int], read_counter: int, station: str,
                     journal: StepJournal | None = None) -> Unit:
        """The chip is personalised: record its key versions and SDM read counter.

        The ``journal``'s pending steps are committed in the same transaction, before the change.
        The commit's sync to disk overlaps the next tag's identification: the record survives a
        power cut by the time the next allocation commits, and that allocation's sync (which the
        first ChangeKey waits for) has only its own pages to write.
        """
        versions = {str(int(k)): int(v) for k, v in sorted(key_versions.items())}  # compact JSON below
        detail = {"key_versions": versions, "read_counter": read_counter}
        return self._change(unit_id, station, ("allocated", "encoding"), "encoded", "encoded", detail,
                            {"key_versions": json.dumps(versions, separators=(",", ":")), "read_counter": int(read_counter),
                             "encoded_at": None}, encoding=True, journal=journal, sync=True)

    def mark_verified(self, unit_id: int, read_counter: int, station: str) -> Unit:
        """Read back as a phone would and the SUN checked out; the floor becomes the higher of the two counters."""
        return self._change(unit_id, station, ("encoded", "verified"), "verified", "verified",
                            {"read_counter": read_counter}, {"verified_at": None},
                            raised={"verified_counter": int(read_counter)})

    def record_qa(self, unit_id: int, passed: bool, detail: str | None = None, station: str | None = None) -> Unit:
        """Record a QA inspection result (pass or fail) of an encoded unit."""
        status = "pass" if passed else "fail"
        return self._change(unit_id, station, ("encoded", "verified"), None, "qa", {"result": status, "detail": detail},
                            {"qa_status": status, "qa_at": None})

    def void_unit(self, unit_id: int, reason: str, station: str | None = None, *, by: str | None = None,
                  states: tuple[str, ...] = ("allocated", "encoding", "encoded", "verified")) -> Unit:
        """Take a unit out of the batch for good; its serial and UID stay burnt.

        ``states``: the states the caller may void from (an engineer voiding a lost chip narrows it).
        """
        if not reason or not reason.strip():
            raise ConfigError("a void needs a reason")
        detail = {"reason": reason, **({"by": by} if by else {})}
        return self._change(unit_id, station, states, "voided", "voided", detail,
                            {"voided_at": None, "void_reason": reason, **({"voided_by": by} if by else {})})

    def record_counter(self, unit_id: int, counter: int, *, source: str, station: str | None = None,
                       refuse_replay: bool = False) -> Unit:
        """Raise the unit's replay floor to a read counter seen in a verified SUN, and journal the tap (the unit is verified).

        Every counter the factory sees (station read-back, ``tag verify``, QA) goes through here, so
        the manifest's floor is the highest one. A counter at or below the floor changes nothing;
        with ``refuse_replay`` (a tap checked as a resolver would) it is a ReplayError. The
        comparison is the UPDATE's own condition: two processes cannot both accept one counter.
        """
        floor = f"{self.dialect.greatest}(COALESCE(read_counter, -1), COALESCE(verified_counter, -1))"
        with self._write():
            now = self._touch_station(station)
            row = self._one("UPDATE units SET verified_counter = ?, state = 'verified', verified_at = ?, updated_at = ? "
                            f"WHERE id = ? AND state IN ('encoded', 'verified') AND ? > {floor} RETURNING *",
                            (int(counter), now, now, unit_id, int(counter)))
            if row is not None:
                self._event(unit_id, "tap", {"read_counter": int(counter), "source": source}, station, now)
                return Unit.from_row(row)
        unit = self.unit(unit_id)
        if unit.state not in ("encoded", "verified"):
            raise StateError(f"unit {unit.serial} is {unit.state}; cannot record a read counter")
        if refuse_replay:
            raise ReplayError(f"replay: read counter {counter} of unit {unit.serial} is not above its floor "
                              f"{unit.last_counter} (a counter already seen)")
        return unit

    def record_label_print(self, unit_id: int, layout: str, fmt: str, station: str | None = None, *,
                           proof: bool = False) -> Unit:
        """Record that a label of this unit was printed, or only proofed (layout name, format such as pdf or zpl)."""
        with self._write():
            unit = self.unit(unit_id)
            now = self._touch_station(station)
            self._exec("INSERT INTO label_prints (unit_id, layout, format, station, at, proof) VALUES (?, ?, ?, ?, ?, ?)",
                       (unit_id, layout, fmt, station, now, int(proof)))
            self._event(unit_id, "label_proofed" if proof else "label_printed", {"layout": layout, "format": fmt},
                        station, now)
            return unit

    def label_prints(self, unit_id: int) -> list[dict[str, Any]]:
        """Every print and proof of this unit's label, oldest first (``proof`` True for a proof)."""
        return [{**row, "proof": bool(row["proof"])} for row in self._rows(
            "SELECT layout, format, station, at, proof FROM label_prints WHERE unit_id = ? ORDER BY id", (unit_id,))]

    def label_printed(self, unit_id: int) -> bool:
        """Whether a label of this unit was printed (proofs do not count)."""
        return self._scalar("SELECT 1 FROM label_prints WHERE unit_id = ? AND proof = 0 LIMIT 1", (unit_id,)) is not None

    def unit_events(self, unit_id: int) -> list[UnitEvent]:
        rows = self._rows("SELECT * FROM unit_events WHERE unit_id = ? ORDER BY id", (unit_id,))
        return [UnitEvent(r["unit_id"], r["event"], json.loads(r["detail"]) if r["detail"] else None,
                          r["station"], r["at"]) for r in rows]

    def _change(self, unit_id: int, station: str | None, allowed: tuple[str, ...], new_state: str | None,
                event: str, detail: dict[str, Any] | None, columns: dict[str, Any], encoding: bool = False,
                journal: StepJournal | None = None, sync: bool = False, raised: dict[str, int] | None = None) -> Unit:
        """One unit state change, its event and its columns in one transaction (None = now).

        ``raised``: counter columns that only go up (each keeps the higher of its value and the new one).

        The allowed states and the open batch are conditions of the UPDATE itself, which returns
        the changed row; only a refused change reads more, to say why. A ``journal`` of the same
        unit commits its pending steps first, in the same transaction. ``sync`` starts the
        commit's sync to disk alongside the caller's next work; the next durable commit waits for it.
        """
        journaled = 0
        with self._write(durable=sync, overlap_sync=True):
            if journal is not None:
                journaled = journal._insert_within(unit_id, guarded=False)  # the UPDATE below guards them
            now = self._touch_station(station)
            values = {k: (now if v is None else v) for k, v in columns.items()}
            values.update(updated_at=now, **({"state": new_state} if new_state else {}))
            if station:
                values["station"] = station
            assignments = ", ".join([f"{k} = ?" for k in values]
                                    + [f"{k} = {self.dialect.greatest}(COALESCE({k}, -1), ?)" for k in raised or {}])
            values.update(raised or {})
            open_batch = " AND batch_id IN (SELECT id FROM batches WHERE state = 'open')" if encoding else ""
            row = self._one(f"UPDATE units SET {assignments} WHERE id = ? AND state IN "
                            f"({', '.join('?' * len(allowed))}){open_batch} RETURNING *",
                            (*values.values(), unit_id, *allowed))
            if row is None:
                raise self._refusal(unit_id, allowed, event)
            unit = Unit.from_row(row)
            self._event(unit_id, event, detail, station, now)
        if journal is not None:
            journal._committed(journaled)
        return unit

    def _refusal(self, unit_id: int, allowed: tuple[str, ...], what: str) -> StateError:
        """Why a guarded change matched no row: the unit's state, or its closed batch (or no such unit)."""
        unit = self.unit(unit_id)
        if unit.state not in allowed:
            return StateError(f"unit {unit.serial} is {unit.state}; cannot record {what}")
        return StateError(f"batch {unit.batch_id} is closed; unit {unit.serial} cannot be encoded")
