"""The checks of one QA scan, each a function of exactly what it needs.

A chip is read as a phone reads it (:func:`read_chip`); the checks then judge that reading, the
unit the database holds for its UID, and the label line. A check whose input is missing because
an earlier check failed (no known unit: no keys; no verified SUN: no counter) is not run: its
``passed`` is None and its detail says why. Nothing here touches the batch store.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any

from tagsmith import ChipError, ConfigError, VerificationError
from tagsmith.batches.gs1 import DigitalLink, DigitalLinkError, parse_digital_link
from tagsmith.batches.records import DONE, Unit
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.originality import Signer, verify_originality
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.encoders.ntag424.sun import SunResult
from tagsmith.encoders.ntag424.sunscheme import SunScheme
from tagsmith.encoders.ntag424.template import RenderedTemplate, url_from_ndef_file
from tagsmith.keystore.model import ChipKeys

from .encode import verify_unit_sun


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
class Link:
    """A URL (the chip's or the label's) as a GS1 Digital Link, or why it is not one (``error``)."""

    parsed: DigitalLink | None
    error: str = ""


def parse_link(url: str | None, what: str) -> Link:
    if not url:
        return Link(None, f"no {what} URL")
    try:
        return Link(parse_digital_link(url))
    except DigitalLinkError as exc:
        return Link(None, f"{what} URL is not a GS1 Digital Link: {exc}")


@dataclass(frozen=True)
class ExpectedChip:
    """What the chip of a known unit must show: its NDEF, its keys, and the floor its counter must pass."""

    unit: Unit
    rendered: RenderedTemplate
    keys: ChipKeys
    gtin: str
    floor: int  # the highest read counter recorded for the unit, by stations and by QA
    scheme: SunScheme  # the SUN cryptography of the unit's secure messaging (AES or LRP)


def check_originality(reading: ChipReading) -> Check:
    return Check("originality", reading.originality, _ORIGINALITY_DETAIL[reading.signer],
                 reading.signer.value if reading.originality else None)


def check_unit(unit: Unit | None, uid: bytes, batch_id: str) -> Check:
    """The chip is an encoded unit of the batch under inspection (``unit``: the database's record for its UID)."""
    uid_hex = uid.hex().upper()
    if unit is None:
        return Check("unit", False, f"chip {uid_hex} is not a unit of this database (foreign chip)")
    if unit.batch_id != batch_id:
        return Check("unit", False, f"chip {uid_hex} is unit {unit.serial} of batch {unit.batch_id}, not {batch_id}")
    if unit.state not in DONE:
        return Check("unit", False, f"chip {uid_hex} is unit {unit.serial}, which is {unit.state}, not encoded")
    return Check("unit", True, f"chip {uid_hex} is unit {unit.serial}")


def check_sun(reading: ChipReading, expected: ExpectedChip | None) -> tuple[Check, SunResult | None]:
    """The SUN MAC verifies with the unit's keys; the SUN too when it does. Not run without the NDEF or the unit."""
    if reading.error or expected is None:
        return Check("sun", None, reading.error or "no keys for an unknown chip"), None
    assert reading.url is not None  # a reading without an error has its URL
    try:
        sun = verify_unit_sun(reading.url, expected.rendered, expected.keys, expected.scheme)
    except (VerificationError, ConfigError) as exc:
        return Check("sun", False, f"SUN URL malformed: {exc}"), None
    if not sun.cmac_valid:
        return Check("sun", False, "SUN MAC does not verify with the unit's diversified keys"), None
    return Check("sun", True, "SUN MAC valid with the unit's keys"), sun


def check_uid(reading: ChipReading, sun: SunResult | None, expected: ExpectedChip | None,
              chip_link: DigitalLink | None) -> Check:
    """The verified SUN names this chip, and the chip's URL is its unit's URL. Not run without a verified SUN."""
    if sun is None or expected is None:
        return Check("uid", None, "SUN not verified")
    uid_hex, serial = reading.uid.hex().upper(), expected.unit.serial
    if sun.uid is not None and sun.uid != reading.uid:
        return Check("uid", False, f"SUN names UID {sun.uid.hex().upper()}, the chip is {uid_hex}")
    static_ok = reading.file_bytes is not None and expected.rendered.matches_file(reading.file_bytes)
    names_unit = chip_link is not None and chip_link.serial == serial and chip_link.gtin == expected.gtin
    if not (static_ok and names_unit):
        return Check("uid", False, f"the chip's URL is not unit {serial}'s URL"
                     + (f" (it names serial {chip_link.serial})" if chip_link is not None else ""))
    return Check("uid", True, f"SUN and URL name unit {serial}, UID {uid_hex}")


def check_counter(counter: int | None, floor: int) -> Check:
    """The read counter of a SUN that names this chip is above ``floor``. Not run without such a counter."""
    if counter is None:
        return Check("counter", None, "no verified read counter")
    if counter > floor:
        return Check("counter", True, f"read counter {counter} > {floor}")
    return Check("counter", False,
                 f"read counter {counter} not above {floor} recorded before: replayed or cloned chip data")


def check_label(label: Link, chip: Link) -> Check:
    """The label names the chip's unit (GTIN, serial, and lot when both carry one). Not run without a chip URL."""
    if label.parsed is None:
        return Check("label", False, label.error)
    if chip.parsed is None:
        return Check("label", None, chip.error)
    named, read = label.parsed, chip.parsed
    if (named.gtin, named.serial) != (read.gtin, read.serial):
        return Check("label", False, f"label names GTIN {named.gtin} serial {named.serial}, the chip GTIN "
                     f"{read.gtin} serial {read.serial}: cloned or swapped label")
    if named.lot is not None and read.lot is not None and named.lot != read.lot:
        return Check("label", False, f"label lot {named.lot} differs from the chip's lot {read.lot}")
    return Check("label", True, f"label and chip name serial {read.serial}")


def check_sample(candidates: Sequence[str | None], sample: Set[str], inspected: Set[str],
                 plan_id: str) -> tuple[Check, str | None, str]:
    """Which sample unit the scan inspects: the first of ``candidates`` in the sample (the chip's unit,
    else the label's). Returns the check, that serial (else the first one named), and a note when that
    unit was already inspected (the scan then does not count)."""
    serial = next((s for s in candidates if s in sample), None)
    if serial is None:
        named = next((s for s in candidates if s), None)
        return Check("sample", False, f"{named or 'this unit'} is not in the sample of plan {plan_id}"), named, ""
    note = f"{serial} was already inspected; this scan does not count" if serial in inspected else ""
    return Check("sample", True, f"{serial} is in the sample"), serial, note
