"""The PICC-side file store: the three StandardData files, their settings, and the settings codec.

Layouts and constraints from ``docs/reference/ntag424.md`` §3 (files, defaults, CC content),
§4 (access-rights nibbles, on-wire byte order), §9.2 (settings layout and field presence) and
§9.4 (the checks the chip enforces, 919E unless noted).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

from tagsmith.encoders.apdu import SW

from .status import ChipStatus

FREE = 0xE
NEVER = 0xF

COMM_PLAIN = 0
COMM_MAC = 1
COMM_FULL = 3

#: FileNo -> ISO file ID (MSB first in ISOSelectFile, ref §3.1).
FILE_IDS = {1: 0xE103, 2: 0xE104, 3: 0xE105}
FILE_BY_FID = {fid: no for no, fid in FILE_IDS.items()}
SIZES = {1: 32, 2: 256, 3: 128}
SDM_FILE = 2

#: Factory CC file (ref §3.2): CCLEN 0017, T4T 2.0, MLe 0100, MLc 00FF, NDEF TLV for E104
#: (256 bytes, read/write free), proprietary TLV for E105 (128 bytes, access 82/83), zero-filled.
FACTORY_CC = bytes.fromhex("001720010000FF0406E104010000000506E10500808283") + bytes(9)

# SDMOptions bits (ref §9.2)
OPT_UID = 0x80
OPT_CTR = 0x40
OPT_LIMIT = 0x20
OPT_ENC = 0x10
OPT_ASCII = 0x01

UID_ASCII_LEN = 14
CTR_ASCII_LEN = 6
PICC_ENC_ASCII_LEN = 32
PICC_ENC_ASCII_LEN_LRP = 48  # PICCRand (8) || 16 encrypted bytes (ref §10.2)
MAC_ASCII_LEN = 16
CTR_NOT_MIRRORED = 0xFFFFFF


def _valid_key_nibble(value: int, *, free_ok: bool = True) -> bool:
    return value <= 4 or value == NEVER or (free_ok and value == FREE)


@dataclass(frozen=True)
class SdmSettings:
    """Secure Dynamic Messaging part of file 02's settings (absent fields are ``None``)."""

    options: int
    meta_read: int
    file_read: int
    ctr_ret: int
    uid_offset: int | None = None
    ctr_offset: int | None = None
    picc_offset: int | None = None
    mac_input_offset: int | None = None
    enc_offset: int | None = None
    enc_length: int | None = None
    mac_offset: int | None = None
    ctr_limit: int | None = None

    @property
    def uid_enabled(self) -> bool:
        return bool(self.options & OPT_UID)

    @property
    def ctr_enabled(self) -> bool:
        return bool(self.options & OPT_CTR)

    @property
    def limit_enabled(self) -> bool:
        return bool(self.options & OPT_LIMIT)

    @property
    def enc_enabled(self) -> bool:
        return bool(self.options & OPT_ENC)

    def encode(self) -> bytes:
        """SDMOptions || SDMAccessRights || present offsets (3 bytes each, LSB first), ref §9.2."""
        out = bytes([self.options, 0xF0 | self.ctr_ret, (self.meta_read << 4) | self.file_read])
        for value in self._present_fields():
            out += value.to_bytes(3, "little")
        return out

    def _present_fields(self) -> list[int]:
        values = []
        if self.meta_read == FREE:
            if self.uid_enabled:
                values.append(self.uid_offset)
            if self.ctr_enabled:
                values.append(self.ctr_offset)
        if self.meta_read <= 4:
            values.append(self.picc_offset)
        if self.file_read != NEVER:
            values.append(self.mac_input_offset)
            if self.enc_enabled:
                values += [self.enc_offset, self.enc_length]
            values.append(self.mac_offset)
        if self.limit_enabled:
            values.append(self.ctr_limit)
        return values  # type: ignore[return-value]


