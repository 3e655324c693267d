"""Chip-level commands: GetVersion, GetCardUID, GetKeyVersion, Read_Sig, ChangeKey, SetConfiguration.

From ``docs/reference/ntag424.md`` §7 (command bytes), §6.4 (CommMode per command), §8 (ChangeKey),
§11 (Read_Sig) and §12 (SetConfiguration options).
"""

from __future__ import annotations

from dataclasses import dataclass

from tagsmith.encoders.apdu import SW

from .core import ChipCore, Comm, Command, Reply, check_key_no
from .ins import INS
from .sm import crc32nk
from .status import ChipStatus

# GetVersion (ref §7): HW part, SW part (minor 02 as in the data sheet), production data.
_HW_SUBTYPE = 0x02
_HW_SUBTYPE_TAGTAMPER = 0x08
_SW_VERSION = bytes.fromhex("04040201021105")
_PRODUCTION = bytes.fromhex("CD65935D402118")  # BatchNo(4) BatchNo/FabKey FabKey/CWProd YearProd

#: SetConfiguration option -> length of its data (ref §12).
_OPTION_LENGTHS = {0x00: 1, 0x04: 2, 0x05: 10, 0x0A: 5, 0x0B: 1}


@dataclass
class VersionParts:
    """GetVersion sent part ``step - 1``; ``collected`` is what the final MAC covers (ref §6.4)."""

    step: int
    collected: bytes

    def resume(self, chip: ChipCore, data: bytes) -> Reply:
        if data:
            raise ChipStatus(SW.LENGTH_ERROR)
        if self.step == 2:
            self.step, self.collected = 3, self.collected + _SW_VERSION
            chip.vol.pending = self
            return _SW_VERSION, SW.ADDITIONAL_FRAME
        nv = chip.nv
        uid = bytes(7) if nv.random_id else nv.uid  # Random ID hides the UID (ref §7)
        part3 = uid + _PRODUCTION
        session = chip.vol.session
        if session is None:
            return part3, SW.OPERATION_OK
        session.advance()  # MAC over all three parts, returned with the last (ref §6.4)
        return part3 + session.response_mac(0x00, self.collected + part3), SW.OPERATION_OK


def get_version(chip: ChipCore, cmd: Command) -> Reply:
    """Part 1 (hardware); parts 2 and 3 follow on 90 AF."""
    _, payload = chip.unwrap(INS.GET_VERSION, cmd.data, 0, Comm.MAC)
    if payload:
        raise ChipStatus(SW.LENGTH_ERROR)
    subtype = _HW_SUBTYPE_TAGTAMPER if chip.nv.tag_tamper else _HW_SUBTYPE
    if not chip.vol.strong_back_modulation:
        subtype |= 0x80  # high nibble 8: standard back modulation (DS T54), as activated
    part1 = bytes([0x04, 0x04, subtype, 0x30, 0x00, 0x11, 0x05])
    chip.vol.pending = VersionParts(step=2, collected=part1)
    return part1, SW.ADDITIONAL_FRAME


def get_card_uid(chip: ChipCore, cmd: Command) -> Reply:
    """The real UID, Full mode; only after an authentication (ref §6.4)."""
    if chip.vol.session is None:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    _, payload = chip.unwrap(INS.GET_CARD_UID, cmd.data, 0, Comm.FULL)
    if payload:
        raise ChipStatus(SW.LENGTH_ERROR)
    return chip.wrap(chip.nv.uid, Comm.FULL), SW.OPERATION_OK


def get_key_version(chip: ChipCore, cmd: Command) -> Reply:
    header, payload = chip.unwrap(INS.GET_KEY_VERSION, cmd.data, 1, Comm.MAC)
    if payload or not header:
        raise ChipStatus(SW.LENGTH_ERROR)
    key_no = check_key_no(header[0])
    return chip.wrap(bytes([chip.nv.key_versions[key_no]]), Comm.MAC), SW.OPERATION_OK


def read_sig(chip: ChipCore, cmd: Command) -> Reply:
    """The originality signature: free with Random ID off, else after an authentication (ref §11)."""
    if chip.nv.random_id and chip.vol.session is None:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    header, payload = chip.unwrap(INS.READ_SIG, cmd.data, 1, Comm.FULL)
    if payload or len(header) != 1:
        raise ChipStatus(SW.LENGTH_ERROR)
    if header[0] != 0x00:
        raise ChipStatus(SW.PARAMETER_ERROR)
    # Silicon answers 91 90 (AN12196 T30); RC 90 then also enters the response MAC.
    return chip.wrap(chip.signature, Comm.FULL, rc=0x90), SW.SIGNATURE_OK_ALT


