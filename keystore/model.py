"""The key model: key sets, slot roles, key references and the keys one chip receives.

A key set (one per product or product family) holds one AES-128 master key per NTAG 424 DNA
key slot (0..4), each in one or more versions. A chip's key for a slot is the AN10922
diversification of that slot's master with M = UID(7) || slot(1) || system id, except the SDM
meta-read key, which the whole key set shares: the resolver must decrypt the PICC data before it
knows the UID (docs/reference/ntag424.md §10.6). Versions 1..255 are ours; 0 is the factory version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tagsmith import ConfigError
from tagsmith.keyslots import MAX_SYSTEM_ID, SLOTS, SlotRole

MIN_VERSION, MAX_VERSION = 1, 255
DIVERSIFICATION_SCHEME = "AN10922-AES128 M=UID(7)||slot(1)||system_id; sdm-meta-read shared"
_KEY_SET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class SlotPolicy:
    """One slot's role and whether its chip key is diversified per UID."""

    slot: int
    role: SlotRole
    diversified: bool

    def to_dict(self) -> dict:
        return {"slot": self.slot, "role": self.role.value, "diversified": self.diversified}


@dataclass(frozen=True)
class KeyPolicy:
    """Slot roles of a key set; the meta-read slot is never diversified."""

    slots: tuple[SlotPolicy, ...]

    def __post_init__(self) -> None:
        if [s.slot for s in self.slots] != list(SLOTS):
            raise ConfigError("a key policy names each of the slots 0..4 once, in order")
        if self.slots[0].role is not SlotRole.APP_MASTER:
            raise ConfigError("slot 0 is the chip's application master key")
        for role in (SlotRole.APP_MASTER, SlotRole.SDM_META_READ, SlotRole.SDM_FILE_READ):
            if sum(s.role is role for s in self.slots) != 1:
                raise ConfigError(f"a key policy has exactly one {role.value} slot")
        if self.slots[self.meta_read_slot].diversified:
            raise ConfigError("the sdm-meta-read key cannot be diversified: the resolver needs it before it knows the UID")

    @classmethod
    def default(cls) -> KeyPolicy:
        """Slot 0 app master, 1 SDM meta read (shared), 2 SDM file read, 3 proprietary-file write, 4 spare."""
        roles = [SlotRole.APP_MASTER, SlotRole.SDM_META_READ, SlotRole.SDM_FILE_READ,
                 SlotRole.PROPRIETARY_WRITE, SlotRole.SPARE]
        return cls(tuple(SlotPolicy(i, r, r is not SlotRole.SDM_META_READ) for i, r in enumerate(roles)))

    @classmethod
    def from_json(cls, items: list[dict]) -> KeyPolicy:
        """The policy a keystore records; parsed and checked once per distinct policy (a station asks per chip)."""
        try:
            spec = tuple((i["slot"], i["role"], i["diversified"]) for i in items)
            policy = _PARSED_POLICIES.get(spec)
        except (TypeError, KeyError):
            raise ConfigError("the keystore's key policy is malformed") from None
        if policy is None:
            try:
                policy = cls(tuple(SlotPolicy(int(slot), SlotRole(role), bool(div)) for slot, role, div in spec))
            except ValueError as exc:  # an unknown role or a slot that is not a number
                raise ConfigError(f"the keystore's key policy is malformed: {exc}") from None
            _PARSED_POLICIES[spec] = policy
        return policy

    def to_dict(self) -> list[dict]:
        return [s.to_dict() for s in self.slots]

    def slot_for(self, role: SlotRole) -> int:
        return next(s.slot for s in self.slots if s.role is role)

    @property
    def meta_read_slot(self) -> int:
        return self.slot_for(SlotRole.SDM_META_READ)

    @property
    def file_read_slot(self) -> int:
        return self.slot_for(SlotRole.SDM_FILE_READ)

    def resolver_slots(self) -> tuple[int, int]:
        """The slots whose masters the resolver receives: SDM meta read and SDM file read."""
        return self.meta_read_slot, self.file_read_slot


_PARSED_POLICIES: dict[tuple, KeyPolicy] = {}  # a handful at most: one per distinct policy in use


@dataclass(frozen=True)
class KeyRef:
    """A key by reference: key set, slot, version, and the chip's UID for a diversified slot."""

    key_set: str
    slot: int
    version: int
    uid: bytes | None = None

    def __post_init__(self) -> None:
        check_key_set_id(self.key_set)
        check_slot(self.slot)
        check_version(self.version)
        if self.uid is not None:
            check_uid(self.uid)

    def __str__(self) -> str:
        uid = f"@{self.uid.hex().upper()}" if self.uid else ""
        return f"{self.key_set}/slot{self.slot}/v{self.version}{uid}"


