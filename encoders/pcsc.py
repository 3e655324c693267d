"""PC/SC readers through pyscard: the only module that imports ``smartcard``.

It uses pyscard's thin ``smartcard.scard`` layer (one PC/SC context per reader, status codes
instead of exceptions) rather than ``CardConnection``: that keeps one code path for errors, and
avoids ``PCSCCardConnection.__del__`` printing "Exception ignored" to stderr when pcscd is gone.
Every PC/SC failure becomes one of three errors: :class:`TagRemovedError` (the tag left the
field: 0x80100016, 0x80100069, or a successful call with no response), :class:`ReaderUnavailableError`
(no service, no reader, reader unplugged), or :class:`~tagsmith.encoders.reader.NoTagError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from smartcard import scard
from smartcard.Exceptions import SmartcardException
from smartcard.pcsc.PCSCExceptions import BaseSCardException

from tagsmith import ReaderError

from .connection import ReaderUnavailableError, TagRemovedError, split_response
from .reader import GET_UID_APDU, Closeable, NoTagError, ReaderInfo, select_reader

#: How long one blocking PC/SC wait lasts, so Ctrl-C and deadlines are honoured between slices.
_WAIT_SLICE_MS = 250

_TAG_GONE = {
    scard.SCARD_E_NOT_TRANSACTED,  # removed before pcscd's next presence poll
    scard.SCARD_W_REMOVED_CARD,  # removed, and pcscd has noticed
    scard.SCARD_W_RESET_CARD,  # reset under us: the chip's session state is gone all the same
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_E_COMM_DATA_LOST,
}
_SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_F_COMM_ERROR}
_READER_GONE = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE}
_PROTOCOL_HEADER = {scard.SCARD_PROTOCOL_T0: scard.SCARD_PCI_T0, scard.SCARD_PROTOCOL_T1: scard.SCARD_PCI_T1}


def _code(hresult: int) -> str:
    return f"0x{hresult & 0xFFFFFFFF:08X}"


def _fail(hresult: int, doing: str, reader: str | None = None) -> NoReturn:
    """Raise the one tagsmith error that a failed PC/SC call means."""
    hresult &= 0xFFFFFFFF
    if hresult in _SERVICE_GONE:
        raise ReaderUnavailableError(
            f"PC/SC service not available while {doing}: is pcscd running? ({_code(hresult)})")
    if hresult in _READER_GONE:
        raise ReaderUnavailableError(f"Reader {reader!r} is no longer available (unplugged?) ({_code(hresult)})")
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        raise ReaderUnavailableError("No PC/SC reader is connected")
    if hresult in _TAG_GONE:
        raise TagRemovedError()
    raise ReaderError(f"PC/SC error while {doing}: {scard.SCardGetErrorMessage(hresult).strip()} ({_code(hresult)})")


@contextmanager
def _pyscard_errors(doing: str, reader: str | None = None) -> Iterator[None]:
    """Map either pyscard exception family to a tagsmith error, by its status code."""
    try:
        yield
    except (SmartcardException, BaseSCardException) as exc:  # not one hierarchy: catch both
        hresult = getattr(exc, "hresult", -1)
        if isinstance(hresult, int) and hresult >= 0:
            _fail(hresult, doing, reader)
        raise ReaderError(f"PC/SC error while {doing}: {exc}") from exc


def _establish_context() -> int:
    with _pyscard_errors("connecting to pcscd"):
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        _fail(hresult, "connecting to pcscd")
    return context


def _release_context(context: int) -> None:
    try:
        scard.SCardReleaseContext(context)
    except (SmartcardException, BaseSCardException):  # pcscd already gone: nothing to release
        pass


def _reader_names(context: int) -> list[str]:
    with _pyscard_errors("listing readers"):
        hresult, names = scard.SCardListReaders(context, [])
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        _fail(hresult, "listing readers")
    return list(names)


def _states(context: int, names: list[str], timeout_ms: int = 0) -> list[tuple[str, int, bytes]]:
    """Current (name, event state, ATR) of each reader; an empty list when the wait timed out."""
    with _pyscard_errors("reading reader state"):
        hresult, states = scard.SCardGetStatusChange(
            context, timeout_ms, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
    if hresult == scard.SCARD_E_TIMEOUT:
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        _fail(hresult, "reading reader state", names[0] if len(names) == 1 else None)
    return [(name, event, bytes(atr)) for name, event, atr in states]


def list_readers() -> list[ReaderInfo]:
    """List the PC/SC readers, each with whether a tag is in its field."""
    context = _establish_context()
    try:
        names = _reader_names(context)
        if not names:
            return []
        return [ReaderInfo(name, bool(event & scard.SCARD_STATE_PRESENT),
                           atr if event & scard.SCARD_STATE_PRESENT else None)
                for name, event, atr in _states(context, names)]
    finally:
        _release_context(context)


def open_reader(name: str | None = None) -> PcscReader:
    """Open the reader whose name is ``name`` exactly, or contains it (case-insensitive)."""
    context = _establish_context()
    try:
        names = _reader_names(context)
        if not names and name is None:
            raise ReaderUnavailableError("No PC/SC reader is connected")
        return PcscReader(select_reader(names, name), context)
    except BaseException:
        _release_context(context)
        raise


class PcscReader(Closeable):
    """One PC/SC reader: waits for tags and hands out a :class:`PcscConnection` per tag."""

    def __init__(self, name: str, context: int) -> None:
        self.name = name
        self._context = context

    def __repr__(self) -> str:
        return f"PcscReader({self.name!r})"

    def _release(self) -> None:
        """Release the PC/SC context (and with it any connection still open)."""
        _release_context(self._context)

    def _event(self, timeout_ms: int, known: int) -> int | None:
        with _pyscard_errors("waiting for the reader", self.name):
            hresult, states = scard.SCardGetStatusChange(self._context, timeout_ms, [(self.name, known)])
        if hresult == scard.SCARD_E_TIMEOUT:
            return None
        if hresult != scard.SCARD_S_SUCCESS:
            _fail(hresult, "waiting for the reader", self.name)
        event = states[0][1]
        if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            _fail(scard.SCARD_E_READER_UNAVAILABLE, "waiting for the reader", self.name)
        return event & ~scard.SCARD_STATE_CHANGED

    def _wait(self, present: bool, deadline: float | None) -> bool:
        """Wait until the field is (or is not) occupied; False when ``deadline`` passed first."""
        known = scard.SCARD_STATE_UNAWARE
        while True:
            left_ms = _WAIT_SLICE_MS if deadline is None else int(max(0.0, deadline - time.monotonic()) * 1000)
            event = self._event(min(_WAIT_SLICE_MS, left_ms), known)
            if event is not None:
                if bool(event & scard.SCARD_STATE_PRESENT) == present:
                    return True
                known = event
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def tag_present(self) -> bool:
        """Whether a tag is in the field now."""
        event = self._event(0, scard.SCARD_STATE_UNAWARE)
        return bool(event is not None and event & scard.SCARD_STATE_PRESENT)

    def connect(self) -> PcscConnection:
        """Connect to the tag in the field now."""
        with _pyscard_errors("connecting to the tag", self.name):
            hresult, card, protocol = scard.SCardConnect(
                self._context, self.name, scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hresult != scard.SCARD_S_SUCCESS:
            _fail(hresult, "connecting to the tag", self.name)
        return PcscConnection(self.name, card, protocol)

    def wait_for_tag(self, timeout: float | None = None) -> PcscConnection:
        """Wait until a tag is placed, then connect to it; ``timeout=None`` waits for ever."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._wait(True, deadline):
            try:
                return self.connect()
            except TagRemovedError:  # lifted again between detection and connect: keep waiting
                continue
        raise NoTagError(f"No tag placed on reader {self.name!r} within {timeout:g} s")

    def wait_for_removal(self, timeout: float | None = None) -> None:
        """Wait until the field is empty (close the tag's connection first)."""
        if not self._wait(False, None if timeout is None else time.monotonic() + timeout):
            raise NoTagError(f"Tag not removed from reader {self.name!r} within {timeout:g} s")


