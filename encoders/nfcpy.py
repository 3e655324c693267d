"""Readers that nfcpy drives directly (USB PN53x, ACR122U, RC-S380, serial PN532, ``udp:``).

The only module that imports ``nfc``. The reader side activates an ISO 14443-4A tag and sends
APDUs with ``Type4Tag.transceive`` (``send_apdu`` would reject NTAG 424's 0x91xx status words).
Every nfcpy link failure (``Type4TagCommandError`` timeouts and protocol errors, ``BrokenLinkError``)
means the tag left the field and becomes one :class:`TagRemovedError`; a device that cannot be
opened or vanishes becomes :class:`ReaderUnavailableError`.

The card side, :class:`Type4Emulator`, serves a simulated chip as an ISO-DEP card through an
nfcpy device that can listen as Type A, which includes nfcpy's ``udp`` driver: nfcpy emulates only
Type 3 cards itself. It lives here rather than under tests/ because it imports ``nfc`` (this is
that import's one home) and because ``bench/transport.py`` runs it too.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import nfc
import nfc.clf
import nfc.tag
from nfc.clf import LocalTarget, RemoteTarget
from nfc.tag.tt4 import Type4Tag

from .connection import ReaderUnavailableError, TagRemovedError, split_response
from .reader import Closeable, NoTagError

log = logging.getLogger(__name__)
# nfcpy logs every frame it exchanges in hex at DEBUG (Type4Tag.transceive, the clf, the udp driver),
# authentication and ChangeKey frames included; the session's TRAFFIC trace, which redacts those, is
# the one APDU trace, so nfcpy's own loggers stay at INFO whatever -v asks for.
logging.getLogger("nfc").setLevel(logging.INFO)

#: ISO 14443-4 ATS of NTAG 424 DNA: FSCI 7 (128 bytes), FWI 7 (38.7 ms), one historical byte 0x80.
ATS = bytes.fromhex("067777710280")
_SENSE_INTERVAL = 0.1


@contextmanager
def _nfcpy_errors(reader: str) -> Iterator[None]:
    """Map nfcpy's link failures to TagRemovedError and device failures to ReaderUnavailableError."""
    try:
        yield
    except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
        log.debug("link lost on %s: %s", reader, exc)
        raise TagRemovedError() from exc
    except OSError as exc:  # nfcpy raises IOError(ENODEV) once the device is gone
        raise ReaderUnavailableError(f"Reader {reader!r} is no longer available (unplugged?): {exc}") from exc


class NfcpyConnection(Closeable):
    """A connection to one ISO-DEP tag through nfcpy; implements :class:`~tagsmith.encoders.Connection`.

    ``timeout`` overrides the frame waiting time taken from the tag's ATS (seconds per block).
    """

    def __init__(self, reader: str, tag: Type4Tag, timeout: float | None = None) -> None:
        self.reader = reader
        self._tag = tag
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"NfcpyConnection({self.reader!r})"

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return the response data and status word."""
        self._require_open()
        with _nfcpy_errors(self.reader):
            response = self._tag.transceive(bytearray(apdu), self.timeout)
        response = bytes(response or b"")
        return split_response(response)

    def get_uid(self) -> bytes:
        """The UID the tag gave during anticollision."""
        self._require_open()
        return bytes(self._tag.identifier)

    def _release(self) -> None:
        """Deselect the tag (S(DESELECT)); its volatile session state ends."""
        try:
            self._tag.clf.exchange(bytearray(b"\xc2"), 0.1)
        except (nfc.clf.CommunicationError, OSError):
            pass


def _refuse_named_udp_port(path: str) -> None:
    """nfcpy's ``udp`` driver turns the port back into a name through the services database and then
    reads that name as a number, so a port listed there (60179 is ``fido``) fails with "invalid literal
    for int()"; say what to change instead."""
    kind, _, rest = path.partition(":")
    port = rest.rpartition(":")[2]
    if kind != "udp" or not port.isdigit():
        return
    try:
        name = socket.getservbyport(int(port), "udp")
    except (OSError, OverflowError):
        return
    raise ReaderUnavailableError(
        f"nfcpy's udp driver cannot use port {port}: the services database names it {name!r}; pick another port")


