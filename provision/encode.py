"""One tag on the reader: identify, decide, personalise or resume, verify as a phone, record.

Round trips for a factory-fresh tag (each 5-15 ms of radio time on a real reader):
select 1, GetVersion 3, Read_Sig 1, AuthenticateEV2First 2, WriteData 1, ChangeFileSettings 1,
WriteData of the CC's NDEF write access byte 1, ChangeKey x5, ReadData (the SUN read) 1 = 16.
An LRP product's fresh tag adds the switch inside the factory-key AES session, SetConfiguration
option 05 1, AuthenticateLRPFirst 2, and a second NDEF WriteData 1 (48 characters of PICC data make
the file 16 bytes longer than one tear-safe frame holds) = 20 (see :mod:`.factory_session`).
A UID the database has never seen needs no GetKeyVersion probe: the one factory-key
authentication says fresh or foreign, and a chip that refuses it is recorded so that no station
ever tries it again. Slots 1-4 are proven changed by
the chip's MACed ChangeKey responses, slots 1-2 again by the SUN verifying with our keys, key 0
by its ChangeKey status. Every step the chip confirms is journaled, committed with the
placement's outcome in one transaction (see :class:`~tagsmith.batches.store.StepJournal`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tagsmith import ChipError, ConfigError, StateError, VerificationError
from tagsmith.batches.product import Product
from tagsmith.batches.records import BatchState, Unit, UnitState
from tagsmith.batches.store import StepJournal, Store, check_station_name
from tagsmith.encoders.connection import Connection, TagRemovedError
from tagsmith.encoders.ntag424.channel import SecureMessaging
from tagsmith.encoders.ntag424.files import (
    CC_FILE_NO,
    CC_NDEF_WRITE_ACCESS_OFFSET,
    NDEF_FILE_NO,
    AccessRights,
    cc_ndef_write_access,
)
from tagsmith.encoders.ntag424.originality import verify_originality
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.encoders.ntag424.sun import SunResult, SunVerifier
from tagsmith.encoders.ntag424.sunscheme import SunScheme
from tagsmith.encoders.ntag424.template import RenderedTemplate, SunTemplate
from tagsmith.keystore.base import KeyProvider
from tagsmith.keystore.model import ChipKeys, check_same_system_id

from .catalog import check_fits_chip
from .counting import CountingConnection
from .factory_session import TagRefused, authenticate_once, lrp_switch_journaled, switch_to_lrp
from .plan import FACTORY_VERSION, Decision, KnownUnit, Verdict, decide
from .results import TagResult

FACTORY_KEY = bytes(16)


@dataclass(frozen=True)
class Outcome:
    """What happened to one tag, for the operator, the JSON event stream and the benchmarks."""

    result: TagResult
    uid: str | None
    serial: str | None
    reason: str
    apdus: int
    commands: tuple[str, ...]
    seconds: float
    url: str | None = None
    read_counter: int | None = None
    io_seconds: float = 0.0  # of ``seconds``, the time spent waiting on reader and chip

    @property
    def personalised(self) -> bool:
        """This placement finished writing the chip (fresh or resumed): a unit to label."""
        return self.result in (TagResult.ENCODED, TagResult.RESUMED)

    def to_dict(self) -> dict[str, Any]:
        return {"event": "tag", "result": self.result, "uid": self.uid, "serial": self.serial,
                "reason": self.reason, "apdus": self.apdus, "ms": round(self.seconds * 1000, 2),
                "io_ms": round(self.io_seconds * 1000, 2), "read_counter": self.read_counter, "url": self.url}


@dataclass
class EncodeContext:
    """Everything the per-tag procedure needs, resolved once per station run."""

    store: Store
    keys: KeyProvider
    product: Product
    batch_id: str
    station: str
    lot: str | None = None
    allow_simulator_signature: bool = False
    template: SunTemplate = field(init=False)

    @classmethod
    def for_batch(cls, store: Store, keys: KeyProvider, batch_id: str, station: str, *,
                  allow_simulator_signature: bool = False, encoding: bool = True) -> EncodeContext:
        """The context for one batch: the exact product version and lot it was created with.

        ``encoding`` False is for reading units back (tag verify, QA): closing a batch stops
        allocation and encoding only, so a closed batch is refused only to a station.
        """
        batch = store.batch(batch_id)
        if encoding and batch.state != BatchState.OPEN:
            raise StateError(f"batch {batch.id} is {batch.state}: no station may encode for it")
        return cls(store=store, keys=keys, product=store.batch_product(batch_id), batch_id=batch.id,
                   station=station, lot=batch.lot, allow_simulator_signature=allow_simulator_signature)

    def __post_init__(self) -> None:
        check_station_name(self.station)  # before the first tag, not when its first event is recorded
        # before any tag: a batch recorded before product add / batch create made this check
        self.template = check_fits_chip(self.product, self.lot)
        self.versions = self.product.keys.versions()
        self._check_key_policy()

    def _check_key_policy(self) -> None:
        """The product file and the keystore must agree on the SDM slots, and the versions must exist."""
        key_set = self.product.keys.key_set
        # deriving for a dummy UID proves every pinned version exists (NotFoundError) and gives the policy
        chip = self.keys.chip_keys(key_set, bytes(7), self.versions)
        policy = chip.policy
        if chip.system_id is not None:  # the manifest names the product's system id: the chips must hold it
            check_same_system_id(self.product.id, self.product.keys.system_id, key_set, chip.system_id)
        roles = {s.slot: s.role for s in self.product.keys.slots}
        for slot, role in ((policy.meta_read_slot, "sdm-meta-read"), (policy.file_read_slot, "sdm-file-read")):
            if roles.get(slot) != role:
                raise ConfigError(f"product {self.product.id}: key set {key_set} uses slot {slot} as {role}, "
                                  f"the product file says {roles.get(slot)!r}")

    def render(self, serial: str) -> RenderedTemplate:
        return self.template.render(gtin=self.product.gtin, serial=serial, lot=self.lot)

    def chip_keys(self, uid: bytes, unit: Unit) -> ChipKeys:
        """The keys the unit's chip holds: the versions it was encoded with, else the product's."""
        return self.keys.chip_keys(self.product.keys.key_set, uid, unit.key_versions or self.versions)


@dataclass
class _Tag:
    """Facts gathered about the tag in the field (filled step by step)."""

    session: Ntag424Session
    uid: bytes = b""
    unit: Unit | None = None
    keys: ChipKeys | None = None
    rendered: RenderedTemplate | None = None  # the unit's NDEF, rendered once per tag
    journal: StepJournal | None = None  # steps the chip confirmed, committed with the outcome

    def render(self, ctx: EncodeContext) -> RenderedTemplate:
        assert self.unit is not None
        if self.rendered is None:
            self.rendered = ctx.render(self.unit.serial)
        return self.rendered


def identify_tag(session: Ntag424Session, *, allow_simulator_signature: bool = False) -> bytes:
    """Select, GetVersion (NTAG 424 only), refuse Random ID, check the originality signature; the UID."""
    session.select_application()
    uid = session.get_version().uid
    if not any(uid):
        raise TagRefused("tag hides its UID (Random ID is on): not provisionable here")
    signature = session.read_sig()
    if not verify_originality(uid, signature, allow_simulator=allow_simulator_signature).valid:
        if not allow_simulator_signature and verify_originality(uid, signature, allow_simulator=True).valid:
            raise TagRefused("originality signature is tagsmith's simulator test key: a simulated chip "
                             "(accept it with --allow-simulator-signature)", uid)
        raise TagRefused("originality signature does not verify: counterfeit or not an NXP chip", uid)
    return uid


def identify(ctx: EncodeContext, tag: _Tag) -> Decision:
    """Select, GetVersion, Read_Sig and the database; GetKeyVersion(0) only for a UID we know."""
    try:
        tag.uid = identify_tag(tag.session, allow_simulator_signature=ctx.allow_simulator_signature)
    except TagRefused as exc:
        tag.uid = exc.uid  # the refused chip's line names it
        raise
    failure = ctx.store.auth_failure(tag.uid)
    if failure is not None:
        return Decision(Verdict.FOREIGN, failure.describe())
    tag.unit = ctx.store.unit_by_uid(tag.uid)
    if tag.unit is None:  # fresh or foreign: the factory-key authentication decides, no probe needed
        _check_serial_left(ctx)
        return decide(key0_version=None, unit=None, batch_id=ctx.batch_id, target_version=ctx.versions[0])
    target = tag.unit.key_versions.get(0) or ctx.versions[0]
    known = KnownUnit(tag.unit.batch_id, tag.unit.serial, tag.unit.state, target)
    return decide(key0_version=tag.session.get_key_version(0), unit=known, batch_id=ctx.batch_id,
                  target_version=ctx.versions[0])


def _check_serial_left(ctx: EncodeContext) -> None:
    """A new chip needs a serial: refuse it before authenticating when the batch has none left."""
    batch = ctx.store.batch(ctx.batch_id)
    if not batch.is_open:
        raise TagRefused(f"batch {ctx.batch_id} is {batch.state}: no new tag is encoded for it")
    if batch.allocated >= batch.quantity:
        raise TagRefused(f"batch {ctx.batch_id} is full: all {batch.quantity} serials are allocated "
                         "(only its interrupted tags can still be placed)")


def personalise(ctx: EncodeContext, tag: _Tag, fresh: bool) -> None:
    """Write NDEF, SDM settings and the CC's write byte, change keys 1-4, then key 0, journaling each step.

    Runs in the key-0 session the caller opened after the unit was journaled as encoding.
    """
    s, keys, unit, journal = tag.session, tag.keys, tag.unit, tag.journal
    assert keys is not None and unit is not None and journal is not None
    rendered = tag.render(ctx)
    s.write_data(NDEF_FILE_NO, 0, rendered.ndef_file)
    journal.add("ndef")
    policy = keys.policy
    settings = rendered.file_settings(meta_read=policy.meta_read_slot, file_read=policy.file_read_slot,
                                      write=0, read_write=0)
    s.change_file_settings(NDEF_FILE_NO, settings)
    journal.add("sdm")
    write_cc_ndef_access(s, settings.access)
    journal.add("cc")
    ctx.store.wait_synced()  # the allocation's fsync ran beside the three writes; no key changes before it is on disk
    for slot in range(1, 5):
        changed = _change_slot(s, keys, slot, probe=not fresh)
        journal.add(f"key{slot}", found=not changed)
    s.change_key(0, keys.key(0), keys.version(0))
    journal.add("key0")


def write_cc_ndef_access(s: Ntag424Session, access: AccessRights) -> None:
    """Make the capability container tell phones whether they may write NDEF (key-0 session, one byte).

    The factory CC says "write granted"; once NDEF writes need key 0 a phone that believed it would
    try and fail. Rewriting the byte is idempotent, so a resumed tag simply writes it again.
    """
    s.write_data(CC_FILE_NO, CC_NDEF_WRITE_ACCESS_OFFSET, bytes([cc_ndef_write_access(access)]))


def _change_slot(s: Ntag424Session, keys: ChipKeys, slot: int, probe: bool) -> bool:
    """Change one of keys 1-4 from factory; False when the chip's key version says it already was (resume)."""
    if probe:
        version = s.get_key_version(slot)
        if version == keys.version(slot):
            return False
        if version != FACTORY_VERSION:
            raise TagRefused(f"key {slot} holds unknown version {version:02X}: quarantine the tag")
    s.change_key(slot, keys.key(slot), keys.version(slot), old_key=FACTORY_KEY)
    return True


