"""The secure-messaging seam: what a session needs from an authenticated channel (docs/reference/ntag424.md §5, §6).

An authentication opens a :class:`SecureChannel` for the mode the chip runs. The session only
protects commands, opens responses and advances the command counter; how (EV2 with AES, or LRP)
is the channel's business. :mod:`.ev2` is the AES implementation, :mod:`.lrp_messaging` the LRP
one, and :mod:`.auth` maps each :class:`SecureMessaging` mode to the module that authenticates in it.
"""

from __future__ import annotations

import hmac
from enum import IntEnum, StrEnum
from typing import Protocol

from .errors import NotAuthenticatedError, ResponseError

MACT_LEN = 8
MAX_CMD_CTR = 0xFFFF


class CommMode(IntEnum):
    """File communication mode (FileOption bits 1..0); 0b10 also means Plain on the chip."""

    PLAIN = 0
    MAC = 1
    FULL = 3


class SecureMessaging(StrEnum):
    """The secure-messaging mode a chip runs: AES (EV2) from the factory; LRP only after an irreversible switch (§5.4)."""

    AES = "aes"
    LRP = "lrp"


class SecureChannel(Protocol):
    """An authenticated session with the chip: transaction identifier, command counter and protection.

    ``protect`` uses the current counter ``n`` and ``unprotect`` the response's ``n + 1``; the session
    calls ``advanced`` once per command the chip accepted, Plain ones included (§6.1).
    """

    @property
    def mode(self) -> SecureMessaging:
        """Which secure messaging this channel runs (an AuthenticateNonFirst continues in it)."""
        ...

    @property
    def ti(self) -> bytes:
        """Transaction identifier, kept by AuthenticateNonFirst."""
        ...

    @property
    def cmd_ctr(self) -> int:
        """Command counter of the next command, kept by AuthenticateNonFirst."""
        ...

    def advanced(self) -> SecureChannel:
        """The channel after the chip accepted one command (counter + 1)."""
        ...

    def protect(self, ins: int, header: bytes, data: bytes, mode: CommMode) -> bytes:
        """Build the APDU data field of a command in ``mode`` (Plain, MAC or Full)."""
        ...

    def unprotect(self, payload: bytes, mode: CommMode, command: str, rc: int = 0x00) -> bytes:
        """Check (MAC, Full) and decrypt (Full) a response; return its plain data."""
        ...


class MessagingPrimitives(Protocol):
    """The four operations a mode defines; :func:`protect` and :func:`unprotect` frame them alike for every mode."""

    @property
    def cmd_ctr(self) -> int: ...

    def command_mac(self, ins: int, header: bytes, data: bytes) -> bytes: ...

    def response_mac(self, rc: int, data: bytes) -> bytes: ...

    def encrypt_command_data(self, data: bytes) -> bytes: ...

    def decrypt_response_data(self, data: bytes) -> bytes: ...


def protect(channel: MessagingPrimitives, ins: int, header: bytes, data: bytes, mode: CommMode) -> bytes:
    """The APDU data field: header || data (encrypted for Full) || MACt (MAC, Full) (docs/reference/ntag424.md §6)."""
    if channel.cmd_ctr >= MAX_CMD_CTR:
        raise NotAuthenticatedError("command counter exhausted: authenticate again")
    if mode is CommMode.PLAIN:
        return header + data
    if mode is CommMode.FULL and data:
        data = channel.encrypt_command_data(data)
    return header + data + channel.command_mac(ins, header, data)


def unprotect(channel: MessagingPrimitives, payload: bytes, mode: CommMode, command: str, rc: int = 0x00) -> bytes:
    """Check the response MACt (MAC, Full) and decrypt (Full); the plain response data."""
    if mode is CommMode.PLAIN:
        return payload
    if len(payload) < MACT_LEN:
        raise ResponseError(f"{command}: response of {len(payload)} bytes lacks its MAC")
    data, mac = payload[:-MACT_LEN], payload[-MACT_LEN:]
    if not hmac.compare_digest(mac, channel.response_mac(rc, data)):
        raise ResponseError(f"{command}: response MAC does not verify")
    if mode is CommMode.FULL and data:
        return channel.decrypt_response_data(data)
    return data
