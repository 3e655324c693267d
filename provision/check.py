"""Check one unit against the database: a tag read as a phone would, or a tapped URL as the resolver would."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tagsmith import NotFoundError, StateError, TagsmithError, VerificationError
from tagsmith.batches.gs1 import DigitalLink, parse_digital_link
from tagsmith.batches.records import DONE
from tagsmith.batches.store import ReplayError, Store
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.encoders.ntag424.sun import decrypt_picc_data
from tagsmith.encoders.ntag424.template import RenderedTemplate, compile_template
from tagsmith.keystore.base import KeyProvider

from .catalog import sun_scheme
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
    check: str | None = None  # the check that failed: picc, unit, state, url, mac, replay

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_connection(store: Store, keys: KeyProvider, connection: Connection, *,
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
    if unit.state not in DONE:
        return CheckReport(False, f"unit is {unit.state}, not encoded", uid_hex, unit.serial, unit.batch_id)
    ctx = EncodeContext.for_batch(store, keys, unit.batch_id, "check", encoding=False,
                                  allow_simulator_signature=allow_simulator_signature)
    tag = _Tag(session, uid, unit, ctx.chip_keys(uid, unit))
    try:
        url, counter = verify_as_phone(ctx, tag)
    except TagsmithError as exc:
        return CheckReport(False, str(exc), uid_hex, unit.serial, unit.batch_id)
    store.mark_verified(unit.id, counter, "check")
    return CheckReport(True, "SUN verifies with the unit's keys; counter advanced", uid_hex, unit.serial,
                       unit.batch_id, counter, url)


def check_url(store: Store, keys: KeyProvider, url: str, station: str = "check") -> CheckReport:
    """Check a tapped SUN URL exactly as a resolver must (docs/resolver.md), then record its counter.

    In order: parse the Digital Link; decrypt the PICC data with the key set's shared meta-read
    key; look the UID up; require the path's GTIN, serial and lot to be that unit's and the whole
    URL outside the mirrors to be its template's; check the MAC with that UID's keys; require
    the counter above the unit's floor; record it (the new floor). The first failure is the
    report's ``check``; :func:`raise_for` turns it into the error the CLI exits with.
    """
    link = parse_digital_link(url)  # not a Digital Link: bad input (DigitalLinkError, exit 2)
    found = _decrypt_picc(store, keys, link, url)
    if isinstance(found, CheckReport):
        return found
    uid, counter = found
    uid_hex = uid.hex().upper()
    unit = store.unit_by_uid(uid)
    if unit is None:
        return CheckReport(False, f"the PICC data names chip {uid_hex}, which is not a unit in this database",
                           uid_hex, url=url, read_counter=counter, check="unit")
    base = CheckReport(False, "", uid_hex, unit.serial, unit.batch_id, counter, url)
    if unit.state not in DONE:
        return replace(base, reason=f"unit {unit.serial} is {unit.state}, not encoded", check="state")
    ctx = EncodeContext.for_batch(store, keys, unit.batch_id, station, encoding=False)
    rendered = ctx.render(unit.serial)
    wrong = _path_mismatch(link, ctx, unit.serial) or _static_mismatch(url, rendered)
    if wrong:
        return replace(base, reason=wrong, check="url")
    result = verify_unit_sun(url, rendered, ctx.chip_keys(unit.uid, unit), ctx.template.scheme)
    if not result.cmac_valid or result.uid != uid or result.read_counter != counter:
        return replace(base, reason=f"SUN MAC does not verify with unit {unit.serial}'s keys", check="mac")
    if counter is not None and counter <= unit.last_counter:
        return replace(base, reason=_replay(counter, unit.last_counter), check="replay")
    try:
        if counter is not None:
            store.record_counter(unit.id, counter, source="tag verify --url", station=station, refuse_replay=True)
    except ReplayError as exc:  # another check of the same tap won the race
        return replace(base, reason=str(exc), check="replay")
    return replace(base, ok=True, reason="valid tap of this unit; its counter is the unit's new floor")


def _replay(counter: int, floor: int) -> str:
    return f"replay: read counter {counter} is not above the unit's floor {floor} (a tap already seen)"


def _decrypt_picc(store: Store, keys: KeyProvider, link: DigitalLink, url: str) -> tuple[bytes, int | None] | CheckReport:
    """(UID, counter) from the PICC data, with the shared meta-read key of a product version with the link's GTIN."""
    tried = False
    for product in store.product_versions_with_gtin(link.gtin or ""):
        scheme = sun_scheme(product)
        rendered = compile_template(product.url_template, scheme).render(gtin=product.gtin,
                                                                         serial=link.serial or "0", lot=link.lot or "0")
        name = rendered.verifier_params().get("picc_param")
        values = [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k == name]
        if name is None or len(values) != 1:
            continue
        tried = True
        meta_slot = next(s.slot for s in product.keys.slots if s.role == "sdm-meta-read")
        meta_key = keys.meta_read_key(product.keys.key_set, product.keys.versions()[meta_slot])
        try:
            uid, counter = decrypt_picc_data(values[0], meta_key, scheme)
        except VerificationError:
            continue
        if uid is not None:
            return uid, counter
    why = ("its PICC data does not decrypt with the meta-read key of any product with GTIN " + str(link.gtin)
           if tried else f"no product with GTIN {link.gtin} here takes this URL's PICC data parameter")
    return CheckReport(False, f"not a tap of ours: {why}", url=url, check="picc")


def _path_mismatch(link: DigitalLink, ctx: EncodeContext, serial: str) -> str | None:
    """Why the path does not name this unit (GTIN, serial, lot), or None."""
    for what, got, want in (("GTIN", link.gtin, ctx.product.gtin), ("serial", link.serial, serial),
                            ("lot", link.lot, ctx.lot if link.lot is not None else None)):
        if got != want:
            return f"the URL's path names {what} {got}, the chip is unit {serial} ({what} {want}): a moved tap"
    return None


def _static_mismatch(url: str, rendered: RenderedTemplate) -> str | None:
    """Why the URL is not the unit's template outside the chip's mirrors (scheme, host, path, parameters), or None."""
    expected = rendered.url
    if len(url) != len(expected):
        return f"the URL is not the unit's URL (expected {_masked(rendered)})"
    start = len(rendered.ndef_file) - len(expected)  # file offset of URL index 0
    masked = list(url)
    for m in rendered.mirrors:
        at = m.offset - start
        value = url[at:at + m.length]
        if not all(c in "0123456789ABCDEFabcdef" for c in value):
            return f"the URL's {m.param or m.kind} value is not {m.length} hex digits"
        masked[at:at + m.length] = expected[at:at + m.length]
    if "".join(masked) != expected:
        return f"the URL is not the unit's URL (expected {_masked(rendered)})"
    return None


def _masked(rendered: RenderedTemplate) -> str:
    """The unit's URL with each mirror shown as dots: what a tap must look like."""
    url = list(rendered.url)
    start = len(rendered.ndef_file) - len(rendered.url)
    for m in rendered.mirrors:
        url[m.offset - start:m.offset - start + m.length] = "." * m.length
    return "".join(url)


_ERRORS = {"picc": VerificationError, "unit": NotFoundError, "state": StateError, "url": VerificationError,
           "mac": VerificationError, "replay": ReplayError}


def raise_for(report: CheckReport) -> None:
    """The error a failed check exits with: 8 unknown UID, 7 replay or unit state, 6 otherwise."""
    if not report.ok:
        error = _ERRORS.get(report.check or "", VerificationError)
        raise error(report.reason if report.check == "replay" else f"unit check failed: {report.reason}")