@dataclass(frozen=True)
class FileSettings:
    """One file's settings as the chip stores them."""

    file_no: int
    size: int
    comm_mode: int
    read: int
    write: int
    read_write: int
    change: int
    sdm: SdmSettings | None = None

    @property
    def file_option(self) -> int:
        return (0x40 if self.sdm is not None else 0) | self.comm_mode

    @property
    def access_rights(self) -> bytes:
        """On-wire order (ref §4.1): (RW << 4 | Change), (Read << 4 | Write)."""
        return bytes([(self.read_write << 4) | self.change, (self.read << 4) | self.write])

    def change_body(self) -> bytes:
        """The settings in ChangeFileSettings layout: FileOption || AccessRights [|| SDM part]."""
        body = bytes([self.file_option]) + self.access_rights
        return body + (self.sdm.encode() if self.sdm is not None else b"")

    def without_sdm(self) -> FileSettings:
        """The same settings with SDM switched off (FileOption bit 6 cleared)."""
        return replace(self, sdm=None)

    def get_body(self) -> bytes:
        """GetFileSettings response: FileType 00 || FileOption || AccessRights || FileSize || SDM."""
        out = b"\x00" + bytes([self.file_option]) + self.access_rights + self.size.to_bytes(3, "little")
        return out + (self.sdm.encode() if self.sdm is not None else b"")


def factory_settings() -> dict[int, FileSettings]:
    """Delivery settings (ref §3.1 table): 01 Plain E/0/0/0, 02 Plain E/E/E/0, 03 Full 2/3/3/0."""
    return {
        1: FileSettings(1, SIZES[1], COMM_PLAIN, read=FREE, write=0, read_write=0, change=0),
        2: FileSettings(2, SIZES[2], COMM_PLAIN, read=FREE, write=FREE, read_write=FREE, change=0),
        3: FileSettings(3, SIZES[3], COMM_FULL, read=2, write=3, read_write=3, change=0),
    }


def factory_contents() -> dict[int, bytearray]:
    """Delivery contents: CC file per ref §3.2, NDEF and proprietary files all zero."""
    return {1: bytearray(FACTORY_CC), 2: bytearray(SIZES[2]), 3: bytearray(SIZES[3])}


def parse_settings(current: FileSettings, data: bytes, *, counter_after: int = 0, lrp: bool = False) -> FileSettings:
    """Decode and check ChangeFileSettings data for ``current``'s file; raise ChipStatus on error.

    ``counter_after`` is the SDMReadCtr the file will have once the settings apply (0 when SDM is
    being enabled, which resets the counter): SDMReadCtrLimit must be greater than it. ``lrp``:
    the chip is in LRP mode, where the encrypted PICC data mirror is 48 characters, not 32.
    """
    if len(data) < 3:
        raise ChipStatus(SW.LENGTH_ERROR)
    option = data[0]
    if option & 0xBC:  # bit 7 and bits 5..2 are RFU
        raise ChipStatus(SW.PARAMETER_ERROR)
    sdm_on = bool(option & 0x40)
    if sdm_on and current.file_no != SDM_FILE:
        raise ChipStatus(SW.PERMISSION_DENIED)
    rw, change = data[1] >> 4, data[1] & 0x0F
    read, write = data[2] >> 4, data[2] & 0x0F
    if not all(_valid_key_nibble(n) for n in (rw, change, read, write)):
        raise ChipStatus(SW.PARAMETER_ERROR)
    settings = replace(current, comm_mode=option & 0x03, read=read, write=write, read_write=rw,
                       change=change, sdm=None)
    if not sdm_on:
        if len(data) != 3:
            raise ChipStatus(SW.LENGTH_ERROR)
        return settings
    sdm = _parse_sdm(data[3:])
    _check_sdm(sdm, current.size, counter_after, PICC_ENC_ASCII_LEN_LRP if lrp else PICC_ENC_ASCII_LEN)
    return replace(settings, sdm=sdm)


