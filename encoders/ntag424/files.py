"""File settings of NTAG 424 DNA: access rights, SDM settings, GetFileSettings/ChangeFileSettings layouts.

Which SDM fields are on the wire depends on SDMOptions and the SDM access rights (docs/reference/ntag424.md §9.2);
absent fields are omitted, never zero-filled. Multi-byte values are LSB first. :meth:`FileSettings.validate`
checks the combinations the chip would refuse with 919E (§9.4) so a station fails before it sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from tagsmith import ConfigError

from .channel import CommMode
from .errors import ResponseError
from .sunscheme import AES_SUN

KEY_FREE = 0xE
KEY_NEVER = 0xF
NDEF_FILE_NO = 2
NDEF_FILE_SIZE = 256
# Mirror lengths in ASCII characters (docs/reference/ntag424.md §9.3); the encrypted PICC data's
# depends on the secure-messaging mode and comes from its SUN scheme (.sunscheme).
UID_LEN = 14
CTR_LEN = 6
MAC_LEN = 16
ENC_LEN_UNIT = 32  # SDMENCLength is a positive multiple of this (§9.4)
CTR_NOT_MIRRORED = 0xFFFFFF
_SDM_ENABLED = 0x40
CC_FILE_NO = 1
#: Byte of the capability container (file 01) holding the NDEF file's write access condition
#: (NFC Forum Type 4 Tag: 00 = write granted, FF = no write access; NT4H2421Gx data sheet, CC file content).
CC_NDEF_WRITE_ACCESS_OFFSET = 0x0E
CC_WRITE_GRANTED = 0x00
CC_NO_WRITE_ACCESS = 0xFF


def _check_key(name: str, value: int, *, allow_free: bool = True) -> None:
    if not (0 <= value <= 4 or value == KEY_NEVER or (allow_free and value == KEY_FREE)):
        raise ConfigError(f"{name} must be a key number 0..4{', E' if allow_free else ''} or F, got {value:X}")


def _le3(value: int, name: str) -> bytes:
    if not 0 <= value <= 0xFFFFFF:
        raise ConfigError(f"{name} must fit in 3 bytes, got {value}")
    return value.to_bytes(3, "little")


@dataclass(frozen=True)
class AccessRights:
    """File access conditions: key 0..4, E (free) or F (never) for each right."""

    read: int = KEY_FREE
    write: int = KEY_FREE
    read_write: int = KEY_FREE
    change: int = 0

    def __post_init__(self) -> None:
        for name in ("read", "write", "read_write", "change"):
            _check_key(f"access right {name}", getattr(self, name))

    @classmethod
    def from_bytes(cls, data: bytes) -> AccessRights:
        """Decode the 2 wire bytes: (RW << 4 | Change), (Read << 4 | Write)."""
        return cls(read=data[1] >> 4, write=data[1] & 0xF, read_write=data[0] >> 4, change=data[0] & 0xF)

    def to_bytes(self) -> bytes:
        """Encode LSB first as the chip expects."""
        return bytes([(self.read_write << 4) | self.change, (self.read << 4) | self.write])


def cc_ndef_write_access(access: AccessRights) -> int:
    """The CC's NDEF write access byte that tells a phone what ``access`` on the NDEF file enforces.

    A phone writes with unauthenticated ISO commands, so only a free (E) Write or ReadWrite right
    lets it write; anything else is "no write access" (FF), never a proprietary value, which some
    Android stacks refuse outright.
    """
    return CC_WRITE_GRANTED if KEY_FREE in (access.write, access.read_write) else CC_NO_WRITE_ACCESS


class SdmOptions(IntFlag):
    """SDMOptions byte: which mirrors are on; ASCII must always be set."""

    UID = 0x80
    READ_CTR = 0x40
    READ_CTR_LIMIT = 0x20
    ENC_FILE_DATA = 0x10
    ASCII = 0x01


_OFFSET_FIELDS = ("uid_offset", "read_ctr_offset", "picc_data_offset", "mac_input_offset",
                  "enc_offset", "enc_length", "mac_offset", "read_ctr_limit")


@dataclass(frozen=True)
class SdmSettings:
    """Secure Dynamic Messaging settings of the NDEF file; offsets count from file byte 0."""

    options: SdmOptions = SdmOptions.UID | SdmOptions.READ_CTR | SdmOptions.ASCII
    meta_read: int = KEY_NEVER
    file_read: int = KEY_NEVER
    ctr_ret: int = KEY_NEVER
    uid_offset: int | None = None
    read_ctr_offset: int | None = None
    picc_data_offset: int | None = None
    mac_input_offset: int | None = None
    enc_offset: int | None = None
    enc_length: int | None = None
    mac_offset: int | None = None
    read_ctr_limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", SdmOptions(self.options))
        _check_key("SDM meta_read", self.meta_read)
        _check_key("SDM file_read", self.file_read)
        _check_key("SDM ctr_ret", self.ctr_ret)

    @property
    def access_bytes(self) -> bytes:
        """SDMAccessRights on the wire: (RFU F << 4 | CtrRet), (MetaRead << 4 | FileRead)."""
        return bytes([0xF0 | self.ctr_ret, (self.meta_read << 4) | self.file_read])

    def present_fields(self) -> tuple[str, ...]:
        """Names of the offset fields the wire layout carries for these options and rights (§9.2)."""
        opts, names = self.options, []
        if SdmOptions.UID in opts and self.meta_read == KEY_FREE:
            names.append("uid_offset")
        if SdmOptions.READ_CTR in opts and self.meta_read == KEY_FREE:
            names.append("read_ctr_offset")
        if self.meta_read <= 4:
            names.append("picc_data_offset")
        if self.file_read != KEY_NEVER:
            names.append("mac_input_offset")
            if SdmOptions.ENC_FILE_DATA in opts:
                names += ["enc_offset", "enc_length"]
            names.append("mac_offset")
        if SdmOptions.READ_CTR_LIMIT in opts:
            names.append("read_ctr_limit")
        return tuple(names)

    def to_bytes(self) -> bytes:
        """Encode SDMOptions || SDMAccessRights || the present 3-byte fields, in data-sheet order."""
        present = self.present_fields()
        for name in _OFFSET_FIELDS:
            value = getattr(self, name)
            if name in present and value is None:
                raise ConfigError(f"SDM setting {name} is required with these options and key numbers")
            if name not in present and value is not None:
                raise ConfigError(f"SDM setting {name} is not sent with these options and key numbers; leave it unset")
        body = b"".join(_le3(getattr(self, name), name) for name in present)
        return bytes([self.options]) + self.access_bytes + body

    @classmethod
    def parse(cls, data: bytes) -> tuple[SdmSettings, int]:
        """Decode from the start of ``data``; return the settings and the number of bytes used."""
        if len(data) < 3:
            raise ResponseError("SDM settings are truncated")
        head = cls(options=SdmOptions(data[0]), meta_read=data[2] >> 4, file_read=data[2] & 0xF,
                   ctr_ret=data[1] & 0xF)
        present = head.present_fields()
        end = 3 + 3 * len(present)
        if len(data) < end:
            raise ResponseError("SDM settings are truncated")
        values = {name: int.from_bytes(data[3 + 3 * i:6 + 3 * i], "little") for i, name in enumerate(present)}
        return cls(options=head.options, meta_read=head.meta_read, file_read=head.file_read,
                   ctr_ret=head.ctr_ret, **values), end

    def validate(self, file_size: int = NDEF_FILE_SIZE, *, picc_data_len: int = AES_SUN.picc_data_chars) -> None:
        """Refuse what the chip would refuse with 919E (docs/reference/ntag424.md §9.4), naming the problem.

        ``picc_data_len`` is the encrypted PICC data mirror's length in the chip's mode (AES unless given).
        """
        self._validate_roles()
        self._validate_ranges(file_size, picc_data_len)
        self._validate_overlaps(picc_data_len)

    def _validate_roles(self) -> None:
        opts = self.options
        if SdmOptions.ASCII not in opts:
            raise ConfigError("SDM options must set ASCII encoding (bit 0); NTAG 424 DNA mirrors only ASCII")
        if int(opts) & 0x0E:
            raise ConfigError(f"SDM options {int(opts):02X} set reserved bits 3..1")
        if self.file_read == KEY_FREE:
            raise ConfigError("SDM file_read E is reserved: use a key 0..4 or F")
        mirrors_id = bool(opts & (SdmOptions.UID | SdmOptions.READ_CTR))
        if self.meta_read != KEY_NEVER and not mirrors_id:
            raise ConfigError("SDM meta_read is set but neither the UID nor the read counter is enabled")
        if self.meta_read == KEY_NEVER and SdmOptions.UID in opts:
            raise ConfigError("SDM UID mirror needs meta_read E (plain) or a key (encrypted PICC data), not F")
        if self.ctr_ret != KEY_NEVER and SdmOptions.READ_CTR not in opts:
            raise ConfigError("SDM ctr_ret is set but the read counter is not enabled")
        if SdmOptions.ENC_FILE_DATA in opts and (
            self.file_read == KEY_NEVER or (SdmOptions.UID | SdmOptions.READ_CTR) not in opts
        ):
            raise ConfigError("SDM encrypted file data needs a file_read key and both UID and counter mirrored")
        if SdmOptions.READ_CTR_LIMIT in opts and SdmOptions.READ_CTR not in opts:
            raise ConfigError("SDM read counter limit needs the read counter enabled")

    def _validate_ranges(self, size: int, picc_data_len: int) -> None:
        def at_most(name: str, value: int | None, limit: int, why: str) -> None:
            if value is not None and value > limit:
                raise ConfigError(f"SDM {name} {value} is beyond {limit} ({why})")

        at_most("uid_offset", self.uid_offset, size - UID_LEN, "the UID mirror must fit the file")
        if self.read_ctr_offset != CTR_NOT_MIRRORED:
            at_most("read_ctr_offset", self.read_ctr_offset, size - CTR_LEN, "the counter mirror must fit the file")
        at_most("picc_data_offset", self.picc_data_offset, size - picc_data_len, "the PICC data must fit the file")
        at_most("mac_offset", self.mac_offset, size - MAC_LEN, "the MAC must fit the file")
        if self.mac_offset is not None:
            at_most("mac_input_offset", self.mac_input_offset, self.mac_offset, "MAC input must start before the MAC")
        if self.enc_offset is not None:
            self._validate_enc(self.enc_offset)

    def _validate_enc(self, enc: int) -> None:
        length, mac, start = self.enc_length or 0, self.mac_offset or 0, self.mac_input_offset
        if start is not None and start > enc:
            raise ConfigError(f"SDM mac_input_offset {start} must not be after enc_offset {enc}")
        if length < ENC_LEN_UNIT or length % ENC_LEN_UNIT:
            raise ConfigError(f"SDM enc_length {length} must be a positive multiple of {ENC_LEN_UNIT}")
        if enc + length > mac:
            raise ConfigError(f"SDM encrypted data ({enc}+{length}) runs into the MAC at {mac}")

    def _validate_overlaps(self, picc_data_len: int) -> None:
        spans = [(name, start, length) for name, start, length in (
            ("UID mirror", self.uid_offset, UID_LEN),
            ("counter mirror", None if self.read_ctr_offset == CTR_NOT_MIRRORED else self.read_ctr_offset, CTR_LEN),
            ("PICC data", self.picc_data_offset, picc_data_len),
            ("encrypted data", self.enc_offset, self.enc_length or 0),
            ("MAC", self.mac_offset, MAC_LEN),
        ) if start is not None]
        for i, (name_a, a, len_a) in enumerate(spans):
            for name_b, b, len_b in spans[i + 1:]:
                if a < b + len_b and b < a + len_a:
                    raise ConfigError(f"SDM {name_a} at {a} overlaps the {name_b} at {b}")


@dataclass(frozen=True)
class FileSettings:
    """Settings of one file: communication mode, access rights, optional SDM; size as reported by the chip."""

    comm_mode: CommMode = CommMode.PLAIN
    access: AccessRights = field(default_factory=AccessRights)
    sdm: SdmSettings | None = None
    file_type: int = 0
    file_size: int | None = None

    @property
    def file_option(self) -> int:
        """FileOption byte: bit 6 SDM enabled, bits 1..0 CommMode."""
        return (_SDM_ENABLED if self.sdm else 0) | int(self.comm_mode)

    @classmethod
    def from_bytes(cls, data: bytes) -> FileSettings:
        """Decode a GetFileSettings response: FileType, FileOption, AccessRights, FileSize [, SDM]."""
        if len(data) < 7:
            raise ResponseError(f"GetFileSettings response of {len(data)} bytes is too short")
        option = data[1]
        comm = CommMode.FULL if option & 3 == 3 else CommMode.MAC if option & 3 == 1 else CommMode.PLAIN
        sdm, used = None, 7
        if option & _SDM_ENABLED:
            sdm, consumed = SdmSettings.parse(data[7:])
            used += consumed
        if used != len(data):
            raise ResponseError(f"GetFileSettings response has {len(data) - used} unexpected trailing bytes")
        return cls(comm_mode=comm, access=AccessRights.from_bytes(data[2:4]), sdm=sdm,
                   file_type=data[0], file_size=int.from_bytes(data[4:7], "little"))

    def to_change_bytes(self) -> bytes:
        """Encode the ChangeFileSettings CmdData: FileOption || AccessRights [|| SDM settings]."""
        tail = self.sdm.to_bytes() if self.sdm else b""
        return bytes([self.file_option]) + self.access.to_bytes() + tail

    def to_bytes(self) -> bytes:
        """Encode the GetFileSettings layout (needs ``file_size``), e.g. to compare with a chip's answer."""
        if self.file_size is None:
            raise ConfigError("file_size is needed for the GetFileSettings layout")
        change = self.to_change_bytes()
        return bytes([self.file_type]) + change[:3] + _le3(self.file_size, "file_size") + change[3:]

    def validate(self, file_no: int = NDEF_FILE_NO, *, picc_data_len: int = AES_SUN.picc_data_chars) -> None:
        """Refuse settings the chip would reject (SDM only on file 02, §9.4 constraints; PICC data length as in SdmSettings)."""
        if self.sdm is None:
            return
        if file_no != NDEF_FILE_NO:
            raise ConfigError(f"SDM can only be enabled on file 02 (the NDEF file), not file {file_no:02X}")
        self.sdm.validate(self.file_size or NDEF_FILE_SIZE, picc_data_len=picc_data_len)
