"""QA of a batch: a recorded sampling plan, sample units scanned chip and label together, a decision.

Each sample unit is checked the way a customer and a counterfeiter would meet it: the chip is
read as a phone reads it (unauthenticated NDEF read, SUN verified with the unit's diversified
keys) plus its originality signature, and the door label's QR URL (typed by a handheld scanner)
must name the same unit. The plan's decision is taken the moment it is certain: reject as soon
as defects reach Re, accept only once the whole sample is inspected with at most Ac defects.
Results and decisions are stored by the batch store; this module writes no SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tagsmith import StateError
from tagsmith.batches.qarecords import QaDecision, QaDecisionRecord, QaPlanRecord, QaResultRecord
from tagsmith.batches.records import Unit
from tagsmith.batches.store import Store, utc_now
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.sun import SunResult
from tagsmith.keystore.base import KeyProvider

from .encode import EncodeContext
from .qa_checks import (
    Check,
    ChipReading,
    ExpectedChip,
    check_counter,
    check_label,
    check_originality,
    check_sample,
    check_sun,
    check_uid,
    check_unit,
    parse_link,
    read_chip,
)
from .qa_plan import as_sampling_plan, current_user, switching_state
from .sampling import Inspection

if TYPE_CHECKING:  # the simulator loads only for simulated scans
    from .simpool import SimChipPool


# ---------------------------------------------------------------- one unit
@dataclass(frozen=True)
class UnitInspection:
    """The checks of one scan; ``serial`` is the sample unit it counts for when ``counted``."""

    serial: str | None
    unit_id: int | None
    uid: bytes | None
    checks: tuple[Check, ...]
    chip_url: str | None
    label_url: str | None
    read_counter: int | None
    counted: bool
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]
        return "; ".join(failed) if failed else "all checks passed"

    def to_dict(self) -> dict[str, Any]:
        return {"event": "unit", "serial": self.serial, "uid": self.uid.hex().upper() if self.uid else None,
                "passed": self.passed, "counted": self.counted, "reason": self.reason, "note": self.note,
                "read_counter": self.read_counter, "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class Tally:
    sample_size: int
    accept: int
    reject: int
    inspected: int
    defects: int

    @property
    def decision(self) -> QaDecision | None:
        """reject once defects reach Re; accept once the whole sample is in with at most Ac."""
        if self.defects >= self.reject:
            return QaDecision.REJECT
        if self.inspected >= self.sample_size and self.defects <= self.accept:
            return QaDecision.ACCEPT
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"sample_size": self.sample_size, "accept": self.accept, "reject": self.reject,
                "inspected": self.inspected, "defects": self.defects, "decision": self.decision}


# ---------------------------------------------------------------- the session
@dataclass
class QaSession:
    """Scanning the sample of one batch's plan; resumes from the results already recorded."""

    store: Store
    keys: KeyProvider
    batch_id: str
    station: str | None = None
    allow_simulator_signature: bool = False
    inspector: str | None = None  # who scans; None: the OS login

    def __post_init__(self) -> None:
        self.scanned_by = self.inspector or current_user()
        self.store.batch(self.batch_id)  # an unknown batch is not found, not "without a plan"
        plan = self.store.qa_plan(self.batch_id)
        if plan is None:
            raise StateError(f"batch {self.batch_id} has no QA plan: run tagsmith qa plan --batch {self.batch_id}")
        self.plan: QaPlanRecord = plan
        self.context = EncodeContext.for_batch(self.store, self.keys, self.batch_id, self.station or "qa",
                                               allow_simulator_signature=self.allow_simulator_signature,
                                               encoding=False)
        self.product = self.context.product
        self.sample = set(plan.serials)
        self.results: list[QaResultRecord] = list(self.store.qa_results(plan.id))
        self.decided: QaDecisionRecord | None = self.store.qa_decision(self.batch_id)
        if self.decided is not None and self.decided.plan_id != plan.id:
            self.decided = None

    # -------- progress
    @property
    def inspected(self) -> set[str]:
        return {r.serial for r in self.results if r.counted and r.serial}

    @property
    def pending(self) -> list[str]:
        """Sample serials still to scan, in the order they were drawn."""
        done = self.inspected
        return [s for s in self.plan.serials if s not in done]

    @property
    def tally(self) -> Tally:
        counted = [r for r in self.results if r.counted]
        return Tally(self.plan.sample_size, self.plan.accept, self.plan.reject, len(counted),
                     sum(not r.passed for r in counted))

    @property
    def decision(self) -> str | None:
        return self.decided.decision if self.decided else None

    # -------- one scan
    def inspect(self, connection: Connection, label_text: str) -> UnitInspection:
        """Read the chip on ``connection``, check it with the label line, record and decide."""
        if self.decided is not None:
            raise StateError(f"batch {self.batch_id} was already decided: {self.decided.decision}")
        return self.inspect_reading(self.read(connection), label_text)

    def read(self, connection: Connection) -> ChipReading:
        """Read the chip alone (a reader station reads on the tap, then waits for the label scan)."""
        return read_chip(connection, allow_simulator_signature=self.allow_simulator_signature)

    def inspect_reading(self, reading: ChipReading, label_text: str) -> UnitInspection:
        """Check a chip reading with its label line, record the result and decide when certain."""
        if self.decided is not None:
            raise StateError(f"batch {self.batch_id} was already decided: {self.decided.decision}")
        inspection = self.check(reading, label_text.strip())
        self.record(inspection)
        return inspection

    def check(self, reading: ChipReading, label_url: str) -> UnitInspection:
        """Every check of one chip reading and one label line, in report order.

        The only side effect: a verified counter raises the unit's floor.
        """
        unit = self.store.unit_by_uid(reading.uid)
        unit_check = check_unit(unit, reading.uid, self.batch_id)
        expected = self._expected(reading.uid, unit) if unit is not None and unit_check.passed and not reading.error \
            else None
        sun_check, sun = check_sun(reading, expected)
        if sun is not None and expected is not None:
            self._raise_floor(expected.unit, reading.uid, sun)
        chip, label = parse_link(reading.url, "chip"), parse_link(label_url, "label")
        uid_check = check_uid(reading, sun, expected, chip.parsed)
        verified_counter = sun.read_counter if sun is not None and uid_check.passed else None
        in_batch = unit.serial if unit is not None and unit.batch_id == self.batch_id else None
        sample_check, serial, note = check_sample((in_batch, label.parsed.serial if label.parsed else None),
                                                  self.sample, self.inspected, self.plan.id)
        checks = (check_originality(reading), unit_check, sun_check, uid_check,
                  check_counter(verified_counter, expected.floor if expected is not None else 0),
                  check_label(label, chip), sample_check)
        target = unit if unit is not None and unit.serial == serial else self.store.unit_by_serial(serial) if serial else None
        return UnitInspection(serial, target.id if target else None, reading.uid, checks, reading.url, label_url or None,
                              sun.read_counter if sun is not None else None, sample_check.passed is True and not note,
                              note)

    def _expected(self, uid: bytes, unit: Unit) -> ExpectedChip:
        """What the chip of ``unit`` must show, and the counter floor recorded for it by stations and by QA."""
        floor = max(unit.last_counter, self.store.qa_last_counter(unit.id) or 0)
        return ExpectedChip(unit, self.context.render(unit.serial), self.context.chip_keys(uid, unit),
                            self.product.gtin, floor, self.context.template.scheme)

    def _raise_floor(self, unit: Unit, uid: bytes, sun: SunResult) -> None:
        """A verified SUN that names this chip (or no UID) raises the unit's replay floor to its counter."""
        if sun.read_counter is not None and sun.uid in (None, uid):
            self.store.record_counter(unit.id, sun.read_counter, source="qa", station=self.station)

    def label_unit(self, label_url: str) -> tuple[str | None, str | None]:
        """The sample unit a label names by its content: (serial, None), or (serial or None, why it is a defect)."""
        label = parse_link(label_url, "label")
        if label.parsed is None:
            return None, f"{label.error}: it matches no unit of batch {self.batch_id}"
        label_dl = label.parsed
        if label_dl.gtin != self.product.gtin:
            return None, (f"label names GTIN {label_dl.gtin}, not {self.product.gtin} of product {self.product.id}: "
                          f"it matches no unit of batch {self.batch_id}")
        unit = self.store.unit_by_serial(label_dl.serial) if label_dl.serial else None
        if unit is None or unit.batch_id != self.batch_id:
            return None, f"label names serial {label_dl.serial}, which is no unit of batch {self.batch_id}"
        if unit.serial not in self.sample:
            return unit.serial, (f"label names unit {unit.serial}, which is not in the sample of plan {self.plan.id}: "
                                 "a sample unit carries another unit's label (cloned or swapped label)")
        return unit.serial, None

    def record_label_only(self, label_url: str, serial: str | None, detail: str, *, counted: bool) -> UnitInspection:
        """Record a scan decided by its label alone: a counted defect, or a repeat that does not count."""
        if self.decided is not None:
            raise StateError(f"batch {self.batch_id} was already decided: {self.decided.decision}")
        check = Check("label", not counted, detail)
        inspection = UnitInspection(serial if not counted else None, None, None, (check,), None, label_url or None,
                                    None, counted, "" if counted else detail)
        self.record(inspection)
        return inspection

    def record(self, inspection: UnitInspection) -> None:
        result = self.store.record_qa_result(
            plan_id=self.plan.id, batch_id=self.batch_id, unit_id=inspection.unit_id, serial=inspection.serial,
            uid=inspection.uid, passed=inspection.passed, counted=inspection.counted, reason=inspection.reason,
            checks=[c.to_dict() for c in inspection.checks], chip_url=inspection.chip_url,
            label_url=inspection.label_url, read_counter=inspection.read_counter, station=self.station,
            inspector=self.scanned_by)
        self.results.append(result)
        if self.tally.decision is not None:
            self.decide()

    def decide(self) -> QaDecisionRecord:
        """Record the plan's decision; original inspections also move the product's switching state."""
        tally = self.tally
        if tally.decision is None:
            raise StateError(f"no decision yet: {tally.inspected} of {tally.sample_size} inspected, "
                             f"{tally.defects} defect(s)")
        record = QaDecisionRecord(self.plan.id, self.batch_id, tally.decision, tally.defects, tally.inspected,
                                  utc_now(), self.scanned_by)
        switching = None
        before = switching_state(self.store, self.plan.product_id)
        if not self.plan.resubmission and Inspection(before.inspection) is not Inspection.DISCONTINUED:
            switching = before.after_lot(as_sampling_plan(self.plan), tally.defects, tally.decision == QaDecision.ACCEPT)
        self.store.record_qa_decision(record, switching.to_dict() if switching else None, expected_lots=before.lots)
        self.decided = record
        return record


