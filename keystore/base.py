"""The keystore interface: keys handed out by reference, master keys kept inside the backend.

:class:`Keystore` holds everything both backends share (key sets, policy, versions, AN10922
diversification, audit); a backend supplies only AES-ECB/CBC under a stored master, storage of
masters, extraction of the resolver's keys and the Ed25519 manifest key. Provisioning code types
against :class:`KeyProvider`, the read-only face a station needs.
"""

from __future__ import annotations

import contextlib
import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tagsmith import ConfigError, KeystoreError, NotFoundError, StateError
from tagsmith.atomicfile import atomic_write
from tagsmith.keyslots import SLOTS

from .audit import AuditLog, utc_now
from .diversify import cmac_subkeys, diversification_input, padded_diversification_block
from .model import (
    MAX_VERSION,
    ChipKeys,
    KeyPolicy,
    KeyRef,
    KeySetInfo,
    KeyVersionInfo,
    check_key_set_id,
    check_slot,
    check_system_id,
    check_uid,
    check_version,
    fingerprint_from_kcv,
)
from .storage import digest, locked, read_bytes

Loc = tuple[str, int, int]  # (key set, slot, version) of one stored master key


class KeyProvider(Protocol):
    """What a station needs from the keystore: chip keys by reference, and the manifest key."""

    def chip_keys(self, key_set: str, uid: bytes, versions: Mapping[int, int] | None = None) -> ChipKeys: ...
    def chip_key(self, ref: KeyRef) -> bytes: ...
    def key_versions(self, key_set: str) -> dict[int, int]: ...
    def meta_read_key(self, key_set: str, version: int | None = None) -> bytes: ...
    def file_read_key(self, key_set: str, uid: bytes, version: int | None = None) -> bytes: ...
    def sign_manifest(self, data: bytes) -> bytes: ...
    def verify_manifest(self, data: bytes, signature: bytes) -> None: ...
    def manifest_public_key_pem(self) -> str: ...


