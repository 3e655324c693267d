"""An NTAG 424 DNA session over a :class:`~tagsmith.encoders.connection.Connection` (docs/reference/ntag424.md §2-§12).

:class:`Ntag424Session` frames native commands (CLA 90, 91AF continuation), turns status words
into exceptions (:mod:`.errors`) and runs secure messaging through the channel an authentication
opened (:mod:`.channel`; AES EV2 or LRP): the command counter moves on every command the chip
accepts while authenticated, Plain ones included, and any status other than success drops the
session (docs/reference/ntag424.md §2.2, §6.1).

The APDU trace (TRAFFIC level) is written here, not by the transports, because only the session
knows which frames carry key material: the authentication frames (whose cryptograms, with a known
key such as the factory one, give RndA, RndB and so the session keys) and every frame of an open
session (ChangeKey's new keys, Full-mode data). Their data fields are logged as lengths only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from tagsmith import ConfigError
from tagsmith.encoders.apdu import SW, build_apdu, native
from tagsmith.encoders.connection import Connection, log_command, log_response

from . import auth, crypto
from .channel import CommMode, SecureChannel, SecureMessaging
from .errors import (
    IrreversibleOperationError,
    LrpModeError,
    NotAuthenticatedError,
    PermissionDeniedError,
    ResponseError,
    error_for,
)
from .files import NDEF_FILE_NO, FileSettings
from .template import url_from_ndef_file
from .version import VersionInfo

DF_NAME = bytes.fromhex("D2760000850101")
CC_FILE_ID = 0xE103
NDEF_FILE_ID = 0xE104
SIGNATURE_OK = (SW.OPERATION_OK, SW.SIGNATURE_OK_ALT)
IRREVERSIBLE_OPTIONS = {0x00: "Random ID"}
LRP_OPTION = 0x05
#: Option 05's capability data (NT4H2421Gx §10.5.1 Table 50): 4 RFU bytes, PDCap2.1 = 02 (bit 1: LRP),
#: 3 RFU bytes, PDCap2.5 and PDCap2.6 = 00 (their factory values); docs/reference/lrp.md §7
LRP_CAPABILITY_DATA = bytes.fromhex("00000000" "02" "000000" "0000")
# A 128-byte ISO 14443-4 frame carries PCB, CID and CRC besides the APDU (DS §8.1.1, §8.6).
TEAR_SAFE_APDU = 128 - 4
MAX_APDU = 5 + 255 + 1
AUTHENTICATION = "authentication"
SECURE_MESSAGING = "secure messaging"

log = logging.getLogger(__name__)


def _le3(value: int) -> bytes:
    return value.to_bytes(3, "little")


def _write_chunk(mode: CommMode, apdu_limit: int) -> int:
    """Largest WriteData plaintext that keeps the whole APDU within ``apdu_limit`` bytes."""
    room = min(apdu_limit - 6, 255) - 7  # Lc payload minus FileNo, Offset, Length
    if mode is CommMode.PLAIN:
        return room
    room -= 8  # MACt
    return room if mode is CommMode.MAC else (room // 16) * 16 - 1


def _read_chunk(mode: CommMode) -> int:
    """Largest ReadData length whose response (with MAC/padding) fits one short R-APDU."""
    return {CommMode.PLAIN: 256, CommMode.MAC: 248, CommMode.FULL: 239}[mode]


class Ntag424Session:
    """Talk to one NTAG 424 DNA: selection, authentication, files, keys, configuration."""

    def __init__(self, connection: Connection, *, random: Callable[[int], bytes] = os.urandom) -> None:
        self._conn = connection
        self._random = random
        self._channel: SecureChannel | None = None
        self._key_no: int | None = None

    # ------------------------------------------------------------------ state
    @property
    def authenticated(self) -> bool:
        """True while an authenticated session is open."""
        return self._channel is not None

    @property
    def key_no(self) -> int | None:
        """The key number the open session authenticated with, or None."""
        return self._key_no

    @property
    def command_counter(self) -> int | None:
        """CmdCtr of the open session (for diagnostics and tests), or None."""
        return self._channel.cmd_ctr if self._channel else None

    def _drop(self) -> None:
        self._channel = None
        self._key_no = None

    def _require_auth(self, command: str, key_no: int | None = None) -> SecureChannel:
        if self._channel is None:
            raise NotAuthenticatedError(f"{command} needs an authenticated session; authenticate first")
        if key_no is not None and self._key_no != key_no:
            raise NotAuthenticatedError(f"{command} needs authentication with key {key_no}")
        return self._channel

    # ------------------------------------------------------------------ framing
    def _exchange(self, command: str, apdu: bytes, ok: tuple[int, ...], *,
                  secret: str | None = None) -> tuple[bytes, int]:
        """One round trip, traced; data fields are redacted for ``secret`` frames and in an open session."""
        if secret is None and self._channel is not None:
            secret = SECURE_MESSAGING
        log_command(log, apdu, secret)
        data, sw = self._conn.transceive(apdu)
        log_response(log, data, sw, secret)
        if sw not in ok:
            self._drop()
            raise error_for(command, sw)
        return data, sw

    def _native(self, command: str, ins: int, payload: bytes, ok: tuple[int, ...]) -> tuple[bytes, int]:
        """Send a native command and follow 91AF continuation frames."""
        data, sw = self._exchange(command, native(ins, payload), ok + (SW.ADDITIONAL_FRAME,))
        parts = [data]
        while sw == SW.ADDITIONAL_FRAME:
            data, sw = self._exchange(command, native(0xAF), ok + (SW.ADDITIONAL_FRAME,))
            parts.append(data)
        return b"".join(parts), sw

    def _command(self, command: str, ins: int, header: bytes = b"", data: bytes = b"",
                 mode: CommMode = CommMode.PLAIN, ok: tuple[int, ...] = (SW.OPERATION_OK,)) -> bytes:
        """Run one native command with secure messaging when authenticated; return plain response data."""
        channel = self._channel
        if channel is None:
            return self._native(command, ins, header + data, ok)[0]
        response, sw = self._native(command, ins, channel.protect(ins, header, data, mode), ok)
        try:
            plain = channel.unprotect(response, mode, command, rc=sw & 0xFF)
        except ResponseError:
            self._drop()
            raise
        self._channel = channel.advanced()
        return plain

    def _iso(self, command: str, apdu: bytes) -> bytes:
        return self._exchange(command, apdu, (SW.OK,))[0]

    # ------------------------------------------------------------------ ISO 7816-4
    def select_application(self) -> None:
        """Select the NTAG 424 DNA application by DF name (does not move CmdCtr)."""
        self._iso("ISOSelectFile", build_apdu(0x00, 0xA4, 0x04, 0x0C, DF_NAME, 0))

    def select_file(self, fid: int) -> None:
        """Select an elementary file by ISO file ID (E103 CC, E104 NDEF, E105 proprietary)."""
        self._iso("ISOSelectFile", build_apdu(0x00, 0xA4, 0x00, 0x0C, fid.to_bytes(2, "big"), 0))

    def iso_read_binary(self, offset: int, length: int) -> bytes:
        """Read from the selected file (unauthenticated, free read only); length 1..256."""
        if not 0 <= offset <= 0x7FFF or not 1 <= length <= 256:
            raise ConfigError(f"ISOReadBinary offset {offset} / length {length} out of range")
        return self._iso("ISOReadBinary", build_apdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length))

    def iso_update_binary(self, offset: int, data: bytes) -> None:
        """Write to the selected file in frames that each fit one 128-byte ISO 14443-4 frame."""
        step = TEAR_SAFE_APDU - 5
        for start in range(0, len(data), step):
            at = offset + start
            if at > 0x7FFF:
                raise ConfigError(f"ISOUpdateBinary offset {at} out of range")
            chunk = data[start:start + step]
            self._iso("ISOUpdateBinary", build_apdu(0x00, 0xD6, at >> 8, at & 0xFF, chunk, le=None))

    # ------------------------------------------------------------------ identification
    def get_version(self, *, require_ntag424: bool = True) -> VersionInfo:
        """Read and decode GetVersion (3 frames; MAC over all of them when authenticated)."""
        info = VersionInfo.from_bytes(self._command("GetVersion", 0x60, mode=CommMode.MAC))
        if require_ntag424:
            info.require_ntag424()
        return info

    def get_card_uid(self) -> bytes:
        """Read the real 7-byte UID (Full mode; works with Random ID on)."""
        self._require_auth("GetCardUID")
        uid = self._command("GetCardUID", 0x51, mode=CommMode.FULL)
        if len(uid) != 7:
            raise ResponseError(f"GetCardUID returned {len(uid)} bytes, expected 7")
        return uid

    def read_sig(self) -> bytes:
        """Read the 56-byte originality signature r || s (status 9100 or 9190 both mean success)."""
        sig = self._command("Read_Sig", 0x3C, b"\x00", mode=CommMode.FULL, ok=SIGNATURE_OK)
        if len(sig) != 56:
            raise ResponseError(f"Read_Sig returned {len(sig)} bytes, expected 56")
        return sig

    # ------------------------------------------------------------------ authentication
    def authenticate_ev2_first(self, key_no: int, key: bytes) -> None:
        """Start a new AES (EV2) transaction with ``key``: new TI, CmdCtr 0, new session keys.

        A chip switched to LRP refuses it with 919D, raised as :class:`~.errors.LrpModeError`.
        """
        self._authenticate_first(key_no, key, SecureMessaging.AES)

    def authenticate_lrp_first(self, key_no: int, key: bytes) -> None:
        """Start a new LRP transaction with ``key`` (docs/reference/lrp.md §4); an AES-mode chip's answer
        to part 1 is a ResponseError."""
        self._authenticate_first(key_no, key, SecureMessaging.LRP)

    def _authenticate_first(self, key_no: int, key: bytes, mode: SecureMessaging) -> None:
        """AuthenticateFirst asking for ``mode``; the channel it opens is that mode's (docs/reference/ntag424.md §5.1, §5.4)."""
        auth.check_key(key)
        handshake = auth.HANDSHAKES[mode]
        self._drop()
        command = handshake.FIRST_COMMAND
        try:
            data, _ = self._exchange(command, native(0x71, auth.first_part1(handshake, key_no)),
                                     (SW.ADDITIONAL_FRAME,), secret=AUTHENTICATION)
        except PermissionDeniedError as refused:
            if mode is SecureMessaging.AES:  # the answer of a chip switched to LRP (docs/reference/ntag424.md §5.4)
                raise LrpModeError(command, refused.sw) from None
            raise
        challenge = handshake.answer_challenge(key, data, self._random(16))
        data, _ = self._exchange(command, native(0xAF, challenge.cryptogram), (SW.OPERATION_OK,),
                                 secret=AUTHENTICATION)
        self._channel = challenge.finish_first(data)
        self._key_no = key_no

    def authenticate_ev2_nonfirst(self, key_no: int, key: bytes) -> None:
        """Switch to another key inside an AES transaction: TI and CmdCtr kept, new session keys."""
        self._authenticate_nonfirst(key_no, key, SecureMessaging.AES)

    def authenticate_lrp_nonfirst(self, key_no: int, key: bytes) -> None:
        """Switch to another key inside an LRP transaction: TI and CmdCtr kept, new session keys, EncCtr 0."""
        self._authenticate_nonfirst(key_no, key, SecureMessaging.LRP)

    def _authenticate_nonfirst(self, key_no: int, key: bytes, mode: SecureMessaging) -> None:
        """AuthenticateNonFirst in the mode of the running transaction, which must be ``mode``
        (docs/reference/ntag424.md §5.2)."""
        auth.check_key(key)
        handshake = auth.HANDSHAKES[mode]
        command = handshake.NONFIRST_COMMAND
        previous = self._require_auth(command)
        if previous.mode is not mode:
            raise NotAuthenticatedError(f"{command} needs a {mode.name} transaction; this one runs {previous.mode.name}")
        data, _ = self._exchange(command, native(0x77, bytes([key_no])), (SW.ADDITIONAL_FRAME,),
                                 secret=AUTHENTICATION)
        challenge = handshake.answer_challenge(key, data, self._random(16))
        data, _ = self._exchange(command, native(0xAF, challenge.cryptogram), (SW.OPERATION_OK,),
                                 secret=AUTHENTICATION)
        self._drop()
        self._channel = challenge.finish_nonfirst(data, previous)
        self._key_no = key_no

    # ------------------------------------------------------------------ files
    def get_file_settings(self, file_no: int) -> FileSettings:
        """Read a file's settings (MAC mode when authenticated)."""
        return FileSettings.from_bytes(self._command("GetFileSettings", 0xF5, bytes([file_no]), mode=CommMode.MAC))

    def change_file_settings(self, file_no: int, settings: FileSettings) -> None:
        """Change a file's settings after checking them; Full mode when authenticated (FileNo stays plain)."""
        settings.validate(file_no)
        mode = CommMode.FULL if self.authenticated else CommMode.PLAIN
        self._command("ChangeFileSettings", 0x5F, bytes([file_no]), settings.to_change_bytes(), mode)

    def read_data(self, file_no: int, offset: int = 0, length: int = 0,
                  comm_mode: CommMode = CommMode.PLAIN) -> bytes:
        """Read file data in the file's CommMode (length 0 = to the end of the file, one APDU)."""
        mode = comm_mode if self.authenticated else CommMode.PLAIN
        if length == 0:
            return self._read_once(file_no, offset, 0, mode)
        step, parts = _read_chunk(mode), []
        for start in range(0, length, step):
            parts.append(self._read_once(file_no, offset + start, min(step, length - start), mode))
        return b"".join(parts)

    def _read_once(self, file_no: int, offset: int, length: int, mode: CommMode) -> bytes:
        header = bytes([file_no]) + _le3(offset) + _le3(length)
        return self._command("ReadData", 0xAD, header, mode=mode)

    def write_data(self, file_no: int, offset: int, data: bytes, comm_mode: CommMode = CommMode.PLAIN,
                   *, tear_safe: bool = True) -> None:
        """Write file data; with ``tear_safe`` every APDU fits one 128-byte frame so each part commits whole."""
        if not data:
            raise ConfigError("WriteData needs at least one byte")
        mode = comm_mode if self.authenticated else CommMode.PLAIN
        step = _write_chunk(mode, TEAR_SAFE_APDU if tear_safe else MAX_APDU)
        for start in range(0, len(data), step):
            chunk = data[start:start + step]
            header = bytes([file_no]) + _le3(offset + start) + _le3(len(chunk))
            self._command("WriteData", 0x8D, header, chunk, mode)

    # ------------------------------------------------------------------ keys
    def get_key_version(self, key_no: int) -> int:
        """Read a key's version byte (no authentication needed; MAC mode when authenticated)."""
        data = self._command("GetKeyVersion", 0x64, bytes([key_no]), mode=CommMode.MAC)
        if len(data) != 1:
            raise ResponseError(f"GetKeyVersion returned {len(data)} bytes, expected 1")
        return data[0]

    def change_key(self, key_no: int, new_key: bytes, new_version: int, old_key: bytes | None = None) -> None:
        """Change a key under key-0 authentication; changing key 0 itself ends the session."""
        auth.check_key(new_key)
        channel = self._require_auth("ChangeKey", key_no=0)
        if key_no == self._key_no:
            self._change_own_key(channel, key_no, new_key + bytes([new_version]))
            return
        if old_key is None:
            raise ConfigError(f"ChangeKey of key {key_no} needs its current (old) key")
        auth.check_key(old_key)
        data = crypto.xor(new_key, old_key) + bytes([new_version]) + crypto.crc32nk(new_key)
        self._command("ChangeKey", 0xC4, bytes([key_no]), data, CommMode.FULL)

    def _change_own_key(self, channel: SecureChannel, key_no: int, data: bytes) -> None:
        payload = channel.protect(0xC4, bytes([key_no]), data, CommMode.FULL)
        try:
            self._native("ChangeKey", 0xC4, payload, (SW.OPERATION_OK,))
        finally:
            self._drop()  # success answers a bare 9100: the session is over either way

    # ------------------------------------------------------------------ configuration
    def set_configuration(self, option: int, data: bytes, *, confirm_irreversible: bool = False) -> None:
        """Send SetConfiguration (key 0, Full); Random ID (00) and LRP (05) need explicit confirmation."""
        if option in IRREVERSIBLE_OPTIONS and not confirm_irreversible:
            raise IrreversibleOperationError(
                f"SetConfiguration option {option:02X} ({IRREVERSIBLE_OPTIONS[option]}) cannot be undone; "
                "pass confirm_irreversible=True to send it")
        if option == LRP_OPTION:
            raise ConfigError("SetConfiguration option 05 switches the chip to LRP: use enable_lrp")
        self._require_auth("SetConfiguration", key_no=0)
        self._command("SetConfiguration", 0x5C, bytes([option]), data, CommMode.FULL)

    def enable_lrp(self, *, confirm_irreversible: bool = False) -> None:
        """Switch the chip to LRP secure messaging for good: SetConfiguration option 05, Full mode, in an
        AES transaction with key 0 (NT4H2421Gx §10.5.1; docs/reference/lrp.md §7).

        The session ends with it: the chip's answer may come without its MACt (one is checked when it
        comes), and the next authentication must be :meth:`authenticate_lrp_first`.
        """
        if not confirm_irreversible:
            raise IrreversibleOperationError("SetConfiguration option 05 (LRP mode) cannot be undone; "
                                             "pass confirm_irreversible=True to send it")
        channel = self._require_auth("SetConfiguration", key_no=0)
        if channel.mode is not SecureMessaging.AES:
            raise NotAuthenticatedError("the chip already runs LRP: there is nothing to switch")
        payload = channel.protect(0x5C, bytes([LRP_OPTION]), LRP_CAPABILITY_DATA, CommMode.FULL)
        try:
            response, sw = self._native("SetConfiguration", 0x5C, payload, (SW.OPERATION_OK,))
            if response:
                channel.unprotect(response, CommMode.MAC, "SetConfiguration", rc=sw & 0xFF)
        finally:
            self._drop()

    # ------------------------------------------------------------------ phone-style reads
    def read_ndef_unauthenticated(self) -> bytes:
        """Read the whole NDEF file with one native ReadData, as SDM mirrors it for a phone."""
        if self.authenticated:
            raise NotAuthenticatedError("an authenticated read shows placeholders; read the SUN before authenticating")
        return self._read_once(NDEF_FILE_NO, 0, 0, CommMode.PLAIN)

    def read_ndef_as_phone(self) -> str:
        """Do a phone's Type 4 Tag NDEF detection with ISO commands and return the URL it would open."""
        self._iso("ISOSelectFile", build_apdu(0x00, 0xA4, 0x04, 0x00, DF_NAME, 0))
        self.select_file(CC_FILE_ID)
        cc = self.iso_read_binary(0, 15)
        if len(cc) < 15 or cc[7] != 0x04:
            raise ResponseError("the CC file has no NDEF file control TLV")
        max_read = max(1, min(int.from_bytes(cc[3:5], "big"), 256))
        self.select_file(int.from_bytes(cc[9:11], "big"))
        nlen = int.from_bytes(self.iso_read_binary(0, 2), "big")
        body = b"".join(self.iso_read_binary(2 + at, min(max_read, nlen - at)) for at in range(0, nlen, max_read))
        return url_from_ndef_file(nlen.to_bytes(2, "big") + body)