@dataclass(frozen=True)
class ChipKeys:
    """The five keys and versions one chip receives (what a station writes with ChangeKey)."""

    key_set: str
    uid: bytes
    versions: tuple[int, ...]
    policy: KeyPolicy = field(repr=False)
    keys: tuple[bytes, ...] = field(repr=False)
    system_id: bytes | None = None  # the AN10922 system identifier the diversified keys were derived with

    def key(self, slot: int) -> bytes:
        return self.keys[slot]

    def version(self, slot: int) -> int:
        return self.versions[slot]

    @property
    def meta_read_key(self) -> bytes:
        return self.keys[self.policy.meta_read_slot]

    @property
    def file_read_key(self) -> bytes:
        return self.keys[self.policy.file_read_slot]


@dataclass(frozen=True)
class KeyVersionInfo:
    """What is known of one stored master key, safe to show: never the key itself."""

    version: int
    fingerprint: str
    origin: str  # "generated" or "imported"
    created: str


@dataclass(frozen=True)
class KeySetInfo:
    """A key set's public facts: policy, system id, versions and fingerprints per slot."""

    key_set: str
    system_id: bytes
    policy: KeyPolicy
    current: Mapping[int, int]
    versions: Mapping[int, tuple[KeyVersionInfo, ...]]
    created: str

    def to_dict(self) -> dict:
        return {
            "key_set": self.key_set,
            "system_id": self.system_id.hex().upper(),
            "diversification": DIVERSIFICATION_SCHEME,
            "created": self.created,
            "slots": [
                {**p.to_dict(), "current_version": self.current[p.slot],
                 "versions": [{"version": v.version, "fingerprint": v.fingerprint, "origin": v.origin,
                               "created": v.created} for v in self.versions[p.slot]]}
                for p in self.policy.slots
            ],
        }


def check_same_system_id(product_id: str, product_system_id: bytes, key_set: str, key_set_system_id: bytes) -> None:
    """Refuse a product whose ``[keys] system_id`` differs from its key set's.

    Chips are diversified with the key set's system id while the manifest names the product's: if
    they differ, a resolver deriving keys from the manifest rejects every genuine tap.
    """
    if product_system_id != key_set_system_id:
        ours, theirs = product_system_id.hex().upper() or '""', key_set_system_id.hex().upper() or '""'
        raise ConfigError(f"product {product_id} has [keys] system_id {ours} but key set {key_set} was created "
                          f"with system id {theirs}: set system_id = \"{theirs}\" in the product file if chips "
                          f"were keyed with {key_set}, else point [keys] key_set at a new key set made with "
                          f"'tagsmith keys create --product NEW-ID --system-id {ours}'")


def fingerprint_from_kcv(kcv: bytes) -> str:
    """A key's public fingerprint: SHA-256 of its check value CMAC(K, 0^16), truncated to 8 bytes.

    The check value is already one-way; hashing and truncating it keeps even that out of sight.
    """
    return hashlib.sha256(b"tagsmith-key-fingerprint\x00" + kcv).hexdigest()[:16]


def check_key_set_id(key_set: str) -> str:
    if not isinstance(key_set, str) or not _KEY_SET_ID.fullmatch(key_set):
        raise ConfigError(f"bad key set id {key_set!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return key_set


def check_slot(slot: int) -> int:
    if not isinstance(slot, int) or slot not in SLOTS:
        raise ConfigError(f"key slot must be 0..4, got {slot!r}")
    return slot


def check_version(version: int) -> int:
    if not isinstance(version, int) or not MIN_VERSION <= version <= MAX_VERSION:
        raise ConfigError(f"key version must be {MIN_VERSION}..{MAX_VERSION} (0 is the factory version), got {version!r}")
    return version


def check_uid(uid: bytes) -> bytes:
    if not isinstance(uid, bytes) or len(uid) != 7:
        raise ConfigError("a chip UID is 7 bytes")
    return uid


def check_system_id(system_id: bytes) -> bytes:
    if not isinstance(system_id, bytes) or len(system_id) > MAX_SYSTEM_ID:
        raise ConfigError(f"system identifier is at most {MAX_SYSTEM_ID} bytes")
    return system_id


def parse_key_hex(text: str, what: str = "key") -> bytes:
    """A 16-byte key from hex text (spaces, colons and newlines ignored); errors never echo the text."""
    cleaned = "".join(text.split()).replace(":", "")
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        raise ConfigError(f"the {what} is not hex (expected 32 hex digits)") from None
    if len(key) != 16:
        raise ConfigError(f"the {what} must be 16 bytes (32 hex digits), got {len(key)} bytes")
    return key
