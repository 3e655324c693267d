"""The one seam between chip protocol code and the outside world.

Protocol code (``encoders.ntag424``) talks to a chip only through :class:`Connection`:
bytes in, ``(data, status word)`` out. Transports (PC/SC, nfcpy, the simulator) implement it.
Like yubikit's ``SmartCardConnection.send_and_receive``, it never raises on a status word;
it raises only when the exchange itself fails (tag lifted, reader gone).
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from tagsmith import ReaderError

#: A log level below DEBUG for APDU traces (yubikit's TRAFFIC). Never used for key material:
#: secure-messaging plaintext is not logged, only wire bytes.
TRAFFIC = 5
logging.addLevelName(TRAFFIC, "TRAFFIC")


@runtime_checkable
class Connection(Protocol):
    """A link to one chip in the field."""

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return the response data and the 16-bit status word."""
        ...


class TagRemovedError(ReaderError):
    """The tag left the field during an exchange; what it committed before stays on the chip."""

    def __init__(self, message: str = "Tag lifted too early: place it again to finish") -> None:
        super().__init__(message)


class ReaderUnavailableError(ReaderError):
    """No PC/SC service, no matching reader, or the reader was unplugged."""


def split_response(response: bytes) -> tuple[bytes, int]:
    """Split a raw R-APDU into data and status word.

    A reply without a status word is what every reader gives when the tag left the field mid-command
    (pyscard's "no valid response", nfcpy's empty frame), so it means the tag was removed.
    """
    if len(response) < 2:
        raise TagRemovedError()
    return bytes(response[:-2]), (response[-2] << 8) | response[-1]


def log_traffic(logger: logging.Logger, direction: str, payload: bytes) -> None:
    """Log wire bytes at TRAFFIC level (cheap when disabled)."""
    if logger.isEnabledFor(TRAFFIC):
        logger.log(TRAFFIC, "%s %s", direction, payload.hex().upper())
