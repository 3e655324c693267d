"""Non-volatile state of a simulated chip: what survives leaving the field.

Keys, key versions, file contents and settings, SDMReadCtr, configuration switches and the
failed-authentication counters. Volatile state (selection, authentication, pending frames,
SDM first-read tracking, spent authentication delay) lives in the chip object and resets on
every placement. A :class:`NvState` is a plain value: ``copy()`` it, store it, restore it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from .files import FileSettings, SdmSettings, factory_contents, factory_settings

DEFAULT_TOT_FAIL_LIMIT = 1000
DEFAULT_TOT_FAIL_DECR = 10


@dataclass
class NvState:
    """Everything the chip keeps in NVM. ``repr`` never shows key values."""

    uid: bytes
    keys: list[bytes] = field(default_factory=lambda: [bytes(16)] * 5)
    key_versions: list[int] = field(default_factory=lambda: [0] * 5)
    settings: dict[int, FileSettings] = field(default_factory=factory_settings)
    contents: dict[int, bytearray] = field(default_factory=factory_contents)
    sdm_read_ctr: int = 0
    tag_tamper: bool = False
    random_id: bool = False
    lrp: bool = False
    chained_write_disabled: bool = False
    pdcap2_user: bytes = bytes(2)  # PDCap2.5, PDCap2.6 (SetConfiguration option 05)
    strong_back_modulation: bool = True
    failed_ctr_enabled: bool = True
    tot_fail_limit: int = DEFAULT_TOT_FAIL_LIMIT
    tot_fail_decr: int = DEFAULT_TOT_FAIL_DECR
    tot_fail_ctr: list[int] = field(default_factory=lambda: [0] * 5)
    consecutive_failures: list[int] = field(default_factory=lambda: [0] * 5)

    def __repr__(self) -> str:
        return (f"NvState(uid={self.uid.hex().upper()}, key_versions={self.key_versions}, "
                f"sdm_read_ctr={self.sdm_read_ctr}, random_id={self.random_id}, lrp={self.lrp})")

    def copy(self) -> NvState:
        """A deep copy (snapshots must not share mutable file buffers).

        Field by field rather than ``copy.deepcopy``, which costs ~10x as much and runs per APDU
        when a pool persists every step.
        """
        clone = object.__new__(type(self))
        for f in fields(self):
            setattr(clone, f.name, _deep_copy(getattr(self, f.name)))
        return clone

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes as hex). Contains the keys: treat it as a secret."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "settings":
                value = {str(no): s.change_body().hex().upper() for no, s in value.items()}
            elif f.name == "contents":
                value = {str(no): bytes(c).hex().upper() for no, c in value.items()}
            elif f.name == "keys":
                value = [k.hex().upper() for k in value]
            elif isinstance(value, bytes):
                value = value.hex().upper()
            elif isinstance(value, list):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NvState:
        """Inverse of :meth:`to_dict`."""
        from .files import parse_settings

        state = cls(uid=bytes.fromhex(data["uid"]))
        for f in fields(cls):
            if f.name not in data or f.name == "uid":
                continue
            value = data[f.name]
            if f.name == "settings":
                base = factory_settings()
                value = {int(no): _decode_settings(parse_settings, base[int(no)], bytes.fromhex(body))
                         for no, body in value.items()}
            elif f.name == "contents":
                value = {int(no): bytearray.fromhex(c) for no, c in value.items()}
            elif f.name == "keys":
                value = [bytes.fromhex(k) for k in value]
            elif f.name == "pdcap2_user":
                value = bytes.fromhex(value)
            elif isinstance(value, list):
                value = list(value)
            setattr(state, f.name, value)
        return state


#: Values shared, not copied, by :meth:`NvState.copy` (the settings classes are frozen).
_IMMUTABLE = (bytes, int, str, type(None), FileSettings, SdmSettings)


def _deep_copy(value: Any) -> Any:
    """``copy.deepcopy`` for the value types an NvState holds; anything else goes to deepcopy."""
    if isinstance(value, _IMMUTABLE):  # bool is an int
        return value
    if isinstance(value, bytearray):
        return bytearray(value)
    if type(value) is list:
        return [_deep_copy(v) for v in value]
    if type(value) is dict:
        return {k: _deep_copy(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _decode_settings(parse, base: FileSettings, body: bytes) -> FileSettings:
    """Decode stored settings without the counter-limit check (the counter may be past 0)."""
    settings = parse(base, body, counter_after=-1)
    assert settings.sdm is None or isinstance(settings.sdm, SdmSettings)
    return settings
