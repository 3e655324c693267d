"""ISO 7816-4 framing and NTAG 424 DNA status words (NT4H2421Gx §8.4, §10.3 table 23)."""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """Status words an NTAG 424 DNA returns: native (SW1 = 91) and ISO (CLA 00)."""

    OK = 0x9000
    OPERATION_OK = 0x9100
    ADDITIONAL_FRAME = 0x91AF
    AUTHENTICATION_ERROR = 0x91AE
    LENGTH_ERROR = 0x917E
    PERMISSION_DENIED = 0x919D
    PARAMETER_ERROR = 0x919E
    INTEGRITY_ERROR = 0x911E
    MEMORY_ERROR = 0x91EE
    COMMAND_ABORTED = 0x91CA
    AUTHENTICATION_DELAY = 0x91AD
    NO_SUCH_KEY = 0x9140
    FILE_NOT_FOUND = 0x91F0
    BOUNDARY_ERROR = 0x91BE
    ILLEGAL_COMMAND_CODE = 0x911C
    SIGNATURE_OK_ALT = 0x9190  # Read_Sig on silicon (AN12196 T30): a success
    ISO_WRONG_LENGTH = 0x6700
    ISO_SECURITY_STATUS = 0x6982
    ISO_CONDITIONS = 0x6985
    ISO_FILE_NOT_FOUND = 0x6A82
    ISO_WRONG_P1P2 = 0x6A86
    ISO_LC_INCONSISTENT = 0x6A87
    ISO_INS_NOT_SUPPORTED = 0x6D00
    ISO_CLA_NOT_SUPPORTED = 0x6E00
    ISO_MEMORY_FAILURE = 0x6581


def build_apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 0) -> bytes:
    """Build a short APDU; ``le=None`` omits Le (ISOUpdateBinary, ISOSelectFile P2=0C still sends one)."""
    if len(data) > 255:
        raise ValueError(f"short APDU data is at most 255 bytes, got {len(data)}")
    apdu = bytes([cla, ins, p1, p2])
    if data:
        apdu += bytes([len(data)]) + data
    if le is not None:
        apdu += bytes([le & 0xFF])
    return apdu


def native(ins: int, data: bytes = b"") -> bytes:
    """Wrap a native command: CLA 90, P1 = P2 = 00, Le 00 (DS §8.4)."""
    return build_apdu(0x90, ins, 0x00, 0x00, data, 0x00)
