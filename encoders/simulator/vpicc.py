"""Serve simulated chips to pcscd's virtual reader driver (vsmartcard vpcd), standard library only.

vpcd in server mode (``DEVICENAME /dev/null:PORT``) listens on PORT; a card "enters the field"
by connecting and "leaves" by closing the connection. Both directions use frames of a 2-byte
big-endian length and that many bytes. A 1-byte frame from vpcd is a control byte (00 power off,
01 power on, 02 reset: no reply; 04: reply with the ATR); a longer one is a command APDU, answered
with one frame of response data + SW1 SW2.

Two pitfalls of Debian's vpcd 0.8 shape this module (docs/reference/pcsc-virtual-reader.md §4, §5):
it writes the length and the payload in two ``send()`` calls without TCP_NODELAY, so unless the
card sets TCP_QUICKACK before *every* ``recv()`` each APDU stalls ~44 ms on a delayed ACK; and
a zero-length reply hangs the reader's ``SCardTransmit`` for ever, so a reply always carries SW.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tagsmith.encoders.connection import ReaderUnavailableError, TagRemovedError

log = logging.getLogger(__name__)

#: PC/SC part 3 pseudo-ATR of an ISO 14443-4A card whose ATS has one historical byte, 0x80.
ATR = bytes.fromhex("3B8180018080")
DEFAULT_PORT = 35963

#: How long a slot stays empty before the next card may enter: pcscd polls presence every 400 ms
#: and must see the empty slot once, or a card re-placed at once after a tear is never powered up.
MIN_ABSENCE = 0.6
_left_at: dict[tuple[str, int], float] = {}

CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET, CTRL_GET_ATR = 0x00, 0x01, 0x02, 0x04
SW_OK, SW_FUNCTION_NOT_SUPPORTED, SW_NO_PRECISE_DIAGNOSIS = 0x9000, 0x6A81, 0x6F00


class Chip(Protocol):
    """What vpicc needs from a simulated chip: a Connection, plus optionally ``place()`` and ``uid``."""

    def transceive(self, apdu: bytes) -> tuple[bytes, int]: ...


def _sw(sw: int) -> bytes:
    return struct.pack(">H", sw)


def chip_uid(chip: Chip) -> bytes | None:
    """The chip's UID if it exposes one (``uid`` attribute), else None."""
    uid = getattr(chip, "uid", None)
    return bytes(uid) if uid is not None else None


def reenter_field(chip: Chip) -> None:
    """Reset the chip's volatile state as a field loss does (its ``place()``), if it has one."""
    place = getattr(chip, "place", None)
    if callable(place):
        place()


def leave_field(chip: Chip) -> None:
    """Tell the chip it left the field (its ``remove()``), if it has one."""
    remove = getattr(chip, "remove", None)
    if callable(remove):
        remove()


