"""What a station needs from a reader, whichever library drives it.

A reader is opened by name (a PC/SC reader name or a unique part of one, or an nfcpy path such
as ``usb:072f:2200``, ``tty:USB0:pn532`` or ``udp:localhost:54321``). It hands out one
:class:`~tagsmith.encoders.connection.Connection` per placed tag and can wait for that tag to go.
The transports themselves live in ``encoders/pcsc.py`` and ``encoders/nfcpy.py``; this module
imports neither until a reader is opened, so it stays cheap and testable without a reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from tagsmith import ConfigError, NotFoundError, ReaderError

from .connection import Connection

#: nfcpy device path prefixes; anything else names a PC/SC reader.
NFCPY_PREFIXES = ("usb:", "tty:", "udp:", "com:")

#: PC/SC's pseudo-APDU to read the UID of the tag in the field (PC/SC part 3, GET DATA).
GET_UID_APDU = bytes.fromhex("FFCA000000")


class NoTagError(ReaderError):
    """No tag was placed (or removed) within the time allowed."""


class ReaderNotFoundError(NotFoundError):
    """No connected reader matches the name given."""


class AmbiguousReaderError(ConfigError):
    """The name given matches more than one reader."""


@dataclass(frozen=True)
class ReaderInfo:
    """One reader as listed: its name, whether a tag is in its field, and that tag's ATR."""

    name: str
    tag_present: bool
    atr: bytes | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "tag_present": self.tag_present,
                "atr": self.atr.hex().upper() if self.atr else None}


class Closeable:
    """What every transport's reader and tag connection share, written once: ``close()`` releases
    the link exactly once (a second call does nothing), ``with`` closes, and a closed connection
    refuses to be used. A subclass releases its link in :meth:`_release`."""

    closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._release()

    def _release(self) -> None:
        raise NotImplementedError

    def _require_open(self) -> None:
        if self.closed:
            raise ReaderError("Connection to the tag is closed")


@runtime_checkable
class TagConnection(Connection, Protocol):
    """A Connection to a tag a reader handed out; ``close`` releases it."""

    def get_uid(self) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Reader(Protocol):
    """A reader a station drives: one tag at a time."""

    name: str

    def tag_present(self) -> bool: ...

    def wait_for_tag(self, timeout: float | None = None) -> TagConnection: ...

    def wait_for_removal(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def select_reader(names: Iterable[str], wanted: str | None) -> str:
    """Pick one reader name: an exact match, else a unique case-insensitive substring.

    Never by position: pcscd lists readers in directory order, which is not stable. With no
    name given, the only reader is chosen; with several, the caller must name one.
    """
    names = list(names)
    if wanted is None:
        if len(names) == 1:
            return names[0]
        raise AmbiguousReaderError(f"{len(names)} readers connected, name one with --reader: {_quoted(names)}")
    if wanted in names:
        return wanted
    matches = [n for n in names if wanted.casefold() in n.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousReaderError(f"Reader name {wanted!r} matches {len(matches)} readers: {_quoted(matches)}")
    listed = f"connected: {_quoted(names)}" if names else "no reader is connected"
    raise ReaderNotFoundError(f"No reader matches {wanted!r} ({listed})")


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def is_nfcpy_path(name: str | None) -> bool:
    """True when ``name`` is an nfcpy device path rather than a PC/SC reader name."""
    return bool(name) and name.startswith(NFCPY_PREFIXES)  # type: ignore[union-attr]


def open_reader(name: str | None = None) -> Reader:
    """Open a reader: an nfcpy path (``usb:``, ``tty:``, ``udp:``) or a PC/SC reader name."""
    if is_nfcpy_path(name):
        from .nfcpy import NfcpyReader

        return NfcpyReader(name)  # type: ignore[arg-type]
    from .pcsc import open_reader as open_pcsc_reader

    return open_pcsc_reader(name)


def list_readers() -> list[ReaderInfo]:
    """List the PC/SC readers with whether a tag is present (nfcpy devices are not enumerated)."""
    from .pcsc import list_readers as list_pcsc_readers

    return list_pcsc_readers()