class Keystore(ABC):
    """Key sets with versioned master keys per slot; subclasses hold the masters themselves."""

    backend: str = "?"

    def __init__(self, path: Path, meta: dict, digest: str | None, audit: AuditLog | None) -> None:
        self.path = path
        self._meta = meta
        self._digest = digest
        self._audit = audit
        self._anchor: dict | None = None  # the audit log's anchor this keystore vouches for
        self._pending: list[Loc] | None = None
        self._subkeys: dict[Loc, tuple[bytes, bytes]] = {}  # never key bytes: E(K, 0) shifted

    # ---- backend primitives -------------------------------------------------------------
    @abstractmethod
    def _encrypt_ecb(self, loc: Loc, block: bytes) -> bytes:
        """AES-ECB of one block under the stored master ``loc``."""

    @abstractmethod
    def _encrypt_cbc(self, loc: Loc, data: bytes) -> bytes:
        """AES-CBC with a zero IV under the stored master ``loc``."""

    @abstractmethod
    def _extract_master(self, loc: Loc) -> bytes:
        """The master's bytes; called only for slots the resolver receives (meta read, file read)."""

    @abstractmethod
    def _store_master(self, loc: Loc, key: bytes | None, extractable: bool) -> None:
        """Store ``key`` (or generate a random one when None) as the master ``loc``."""

    @abstractmethod
    def _discard_master(self, loc: Loc) -> None:
        """Forget a master stored by an operation that failed before it was committed."""

    @abstractmethod
    def _sign(self, data: bytes) -> bytes:
        """Ed25519 signature with the line's manifest key."""

    @abstractmethod
    def _manifest_public_raw(self) -> bytes:
        """The manifest key's raw 32-byte Ed25519 public key."""

    @abstractmethod
    def station_seed(self, create: bool) -> bytes | None:
        """The 32-byte secret of this station's X25519 key (keystore.station); made once when ``create``."""

    @abstractmethod
    def _serialise(self) -> bytes:
        """The keystore file's new contents."""

    @abstractmethod
    def close(self) -> None:
        """Release backend resources (token sessions)."""

    def __enter__(self) -> Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading ------------------------------------------------------------------------
    def key_sets(self) -> list[KeySetInfo]:
        """Every key set, by id."""
        return [self.info(name) for name in sorted(self._meta["key_sets"])]

    def info(self, key_set: str) -> KeySetInfo:
        """A key set's policy, system id, versions and fingerprints (never key bytes)."""
        rec = self._record(key_set)
        slots = rec["slots"]
        return KeySetInfo(
            key_set=key_set,
            system_id=bytes.fromhex(rec["system_id"]),
            policy=KeyPolicy.from_json(rec["policy"]),
            current={s: slots[str(s)]["current"] for s in SLOTS},
            versions={s: tuple(KeyVersionInfo(int(v), d["fingerprint"], d["origin"], d["created"])
                               for v, d in sorted(slots[str(s)]["versions"].items(), key=lambda i: int(i[0])))
                      for s in SLOTS},
            created=rec["created"],
        )

    def key_versions(self, key_set: str) -> dict[int, int]:
        """The current version per slot: what a newly encoded chip receives."""
        slots = self._record(key_set)["slots"]
        return {s: slots[str(s)]["current"] for s in SLOTS}

    def chip_key(self, ref: KeyRef) -> bytes:
        """A chip's key for one slot: AN10922-diversified, or the key set's shared meta-read key."""
        rec = self._record(ref.key_set)
        return self._slot_key(rec, KeyPolicy.from_json(rec["policy"]), ref.key_set, ref.slot, ref.version, ref.uid)

    def chip_keys(self, key_set: str, uid: bytes, versions: Mapping[int, int] | None = None) -> ChipKeys:
        """The five keys and versions for the chip ``uid`` (current versions unless given)."""
        check_uid(uid)
        rec = self._record(key_set)
        policy = KeyPolicy.from_json(rec["policy"])  # parsed once per chip, not once per slot
        chosen = {**self.key_versions(key_set), **(versions or {})}
        for slot in SLOTS:
            check_version(chosen[slot])
        return ChipKeys(key_set=key_set, uid=uid, versions=tuple(chosen[s] for s in SLOTS), policy=policy,
                        keys=tuple(self._slot_key(rec, policy, key_set, s, chosen[s], uid) for s in SLOTS),
                        system_id=bytes.fromhex(rec["system_id"]))

    def _slot_key(self, rec: dict, policy: KeyPolicy, key_set: str, slot: int, version: int,
                  uid: bytes | None) -> bytes:
        loc = self._loc(rec, key_set, slot, version)
        if not policy.slots[slot].diversified:
            if slot not in policy.resolver_slots():
                raise KeystoreError(f"slot {slot} master keys never leave the keystore")
            return self._extract_master(loc)
        if uid is None:
            raise ConfigError(f"slot {slot} of {key_set} is diversified per chip: a UID is needed")
        return self._diversify(loc, diversification_input(uid, slot, bytes.fromhex(rec["system_id"])))

    def meta_read_key(self, key_set: str, version: int | None = None) -> bytes:
        """The key set's shared SDM meta-read key (decrypts PICC data before the UID is known)."""
        slot = self.info(key_set).policy.meta_read_slot
        return self.chip_key(KeyRef(key_set, slot, version or self.key_versions(key_set)[slot]))

    def file_read_key(self, key_set: str, uid: bytes, version: int | None = None) -> bytes:
        """The chip's SDM file-read key (verifies the SUN MAC)."""
        slot = self.info(key_set).policy.file_read_slot
        return self.chip_key(KeyRef(key_set, slot, version or self.key_versions(key_set)[slot], uid))

    def reveal_chip_key(self, ref: KeyRef) -> bytes:
        """A diversified chip key for diagnostics; audited. Shared slots are refused (they are masters)."""
        rec = self._record(ref.key_set)
        loc = self._loc(rec, ref.key_set, ref.slot, ref.version)
        policy = KeyPolicy.from_json(rec["policy"])
        if not policy.slots[ref.slot].diversified:
            raise StateError(f"slot {ref.slot} ({policy.slots[ref.slot].role.value}) is shared, not diversified: "
                             "revealing it would reveal the key set's master; the resolver gets it by keys export")
        key = self.chip_key(ref)
        self._commit([("derive-reveal", dict(key_set=ref.key_set, slot=ref.slot, version=ref.version,
                                             uid=ref.uid.hex().upper() if ref.uid else None,
                                             fingerprint=self._fp_of(*loc)))])  # recorded, or not revealed
        return key

    # ---- changing -----------------------------------------------------------------------
    def create_key_set(self, key_set: str, system_id: bytes | None = None,
                       policy: KeyPolicy | None = None) -> KeySetInfo:
        """Generate version 1 of all five masters for a new key set."""
        check_key_set_id(key_set)
        if key_set in self._meta["key_sets"]:
            raise StateError(f"key set {key_set} already exists")
        sid = check_system_id(key_set.encode() if system_id is None else system_id)
        policy = policy or KeyPolicy.default()
        with self._transaction():
            self._meta["key_sets"][key_set] = {
                "system_id": sid.hex().upper(), "policy": policy.to_dict(), "created": utc_now(),
                "slots": {str(s): {"current": 0, "versions": {}} for s in SLOTS}}
            for slot in SLOTS:
                self._add_version(key_set, slot, 1, None, "generated")
            self._commit([("create", dict(key_set=key_set, slot=slot, version=1,
                                          fingerprint=self._fp_of(key_set, slot, 1))) for slot in SLOTS])
        return self.info(key_set)

    def import_master(self, key_set: str, slot: int, key: bytes, version: int | None = None) -> KeyRef:
        """Store a master made elsewhere as a new version of ``slot`` (current if it is the newest)."""
        rec = self._record(key_set)
        check_slot(slot)
        if not isinstance(key, bytes) or len(key) != 16:
            raise ConfigError("an AES-128 master key is 16 bytes (32 hex digits)")
        if key == bytes(16):
            raise ConfigError("refusing the all-zero key: it is the chip's factory default")
        version = self._next_version(rec, slot) if version is None else check_version(version)
        if str(version) in rec["slots"][str(slot)]["versions"]:
            raise StateError(f"{key_set} slot {slot} already has version {version}; versions are never overwritten")
        with self._transaction():
            self._add_version(key_set, slot, version, key, "imported")
            self._commit([("import", dict(key_set=key_set, slot=slot, version=version,
                                          fingerprint=self._fp_of(key_set, slot, version)))])
        return KeyRef(key_set, slot, version)

    def rotate(self, key_set: str, slot: int) -> KeyRef:
        """Generate a new current version for ``slot``; older versions stay to verify older tags."""
        rec = self._record(key_set)
        version = self._next_version(rec, check_slot(slot))
        with self._transaction():
            self._add_version(key_set, slot, version, None, "generated")
            self._commit([("rotate", dict(key_set=key_set, slot=slot, version=version,
                                          fingerprint=self._fp_of(key_set, slot, version)))])
        return KeyRef(key_set, slot, version)

    # ---- manifest key and export --------------------------------------------------------
    def sign_manifest(self, data: bytes) -> bytes:
        """Ed25519 (RFC 8032) signature of ``data`` with the line's manifest key (64 bytes)."""
        return self._sign(bytes(data))

    def verify_manifest(self, data: bytes, signature: bytes) -> None:
        """Raise VerificationError unless ``signature`` is this line's signature of ``data``."""
        from .signing import verify_manifest

        verify_manifest(data, signature, self.manifest_public_key_pem())

    def manifest_public_key_pem(self) -> str:
        """The manifest key's public half as PEM, for the resolver to verify manifests and exports."""
        from .signing import public_pem_from_raw

        return public_pem_from_raw(self._manifest_public_raw())

    # ---- for exports, station bundles and the station key (keystore/export.py, bundle.py, station.py)
    def export_master(self, key_set: str, slot: int, version: int) -> bytes:
        """A master's bytes, to be wrapped for a resolver or a station (a token's non-extractable one refuses)."""
        return self._extract_master(self._loc(self._record(key_set), key_set, slot, version))

    def record_export(self, op: str, fields: dict) -> None:
        """Audit keys leaving the keystore: once this returns the record is written (else they must not leave)."""
        self._commit([(op, fields)])

    @contextlib.contextmanager
    def changing(self, records: list[tuple[str, dict]]) -> Iterator[None]:
        """Steps written together with the audit ``records`` (filled in by the block), or undone together."""
        with self._transaction():
            yield
            self._commit(records)

    def add_key_set_record(self, key_set: str, system_id: str, policy: dict, created: str) -> None:
        """Within :meth:`changing`: a key set made elsewhere, with no versions yet (kept if it is here)."""
        empty = {str(s): {"current": 0, "versions": {}} for s in SLOTS}
        self._meta["key_sets"].setdefault(check_key_set_id(key_set), {
            "system_id": system_id, "policy": policy, "created": created, "slots": empty})

    def add_imported_version(self, key_set: str, slot: int, version: int, key: bytes) -> str:
        """Within :meth:`changing`: store a master made elsewhere; returns its fingerprint."""
        self._add_version(key_set, slot, version, key, "imported")
        return self._fp_of(key_set, slot, version)

    def station_name(self) -> str | None:
        """The name this station's key was made under (``keys station-key``), or None before."""
        return str(self._meta["station"]["name"]) if "station" in self._meta else None

    def name_station(self, name: str) -> None:
        """Within :meth:`changing`: record the station key's name, once."""
        self._meta["station"] = {"name": name, "created": utc_now()}

    # ---- shared machinery ---------------------------------------------------------------
    def _diversify(self, loc: Loc, m: bytes) -> bytes:
        """AN10922 from the backend's own AES: subkeys from E(K, 0), then CBC over D'."""
        k1, k2 = self._cmac_subkeys(loc)
        return self._encrypt_cbc(loc, padded_diversification_block(m, k1, k2))[16:]

    def _cmac_subkeys(self, loc: Loc) -> tuple[bytes, bytes]:
        """K1, K2 of a master, asked of the backend once: a station derives five keys per chip."""
        found = self._subkeys.get(loc)
        if found is None:
            found = self._subkeys[loc] = cmac_subkeys(lambda block: self._encrypt_ecb(loc, block))
        return found

    def _check_value(self, loc: Loc) -> bytes:
        """CMAC(K, 0^16) = E(K, K1): a one-way check value of a master, the source of its fingerprint."""
        return self._encrypt_ecb(loc, self._cmac_subkeys(loc)[0])

    def _record(self, key_set: str) -> dict:
        try:
            return self._meta["key_sets"][check_key_set_id(key_set)]
        except KeyError:
            raise NotFoundError(f"no key set {key_set} in the keystore (create it with: tagsmith keys create "
                                f"--product {key_set})") from None

    def _loc(self, rec: dict, key_set: str, slot: int, version: int) -> Loc:
        if str(version) not in rec["slots"][str(slot)]["versions"]:
            raise NotFoundError(f"{key_set} slot {slot} has no key version {version}")
        return key_set, slot, version

    @staticmethod
    def _next_version(rec: dict, slot: int) -> int:
        version = max((int(v) for v in rec["slots"][str(slot)]["versions"]), default=0) + 1
        if version > MAX_VERSION:
            raise KeystoreError(f"slot {slot} has used all {MAX_VERSION} key versions")
        return version

    def _add_version(self, key_set: str, slot: int, version: int, key: bytes | None, origin: str) -> None:
        rec = self._meta["key_sets"][key_set]
        extractable = slot in KeyPolicy.from_json(rec["policy"]).resolver_slots()
        loc = (key_set, slot, version)
        self._store_master(loc, key, extractable)
        assert self._pending is not None
        self._pending.append(loc)
        fp = fingerprint_from_kcv(self._check_value(loc))
        for other_slot, s in rec["slots"].items():
            for v, d in s["versions"].items():
                if d["fingerprint"] == fp:
                    raise StateError(f"that key is already stored as {key_set} slot {other_slot} version {v}")
        slot_rec = rec["slots"][str(slot)]
        slot_rec["versions"][str(version)] = {"fingerprint": fp, "origin": origin, "created": utc_now()}
        slot_rec["current"] = max(slot_rec["current"], version)

    def _fp_of(self, key_set: str, slot: int, version: int) -> str:
        return self._meta["key_sets"][key_set]["slots"][str(slot)]["versions"][str(version)]["fingerprint"]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Undo metadata and stored masters together if anything fails before the commit."""
        snapshot, self._pending = copy.deepcopy(self._meta), []
        try:
            yield
        except BaseException:
            self._meta = snapshot
            for loc in reversed(self._pending):
                self._subkeys.pop(loc, None)
                with contextlib.suppress(Exception):
                    self._discard_master(loc)
            raise
        finally:
            self._pending = None

    def audit_anchor(self) -> dict | None:
        """The audit log's anchor (records, SHA-256 of the last) the keystore vouches for; None before any."""
        return self._anchor

    def _save_anchor(self, anchor: dict) -> bool:
        """Keep ``anchor`` for the coming write; True when it was stored elsewhere already (a token)."""
        self._anchor = anchor
        return False

    def _commit(self, records: Sequence[tuple[str, dict]] = ()) -> None:
        """Write the keystore, its audit ``records`` first: they go to the log, the log's new anchor
        into this same atomic write. Records that cannot be written refuse the whole operation.

        A lost update here would mean lost keys, so a keystore changed on disk since it was opened
        is refused too.
        """
        with locked(self.path):
            if digest(read_bytes(self.path)) != self._digest:
                raise KeystoreError(f"{self.path} changed on disk since it was opened (another tagsmith process?); "
                                    "nothing was written, run the command again")
            before, appended, anchored_elsewhere = self._anchor, None, False
            try:
                if self._audit is not None and records:
                    entries = [(op, {"backend": self.backend, **fields}) for op, fields in records]
                    appended = self._audit.append(entries, self.audit_anchor())
                    anchored_elsewhere = self._save_anchor(appended.anchor)
                data = self._serialise()
                atomic_write(self.path, data)
            except BaseException as exc:
                self._anchor = before
                if appended is not None and not anchored_elsewhere:
                    self._audit.retract(appended)  # type: ignore[union-attr]
                if isinstance(exc, OSError):
                    raise KeystoreError(f"cannot write {self.path}: {exc.strerror or exc}; "
                                        "the previous file is unchanged") from None
                raise
            self._digest = digest(data)
