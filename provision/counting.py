"""A Connection wrapper that counts round trips and names each one, for the station's reports.

Every round trip costs 5-15 ms of radio time on a real reader, so the station reports how many
it used and what each was for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tagsmith.encoders.connection import Connection

# Native INS (CLA 90) and ISO INS (CLA 00) names, for the per-tag round-trip report.
_NATIVE_NAMES = {
    0x60: "GetVersion", 0xAF: "AdditionalFrame", 0x71: "AuthenticateEV2First", 0x77: "AuthenticateEV2NonFirst",
    0x3C: "Read_Sig", 0x64: "GetKeyVersion", 0xF5: "GetFileSettings", 0x5F: "ChangeFileSettings",
    0xAD: "ReadData", 0x8D: "WriteData", 0xC4: "ChangeKey", 0x51: "GetCardUID", 0xF6: "GetFileCounters",
    0x5C: "SetConfiguration",
}
_ISO_NAMES = {0xA4: "ISOSelectFile", 0xB0: "ISOReadBinary", 0xD6: "ISOUpdateBinary", 0xCA: "GetData(UID)"}


def command_name(apdu: bytes) -> str:
    """A readable name for a C-APDU (GetVersion's continuation frames keep their parent's name)."""
    if len(apdu) < 2:
        return "?"
    if apdu[:2] == b"\x90\x71" and len(apdu) > 7 and apdu[6] and apdu[7] & 0x02:
        return "AuthenticateLRPFirst"  # PCDcap2.1 bit 1 asks for LRP (docs/reference/lrp.md §4)
    table = _NATIVE_NAMES if apdu[0] == 0x90 else _ISO_NAMES
    return table.get(apdu[1], f"{apdu[0]:02X}{apdu[1]:02X}")


@dataclass
class CountingConnection:
    """Pass APDUs through to ``inner`` and keep a log of command names and time spent."""

    inner: Connection
    commands: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        start = time.perf_counter()
        try:
            return self.inner.transceive(apdu)
        finally:
            self.seconds += time.perf_counter() - start
            name = command_name(apdu)
            if name == "AdditionalFrame" and self.commands:
                name = self.commands[-1].split("+")[0] + "+AF"
            self.commands.append(name)

    @property
    def count(self) -> int:
        return len(self.commands)
