"""A simulated NXP NTAG 424 DNA (NT4H2421Gx), PICC side, as a :class:`Connection`.

Behaviour follows the data-sheet facts restated in ``docs/reference/ntag424.md``; each
handler cites the section it implements ("ref §N" = that file's §N). Where the reference is
silent the choice made is written next to the code (and summarised in the README section "Simulated chip").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tagsmith.encoders.apdu import SW
from tagsmith.encoders.connection import TagRemovedError

from . import files as F
from .files import FileSettings, parse_settings
from .sdm import mirror
from .signing import sign_uid
from .sm import AesKey, Session, crc32nk, ev2_session_keys, rotl1
from .state import NvState
from .status import ChipStatus

APP_DF_NAME = bytes.fromhex("D2760000850101")
PICC_DF_NAME = bytes.fromhex("D2760000850100")
APP_FID = 0xE110
PICC_FID = 0x3F00

PLAIN, MAC, FULL = "plain", "mac", "full"
_MODE_OF_COMM = {F.COMM_PLAIN: PLAIN, 0x02: PLAIN, F.COMM_MAC: MAC, F.COMM_FULL: FULL}

#: Status words after which the authentication survives; any other ends it (ref §2.2).
_KEEPS_SESSION = {SW.OPERATION_OK, SW.ADDITIONAL_FRAME, SW.SIGNATURE_OK_ALT, SW.OK}
#: Longest APDU that fits one 128-byte ISO 14443-4 frame (PCB + CRC take 3 bytes), ref §2.1.
SINGLE_FRAME_APDU = 125

# GetVersion (ref §7): HW part, SW part (minor 02 as in the data sheet), production data.
_HW_SUBTYPE = 0x02
_HW_SUBTYPE_TAGTAMPER = 0x08
_SW_VERSION = bytes.fromhex("04040201021105")
_PRODUCTION = bytes.fromhex("CD65935D402118")  # BatchNo(4) BatchNo/FabKey FabKey/CWProd YearProd

RandomSource = Callable[[int], bytes]


@dataclass
class _Pending:
    """A multi-frame exchange waiting for its 90 AF continuation."""

    kind: str  # "auth" or "version"
    key_no: int = 0
    first: bool = True
    rnd_b: bytes = b""
    pcd_cap2: bytes = b""
    previous: Session | None = None
    step: int = 0
    collected: bytes = b""
    cipher: AesKey | None = field(default=None, repr=False)  # the auth key, expanded once for both parts


class SimulatedNtag424:
    """A simulated NTAG 424 DNA chip in an RF field; itself a :class:`Connection`.

    Keyword arguments (all optional; the default is a factory-fresh chip):

    * ``uid`` -- 7-byte UID starting with 04 (random if ``None``).
    * ``keys`` / ``key_versions`` -- the five application keys (16 bytes each) and their versions
      (default all-zero keys, version 00).
    * ``tag_tamper`` -- model the TagTamper variant (GetVersion HW subtype 08 instead of 02).
    * ``random`` -- ``n -> bytes`` source for RndB, TI and PICCData padding (default ``os.urandom``);
      feed published values to replay a transcript.
    * ``tear_after`` -- the chip leaves the field while processing the Nth APDU (counted over the
      chip's life); ``tear_commits`` says whether that APDU's effect on NVM stays (default True:
      a single-frame command is atomic and completes, only its response is lost).
    * ``files`` -- initial contents per file number, written from offset 0 over the factory contents.
    * ``file_settings`` -- initial settings per file number, in ChangeFileSettings layout
      (FileOption || AccessRights [|| SDM part]); validated like ChangeFileSettings.
    * ``sdm_read_ctr`` -- initial SDMReadCtr (applied after ``file_settings``).
    * ``random_id`` / ``lrp`` -- start with Random ID / LRP mode already switched on.
    * ``auth_delay_after`` / ``auth_delay_attempts`` -- the authentication-delay model: once a key
      has this many consecutive failed authentications, each further attempt on it first costs
      ``auth_delay_attempts`` answers of 91AD (the "delay") before one real try is let through.
    * ``state`` -- start from a saved :class:`NvState` instead (other state arguments are ignored).
    """

    def __init__(
        self,
        *,
        uid: bytes | None = None,
        keys: list[bytes] | tuple[bytes, ...] | None = None,
        key_versions: list[int] | tuple[int, ...] | None = None,
        tag_tamper: bool = False,
        random: RandomSource | None = None,
        tear_after: int | None = None,
        tear_commits: bool = True,
        files: Mapping[int, bytes] | None = None,
        file_settings: Mapping[int, bytes] | None = None,
        sdm_read_ctr: int = 0,
        random_id: bool = False,
        lrp: bool = False,
        auth_delay_after: int = 50,
        auth_delay_attempts: int = 5,
        state: NvState | None = None,
    ) -> None:
        self._random: RandomSource = random or os.urandom
        self.tear_commits = tear_commits
        if auth_delay_after < 1 or auth_delay_attempts < 0:
            raise ValueError("auth_delay_after must be >= 1 and auth_delay_attempts >= 0")
        self.auth_delay_after = auth_delay_after
        self.auth_delay_attempts = auth_delay_attempts
        self._nv = state.copy() if state is not None else self._factory_state(
            uid, keys, key_versions, tag_tamper, files, file_settings, sdm_read_ctr, random_id, lrp)
        self._signature = sign_uid(self._nv.uid)  # NXP programs it at production; Read_Sig reads it back
        self._apdu_total = 0
        self._tear_at: int | None = None
        if tear_after is not None:
            self.tear_at(tear_after)
        self._in_field = True
        self._reset_volatile()

    # ------------------------------------------------------------------ construction

    @staticmethod
    def _factory_state(uid, keys, key_versions, tag_tamper, files, file_settings, sdm_read_ctr,
                       random_id, lrp) -> NvState:
        if uid is None:
            uid = b"\x04" + os.urandom(6)
        uid = bytes(uid)
        if len(uid) != 7 or uid[0] != 0x04:
            raise ValueError("uid must be 7 bytes starting with 04 (NXP)")
        nv = NvState(uid=uid, tag_tamper=tag_tamper, random_id=random_id, lrp=lrp)
        if keys is not None:
            if len(keys) != 5 or any(len(k) != 16 for k in keys):
                raise ValueError("keys must be five 16-byte AES keys")
            nv.keys = [bytes(k) for k in keys]
        if key_versions is not None:
            if len(key_versions) != 5 or any(not 0 <= v <= 0xFF for v in key_versions):
                raise ValueError("key_versions must be five values 0..255")
            nv.key_versions = list(key_versions)
        for file_no, data in (files or {}).items():
            buf = nv.contents[file_no]
            if len(data) > len(buf):
                raise ValueError(f"file {file_no:02X} holds {len(buf)} bytes, got {len(data)}")
            buf[:len(data)] = data
        for file_no, body in (file_settings or {}).items():
            try:
                nv.settings[file_no] = parse_settings(nv.settings[file_no], bytes(body))
            except ChipStatus as exc:
                raise ValueError(f"file {file_no:02X} settings rejected with {exc.sw:04X}") from None
        if not 0 <= sdm_read_ctr <= 0xFFFFFF:
            raise ValueError("sdm_read_ctr is a 24-bit counter")
        nv.sdm_read_ctr = sdm_read_ctr
        return nv

    def __repr__(self) -> str:
        where = "in field" if self._in_field else "removed"
        return (f"SimulatedNtag424(uid={self._nv.uid.hex().upper()}, {where}, "
                f"key_versions={self._nv.key_versions}, sdm_read_ctr={self._nv.sdm_read_ctr})")

    # ------------------------------------------------------------------ field and tearing

    def _reset_volatile(self) -> None:
        self._level = "picc"  # after activation the PICC level (MF) is selected (ref §3.1, §3.3)
        self._selected_file: int | None = None
        self._session: Session | None = None
        self._pending: _Pending | None = None
        self._sdm_cache: tuple[str, bytes] | None = None
        self._delay_spent = [0] * 5
        self._apdu_count = 0
        self._anticollision_uid: bytes | None = None
        # ISO 14443 parameters take effect at the next power-up, not at once (ref §12, DS §8.1.1)
        self._activated_random_id = self._nv.random_id
        self._activated_strong_bm = self._nv.strong_back_modulation

    def place(self) -> None:
        """Bring the chip (back) into the field: a power-up with fresh volatile state."""
        self._in_field = True
        self._reset_volatile()

    power_cycle = place

    def remove(self) -> None:
        """Take the chip out of the field now (between APDUs)."""
        self._in_field = False
        self._reset_volatile()

    def tear_at(self, n: int) -> None:
        """Lose the field while processing the n-th APDU from now (n >= 1)."""
        if n < 1:
            raise ValueError("n counts APDUs from now and starts at 1")
        self._tear_at = self._apdu_total + n

    def tear_next(self) -> None:
        """Lose the field while processing the next APDU."""
        self.tear_at(1)

    def cancel_tear(self) -> None:
        """Disarm a pending tear."""
        self._tear_at = None

    # ------------------------------------------------------------------ Connection

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        """Process one command APDU; return (data, status word). Raises TagRemovedError when torn."""
        if not self._in_field:
            raise TagRemovedError()
        apdu = bytes(apdu)
        self._apdu_total += 1
        self._apdu_count += 1
        tearing = self._tear_at is not None and self._apdu_total >= self._tear_at
        saved = self._nv.copy() if tearing and not self.tear_commits else None
        data, sw = self._process(apdu)
        if tearing:
            self._tear_at = None
            if saved is not None:
                self._nv = saved
            self._in_field = False
            self._reset_volatile()
            raise TagRemovedError()
        return data, sw

    def _process(self, apdu: bytes) -> tuple[bytes, int]:
        previous_sdm_read, self._sdm_cache = self._sdm_cache, None
        try:
            data, sw = self._dispatch(apdu, previous_sdm_read)
        except ChipStatus as exc:
            data, sw = b"", exc.sw
        if sw not in _KEEPS_SESSION:
            self._session = None  # any error ends the authentication (DS §9.1.9, ref §2.2)
            self._pending = None
        return data, sw

    def _dispatch(self, apdu: bytes, previous_sdm_read: tuple[str, bytes] | None) -> tuple[bytes, int]:
        if len(apdu) < 4:
            return b"", SW.ISO_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        if cla not in (0x00, 0x90):
            return b"", SW.ISO_CLA_NOT_SUPPORTED
        native = cla == 0x90
        parsed = _parse_body(apdu[4:])
        if parsed is None:
            return b"", SW.LENGTH_ERROR if native else SW.ISO_WRONG_LENGTH
        data, le = parsed
        if native:
            return self._native(ins, data, len(apdu), previous_sdm_read)
        if self._pending is not None:  # a multi-pass native exchange is under way (ref §2.2 6985)
            self._pending = None
            return b"", SW.ISO_CONDITIONS
        return self._iso(ins, p1, p2, data, le, previous_sdm_read)

    # ------------------------------------------------------------------ native commands

    def _native(self, ins: int, data: bytes, apdu_len: int,
                previous_sdm_read: tuple[str, bytes] | None) -> tuple[bytes, int]:
        if ins == 0xAF:
            if self._pending is None:
                raise ChipStatus(SW.ILLEGAL_COMMAND_CODE)
            pending, self._pending = self._pending, None
            if pending.kind == "auth":
                return self._auth_part2(pending, data)
            return self._version_next(pending, data)
        if self._pending is not None:  # a new command while part 2/3 is awaited (ref §2.2 91CA)
            self._pending = None
            raise ChipStatus(SW.COMMAND_ABORTED)
        if ins == 0xAD:
            return self._read_data(data, previous_sdm_read)
        if ins == 0x8D:
            return self._write_data(data, apdu_len)
        handler = _NATIVE_HANDLERS.get(ins)
        if handler is None:
            raise ChipStatus(SW.ILLEGAL_COMMAND_CODE)
        if self._level != "app" and ins not in (0x60, 0x3C):
            if ins == 0x51:  # GetCardUID: no authentication can exist at PICC level (ref §2.2 91AE)
                raise ChipStatus(SW.AUTHENTICATION_ERROR)
            raise ChipStatus(SW.PERMISSION_DENIED)  # PICC level selected (ref §2.2 919D)
        return getattr(self, handler)(data)

    # --- secure-messaging helpers (ref §6)

    def _unwrap(self, ins: int, data: bytes, header_len: int, mode: str) -> tuple[bytes, bytes]:
        """Split a command into (header, plain command data), checking MAC / decrypting."""
        session = self._session
        if session is None or mode == PLAIN:
            if session is not None:
                session.check_counter()
            if len(data) < header_len:
                raise ChipStatus(SW.LENGTH_ERROR)
            return data[:header_len], data[header_len:]
        if len(data) < header_len + 8:
            raise ChipStatus(SW.LENGTH_ERROR)
        body, mac = data[:-8], data[-8:]
        session.verify_command_mac(ins, body, mac)
        header, payload = body[:header_len], body[header_len:]
        if mode == FULL and payload:
            payload = session.decrypt_command(payload)
        return header, payload

    def _wrap(self, data: bytes, mode: str, rc: int = 0x00) -> bytes:
        """Build the response data for an accepted command; moves CmdCtr when authenticated."""
        session = self._session
        if session is None:
            return data
        session.advance()
        if mode == PLAIN:
            return data
        if mode == FULL:
            data = session.encrypt_response(data)
        return data + session.response_mac(rc, data)

    def _access_mode(self, settings: FileSettings, rights: tuple[int, ...]) -> str | None:
        """CommMode granted by ``rights`` (ref §4.1): own key -> file mode; only E -> Plain."""
        if self._session is not None and self._session.key_no in rights:
            return _MODE_OF_COMM[settings.comm_mode]
        if F.FREE in rights:
            return PLAIN
        return None

    def _file(self, file_no: int) -> FileSettings:
        settings = self._nv.settings.get(file_no)
        if settings is None:
            raise ChipStatus(SW.FILE_NOT_FOUND)
        return settings

    @staticmethod
    def _check_key_no(key_no: int) -> int:
        if key_no & 0xC0:
            raise ChipStatus(SW.PARAMETER_ERROR)
        if key_no > 4:
            raise ChipStatus(SW.NO_SUCH_KEY)
        return key_no

    def _draw(self, n: int) -> bytes:
        value = bytes(self._random(n))
        if len(value) != n:
            raise ValueError(f"random source returned {len(value)} bytes, {n} wanted")
        return value

    # --- authentication (ref §5.1, §5.2, §12 failed-auth counters)

    def _auth_first(self, data: bytes) -> tuple[bytes, int]:
        if len(data) < 2 or len(data) != 2 + data[1] or data[1] > 6:
            raise ChipStatus(SW.LENGTH_ERROR)
        self._session = None  # a new EV2First replaces any running authentication
        key_no = self._auth_gate(data[0])
        pcd_cap2 = (data[2:] + bytes(6))[:6]
        return self._auth_part1(_Pending("auth", key_no, True, pcd_cap2=pcd_cap2))

    def _auth_nonfirst(self, data: bytes) -> tuple[bytes, int]:
        if self._session is None:
            raise ChipStatus(SW.PERMISSION_DENIED)  # NonFirst needs a running authentication (DS T33: 9D)
        if len(data) != 1:
            raise ChipStatus(SW.LENGTH_ERROR)
        previous, self._session = self._session, None
        key_no = self._auth_gate(data[0])
        return self._auth_part1(_Pending("auth", key_no, False, previous=previous))

    def _auth_gate(self, raw_key_no: int) -> int:
        key_no = self._check_key_no(raw_key_no)
        nv = self._nv
        if nv.lrp:
            raise ChipStatus(SW.PERMISSION_DENIED)  # AES EV2 auth on an LRP-mode tag (ref §5.4)
        if nv.failed_ctr_enabled and nv.tot_fail_ctr[key_no] >= nv.tot_fail_limit:
            raise ChipStatus(SW.PERMISSION_DENIED)  # key blocked by TotFailCtrLimit
        if nv.consecutive_failures[key_no] >= self.auth_delay_after:
            if self._delay_spent[key_no] < self.auth_delay_attempts:
                self._delay_spent[key_no] += 1
                raise ChipStatus(SW.AUTHENTICATION_DELAY)
        return key_no

    def _auth_part1(self, pending: _Pending) -> tuple[bytes, int]:
        pending.rnd_b = self._draw(16)
        pending.cipher = AesKey(self._nv.keys[pending.key_no])
        self._pending = pending
        return pending.cipher.cbc_encrypt(pending.rnd_b), SW.ADDITIONAL_FRAME

    def _auth_part2(self, pending: _Pending, data: bytes) -> tuple[bytes, int]:
        if len(data) != 32:
            raise ChipStatus(SW.LENGTH_ERROR)
        nv, key_no, key = self._nv, pending.key_no, pending.cipher
        assert key is not None
        plain = key.cbc_decrypt(data)
        rnd_a, rnd_b_rot = plain[:16], plain[16:]
        if rnd_b_rot != rotl1(pending.rnd_b):
            nv.consecutive_failures[key_no] += 1
            if nv.failed_ctr_enabled:
                nv.tot_fail_ctr[key_no] += 1
            self._delay_spent[key_no] = 0
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        nv.consecutive_failures[key_no] = 0
        self._delay_spent[key_no] = 0
        if nv.failed_ctr_enabled:
            nv.tot_fail_ctr[key_no] = max(0, nv.tot_fail_ctr[key_no] - nv.tot_fail_decr)
        enc, mac = ev2_session_keys(key, rnd_a, pending.rnd_b)
        if pending.first:
            ti = self._draw(4)
            self._session = Session(key_no, ti, enc, mac, 0)
            pd_cap2 = bytes([0x02 if nv.lrp else 0x00, 0, 0, 0]) + nv.pdcap2_user
            reply = ti + rotl1(rnd_a) + pd_cap2 + pending.pcd_cap2
        else:
            assert pending.previous is not None
            prev = pending.previous
            self._session = Session(key_no, prev.ti, enc, mac, prev.cmd_ctr)
            reply = rotl1(rnd_a)
        return key.cbc_encrypt(reply), SW.OPERATION_OK

    # --- information commands (ref §7)

    def _get_version(self, data: bytes) -> tuple[bytes, int]:
        _, payload = self._unwrap(0x60, data, 0, MAC)
        if payload:
            raise ChipStatus(SW.LENGTH_ERROR)
        subtype = _HW_SUBTYPE_TAGTAMPER if self._nv.tag_tamper else _HW_SUBTYPE
        if not self._activated_strong_bm:
            subtype |= 0x80  # high nibble 8: standard back modulation (DS T54), as activated
        part1 = bytes([0x04, 0x04, subtype, 0x30, 0x00, 0x11, 0x05])
        self._pending = _Pending("version", step=2, collected=part1)
        return part1, SW.ADDITIONAL_FRAME

    def _version_next(self, pending: _Pending, data: bytes) -> tuple[bytes, int]:
        if data:
            raise ChipStatus(SW.LENGTH_ERROR)
        if pending.step == 2:
            pending.step, pending.collected = 3, pending.collected + _SW_VERSION
            self._pending = pending
            return _SW_VERSION, SW.ADDITIONAL_FRAME
        uid = bytes(7) if self._nv.random_id else self._nv.uid  # Random ID hides the UID (ref §7)
        part3 = uid + _PRODUCTION
        session = self._session
        if session is None:
            return part3, SW.OPERATION_OK
        session.advance()  # MAC over all three parts, returned with the last (ref §6.4)
        return part3 + session.response_mac(0x00, pending.collected + part3), SW.OPERATION_OK

    def _get_card_uid(self, data: bytes) -> tuple[bytes, int]:
        if self._session is None:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        _, payload = self._unwrap(0x51, data, 0, FULL)
        if payload:
            raise ChipStatus(SW.LENGTH_ERROR)
        return self._wrap(self._nv.uid, FULL), SW.OPERATION_OK

    def _get_key_version(self, data: bytes) -> tuple[bytes, int]:
        header, payload = self._unwrap(0x64, data, 1, MAC)
        if payload or not header:
            raise ChipStatus(SW.LENGTH_ERROR)
        key_no = self._check_key_no(header[0])
        return self._wrap(bytes([self._nv.key_versions[key_no]]), MAC), SW.OPERATION_OK

    def _read_sig(self, data: bytes) -> tuple[bytes, int]:
        # Free when Random ID is off; with Random ID on it needs an authentication (ref §11).
        if self._nv.random_id and self._session is None:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        header, payload = self._unwrap(0x3C, data, 1, FULL)
        if payload or len(header) != 1:
            raise ChipStatus(SW.LENGTH_ERROR)
        if header[0] != 0x00:
            raise ChipStatus(SW.PARAMETER_ERROR)
        # Silicon answers 91 90 (AN12196 T30); RC 90 then also enters the response MAC.
        return self._wrap(self._signature, FULL, rc=0x90), SW.SIGNATURE_OK_ALT

    # --- keys (ref §8)

    def _change_key(self, data: bytes) -> tuple[bytes, int]:
        session = self._session
        if session is None:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        if len(data) != 1 + 32 + 8:
            raise ChipStatus(SW.LENGTH_ERROR)
        key_no = self._check_key_no(data[0])
        if session.key_no != 0:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)  # every ChangeKey needs the AppMasterKey
        _, plain = self._unwrap(0xC4, data, 1, FULL)
        nv = self._nv
        if key_no == 0:
            if len(plain) != 17:
                raise ChipStatus(SW.LENGTH_ERROR)
            new_key, version = plain[:16], plain[16]
        else:
            if len(plain) != 21:
                raise ChipStatus(SW.LENGTH_ERROR)
            new_key = bytes(a ^ b for a, b in zip(plain[:16], nv.keys[key_no]))
            version = plain[16]
            if crc32nk(new_key) != plain[17:21]:
                raise ChipStatus(SW.INTEGRITY_ERROR)
        nv.keys[key_no] = new_key
        nv.key_versions[key_no] = version
        nv.tot_fail_ctr[key_no] = 0
        nv.consecutive_failures[key_no] = 0
        if key_no == 0:
            self._session = None  # changing the authenticated key ends the session: bare 9100
            return b"", SW.OPERATION_OK
        return self._wrap(b"", FULL), SW.OPERATION_OK

    # --- file settings (ref §9)

    def _get_file_settings(self, data: bytes) -> tuple[bytes, int]:
        header, payload = self._unwrap(0xF5, data, 1, MAC)
        if payload or not header:
            raise ChipStatus(SW.LENGTH_ERROR)
        return self._wrap(self._file(header[0]).get_body(), MAC), SW.OPERATION_OK

    def _change_file_settings(self, data: bytes) -> tuple[bytes, int]:
        if not data:
            raise ChipStatus(SW.LENGTH_ERROR)
        current = self._file(data[0])
        if current.change == F.NEVER:
            raise ChipStatus(SW.PERMISSION_DENIED)
        mode = self._access_mode(current, (current.change,))
        if mode is None:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        if current.change != F.FREE:
            mode = FULL  # ChangeFileSettings is Full whenever the Change right is a key (ref §9.1)
        _, body = self._unwrap(0x5F, data, 1, mode)
        new = parse_settings(current, body, counter_after=0)
        self._nv.settings[current.file_no] = new
        if new.sdm is not None:
            self._nv.sdm_read_ctr = 0  # enabling SDM resets SDMReadCtr (ref §9.4)
        return self._wrap(b"", mode), SW.OPERATION_OK

    def _get_file_counters(self, data: bytes) -> tuple[bytes, int]:
        if not data:
            raise ChipStatus(SW.LENGTH_ERROR)
        settings = self._file(data[0])
        sdm = settings.sdm
        if sdm is None or not sdm.ctr_enabled or sdm.ctr_ret == F.NEVER:
            raise ChipStatus(SW.PERMISSION_DENIED)  # SDM off, or the counter is never returned (ref §7)
        mode = self._access_mode(settings, (sdm.ctr_ret,))
        if mode is None:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        if sdm.ctr_ret != F.FREE:
            mode = FULL
        _, payload = self._unwrap(0xF6, data, 1, mode)
        if payload:
            raise ChipStatus(SW.LENGTH_ERROR)
        reply = self._nv.sdm_read_ctr.to_bytes(3, "little") + bytes(2)
        return self._wrap(reply, mode), SW.OPERATION_OK

    # --- data (ref §7 ReadData/WriteData, §10 SDM)

    def _read_data(self, data: bytes, previous: tuple[str, bytes] | None) -> tuple[bytes, int]:
        if self._level != "app":
            raise ChipStatus(SW.PERMISSION_DENIED)
        if len(data) < 7:
            raise ChipStatus(SW.LENGTH_ERROR)
        settings = self._file(data[0])
        sdm = settings.sdm
        mode = self._access_mode(settings, (settings.read, settings.read_write))
        sdm_read = self._session is None and sdm is not None
        if mode is None and sdm_read and sdm.file_read != F.NEVER:
            mode = PLAIN  # SDMFileRead grants free reading with SDM applied (ref §4.2)
        if mode is None:
            never = (settings.read, settings.read_write, sdm.file_read if sdm is not None else F.NEVER)
            raise ChipStatus(SW.PERMISSION_DENIED if set(never) == {F.NEVER} else SW.AUTHENTICATION_ERROR)
        header, payload = self._unwrap(0xAD, data, 7, mode)
        if payload:
            raise ChipStatus(SW.LENGTH_ERROR)
        offset, length = _span(header[1:4], header[4:7], settings.size, SW.BOUNDARY_ERROR)
        if _wrapped_len(length, mode) > 256:
            raise ChipStatus(SW.LENGTH_ERROR)  # response (SM included) must fit a short APDU
        if sdm_read:
            image = self._sdm_image("native", settings, previous, SW.PERMISSION_DENIED)
        else:
            image = bytes(self._nv.contents[settings.file_no])
        return self._wrap(image[offset:offset + length], mode), SW.OPERATION_OK

    def _write_data(self, data: bytes, apdu_len: int) -> tuple[bytes, int]:
        if self._level != "app":
            raise ChipStatus(SW.PERMISSION_DENIED)
        if len(data) < 7:
            raise ChipStatus(SW.LENGTH_ERROR)
        settings = self._file(data[0])
        mode = self._access_mode(settings, (settings.write, settings.read_write))
        if mode is None:  # 9D when no key could ever write it (DS T83), else AE
            never = settings.write == settings.read_write == F.NEVER
            raise ChipStatus(SW.PERMISSION_DENIED if never else SW.AUTHENTICATION_ERROR)
        if mode != PLAIN and self._nv.chained_write_disabled and apdu_len > SINGLE_FRAME_APDU:
            raise ChipStatus(SW.PERMISSION_DENIED)  # chained MAC/Full write disabled (option 04)
        header, payload = self._unwrap(0x8D, data, 7, mode)
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little")
        if length == 0 or len(payload) != length:
            raise ChipStatus(SW.LENGTH_ERROR)
        if offset + length > settings.size:
            raise ChipStatus(SW.BOUNDARY_ERROR)
        self._nv.contents[settings.file_no][offset:offset + length] = payload
        return self._wrap(b"", mode), SW.OPERATION_OK

    def _sdm_image(self, kind: str, settings: FileSettings, previous: tuple[str, bytes] | None,
                   limit_sw: int) -> bytes:
        """The mirrored file for an unauthenticated read of the SDM file (ref §10.1).

        The first read after any other command moves SDMReadCtr and builds a new image; further
        reads with the same command type reuse it (same counter, same random padding).
        """
        sdm = settings.sdm
        assert sdm is not None
        if previous is not None and previous[0] == kind:
            image = previous[1]
        else:
            nv = self._nv
            if sdm.ctr_enabled:
                at_limit = sdm.limit_enabled and nv.sdm_read_ctr >= (sdm.ctr_limit or 0)
                if at_limit or nv.sdm_read_ctr >= 0xFFFFFF:
                    raise ChipStatus(limit_sw)
                nv.sdm_read_ctr += 1
            image = mirror(bytes(nv.contents[settings.file_no]), sdm, uid=nv.uid,
                           ctr=nv.sdm_read_ctr, keys=nv.keys, random=self._draw)
        self._sdm_cache = (kind, image)
        return image

    # --- configuration (ref §12)

    def _set_configuration(self, data: bytes) -> tuple[bytes, int]:
        session = self._session
        if session is None or session.key_no != 0:
            raise ChipStatus(SW.AUTHENTICATION_ERROR)
        header, payload = self._unwrap(0x5C, data, 1, FULL)
        if not header:
            raise ChipStatus(SW.LENGTH_ERROR)
        option = header[0]
        lengths = {0x00: 1, 0x04: 2, 0x05: 10, 0x0A: 5, 0x0B: 1}
        if option not in lengths:
            raise ChipStatus(SW.PARAMETER_ERROR)
        if len(payload) != lengths[option]:
            raise ChipStatus(SW.LENGTH_ERROR)
        nv = self._nv
        if option == 0x00:
            if payload[0] & ~0x02:
                raise ChipStatus(SW.PARAMETER_ERROR)
            if payload[0] & 0x02:
                nv.random_id = True  # irreversible
        elif option == 0x04:
            if payload[0] & ~0x04 or payload[1]:
                raise ChipStatus(SW.PARAMETER_ERROR)
            if payload[0] & 0x04:
                nv.chained_write_disabled = True
        elif option == 0x05:
            if any(payload[0:4]) or any(payload[5:8]) or payload[4] & ~0x02:
                raise ChipStatus(SW.PARAMETER_ERROR)
            if payload[4] & 0x02:
                nv.lrp = True  # irreversible; AES authentication is refused from now on
                for file_no, settings in nv.settings.items():  # and SDM/mirroring is off (ref §5.4)
                    if settings.sdm is not None:
                        nv.settings[file_no] = settings.without_sdm()
            nv.pdcap2_user = bytes(payload[8:10])
        elif option == 0x0A:
            limit = int.from_bytes(payload[1:3], "little")
            decr = int.from_bytes(payload[3:5], "little")
            if payload[0] & ~0x01 or limit == 0:
                raise ChipStatus(SW.PARAMETER_ERROR)
            nv.failed_ctr_enabled = bool(payload[0] & 0x01)
            nv.tot_fail_limit, nv.tot_fail_decr = limit, decr
        else:  # 0x0B
            if payload[0] & ~0x01:
                raise ChipStatus(SW.PARAMETER_ERROR)
            nv.strong_back_modulation = bool(payload[0] & 0x01)
        return self._wrap(b"", FULL), SW.OPERATION_OK

    # ------------------------------------------------------------------ ISO commands (ref §3.3, §7)

    def _iso(self, ins: int, p1: int, p2: int, data: bytes, le: int | None,
             previous_sdm_read: tuple[str, bytes] | None) -> tuple[bytes, int]:
        if ins == 0xA4:
            return self._iso_select(p1, p2, data)
        if ins == 0xB0:
            return self._iso_read(p1, p2, data, le, previous_sdm_read)
        if ins == 0xD6:
            return self._iso_update(p1, p2, data)
        return b"", SW.ISO_INS_NOT_SUPPORTED

    def _iso_select(self, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        if p2 not in (0x00, 0x0C):
            return b"", SW.ISO_WRONG_P1P2
        if not data:  # MF by empty data (P1 00), or the parent DF (P1 03): the PICC level (DS §10.9.1)
            return self._select_picc() if p1 in (0x00, 0x03) else (b"", SW.ISO_LC_INCONSISTENT)
        if p1 == 0x01:  # a child DF of the MF by file ID: the one application
            if len(data) != 2:
                return b"", SW.ISO_LC_INCONSISTENT
            if int.from_bytes(data, "big") == APP_FID and self._level == "picc":
                return self._select_app()
            return b"", SW.ISO_FILE_NOT_FOUND
        if p1 == 0x04:
            if data == APP_DF_NAME:
                return self._select_app()
            if data == PICC_DF_NAME:
                return self._select_picc()
            return b"", SW.ISO_FILE_NOT_FOUND
        if p1 in (0x00, 0x02):
            if len(data) != 2:
                return b"", SW.ISO_LC_INCONSISTENT
            fid = int.from_bytes(data, "big")
            if fid == APP_FID and p1 == 0x00:
                return self._select_app()
            if fid == PICC_FID and p1 == 0x00:
                return self._select_picc()
            if fid in F.FILE_BY_FID and self._level == "app":
                self._selected_file = F.FILE_BY_FID[fid]
                return b"", SW.OK
            return b"", SW.ISO_FILE_NOT_FOUND
        return b"", SW.ISO_WRONG_P1P2

    def _select_app(self) -> tuple[bytes, int]:
        # Re-selecting the application keeps the authentication (AN12196 T23 -> T24).
        self._level, self._selected_file = "app", None
        return b"", SW.OK

    def _select_picc(self) -> tuple[bytes, int]:
        self._level, self._selected_file, self._session = "picc", None, None
        return b"", SW.OK

    def _iso_target(self, p1: int, p2: int) -> tuple[FileSettings | None, int, int]:
        """Resolve (file, offset) from P1-P2: short-FID form or the selected file (ref §7).

        ISO reads and updates are refused in authenticated state (ref §15.14), before anything else.
        """
        if self._session is not None:
            return None, 0, SW.ISO_SECURITY_STATUS
        if p1 & 0x80:
            if p1 & 0x60:
                return None, 0, SW.ISO_WRONG_P1P2
            short_id = p1 & 0x1F
            if short_id == 0x1F:
                return None, 0, SW.ISO_WRONG_P1P2  # RFU
            if short_id == 0x00:  # the currently selected file (DS T87)
                if self._level != "app" or self._selected_file is None:
                    return None, 0, SW.ISO_CONDITIONS
                return self._nv.settings[self._selected_file], p2, SW.OK
            if self._level != "app" or short_id not in self._nv.settings:
                return None, 0, SW.ISO_FILE_NOT_FOUND
            self._selected_file = short_id
            return self._nv.settings[short_id], p2, SW.OK
        if self._level != "app" or self._selected_file is None:
            return None, 0, SW.ISO_CONDITIONS  # no file selected
        return self._nv.settings[self._selected_file], (p1 << 8) | p2, SW.OK

    def _iso_read(self, p1: int, p2: int, data: bytes, le: int | None,
                  previous: tuple[str, bytes] | None) -> tuple[bytes, int]:
        if data:
            return b"", SW.ISO_WRONG_LENGTH
        settings, offset, sw = self._iso_target(p1, p2)
        if settings is None:
            return b"", sw
        sdm = settings.sdm
        free = F.FREE in (settings.read, settings.read_write)
        if not free and not (sdm is not None and sdm.file_read != F.NEVER):
            return b"", SW.ISO_SECURITY_STATUS
        if offset >= settings.size:
            return b"", SW.ISO_WRONG_P1P2
        want = min(le or 256, settings.size - offset)  # Le past the end: the rest of the file (DS T87)
        if sdm is not None:
            try:
                image = self._sdm_image("iso", settings, previous, SW.ISO_SECURITY_STATUS)
            except ChipStatus as exc:
                return b"", exc.sw
        else:
            image = bytes(self._nv.contents[settings.file_no])
        return image[offset:offset + want], SW.OK

    def _iso_update(self, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        if not data:
            return b"", SW.ISO_WRONG_LENGTH
        settings, offset, sw = self._iso_target(p1, p2)
        if settings is None:
            return b"", sw
        if F.FREE not in (settings.write, settings.read_write):
            return b"", SW.ISO_SECURITY_STATUS
        if offset + len(data) > settings.size:
            return b"", SW.ISO_LC_INCONSISTENT
        self._nv.contents[settings.file_no][offset:offset + len(data)] = data
        return b"", SW.OK

    # ------------------------------------------------------------------ introspection (read-only)

    @property
    def uid(self) -> bytes:
        """The chip's real 7-byte UID."""
        return self._nv.uid

    @property
    def in_field(self) -> bool:
        return self._in_field

    @property
    def apdu_count(self) -> int:
        """APDUs received during the current placement."""
        return self._apdu_count

    @property
    def apdu_total(self) -> int:
        """APDUs received over the chip's life."""
        return self._apdu_total

    @property
    def key_versions(self) -> tuple[int, ...]:
        return tuple(self._nv.key_versions)

    @property
    def read_counter(self) -> int:
        """SDMReadCtr of file 02."""
        return self._nv.sdm_read_ctr

    @property
    def random_id(self) -> bool:
        return self._nv.random_id

    @property
    def lrp(self) -> bool:
        return self._nv.lrp

    @property
    def authenticated_key(self) -> int | None:
        """Key number of the running authentication, or None."""
        return self._session.key_no if self._session is not None else None

    @property
    def cmd_ctr(self) -> int | None:
        """CmdCtr of the running authentication, or None."""
        return self._session.cmd_ctr if self._session is not None else None

    @property
    def selected(self) -> str:
        """Selected level: ``"picc"`` (MF) or ``"app"`` (the NDEF application DF)."""
        return self._level

    @property
    def selected_file(self) -> int | None:
        """FileNo of the ISO-selected elementary file, if any."""
        return self._selected_file

    @property
    def tot_fail_counters(self) -> tuple[int, ...]:
        return tuple(self._nv.tot_fail_ctr)

    @property
    def consecutive_failures(self) -> tuple[int, ...]:
        return tuple(self._nv.consecutive_failures)

    @property
    def anticollision_uid(self) -> bytes:
        """The UID the reader sees at anticollision: 4 random bytes (08 ...) per activation with Random ID."""
        if not self._activated_random_id:
            return self._nv.uid
        if self._anticollision_uid is None:
            self._anticollision_uid = b"\x08" + os.urandom(3)
        return self._anticollision_uid

    @property
    def atqa(self) -> bytes:
        return bytes.fromhex("0304" if self._activated_random_id else "0344")

    sak = 0x20
    ats = bytes.fromhex("067777710280")

    def file_settings_bytes(self, file_no: int) -> bytes:
        """The GetFileSettings response body for ``file_no``."""
        return self._nv.settings[file_no].get_body()

    def file_settings(self, file_no: int) -> FileSettings:
        return self._nv.settings[file_no]

    def file_contents(self, file_no: int) -> bytes:
        """The static contents of a file (no SDM mirroring)."""
        return bytes(self._nv.contents[file_no])

    def key(self, key_no: int) -> bytes:
        """A key's current value (debug/test introspection; never part of ``repr``)."""
        return self._nv.keys[key_no]

    # ------------------------------------------------------------------ state keeping

    def snapshot(self) -> NvState:
        """A deep copy of the non-volatile state (contains keys: treat as secret)."""
        return self._nv.copy()

    def restore(self, state: NvState) -> None:
        """Replace the non-volatile state and power-cycle (volatile state resets)."""
        self._nv = state.copy()
        self._signature = sign_uid(self._nv.uid)
        self._reset_volatile()


#: Native commands taking only their data: INS -> handler name (built once, not per APDU).
_NATIVE_HANDLERS = {
    0x71: "_auth_first", 0x77: "_auth_nonfirst", 0x60: "_get_version",
    0x51: "_get_card_uid", 0x64: "_get_key_version", 0xC4: "_change_key",
    0xF5: "_get_file_settings", 0x5F: "_change_file_settings",
    0xF6: "_get_file_counters", 0x3C: "_read_sig", 0x5C: "_set_configuration",
}


def _parse_body(rest: bytes) -> tuple[bytes, int | None] | None:
    """Split the APDU body after CLA INS P1 P2 into (data, Le); None when malformed (short APDUs only)."""
    if not rest:
        return b"", None
    if len(rest) == 1:
        return b"", rest[0]
    lc = rest[0]
    if lc == 0:
        return None  # extended length is not supported
    data, tail = rest[1:1 + lc], rest[1 + lc:]
    if len(data) != lc or len(tail) > 1:
        return None
    return data, (tail[0] if tail else None)


def _span(offset_le: bytes, length_le: bytes, size: int, error: int) -> tuple[int, int]:
    offset = int.from_bytes(offset_le, "little")
    length = int.from_bytes(length_le, "little")
    if offset >= size:
        raise ChipStatus(error)
    if length == 0:
        length = size - offset  # 000000 = to the end of the file
    if offset + length > size:
        raise ChipStatus(error)
    return offset, length


def _wrapped_len(n: int, mode: str) -> int:
    if mode == PLAIN:
        return n
    if mode == MAC:
        return n + 8
    return (n // 16 + 1) * 16 + 8
