"""The secure-messaging seam: what a session needs from an authenticated channel (docs/reference/ntag424.md §5, §6).

An authentication opens a :class:`SecureChannel` for the mode the chip runs. The session only
protects commands, opens responses and advances the command counter; how (EV2 with AES, or LRP)
is the channel's business. :mod:`.ev2` is the AES implementation, :mod:`.lrp_messaging` the LRP
one, and :mod:`.auth` maps each :class:`SecureMessaging` mode to the module that authenticates in it.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Protocol

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
