"""Non-volatile state of a simulated chip: what survives leaving the field.

Keys, key versions, file contents and settings, SDMReadCtr, configuration switches and the
failed-authentication counters. Volatile state (selection, authentication, pending frames,
SDM first-read tracking, spent authentication delay) lives in the chip object and resets on
every placement. A :class:`NvState` is a plain value: ``copy()`` it, store it, restore it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .files import FileSettings, SdmSettings, factory_contents, factory_settings, parse_settings
from .status import ChipStatus

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
        state = cls(uid=bytes.fromhex(data["uid"]))
        lrp = bool(data.get("lrp", False))  # journals from before LRP lack the field: AES
        for f in fields(cls):
            if f.name not in data or f.name == "uid":
                continue
            value = data[f.name]
            if f.name == "settings":
                base = factory_settings()  # stored settings skip the counter-limit check: the counter may be past 0
                value = {int(no): parse_settings(base[int(no)], bytes.fromhex(body), counter_after=-1, lrp=lrp)
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


def factory_state(*, uid: bytes | None = None, keys: Sequence[bytes] | None = None,
                  key_versions: Sequence[int] | None = None, tag_tamper: bool = False,
                  files: Mapping[int, bytes] | None = None, file_settings: Mapping[int, bytes] | None = None,
                  sdm_read_ctr: int = 0, random_id: bool = False, lrp: bool = False) -> NvState:
    """A chip's NVM as delivered, then changed as the arguments say (see ``SimulatedNtag424``)."""
    if uid is None:
        uid = b"\x04" + os.urandom(6)
    uid = bytes(uid)
    if len(uid) != 7 or uid[0] != 0x04:
        raise ValueError("uid must be 7 bytes starting with 04 (NXP)")
    nv = NvState(uid=uid, tag_tamper=tag_tamper, random_id=random_id, lrp=lrp)
    if keys is not None:
        if len(keys) != 5 or any(len(k) != 16 for k in keys):
            raise ValueError("keys must be five 16-byte AES keys")
        nv.keys = [bytes(k) for k in keys]
    if key_versions is not None:
        if len(key_versions) != 5 or any(not 0 <= v <= 0xFF for v in key_versions):
            raise ValueError("key_versions must be five values 0..255")
        nv.key_versions = list(key_versions)
    for file_no, data in (files or {}).items():
        buf = nv.contents[file_no]
        if len(data) > len(buf):
            raise ValueError(f"file {file_no:02X} holds {len(buf)} bytes, got {len(data)}")
        buf[:len(data)] = data
    for file_no, body in (file_settings or {}).items():
        try:
            nv.settings[file_no] = parse_settings(nv.settings[file_no], bytes(body), lrp=lrp)
        except ChipStatus as exc:
            raise ValueError(f"file {file_no:02X} settings rejected with {exc.sw:04X}") from None
    if not 0 <= sdm_read_ctr <= 0xFFFFFF:
        raise ValueError("sdm_read_ctr is a 24-bit counter")
    nv.sdm_read_ctr = sdm_read_ctr
    return nv
