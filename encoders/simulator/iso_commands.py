"""ISO 7816-4 commands: ISOSelectFile, ISOReadBinary, ISOUpdateBinary.

From ``docs/reference/ntag424.md`` §3.1, §3.3 (levels, file IDs, selection), §7 (P1-P2 forms) and
§15.14 (no ISO file access in authenticated state). Errors are ISO status words (ref §2.1).
"""

from __future__ import annotations

from tagsmith.encoders.apdu import SW

from . import files as F
from .core import ChipCore, Command, Level, Reply
from .file_commands import sdm_image
from .files import FileSettings
from .status import ChipStatus

APP_DF_NAME = bytes.fromhex("D2760000850101")
PICC_DF_NAME = bytes.fromhex("D2760000850100")
APP_FID = 0xE110
PICC_FID = 0x3F00


def select_file(chip: ChipCore, cmd: Command) -> Reply:
    p1, p2, data = cmd.p1, cmd.p2, cmd.data
    if p2 not in (0x00, 0x0C):
        return b"", SW.ISO_WRONG_P1P2
    if not data:  # MF by empty data (P1 00), or the parent DF (P1 03): the PICC level (DS §10.9.1)
        return _select_picc(chip) if p1 in (0x00, 0x03) else (b"", SW.ISO_LC_INCONSISTENT)
    if p1 == 0x01:  # a child DF of the MF by file ID: the one application
        if len(data) != 2:
            return b"", SW.ISO_LC_INCONSISTENT
        if int.from_bytes(data, "big") == APP_FID and chip.vol.level is Level.PICC:
            return _select_app(chip)
        return b"", SW.ISO_FILE_NOT_FOUND
    if p1 == 0x04:
        if data == APP_DF_NAME:
            return _select_app(chip)
        if data == PICC_DF_NAME:
            return _select_picc(chip)
        return b"", SW.ISO_FILE_NOT_FOUND
    if p1 in (0x00, 0x02):
        if len(data) != 2:
            return b"", SW.ISO_LC_INCONSISTENT
        fid = int.from_bytes(data, "big")
        if fid == APP_FID and p1 == 0x00:
            return _select_app(chip)
        if fid == PICC_FID and p1 == 0x00:
            return _select_picc(chip)
        if fid in F.FILE_BY_FID and chip.vol.level is Level.APP:
            chip.vol.selected_file = F.FILE_BY_FID[fid]
            return b"", SW.OK
        return b"", SW.ISO_FILE_NOT_FOUND
    return b"", SW.ISO_WRONG_P1P2


def _select_app(chip: ChipCore) -> Reply:
    """Select the application. By default a running authentication ends here, as on the silicon a
    peer tool validated, while its TI stays for AuthenticateEV2NonFirst (AN12196 T23 -> T24); the
    other model keeps the authentication running (ref §3.3)."""
    vol = chip.vol
    vol.level, vol.selected_file = Level.APP, None
    if chip.df_select_ends_auth and vol.session is not None:
        vol.suspended, vol.session = vol.session, None
    return b"", SW.OK


def _select_picc(chip: ChipCore) -> Reply:
    vol = chip.vol
    vol.level, vol.selected_file, vol.session, vol.suspended = Level.PICC, None, None, None
    return b"", SW.OK


def read_binary(chip: ChipCore, cmd: Command) -> Reply:
    """Plain reads of a free file; the SDM file comes mirrored, as ReadData's (ref §10.1)."""
    if cmd.data:
        return b"", SW.ISO_WRONG_LENGTH
    settings, offset, sw = _target(chip, cmd.p1, cmd.p2)
    if settings is None:
        return b"", sw
    sdm = settings.sdm
    free = F.FREE in (settings.read, settings.read_write)
    if not free and not (sdm is not None and sdm.file_read != F.NEVER):
        return b"", SW.ISO_SECURITY_STATUS
    if offset >= settings.size:
        return b"", SW.ISO_WRONG_P1P2
    want = min(cmd.le or 256, settings.size - offset)  # Le past the end: the rest of the file (DS T87)
    if sdm is not None:
        try:
            image = sdm_image(chip, "iso", settings, cmd.previous_sdm_read, SW.ISO_SECURITY_STATUS)
        except ChipStatus as exc:
            return b"", exc.sw
    else:
        image = bytes(chip.nv.contents[settings.file_no])
    return image[offset:offset + want], SW.OK


def update_binary(chip: ChipCore, cmd: Command) -> Reply:
    data = cmd.data
    if not data:
        return b"", SW.ISO_WRONG_LENGTH
    settings, offset, sw = _target(chip, cmd.p1, cmd.p2)
    if settings is None:
        return b"", sw
    if F.FREE not in (settings.write, settings.read_write):
        return b"", SW.ISO_SECURITY_STATUS
    if offset + len(data) > settings.size:
        return b"", SW.ISO_LC_INCONSISTENT
    chip.nv.contents[settings.file_no][offset:offset + len(data)] = data
    return b"", SW.OK


def _target(chip: ChipCore, p1: int, p2: int) -> tuple[FileSettings | None, int, int]:
    """Resolve (file, offset) from P1-P2: short-FID form or the selected file (ref §7).

    ISO reads and updates are refused in authenticated state (ref §15.14), before anything else.
    """
    vol, settings = chip.vol, chip.nv.settings
    if vol.session is not None:
        return None, 0, SW.ISO_SECURITY_STATUS
    in_app = vol.level is Level.APP
    if p1 & 0x80:
        if p1 & 0x60:
            return None, 0, SW.ISO_WRONG_P1P2
        short_id = p1 & 0x1F
        if short_id == 0x1F:
            return None, 0, SW.ISO_WRONG_P1P2  # RFU
        if short_id == 0x00:  # the currently selected file (DS T87)
            if not in_app or vol.selected_file is None:
                return None, 0, SW.ISO_CONDITIONS
            return settings[vol.selected_file], p2, SW.OK
        if not in_app or short_id not in settings:
            return None, 0, SW.ISO_FILE_NOT_FOUND
        vol.selected_file = short_id
        return settings[short_id], p2, SW.OK
    if not in_app or vol.selected_file is None:
        return None, 0, SW.ISO_CONDITIONS  # no file selected
    return settings[vol.selected_file], (p1 << 8) | p2, SW.OK