def free_udp_path(host: str = "127.0.0.1") -> str:
    """A ``udp:host:port`` path on a port free now and usable by nfcpy's udp driver (for the
    emulator, tests and benches)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            path = f"udp:{host}:{probe.getsockname()[1]}"
        try:
            _refuse_named_udp_port(path)
        except ReaderUnavailableError:
            continue
        return path


class NfcpyReader(Closeable):
    """A reader nfcpy opens by path (``usb:072f:2200``, ``tty:USB0:pn532``, ``udp:host:port``)."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        self.name = path
        self.timeout = timeout
        _refuse_named_udp_port(path)
        self._clf = nfc.ContactlessFrontend()
        try:
            opened = self._clf.open(path)
        except (OSError, ValueError) as exc:  # nfcpy's drivers parse the path themselves: bad parts are ValueErrors
            raise ReaderUnavailableError(f"Cannot open nfcpy reader {path!r}: {exc}") from exc
        if not opened:
            raise ReaderUnavailableError(f"No nfcpy reader found at {path!r}")

    def __repr__(self) -> str:
        return f"NfcpyReader({self.name!r})"

    def _release(self) -> None:
        self._clf.close()

    def _sense(self, iterations: int = 1) -> Type4Tag | None:
        with _nfcpy_errors(self.name):
            target = self._clf.sense(RemoteTarget("106A"), iterations=iterations, interval=_SENSE_INTERVAL)
            if target is None:
                return None
            try:
                tag = nfc.tag.activate(self._clf, target)
            except nfc.clf.CommunicationError:
                return None
        return tag if isinstance(tag, Type4Tag) else None

    def tag_present(self) -> bool:
        """Whether an ISO-DEP tag answers in the field now."""
        return self._sense(iterations=2) is not None  # one missed poll is not an empty field

    def wait_for_tag(self, timeout: float | None = None) -> NfcpyConnection:
        """Wait until an ISO-DEP tag is placed and activate it; ``timeout=None`` waits for ever."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            tag = self._sense()
            if tag is not None:
                return NfcpyConnection(self.name, tag, self.timeout)
            if deadline is not None and time.monotonic() >= deadline:
                raise NoTagError(f"No tag placed on reader {self.name!r} within {timeout:g} s")
            time.sleep(_SENSE_INTERVAL)

    def wait_for_removal(self, timeout: float | None = None) -> None:
        """Wait until no tag answers in the field."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._sense(iterations=2) is not None:
            if deadline is not None and time.monotonic() >= deadline:
                raise NoTagError(f"No tag removed from reader {self.name!r} within {timeout:g} s")
            time.sleep(_SENSE_INTERVAL)


class _IsoDepCard:
    """The card half of ISO 14443-4 (half-duplex block protocol) for one activation.

    Block-number rules from ISO/IEC 14443-4 §7.5.4: the card's number starts at 1 and toggles on
    each I-block received; R(NAK) with the current number re-sends the last block, any other
    R(NAK) gets R(ACK); R(ACK) with another number continues a chained response.
    """

    def __init__(self, rats: bytes) -> None:
        self.fsd = (16, 24, 32, 40, 48, 64, 96, 128, 256)[min(rats[1] >> 4, 8)]
        self.block = 1
        self.last = ATS
        self.command = b""
        self.pending = b""

    def _i_block(self) -> bytes:
        size = self.fsd - 3  # PCB + CRC
        chunk, self.pending = self.pending[:size], self.pending[size:]
        self.last = bytes([(0x12 if self.pending else 0x02) | self.block]) + chunk
        return self.last

    def frame(self, data: bytes) -> tuple[str, bytes]:
        """Classify a reader frame: ("apdu", command) when an APDU is complete, else ("reply", frame),
        an empty frame meaning no answer."""
        pcb = data[0]
        if pcb & 0xE2 == 0x02:  # I-block
            self.block ^= 1
            self.command += data[1:]
            if pcb & 0x10:  # chained command: acknowledge and wait for more
                self.last = bytes([0xA2 | self.block])
                return "reply", self.last
            command, self.command = self.command, b""
            return "apdu", command
        if pcb & 0xE6 == 0xA2:  # R-block
            same = pcb & 0x01 == self.block
            if pcb & 0x10:  # NAK
                return "reply", self.last if same else bytes([0xA2 | self.block])
            if same:
                return "reply", self.last
            self.block ^= 1
            return "reply", self._i_block()
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            return "deselect", bytes([pcb])
        return "reply", b""  # unknown: stay silent, as a card does

    def respond(self, response: bytes) -> bytes:
        self.pending = response
        return self._i_block()