def verify_unit_sun(url: str, rendered: RenderedTemplate, keys: ChipKeys, scheme: SunScheme) -> SunResult:
    """Verify a SUN URL with one unit's keys, its template's parameter names and its chip's SUN scheme.

    A verifier of its own per call: the file-read key is diversified per chip, so caching
    verifiers by key would never hit and would keep every recent chip's key in memory.
    """
    verifier = SunVerifier(meta_key=keys.meta_read_key, file_key=keys.file_read_key, scheme=scheme,
                           **rendered.verifier_params())
    return verifier.verify(url)


def verify_as_phone(ctx: EncodeContext, tag: _Tag) -> tuple[str, int]:
    """Unauthenticated read of the NDEF file, SUN verification with this tag's keys, static text check."""
    unit, keys = tag.unit, tag.keys
    assert unit is not None and keys is not None
    file_bytes = tag.session.read_ndef_unauthenticated()
    rendered = tag.render(ctx)
    if not rendered.matches_file(file_bytes):
        raise VerificationError(f"{unit.serial}: the NDEF on the tag is not this unit's URL")
    url = rendered.url_in_file(file_bytes)
    result = verify_unit_sun(url, rendered, keys, ctx.template.scheme)
    if not result.cmac_valid:
        raise VerificationError(f"{unit.serial}: SUN MAC does not verify with the unit's keys")
    if result.uid is not None and result.uid != tag.uid:
        raise VerificationError(f"{unit.serial}: SUN names UID {result.uid.hex().upper()}, the tag is {tag.uid.hex().upper()}")
    previous = unit.last_counter
    counter = result.read_counter if result.read_counter is not None else previous + 1
    if counter <= previous:
        raise VerificationError(f"{unit.serial}: read counter {counter} did not advance past {previous} (replay?)")
    return url, counter