def change_key(chip: ChipCore, cmd: Command) -> Reply:
    """Key 0 takes NewKey || version; others NewKey XOR OldKey || version || CRC32NK (ref §8)."""
    data, session = cmd.data, chip.vol.session
    if session is None:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    if len(data) != 1 + 32 + 8:
        raise ChipStatus(SW.LENGTH_ERROR)
    key_no = check_key_no(data[0])
    if session.key_no != 0:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)  # every ChangeKey needs the AppMasterKey
    _, plain = chip.unwrap(INS.CHANGE_KEY, data, 1, Comm.FULL)
    nv = chip.nv
    if key_no == 0:
        if len(plain) != 17:
            raise ChipStatus(SW.LENGTH_ERROR)
        new_key, version = plain[:16], plain[16]
    else:
        if len(plain) != 21:
            raise ChipStatus(SW.LENGTH_ERROR)
        new_key = bytes(a ^ b for a, b in zip(plain[:16], nv.keys[key_no], strict=False))
        version = plain[16]
        if crc32nk(new_key) != plain[17:21]:
            raise ChipStatus(SW.INTEGRITY_ERROR)
    nv.keys[key_no] = new_key
    nv.key_versions[key_no] = version
    nv.tot_fail_ctr[key_no] = 0
    nv.consecutive_failures[key_no] = 0
    if key_no == 0:
        chip.vol.session = None  # changing the authenticated key ends the session: bare 9100
        return b"", SW.OPERATION_OK
    return chip.wrap(b"", Comm.FULL), SW.OPERATION_OK


def set_configuration(chip: ChipCore, cmd: Command) -> Reply:
    """Options 00, 04, 05, 0A and 0B under key 0, Full mode (ref §12)."""
    session = chip.vol.session
    if session is None or session.key_no != 0:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    header, payload = chip.unwrap(INS.SET_CONFIGURATION, cmd.data, 1, Comm.FULL)
    if not header:
        raise ChipStatus(SW.LENGTH_ERROR)
    option = header[0]
    if option not in _OPTION_LENGTHS:
        raise ChipStatus(SW.PARAMETER_ERROR)
    if len(payload) != _OPTION_LENGTHS[option]:
        raise ChipStatus(SW.LENGTH_ERROR)
    _CONFIGURE[option](chip, payload)
    return chip.wrap(b"", Comm.FULL), SW.OPERATION_OK


def _picc_config(chip: ChipCore, payload: bytes) -> None:
    if payload[0] & ~0x02:
        raise ChipStatus(SW.PARAMETER_ERROR)
    if payload[0] & 0x02:
        chip.nv.random_id = True  # irreversible


def _sm_config(chip: ChipCore, payload: bytes) -> None:
    if payload[0] & ~0x04 or payload[1]:
        raise ChipStatus(SW.PARAMETER_ERROR)
    if payload[0] & 0x04:
        chip.nv.chained_write_disabled = True


def _capabilities(chip: ChipCore, payload: bytes) -> None:
    if any(payload[0:4]) or any(payload[5:8]) or payload[4] & ~0x02:
        raise ChipStatus(SW.PARAMETER_ERROR)
    nv = chip.nv
    if payload[4] & 0x02:
        nv.lrp = True  # irreversible; AES authentication is refused from now on
        for file_no, settings in nv.settings.items():  # and SDM/mirroring is off (ref §5.4)
            if settings.sdm is not None:
                nv.settings[file_no] = settings.without_sdm()
    nv.pdcap2_user = bytes(payload[8:10])


def _failed_ctr(chip: ChipCore, payload: bytes) -> None:
    limit = int.from_bytes(payload[1:3], "little")
    decr = int.from_bytes(payload[3:5], "little")
    if payload[0] & ~0x01 or limit == 0:
        raise ChipStatus(SW.PARAMETER_ERROR)
    nv = chip.nv
    nv.failed_ctr_enabled = bool(payload[0] & 0x01)
    nv.tot_fail_limit, nv.tot_fail_decr = limit, decr


def _back_modulation(chip: ChipCore, payload: bytes) -> None:
    if payload[0] & ~0x01:
        raise ChipStatus(SW.PARAMETER_ERROR)
    chip.nv.strong_back_modulation = bool(payload[0] & 0x01)


_CONFIGURE = {0x00: _picc_config, 0x04: _sm_config, 0x05: _capabilities, 0x0A: _failed_ctr,
              0x0B: _back_modulation}