class Type4Emulator:
    """Serve a simulated chip as an ISO 14443-4A card through an nfcpy device that can listen.

    With ``udp:localhost:PORT`` a reader opened on the same path finds it. ``tear_at`` stops
    answering (the tag left the field) when the APDU count ``apdus`` reaches it, once: set it to
    ``apdus`` to tear the next APDU.
    """

    def __init__(self, chip, path: str = "udp:localhost:54321", uid: bytes | None = None,
                 tear_at: int | None = None) -> None:
        self.chip, self.path = chip, path
        self.uid = uid or bytes(getattr(chip, "uid", None) or bytes.fromhex("04A1B2C3D4E5F6"))
        self.tear_at = tear_at
        self.activations = 0
        self.apdus = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clf: nfc.ContactlessFrontend | None = None

    def __enter__(self) -> Type4Emulator:
        return self.place()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def place(self) -> Type4Emulator:
        """Put the chip in the field: listen for a reader in a background thread."""
        _refuse_named_udp_port(self.path)
        self._clf = clf = nfc.ContactlessFrontend()
        if not clf.open(self.path):
            raise ReaderUnavailableError(f"Cannot open nfcpy device {self.path!r} to listen")
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(clf,), name=f"type4-emulator:{self.path}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 1.0
        while not self._listening() and time.monotonic() < deadline:
            time.sleep(0.005)  # a reader polling before the bind would wait out a 1 s sense timeout
        return self

    def _listening(self) -> bool:
        sock = getattr(getattr(self._clf, "device", None), "socket", None)  # the udp driver's socket
        try:
            return sock is not None and sock.getsockname()[1] != 0
        except OSError:
            return False

    def remove(self) -> None:
        """Take the chip out of the field."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._clf is not None:
            self._clf.close()

    def _target(self) -> LocalTarget:
        target = LocalTarget("106A")
        target.sens_res = bytearray(b"\x44\x00" if len(self.uid) == 7 else b"\x04\x00")
        target.sdd_res = bytearray(self.uid)
        target.sel_res = bytearray(b"\x20")  # ISO 14443-4 compliant
        return target

    def _serve(self, clf: nfc.ContactlessFrontend) -> None:
        while not self._stop.is_set():
            try:
                activated = clf.listen(self._target(), 0.25)
            except nfc.clf.CommunicationError:
                continue
            if activated is None or not activated.tt4_cmd or activated.tt4_cmd[0] != 0xE0:
                continue
            self.activations += 1
            place = getattr(self.chip, "place", None)
            if callable(place):
                place()
            self._session(clf, bytes(activated.tt4_cmd))

    def _session(self, clf: nfc.ContactlessFrontend, rats: bytes) -> None:
        card = _IsoDepCard(rats)
        send: bytes | None = ATS
        while not self._stop.is_set():
            try:
                data = clf.exchange(bytearray(send) if send else None, 0.25)
            except nfc.clf.TimeoutError:
                send = None
                continue
            except nfc.clf.CommunicationError:  # RFOFF: the reader dropped its field
                return
            if not data:
                send = None
                continue
            kind, frame = card.frame(bytes(data))
            if kind == "deselect":
                clf.exchange(bytearray(frame), 0)
                return
            send = frame
            if kind == "apdu":
                response = None if self.apdus == self.tear_at else self._answer(frame)
                if response is None:
                    self.tear_at = None
                    return  # the tag left the field: the reader gets no answer
                self.apdus += 1
                send = card.respond(response)

    def _answer(self, apdu: bytes) -> bytes | None:
        try:
            data, sw = self.chip.transceive(apdu)
        except TagRemovedError:
            return None
        return bytes(data) + sw.to_bytes(2, "big")