class PcscConnection(Closeable):
    """A connection to one tag through PC/SC; implements :class:`~tagsmith.encoders.Connection`."""

    def __init__(self, reader: str, card: int, protocol: int) -> None:
        self.reader = reader
        self._card = card
        self._header = _PROTOCOL_HEADER.get(protocol, scard.SCARD_PCI_T1)

    def __repr__(self) -> str:
        return f"PcscConnection({self.reader!r})"

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return the response data and status word."""
        self._require_open()
        with _pyscard_errors("talking to the tag", self.reader):
            hresult, response = scard.SCardTransmit(self._card, self._header, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            _fail(hresult, "talking to the tag", self.reader)
        response = bytes(response)
        return split_response(response)

    def get_uid(self) -> bytes:
        """Read the tag's UID with the reader's GET DATA pseudo-APDU (FF CA 00 00 00)."""
        data, sw = self.transceive(GET_UID_APDU)
        if sw != 0x9000 or not data:
            raise ReaderError(f"Reader {self.reader!r} cannot read the UID (GET DATA answered SW {sw:04X})")
        return data

    def get_atr(self) -> bytes:
        """The ATR the reader built for this tag (PC/SC part 3 pseudo-ATR for contactless)."""
        with _pyscard_errors("reading the ATR", self.reader):
            hresult, _name, _state, _protocol, atr = scard.SCardStatus(self._card)
        if hresult != scard.SCARD_S_SUCCESS:
            _fail(hresult, "reading the ATR", self.reader)
        return bytes(atr)

    def _release(self) -> None:
        """Disconnect and power the tag down (its volatile session state ends)."""
        try:
            scard.SCardDisconnect(self._card, scard.SCARD_UNPOWER_CARD)
        except (SmartcardException, BaseSCardException):  # tag or service gone: nothing to do
            pass
