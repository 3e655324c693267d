"""GetVersion decoding and chip identification (docs/reference/ntag424.md §7, AN12196 T13)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NotNtag424Error, ResponseError

NXP_VENDOR = 0x04
_PRODUCTS = {0x02: "NTAG 424 DNA", 0x08: "NTAG 424 DNA TagTamper"}


def _bcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0x0F)


@dataclass(frozen=True)
class VersionInfo:
    """The three GetVersion frames, decoded: hardware, software and production data."""

    hw_vendor: int
    hw_type: int
    hw_subtype: int
    hw_major: int
    hw_minor: int
    hw_storage: int
    hw_protocol: int
    sw_vendor: int
    sw_type: int
    sw_subtype: int
    sw_major: int
    sw_minor: int
    sw_storage: int
    sw_protocol: int
    uid: bytes
    batch_no: bytes
    fab_key: int
    production_week: int
    production_year: int

    @classmethod
    def from_bytes(cls, data: bytes) -> VersionInfo:
        """Decode the concatenated frames (7 + 7 + 14 or 15 bytes)."""
        if len(data) not in (28, 29):
            raise ResponseError(f"GetVersion returned {len(data)} bytes, expected 28 or 29")
        hw_vendor, hw_type, hw_subtype, hw_major, hw_minor, hw_storage, hw_protocol = data[0:7]
        sw_vendor, sw_type, sw_subtype, sw_major, sw_minor, sw_storage, sw_protocol = data[7:14]
        return cls(hw_vendor, hw_type, hw_subtype, hw_major, hw_minor, hw_storage, hw_protocol,
                   sw_vendor, sw_type, sw_subtype, sw_major, sw_minor, sw_storage, sw_protocol,
                   uid=data[14:21], batch_no=data[21:25], fab_key=((data[25] & 0x0F) << 1) | (data[26] >> 7),
                   production_week=_bcd(data[26] & 0x7F), production_year=2000 + _bcd(data[27]))

    @property
    def is_ntag424(self) -> bool:
        """True for NXP vendor 04, type 04, HW major 30, storage 11 (256 bytes+), protocol 05."""
        return (self.hw_vendor, self.hw_type, self.hw_major, self.hw_storage, self.hw_protocol) == (
            NXP_VENDOR, 0x04, 0x30, 0x11, 0x05)

    @property
    def product(self) -> str:
        """Product name by HW subtype; unknown subtypes of a matching chip are named with their number."""
        if not self.is_ntag424:
            return f"unknown chip (vendor {self.hw_vendor:02X}, type {self.hw_type:02X}, major {self.hw_major:02X})"
        return _PRODUCTS.get(self.hw_subtype, f"NTAG 424 DNA (HW subtype {self.hw_subtype:02X})")

    @property
    def random_id(self) -> bool:
        """True when the UID reads as zeros, i.e. Random ID is enabled."""
        return not any(self.uid)

    def require_ntag424(self) -> None:
        """Refuse chips that are not NTAG 424 DNA, saying what was found."""
        if not self.is_ntag424:
            raise NotNtag424Error(f"Not an NTAG 424 DNA: GetVersion reports {self.product}")