def _start(ctx: EncodeContext, tag: _Tag, fresh: bool) -> None:
    """Authenticate with the factory key 0, then journal the unit as encoding before any write.

    A fresh tag gets its serial only once the chip has accepted the factory key, so a foreign
    chip never burns one. The allocation's fsync overlaps the NDEF, settings and CC writes, which a
    fresh placement simply redoes; :func:`personalise` waits for it before the first key change.
    An LRP product's chip is switched to LRP before any write unless it runs LRP already (a resumed
    tag: its journal, or its 919D to AES authentication, says so).
    """
    what = ("not in this database and the chip refused the factory key 0" if tag.unit is None
            else f"{tag.unit.serial}: the chip refused the factory key 0")
    lrp = ctx.product.lrp
    switched = lrp and not fresh and tag.unit is not None and lrp_switch_journaled(ctx.store, tag.unit.id)
    mode = authenticate_once(ctx.store, tag.session, tag.uid, FACTORY_KEY, ctx.station, what, lrp=lrp,
                             switched=switched)
    if fresh:
        reset = tag.unit is not None and tag.unit.state == UnitState.VOIDED
        tag.unit = ctx.store.allocate_unit(ctx.batch_id, tag.uid, ctx.station, after_reset=reset,
                                           start_encoding=True, overlap_sync=True)
    else:
        assert tag.unit is not None
        ctx.store.start_encoding(tag.unit.id, ctx.station)
    tag.journal = ctx.store.step_journal(tag.unit.id, ctx.station)
    if lrp and mode is SecureMessaging.AES:
        switch_to_lrp(ctx.store, tag.session, tag.uid, FACTORY_KEY, tag.journal, ctx.station,
                      f"{tag.unit.serial}: the chip switched to LRP refused the factory key 0")