class VirtualCard:
    """One chip in one vpcd slot: connected means in the field, closed means removed.

    ``tear_at`` closes the connection instead of answering the APDU with that 0-based index in
    this placement (the tag left the field before the chip saw the command); ``tear_rate`` does
    so at random for any APDU. If the chip itself raises TagRemovedError, the card leaves too.
    ``done`` is set once the reader side has finished with the chip: it powered the chip off
    (pcscd does on ``SCardDisconnect(UNPOWER)``) after at least one APDU, or, with
    ``idle_timeout``, no APDU came for that long after the first.
    """

    def __init__(self, chip: Chip, port: int = DEFAULT_PORT, host: str = "127.0.0.1", *,
                 atr: bytes = ATR, tear_at: int | None = None, tear_rate: float = 0.0,
                 idle_timeout: float | None = None, rng: random.Random | None = None) -> None:
        self.chip, self.port, self.host, self.atr = chip, port, host, atr
        self.tear_at, self.tear_rate, self.idle_timeout = tear_at, tear_rate, idle_timeout
        self._rng = rng or random.Random()
        self.apdus = 0
        self.torn = False
        self.done = threading.Event()
        self.gone = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._last_apdu = 0.0

    def __repr__(self) -> str:
        uid = chip_uid(self.chip)
        return f"VirtualCard({uid.hex().upper() if uid else '?'} on port {self.port})"

    def __enter__(self) -> VirtualCard:
        return self.place()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def place(self, timeout: float = 5.0) -> VirtualCard:
        """Put the chip in the field: connect to vpcd (retrying while pcscd starts up)."""
        wait = _left_at.get((self.host, self.port), 0.0) + MIN_ABSENCE - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ReaderUnavailableError(
                        f"No virtual reader listens on {self.host}:{self.port} (is pcscd running with "
                        f"vsmartcard-vpcd configured for that port?): {exc.strerror or exc}") from None
                time.sleep(0.05)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(0.5 if self.idle_timeout else None)
        reenter_field(self.chip)
        self._sock, self.apdus, self.torn = sock, 0, False
        self.done.clear()
        self.gone.clear()
        self._thread = threading.Thread(target=self._serve, name=repr(self), daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        """Take the chip out of the field (close the connection) and wait for the server thread."""
        self._close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            _left_at[(self.host, self.port)] = time.monotonic()
            leave_field(self.chip)
        self.gone.set()

    def _recv_exact(self, sock: socket.socket, size: int) -> bytes | None:
        buf = b""
        while len(buf) < size:
            # vpcd 0.8 sends length and payload separately without TCP_NODELAY: ACK at once,
            # every time (Linux clears QUICKACK by itself), or each APDU waits ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            try:
                chunk = sock.recv(size - len(buf))
            except TimeoutError:
                if not buf and self._idle_expired():
                    return None
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _idle_expired(self) -> bool:
        if self.idle_timeout and self.apdus and time.monotonic() - self._last_apdu > self.idle_timeout:
            self.done.set()
            return True
        return False

    def _serve(self) -> None:
        sock = self._sock
        try:
            while sock is not None:
                header = self._recv_exact(sock, 2)
                frame = header and self._recv_exact(sock, struct.unpack(">H", header)[0])
                if not frame:
                    break
                reply = self._control(frame[0]) if len(frame) == 1 else self._apdu(frame)
                if reply is None and len(frame) > 1:
                    break  # torn: the reader gets no answer, only a closed connection
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
                if self._idle_expired():  # pcscd's presence polls keep recv() busy: check here too
                    break
        except OSError:
            pass
        finally:
            self._close()

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_GET_ATR:
            return self.atr
        if code in (CTRL_POWER_OFF, CTRL_RESET):
            reenter_field(self.chip)
            if code == CTRL_POWER_OFF and self.apdus:
                self.done.set()
        return None

    def _apdu(self, apdu: bytes) -> bytes | None:
        index, self.apdus = self.apdus, self.apdus + 1
        self._last_apdu = time.monotonic()
        if index == self.tear_at or (self.tear_rate and self._rng.random() < self.tear_rate):
            log.debug("%r: torn at APDU #%d", self, index)
            self.torn = True
            return None
        if apdu[0] == 0xFF:  # a reader pseudo-APDU: the reader answers it, the chip never sees it
            return self._reader_apdu(apdu)
        try:
            data, sw = self.chip.transceive(apdu)
        except TagRemovedError:
            self.torn = True
            return None
        except Exception:  # a simulator bug must not hang the reader: answer, never stay silent
            # the header only: the data field may be an authentication or ChangeKey payload
            log.exception("%r: chip failed on an APDU with header %s (%d bytes)", self, apdu[:4].hex(), len(apdu))
            return _sw(SW_NO_PRECISE_DIAGNOSIS)
        return bytes(data) + _sw(sw)

    def _reader_apdu(self, apdu: bytes) -> bytes:
        uid = chip_uid(self.chip)
        if apdu[1] == 0xCA and apdu[2] == 0x00 and uid:  # GET DATA: UID
            return uid + _sw(SW_OK)
        return _sw(SW_FUNCTION_NOT_SUPPORTED)


@dataclass
class Placement:
    """One chip's stay on the reader, as the server reports it."""

    number: int
    uid: bytes | None
    apdus: int = 0
    torn: bool = False


@dataclass
class VpiccServer:
    """Present chips to one vpcd slot one after another, like an operator feeding a station.

    Each chip stays until the reader side is done with it (see :class:`VirtualCard`), leaves,
    and after ``gap`` seconds (longer than pcscd's 400 ms presence poll, so the empty field is
    seen) the next one arrives. A torn chip is placed again, as an operator would, and keeps its
    state: pass the same object twice to place one chip twice. ``tear_at`` maps a placement
    number (0-based, re-placements not counted) to the APDU index that tears it.
    """

    port: int
    chips: Iterable[Chip]
    host: str = "127.0.0.1"
    gap: float = MIN_ABSENCE
    idle_timeout: float | None = None
    tear_at: dict[int, int] = field(default_factory=dict)
    tear_rate: float = 0.0
    on_event: Callable[[str, Placement], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    placements: list[Placement] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._card: VirtualCard | None = None
        self.error: BaseException | None = None

    def start(self) -> VpiccServer:
        """Serve in a background thread; see :meth:`stop` and :meth:`join`."""
        self._thread = threading.Thread(target=self._run_catching, name=f"vpicc:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop presenting chips; the chip in the field leaves."""
        self._stop.set()
        if self._card is not None:
            self._card.remove()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Serving in its background thread (:meth:`start`)."""
        return self._thread is not None and self._thread.is_alive()

    def _run_catching(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # surfaced to the test or CLI through .error
            self.error = exc

    def _emit(self, what: str, placement: Placement) -> None:
        if self.on_event is not None:
            self.on_event(what, placement)

    def run(self) -> list[Placement]:
        """Present every chip in turn; return the placements. Stops early on :meth:`stop`."""
        for number, chip in enumerate(self.chips):
            if self._stop.is_set():
                break
            tear_at = self.tear_at.get(number)
            while not self._stop.is_set():
                placement = self._present(number, chip, tear_at)
                tear_at = None
                if not placement.torn:
                    break
            self._stop.wait(self.gap)
        return self.placements

    def _present(self, number: int, chip: Chip, tear_at: int | None) -> Placement:
        card = VirtualCard(chip, self.port, self.host, tear_at=tear_at, tear_rate=self.tear_rate,
                           idle_timeout=self.idle_timeout, rng=self.rng)
        placement = Placement(number, chip_uid(chip))
        self.placements.append(placement)
        self._card = card.place()
        self._emit("placed", placement)
        while not (card.done.is_set() or card.gone.is_set() or self._stop.is_set()):
            card.gone.wait(0.05)
        card.remove()
        placement.apdus, placement.torn = card.apdus, card.torn
        self._emit("torn" if card.torn else "removed", placement)
        if card.torn:
            self._stop.wait(self.gap)
        return placement
