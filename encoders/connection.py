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

#: A log level below DEBUG for APDU traces (yubikit's TRAFFIC). Only the protocol session writes
#: them (it knows which frames carry key material, see :func:`log_command`); transports log no bytes.
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


def _redacted(length: int, reason: str) -> str:
    return f"<{length} byte{'' if length == 1 else 's'} redacted: {reason}>"


def format_command(apdu: bytes, secret: str | None = None) -> str:
    """A C-APDU as hex; with ``secret`` (why), the data field is replaced by its length.

    CLA INS P1 P2, Lc and Le stay, so a redacted trace still shows which command went out and how long
    it was. The APDU is taken apart as a short ISO 7816-4 APDU (what :func:`~tagsmith.encoders.apdu.build_apdu` makes).
    """
    if secret is None or len(apdu) <= 5:
        return apdu.hex().upper()
    header, lc = apdu[:4], apdu[4]
    body, trailer = apdu[5:5 + lc], apdu[5 + lc:]
    parts = [header.hex().upper(), f"{lc:02X}", _redacted(len(body), secret)]
    return " ".join(parts + ([trailer.hex().upper()] if trailer else []))


def format_response(data: bytes, sw: int, secret: str | None = None) -> str:
    """An R-APDU as hex; with ``secret`` (why) and data present, the data is replaced by its length."""
    if secret is None or not data:
        return (data + sw.to_bytes(2, "big")).hex().upper()
    return f"{_redacted(len(data), secret)} {sw:04X}"


def log_command(logger: logging.Logger, apdu: bytes, secret: str | None = None) -> None:
    """Log a C-APDU at TRAFFIC level (cheap when disabled); ``secret`` redacts its data field."""
    if logger.isEnabledFor(TRAFFIC):
        logger.log(TRAFFIC, "SEND %s", format_command(apdu, secret))


def log_response(logger: logging.Logger, data: bytes, sw: int, secret: str | None = None) -> None:
    """Log an R-APDU at TRAFFIC level (cheap when disabled); ``secret`` redacts its data."""
    if logger.isEnabledFor(TRAFFIC):
        logger.log(TRAFFIC, "RECV %s", format_response(data, sw, secret))