def _flush_journal(tag: _Tag) -> None:
    """A placement that ends without ``encoded`` still journals the steps the chip confirmed.

    A unit no longer encoding (voided, or its batch closed, by another process meanwhile) takes
    no steps; that refusal is the store's, and the placement's own result stands.
    """
    if tag.journal is not None:
        try:
            tag.journal.flush()
        except StateError:
            pass


def process_tag(ctx: EncodeContext, connection: Connection) -> Outcome:
    """Run one tag from placement to a recorded result; expected failures become an Outcome."""
    counting = CountingConnection(connection)
    tag = _Tag(Ntag424Session(counting))
    started = time.perf_counter()

    def outcome(result: TagResult, reason: str, url: str | None = None, counter: int | None = None) -> Outcome:
        return Outcome(result, tag.uid.hex().upper() or None, tag.unit.serial if tag.unit else None, reason,
                       counting.count, tuple(counting.commands), time.perf_counter() - started, url, counter,
                       counting.seconds)

    try:
        decision = identify(ctx, tag)
        if decision.verdict in (Verdict.FOREIGN, Verdict.REFUSED):
            return outcome(TagResult.REFUSED, decision.reason)
        if decision.writes:
            _start(ctx, tag, fresh=decision.verdict is Verdict.FRESH)
        assert tag.unit is not None
        tag.keys = ctx.chip_keys(tag.uid, tag.unit)
        if decision.writes:
            personalise(ctx, tag, fresh=decision.verdict is Verdict.FRESH)
        url, counter = verify_as_phone(ctx, tag)
        if decision.verdict is Verdict.COMPLETE:
            tag.unit = ctx.store.mark_verified(tag.unit.id, counter, ctx.station)
            return outcome(TagResult.VERIFIED, decision.reason, url, counter)
        versions = dict(enumerate(tag.keys.versions))
        tag.unit = ctx.store.mark_encoded(tag.unit.id, versions, counter, ctx.station, journal=tag.journal)
        if decision.verdict is Verdict.FRESH:
            return outcome(TagResult.ENCODED, "personalised and verified", url, counter)
        return outcome(TagResult.RESUMED, decision.reason, url, counter)
    except TagRefused as exc:
        return outcome(TagResult.REFUSED, str(exc))
    except TagRemovedError as exc:
        return outcome(TagResult.TORN, str(exc))
    except (ChipError, VerificationError, StateError) as exc:
        return outcome(TagResult.FAILED, str(exc))
    finally:  # torn, failed, Ctrl-C: what the chip confirmed is journaled (after `encoded`, nothing is left)
        _flush_journal(tag)
