"""QA of a batch: a recorded sampling plan, sample units scanned chip and label together, a decision.

Each sample unit is checked the way a customer and a counterfeiter would meet it: the chip is
read as a phone reads it (unauthenticated NDEF read, SUN verified with the unit's diversified
keys) plus its originality signature, and the door label's QR URL (typed by a handheld scanner)
must name the same unit. The plan's decision is taken the moment it is certain: reject as soon
as defects reach Re, accept only once the whole sample is inspected with at most Ac defects.
Results and decisions are stored by the batch store; this module writes no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tagsmith import ChipError, ConfigError, StateError, VerificationError
from tagsmith.batches.db import BatchStore, utc_now
from tagsmith.batches.gs1 import DigitalLinkError, parse_digital_link
from tagsmith.batches.qarecords import QaDecisionRecord, QaPlanRecord, QaResultRecord
from tagsmith.batches.records import DONE
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.originality import Signer, verify_originality
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.encoders.ntag424.template import url_from_ndef_file
from tagsmith.keystore.base import KeyProvider

from .encode import EncodeContext, verify_unit_sun
from .qa_plan import as_sampling_plan, current_user, switching_state
from .sampling import Inspection


# ---------------------------------------------------------------- one unit
@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: not run (an earlier check made it impossible)
    detail: str
    key: str | None = None  # originality: whose key verified the signature (a Signer value)

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "passed": self.passed, "detail": self.detail}
        return data if self.key is None else {**data, "key": self.key}


_ORIGINALITY_DETAIL = {
    Signer.NXP: "NXP originality signature valid",
    Signer.SIMULATOR: "simulator test signature valid (a simulated chip, accepted on request)",
    Signer.NONE: "originality signature does not verify: counterfeit or not an NXP chip",
}

#: How reports name the key that verified an originality signature (a check's ``key``).
SIGNER_NAMES = {Signer.NXP.value: "NXP", Signer.SIMULATOR.value: "simulator test key"}

@dataclass(frozen=True)
class ChipReading:
    """What QA read off the chip: UID, signature verdict, the NDEF URL (None if unreadable)."""

    uid: bytes
    signer: Signer  # whose key verified the originality signature (NONE: none did)
    file_bytes: bytes | None
    url: str | None
    error: str | None = None

    @property
    def originality(self) -> bool:
        return self.signer is not Signer.NONE


def read_chip(connection: Connection, *, allow_simulator_signature: bool = False) -> ChipReading:
    """Identify the chip and read its NDEF as a phone does (this tap advances the SUN counter).

    Tag-removed and reader errors propagate (the inspector taps again); a chip that answers
    wrongly is a reading with an error, which fails the unit.
    """
    session = Ntag424Session(connection)
    session.select_application()
    uid = session.get_version().uid
    try:
        signer = verify_originality(uid, session.read_sig(), allow_simulator=allow_simulator_signature).signer
    except ChipError:
        signer = Signer.NONE
    try:
        file_bytes = session.read_ndef_unauthenticated()
        url = url_from_ndef_file(file_bytes)
    except (ChipError, ConfigError, VerificationError, ValueError) as exc:
        return ChipReading(uid, signer, None, None, f"NDEF unreadable: {exc}")
    return ChipReading(uid, signer, file_bytes, url)


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


def _dl(url: str | None, what: str) -> tuple[Any, str | None]:
    if not url:
        return None, f"no {what} URL"
    try:
        return parse_digital_link(url), None
    except DigitalLinkError as exc:
        return None, f"{what} URL is not a GS1 Digital Link: {exc}"


@dataclass(frozen=True)
class Tally:
    sample_size: int
    accept: int
    reject: int
    inspected: int
    defects: int

    @property
    def decision(self) -> str | None:
        """reject once defects reach Re; accept once the whole sample is in with at most Ac."""
        if self.defects >= self.reject:
            return "reject"
        if self.inspected >= self.sample_size and self.defects <= self.accept:
            return "accept"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"sample_size": self.sample_size, "accept": self.accept, "reject": self.reject,
                "inspected": self.inspected, "defects": self.defects, "decision": self.decision}


# ---------------------------------------------------------------- the session
@dataclass
class QaSession:
    """Scanning the sample of one batch's plan; resumes from the results already recorded."""

    store: BatchStore
    keys: KeyProvider
    batch_id: str
    station: str | None = None
    allow_simulator_signature: bool = False
    inspector: str | None = None  # who scans; None: the OS login

    def __post_init__(self) -> None:
        self.inspector = self.inspector or current_user()
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
        """All checks of one chip reading and one label line (the only side effect: a verified counter raises the unit's floor)."""
        checks: list[Check] = []
        add = lambda name, ok, detail: checks.append(Check(name, ok, detail))  # noqa: E731
        uid_hex = reading.uid.hex().upper()
        checks.append(Check("originality", reading.originality, _ORIGINALITY_DETAIL[reading.signer],
                            reading.signer.value if reading.originality else None))

        unit = self.store.unit_by_uid(reading.uid)
        if unit is None:
            add("unit", False, f"chip {uid_hex} is not a unit of this database (foreign chip)")
        elif unit.batch_id != self.batch_id:
            add("unit", False, f"chip {uid_hex} is unit {unit.serial} of batch {unit.batch_id}, not {self.batch_id}")
        elif unit.state not in DONE:
            add("unit", False, f"chip {uid_hex} is unit {unit.serial}, which is {unit.state}, not encoded")
        else:
            add("unit", True, f"chip {uid_hex} is unit {unit.serial}")
        known = checks[-1].passed and unit is not None

        chip_dl, chip_dl_error = _dl(reading.url, "chip")
        counter, sun_uid = None, None
        if reading.error or not known:
            add("sun", None, reading.error or "no keys for an unknown chip")
            add("uid", None, "SUN not verified")
        else:
            assert unit is not None and reading.url is not None
            rendered = self.context.render(unit.serial)
            try:
                sun = verify_unit_sun(reading.url, rendered, self.context.chip_keys(reading.uid, unit))
            except (VerificationError, ConfigError) as exc:
                add("sun", False, f"SUN URL malformed: {exc}")
            else:
                counter, sun_uid = sun.read_counter, sun.uid
                if sun.cmac_valid and counter is not None and sun_uid in (None, reading.uid):  # raise the replay floor
                    self.store.record_counter(unit.id, counter, source="qa", station=self.station)
                add("sun", sun.cmac_valid, "SUN MAC valid with the unit's keys" if sun.cmac_valid
                    else "SUN MAC does not verify with the unit's diversified keys")
            static_ok = reading.file_bytes is not None and rendered.matches_file(reading.file_bytes)
            names_unit = chip_dl is not None and chip_dl.serial == unit.serial and chip_dl.gtin == self.product.gtin
            if checks[-1].passed is not True:
                add("uid", None, "SUN not verified")
            elif sun_uid is not None and sun_uid != reading.uid:
                add("uid", False, f"SUN names UID {sun_uid.hex().upper()}, the chip is {uid_hex}")
            elif not (static_ok and names_unit):
                add("uid", False, f"the chip's URL is not unit {unit.serial}'s URL"
                    + (f" (it names serial {chip_dl.serial})" if chip_dl is not None else ""))
            else:
                add("uid", True, f"SUN and URL name unit {unit.serial}, UID {uid_hex}")

        if counter is None or checks[-1].passed is not True:
            add("counter", None, "no verified read counter")
        else:
            assert unit is not None
            previous = max(unit.last_counter, self.store.qa_last_counter(unit.id) or 0)
            add("counter", counter > previous, f"read counter {counter} > {previous}" if counter > previous
                else f"read counter {counter} not above {previous} recorded before: replayed or cloned chip data")

        label_dl, label_error = _dl(label_url, "label")
        if label_error:
            add("label", False, label_error)
        elif chip_dl is None:
            add("label", None, chip_dl_error or "no chip URL to compare")
        elif (label_dl.gtin, label_dl.serial) != (chip_dl.gtin, chip_dl.serial):
            add("label", False, f"label names GTIN {label_dl.gtin} serial {label_dl.serial}, the chip GTIN "
                f"{chip_dl.gtin} serial {chip_dl.serial}: cloned or swapped label")
        elif label_dl.lot is not None and chip_dl.lot is not None and label_dl.lot != chip_dl.lot:
            add("label", False, f"label lot {label_dl.lot} differs from the chip's lot {chip_dl.lot}")
        else:
            add("label", True, f"label and chip name serial {chip_dl.serial}")

        # which sample unit this scan inspects: the chip's unit, else the unit the label names
        candidates = [unit.serial if unit is not None and unit.batch_id == self.batch_id else None,
                      label_dl.serial if label_dl is not None else None]
        serial = next((s for s in candidates if s in self.sample), None)
        note = ""
        if serial is None:
            named = next((s for s in candidates if s), None)
            add("sample", False, f"{named or 'this unit'} is not in the sample of plan {self.plan.id}")
            serial = named
        else:
            add("sample", True, f"{serial} is in the sample")
            if serial in self.inspected:
                note = f"{serial} was already inspected; this scan does not count"
        counted = checks[-1].passed is True and not note
        target = unit if unit is not None and unit.serial == serial else self.store.unit_by_serial(serial) if serial else None
        return UnitInspection(serial, target.id if target else None, reading.uid, tuple(checks), reading.url,
                              label_url or None, counter if _passed(checks, "sun") else None, counted, note)

    def label_unit(self, label_url: str) -> tuple[str | None, str | None]:
        """The sample unit a label names by its content: (serial, None), or (serial or None, why it is a defect)."""
        label_dl, error = _dl(label_url, "label")
        if label_dl is None:
            return None, f"{error}: it matches no unit of batch {self.batch_id}"
        if label_dl.gtin != self.product.gtin:
            return None, (f"label names GTIN {label_dl.gtin}, not {self.product.gtin} of product {self.product.id}: "
                          f"it matches no unit of batch {self.batch_id}")
        unit = self.store.unit_by_serial(label_dl.serial)
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
            inspector=self.inspector)
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
                                  utc_now(), self.inspector)
        switching = None
        before = switching_state(self.store, self.plan.product_id)
        if not self.plan.resubmission and Inspection(before.inspection) is not Inspection.DISCONTINUED:
            switching = before.after_lot(as_sampling_plan(self.plan), tally.defects, tally.decision == "accept")
        self.store.record_qa_decision(record, switching.to_dict() if switching else None, expected_lots=before.lots)
        self.decided = record
        return record


def _passed(checks: list[Check], name: str) -> bool:
    return any(c.name == name and c.passed for c in checks)


# ---------------------------------------------------------------- simulated sample (demo, --sim)
def scan_simulated(session: QaSession, pool: Any, labels: Any) -> Any:
    """Scan simulated sample units from ``pool`` (a SimChipPool), in the order their labels come.

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
            chip = pool.load(session.store.unit_by_serial(serial).uid)
            chip.place()
            try:
                yield session.inspect(chip, label)
            finally:
                chip.remove()
                pool.save(chip)
