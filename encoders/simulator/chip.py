"""A simulated NXP NTAG 424 DNA (NT4H2421Gx), PICC side, as a :class:`Connection`.

Behaviour follows the data-sheet facts restated in ``docs/reference/ntag424.md``; each handler
cites the section it implements ("ref §N" = that file's §N; "DS" = NXP's NT4H2421Gx data sheet,
"AN12196" its features-and-hints note, both listed in ref §0). Where the reference is silent the
choice made is written next to the code (and summarised in the README section "Simulated chip").
This module is the field (placement, tearing) and the dispatch; the commands live by family in
:mod:`.auth`, :mod:`.chip_commands`, :mod:`.file_commands` and :mod:`.iso_commands`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tagsmith import ConfigError
from tagsmith.encoders.apdu import SW
from tagsmith.encoders.connection import TagRemovedError

from . import auth, chip_commands, file_commands, iso_commands
from .core import ChipCore, Command, Handler, Level, RandomSource, Reply, SdmRead
from .ins import CLA_ISO, CLA_NATIVE, INS
from .state import NvState, factory_state
from .status import ChipStatus
from .view import ChipView

#: Native commands (CLA 90) by INS; 90 AF continues a pending exchange instead (ref §2.2).
NATIVE: dict[int, Handler] = {
    INS.AUTHENTICATE_EV2_FIRST: auth.authenticate_ev2_first,
    INS.AUTHENTICATE_EV2_NON_FIRST: auth.authenticate_ev2_non_first,
    INS.GET_VERSION: chip_commands.get_version,
    INS.GET_CARD_UID: chip_commands.get_card_uid,
    INS.GET_KEY_VERSION: chip_commands.get_key_version,
    INS.READ_SIG: chip_commands.read_sig,
    INS.CHANGE_KEY: chip_commands.change_key,
    INS.SET_CONFIGURATION: chip_commands.set_configuration,
    INS.GET_FILE_SETTINGS: file_commands.get_file_settings,
    INS.CHANGE_FILE_SETTINGS: file_commands.change_file_settings,
    INS.GET_FILE_COUNTERS: file_commands.get_file_counters,
    INS.READ_DATA: file_commands.read_data,
    INS.WRITE_DATA: file_commands.write_data,
}
#: ISO 7816-4 commands (CLA 00) by INS.
ISO: dict[int, Handler] = {
    INS.ISO_SELECT_FILE: iso_commands.select_file,
    INS.ISO_READ_BINARY: iso_commands.read_binary,
    INS.ISO_UPDATE_BINARY: iso_commands.update_binary,
}
#: Native commands the PICC level (MF) answers; the others need the application selected (ref §2.2 919D).
PICC_LEVEL = frozenset({INS.GET_VERSION, INS.READ_SIG})

#: Status words after which the authentication survives; any other ends it (ref §2.2).
_KEEPS_SESSION = {SW.OPERATION_OK, SW.ADDITIONAL_FRAME, SW.SIGNATURE_OK_ALT, SW.OK}


#: The environment variable that picks the DF-select model for every simulated chip (README "Simulated chip").
DF_SELECT_ENV = "TAGSMITH_SIM_DF_SELECT"
DF_SELECT_MODELS = {"ends-auth": True, "keeps-auth": False}


def df_select_model_from_env() -> bool:
    """True (a DF select ends the authentication) unless TAGSMITH_SIM_DF_SELECT=keeps-auth."""
    name = os.environ.get(DF_SELECT_ENV, "ends-auth")
    if name not in DF_SELECT_MODELS:
        raise ConfigError(f"{DF_SELECT_ENV}={name!r}: use one of {', '.join(DF_SELECT_MODELS)}")
    return DF_SELECT_MODELS[name]


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
    * ``df_select_ends_auth`` -- whether selecting the application ends a running authentication
      (default: as ``TAGSMITH_SIM_DF_SELECT`` says, ``ends-auth`` unless it is ``keeps-auth``); its
      TI stays for AuthenticateEV2NonFirst either way (ref §3.3).

    :attr:`view` reads the chip's state; :meth:`snapshot` and :meth:`restore` save and load its NVM.
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
        df_select_ends_auth: bool | None = None,
    ) -> None:
        self.tear_commits = tear_commits
        if auth_delay_after < 1 or auth_delay_attempts < 0:
            raise ValueError("auth_delay_after must be >= 1 and auth_delay_attempts >= 0")
        nv = state.copy() if state is not None else factory_state(
            uid=uid, keys=keys, key_versions=key_versions, tag_tamper=tag_tamper, files=files,
            file_settings=file_settings, sdm_read_ctr=sdm_read_ctr, random_id=random_id, lrp=lrp)
        if df_select_ends_auth is None:
            df_select_ends_auth = df_select_model_from_env()
        self._chip = ChipCore(nv, random or os.urandom, auth_delay_after, auth_delay_attempts, df_select_ends_auth)
        self._view = ChipView(self._chip)
        self._tear_at: int | None = None
        if tear_after is not None:
            self.tear_at(tear_after)

    def __repr__(self) -> str:
        nv = self._chip.nv
        where = "in field" if self._chip.in_field else "removed"
        return (f"SimulatedNtag424(uid={nv.uid.hex().upper()}, {where}, "
                f"key_versions={nv.key_versions}, sdm_read_ctr={nv.sdm_read_ctr})")

    @property
    def uid(self) -> bytes:
        """The chip's real 7-byte UID: its identity for readers, pools and stations."""
        return self._chip.nv.uid

    @property
    def view(self) -> ChipView:
        """A read-only view of the chip's stored and volatile state."""
        return self._view

    # ------------------------------------------------------------------ field and tearing

    def place(self) -> None:
        """Bring the chip (back) into the field: a power-up with fresh volatile state."""
        self._chip.in_field = True
        self._chip.power_up()

    power_cycle = place

    def remove(self) -> None:
        """Take the chip out of the field now (between APDUs)."""
        self._chip.in_field = False
        self._chip.power_up()

    def tear_at(self, n: int) -> None:
        """Lose the field while processing the n-th APDU from now (n >= 1)."""
        if n < 1:
            raise ValueError("n counts APDUs from now and starts at 1")
        self._tear_at = self._chip.apdu_total + n

    def tear_next(self) -> None:
        """Lose the field while processing the next APDU."""
        self.tear_at(1)

    def cancel_tear(self) -> None:
        """Disarm a pending tear."""
        self._tear_at = None

    # ------------------------------------------------------------------ Connection

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        """Process one command APDU; return (data, status word). Raises TagRemovedError when torn."""
        chip = self._chip
        if not chip.in_field:
            raise TagRemovedError()
        apdu = bytes(apdu)
        chip.apdu_total += 1
        chip.vol.apdu_count += 1
        tearing = self._tear_at is not None and chip.apdu_total >= self._tear_at
        saved = chip.nv.copy() if tearing and not self.tear_commits else None
        reply = _process(chip, apdu)
        if tearing:
            self._tear_at = None
            if saved is not None:
                chip.nv = saved
            chip.in_field = False
            chip.power_up()
            raise TagRemovedError()
        return reply

    # ------------------------------------------------------------------ state keeping

    def snapshot(self) -> NvState:
        """A deep copy of the non-volatile state (contains keys: treat as secret)."""
        return self._chip.nv.copy()

    def restore(self, state: NvState) -> None:
        """Replace the non-volatile state and power-cycle (volatile state resets)."""
        self._chip.load(state.copy())