# ---------------------------------------------------------------- simulated sample (demo, --sim)
def scan_simulated(session: QaSession, pool: SimChipPool, labels: Iterable[str | None]) -> Iterator[UnitInspection]:
    """Scan simulated sample units from ``pool``, in the order their labels come.

    Without a physical unit in hand, the label line is what says which unit the inspector picked
    up: it is matched to a unit by its content (GTIN + serial), in any order, and that unit's chip
    is tapped. A label of a unit already inspected is a repeat (reported, not counted); a label
    naming a unit outside the sample, or no unit at all, is a defect of the sample unit carrying
    it. ``labels`` yields label lines (None or exhaustion stops early). Yields each
    UnitInspection; stops once the plan is decided or the sample is complete. Chips are saved
    after each tap so counters advance as real ones do.
    """
    for label in labels:
        if session.decision or not session.pending or label is None:
            return
        label = label.strip()
        if not label:  # an empty line (a second Enter) is no scan
            continue
        serial, defect = session.label_unit(label)
        if defect is not None:
            yield session.record_label_only(label, serial, defect, counted=True)
        elif serial in session.inspected:
            yield session.record_label_only(label, serial, f"label of {serial} scanned again: a repeat, not counted",
                                            counted=False)
        else:
            unit = session.store.unit_by_serial(serial) if serial else None
            assert unit is not None  # a label without a defect names a unit of the batch
            chip = pool.load(unit.uid)
            chip.place()
            try:
                yield session.inspect(chip, label)
            finally:
                chip.remove()
                pool.save(chip)
