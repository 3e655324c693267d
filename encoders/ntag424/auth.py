"""Authentication, whatever the secure-messaging mode (docs/reference/ntag424.md §5), without any I/O.

Every mode runs the same two-part exchange (INS 71 or 77, then AF): part 1 names the key and,
for AuthenticateFirst, the PCDcap2 that asks for the mode; the host answers the chip's challenge
with a cryptogram; the chip's last answer opens the mode's :class:`~.channel.SecureChannel`. A
mode is a module that implements :class:`Handshake` (AES: :mod:`.ev2`, LRP: :mod:`.lrp_messaging`), registered once in
:data:`HANDSHAKES`; the session looks it up there and never names a mode's classes.
"""

from __future__ import annotations

from typing import Protocol

from tagsmith import ConfigError

from . import ev2, lrp_messaging
from .channel import SecureChannel, SecureMessaging

KEY_LEN = 16


class PendingAuthentication(Protocol):
    """An authentication between part 1 and part 2: what to send, and how to read the answer."""

    @property
    def cryptogram(self) -> bytes:
        """Part 2's data, the host's answer to the chip's challenge."""
        ...

    def finish_first(self, response: bytes) -> SecureChannel:
        """Check AuthenticateFirst's last answer and open a channel: new TI, CmdCtr 0."""
        ...

    def finish_nonfirst(self, response: bytes, previous: SecureChannel) -> SecureChannel:
        """Check AuthenticateNonFirst's last answer and open a channel that keeps ``previous``'s TI and CmdCtr."""
        ...


class Handshake(Protocol):
    """One mode's authentication, implemented by a module (see :mod:`.ev2`)."""

    @property
    def PCD_CAPS(self) -> bytes:
        """PCDcap2 sent in AuthenticateFirst part 1 (empty: LenCap 00)."""
        ...

    @property
    def FIRST_COMMAND(self) -> str:
        """The data sheet's name of AuthenticateFirst in this mode, for errors and traces."""
        ...

    @property
    def NONFIRST_COMMAND(self) -> str:
        """The data sheet's name of AuthenticateNonFirst in this mode."""
        ...

    def answer_challenge(self, key: bytes, challenge: bytes, rnd_a: bytes) -> PendingAuthentication:
        """Read part 1's answer under ``key`` and build part 2 with the host's random ``rnd_a``."""
        ...


HANDSHAKES: dict[SecureMessaging, Handshake] = {SecureMessaging.AES: ev2, SecureMessaging.LRP: lrp_messaging}


def check_key(key: bytes) -> None:
    """Refuse anything but a 16-byte AES key before it reaches the chip."""
    if len(key) != KEY_LEN:
        raise ConfigError(f"AES-128 key must be 16 bytes, got {len(key)}")


def first_part1(handshake: Handshake, key_no: int) -> bytes:
    """AuthenticateFirst part 1's data: KeyNo || LenCap || PCDcap2 (§5.1, §5.4)."""
    return bytes([key_no, len(handshake.PCD_CAPS)]) + handshake.PCD_CAPS
