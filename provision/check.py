"""Check one unit against the database: a tag read as a phone would, or a tapped URL as the resolver would."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tagsmith import TagsmithError
from tagsmith.batches.db import BatchStore
from tagsmith.batches.gs1 import parse_digital_link
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.keystore.base import KeyProvider

from .encode import EncodeContext, TagRefused, _Tag, identify_tag, verify_as_phone, verify_unit_sun


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    reason: str
    uid: str | None = None
    serial: str | None = None
    batch: str | None = None
    read_counter: int | None = None
    url: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def check_connection(store: BatchStore, keys: KeyProvider, connection: Connection, *,
                     allow_simulator_signature: bool = False) -> CheckReport:
    """Identify the tag, then verify its SUN as a phone tap; records the counter seen when it checks out."""
    session = Ntag424Session(connection)
    try:
        uid = identify_tag(session, allow_simulator_signature=allow_simulator_signature)
    except TagRefused as exc:
        return CheckReport(False, str(exc))
    uid_hex = uid.hex().upper()
    unit = store.unit_by_uid(uid)
    if unit is None:
        return CheckReport(False, "this UID is not a unit in this database", uid_hex)
    if unit.state not in ("encoded", "verified"):
        return CheckReport(False, f"unit is {unit.state}, not encoded", uid_hex, unit.serial, unit.batch_id)
    ctx = EncodeContext.for_batch(store, keys, unit.batch_id, "check",
                                  allow_simulator_signature=allow_simulator_signature)
    tag = _Tag(session, uid, unit, ctx.chip_keys(uid, unit))
    try:
        url, counter = verify_as_phone(ctx, tag)
    except TagsmithError as exc:
        return CheckReport(False, str(exc), uid_hex, unit.serial, unit.batch_id)
    store.mark_verified(unit.id, counter, "check")
    return CheckReport(True, "SUN verifies with the unit's keys; counter advanced", uid_hex, unit.serial,
                       unit.batch_id, counter, url)


def check_url(store: BatchStore, keys: KeyProvider, url: str) -> CheckReport:
    """Verify a tapped SUN URL: which unit its path names, and that the chip's MAC and UID agree."""
    link = parse_digital_link(url)
    unit = store.unit_by_serial(link.serial or "")
    if unit is None:
        return CheckReport(False, f"serial {link.serial!r} is not a unit in this database", url=url)
    ctx = EncodeContext.for_batch(store, keys, unit.batch_id, "check")
    result = verify_unit_sun(url, ctx.render(unit.serial), ctx.chip_keys(unit.uid, unit))
    base = dict(uid=unit.uid.hex().upper(), serial=unit.serial, batch=unit.batch_id, url=url,
                read_counter=result.read_counter)
    if not result.cmac_valid:
        return CheckReport(False, "SUN MAC does not verify with this unit's keys", **base)
    if result.uid is not None and result.uid != unit.uid:
        return CheckReport(False, "the URL's PICC data names another chip (cloned URL?)", **base)
    last = unit.last_counter
    if result.read_counter is not None and result.read_counter <= last:
        return CheckReport(False, f"read counter {result.read_counter} is not above {last}: a replayed URL", **base)
    return CheckReport(True, "valid tap of this unit", **base)
