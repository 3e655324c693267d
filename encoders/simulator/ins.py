"""The instruction bytes the simulated chip answers.

Codes from the command list in ``docs/reference/ntag424.md`` §7 (NT4H2421Gx data sheet §10, T22);
native commands come with CLA 90, the ISO 7816-4 ones with CLA 00 (ref §2.1).
"""

from __future__ import annotations

from enum import IntEnum

CLA_ISO = 0x00
CLA_NATIVE = 0x90


class INS(IntEnum):
    """INS byte of every command the simulated chip knows."""

    # native commands
    ADDITIONAL_FRAME = 0xAF
    AUTHENTICATE_EV2_FIRST = 0x71
    AUTHENTICATE_EV2_NON_FIRST = 0x77
    GET_VERSION = 0x60
    GET_CARD_UID = 0x51
    GET_KEY_VERSION = 0x64
    CHANGE_KEY = 0xC4
    READ_SIG = 0x3C
    SET_CONFIGURATION = 0x5C
    GET_FILE_SETTINGS = 0xF5
    CHANGE_FILE_SETTINGS = 0x5F
    GET_FILE_COUNTERS = 0xF6
    READ_DATA = 0xAD
    WRITE_DATA = 0x8D
    # ISO 7816-4 commands
    ISO_SELECT_FILE = 0xA4
    ISO_READ_BINARY = 0xB0
    ISO_UPDATE_BINARY = 0xD6