def _parse_sdm(data: bytes) -> SdmSettings:
    if len(data) < 3:
        raise ChipStatus(SW.LENGTH_ERROR)
    options = data[0]
    if options & 0x0E or not options & OPT_ASCII:  # bits 3..1 RFU; only ASCII encoding exists
        raise ChipStatus(SW.PARAMETER_ERROR)
    rfu, ctr_ret = data[1] >> 4, data[1] & 0x0F
    meta_read, file_read = data[2] >> 4, data[2] & 0x0F
    if rfu != 0xF or not _valid_key_nibble(ctr_ret) or not _valid_key_nibble(meta_read):
        raise ChipStatus(SW.PARAMETER_ERROR)
    if not _valid_key_nibble(file_read, free_ok=False):  # SDMFileRead E is RFU
        raise ChipStatus(SW.PARAMETER_ERROR)
    rest = data[3:]

    def take() -> int:
        nonlocal rest
        if len(rest) < 3:
            raise ChipStatus(SW.LENGTH_ERROR)
        value, rest = int.from_bytes(rest[:3], "little"), rest[3:]
        return value

    fields: dict[str, int] = {}
    if meta_read == FREE:
        if options & OPT_UID:
            fields["uid_offset"] = take()
        if options & OPT_CTR:
            fields["ctr_offset"] = take()
    if meta_read <= 4:
        fields["picc_offset"] = take()
    if file_read != NEVER:
        fields["mac_input_offset"] = take()
        if options & OPT_ENC:
            fields["enc_offset"] = take()
            fields["enc_length"] = take()
        fields["mac_offset"] = take()
    if options & OPT_LIMIT:
        fields["ctr_limit"] = take()
    if rest:
        raise ChipStatus(SW.LENGTH_ERROR)
    return SdmSettings(options, meta_read, file_read, ctr_ret, **fields)


def _check_sdm(sdm: SdmSettings, size: int, counter_after: int, picc_len: int) -> None:
    """The §9.4 constraints; every violation is PARAMETER_ERROR (919E)."""

    def fail() -> None:
        raise ChipStatus(SW.PARAMETER_ERROR)

    windows: list[tuple[int, int]] = []
    if sdm.meta_read == NEVER and sdm.uid_enabled:
        fail()
    if sdm.meta_read != NEVER and not (sdm.uid_enabled or sdm.ctr_enabled):
        fail()
    if sdm.meta_read == FREE:
        if sdm.uid_enabled:
            assert sdm.uid_offset is not None
            if sdm.uid_offset > size - UID_ASCII_LEN:
                fail()
            windows.append((sdm.uid_offset, UID_ASCII_LEN))
        if sdm.ctr_enabled:
            assert sdm.ctr_offset is not None
            if sdm.ctr_offset != CTR_NOT_MIRRORED:
                if sdm.ctr_offset > size - CTR_ASCII_LEN:
                    fail()
                windows.append((sdm.ctr_offset, CTR_ASCII_LEN))
    elif sdm.meta_read <= 4:
        assert sdm.picc_offset is not None
        if sdm.picc_offset > size - picc_len:
            fail()
        windows.append((sdm.picc_offset, picc_len))
    if sdm.ctr_ret != NEVER and not sdm.ctr_enabled:
        fail()
    if sdm.enc_enabled and (sdm.file_read == NEVER or not (sdm.uid_enabled and sdm.ctr_enabled)):
        fail()
    if sdm.file_read != NEVER:
        assert sdm.mac_input_offset is not None and sdm.mac_offset is not None
        if sdm.mac_input_offset > sdm.mac_offset or sdm.mac_offset > size - MAC_ASCII_LEN:
            fail()
        if sdm.enc_enabled:
            assert sdm.enc_offset is not None and sdm.enc_length is not None
            if not sdm.mac_input_offset <= sdm.enc_offset <= sdm.mac_offset - 32:
                fail()
            if sdm.enc_length < 32 or sdm.enc_length % 32:
                fail()
            if sdm.enc_offset + sdm.enc_length > sdm.mac_offset:
                fail()
            windows.append((sdm.enc_offset, sdm.enc_length))
        windows.append((sdm.mac_offset, MAC_ASCII_LEN))
    if sdm.limit_enabled:
        assert sdm.ctr_limit is not None
        if not sdm.ctr_enabled or sdm.ctr_limit <= counter_after:
            fail()
    windows.sort()
    for (start_a, len_a), (start_b, _) in pairwise(windows):
        if start_a + len_a > start_b:
            fail()