def _process(chip: ChipCore, apdu: bytes) -> Reply:
    """Answer one APDU; an error status ends the authentication (DS §9.1.9, ref §2.2)."""
    vol = chip.vol
    previous_sdm_read, vol.sdm_read = vol.sdm_read, None
    try:
        data, sw = _dispatch(chip, apdu, previous_sdm_read)
    except ChipStatus as exc:
        data, sw = b"", exc.sw
    if sw not in _KEEPS_SESSION:
        vol.session = vol.suspended = None
        vol.pending = None
    return data, sw


def _dispatch(chip: ChipCore, apdu: bytes, previous_sdm_read: SdmRead | None) -> Reply:
    if len(apdu) < 4:
        return b"", SW.ISO_WRONG_LENGTH
    cla, ins, p1, p2 = apdu[:4]
    if cla not in (CLA_ISO, CLA_NATIVE):
        return b"", SW.ISO_CLA_NOT_SUPPORTED
    native = cla == CLA_NATIVE
    parsed = _parse_body(apdu[4:])
    if parsed is None:
        return b"", SW.LENGTH_ERROR if native else SW.ISO_WRONG_LENGTH
    data, le = parsed
    vol = chip.vol
    if native:
        if ins == INS.ADDITIONAL_FRAME:
            if vol.pending is None:
                raise ChipStatus(SW.ILLEGAL_COMMAND_CODE)
            pending, vol.pending = vol.pending, None
            return pending.resume(chip, data)
        if vol.pending is not None:  # a new command while part 2/3 is awaited (ref §2.2 91CA)
            vol.pending = None
            raise ChipStatus(SW.COMMAND_ABORTED)
        handler = NATIVE.get(ins)
        if handler is None:
            raise ChipStatus(SW.ILLEGAL_COMMAND_CODE)
        if vol.level is not Level.APP and ins not in PICC_LEVEL:
            if ins == INS.GET_CARD_UID:  # no authentication can exist at PICC level (ref §2.2 91AE)
                raise ChipStatus(SW.AUTHENTICATION_ERROR)
            raise ChipStatus(SW.PERMISSION_DENIED)  # PICC level selected (ref §2.2 919D)
    else:
        if vol.pending is not None:  # a multi-pass native exchange is under way (ref §2.2 6985)
            vol.pending = None
            return b"", SW.ISO_CONDITIONS
        handler = ISO.get(ins)
        if handler is None:
            return b"", SW.ISO_INS_NOT_SUPPORTED
    return handler(chip, Command(ins, p1, p2, data, le, len(apdu), previous_sdm_read))


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
