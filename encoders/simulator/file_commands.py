"""File and SDM commands: GetFileSettings, ChangeFileSettings, GetFileCounters, ReadData, WriteData.

From ``docs/reference/ntag424.md`` §4 (access rights and CommMode), §7 (command bytes), §9 (file
settings and what the chip refuses) and §10 (SUN mirroring and SDMReadCtr).
"""

from __future__ import annotations

from tagsmith.encoders.apdu import SW

from . import files as F
from .core import ChipCore, Comm, Command, Reply, SdmRead
from .files import FileSettings, parse_settings
from .ins import INS
from .sdm import mirror
from .status import ChipStatus

#: Longest APDU that fits one 128-byte ISO 14443-4 frame (PCB + CRC take 3 bytes), ref §2.1.
SINGLE_FRAME_APDU = 125


def get_file_settings(chip: ChipCore, cmd: Command) -> Reply:
    header, payload = chip.unwrap(INS.GET_FILE_SETTINGS, cmd.data, 1, Comm.MAC)
    if payload or not header:
        raise ChipStatus(SW.LENGTH_ERROR)
    return chip.wrap(chip.file(header[0]).get_body(), Comm.MAC), SW.OPERATION_OK


def change_file_settings(chip: ChipCore, cmd: Command) -> Reply:
    """New settings under the file's Change right; Full mode whenever that right is a key (ref §9.1)."""
    data = cmd.data
    if not data:
        raise ChipStatus(SW.LENGTH_ERROR)
    current = chip.file(data[0])
    if current.change == F.NEVER:
        raise ChipStatus(SW.PERMISSION_DENIED)
    mode = chip.access_mode(current, (current.change,))
    if mode is None:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    if current.change != F.FREE:
        mode = Comm.FULL
    _, body = chip.unwrap(INS.CHANGE_FILE_SETTINGS, data, 1, mode)
    new = parse_settings(current, body, counter_after=0, lrp=chip.nv.lrp)
    chip.nv.settings[current.file_no] = new
    if new.sdm is not None:
        chip.nv.sdm_read_ctr = 0  # enabling SDM resets SDMReadCtr (ref §9.4)
    return chip.wrap(b"", mode), SW.OPERATION_OK


def get_file_counters(chip: ChipCore, cmd: Command) -> Reply:
    """SDMReadCtr under the SDMCtrRet right (ref §7)."""
    data = cmd.data
    if not data:
        raise ChipStatus(SW.LENGTH_ERROR)
    settings = chip.file(data[0])
    sdm = settings.sdm
    if sdm is None or not sdm.ctr_enabled or sdm.ctr_ret == F.NEVER:
        raise ChipStatus(SW.PERMISSION_DENIED)  # SDM off, or the counter is never returned (ref §7)
    mode = chip.access_mode(settings, (sdm.ctr_ret,))
    if mode is None:
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    if sdm.ctr_ret != F.FREE:
        mode = Comm.FULL
    _, payload = chip.unwrap(INS.GET_FILE_COUNTERS, data, 1, mode)
    if payload:
        raise ChipStatus(SW.LENGTH_ERROR)
    reply = chip.nv.sdm_read_ctr.to_bytes(3, "little") + bytes(2)
    return chip.wrap(reply, mode), SW.OPERATION_OK


def read_data(chip: ChipCore, cmd: Command) -> Reply:
    """FileNo, offset, length; unauthenticated reads of the SDM file come mirrored (ref §10.1)."""
    data = cmd.data
    if len(data) < 7:
        raise ChipStatus(SW.LENGTH_ERROR)
    settings = chip.file(data[0])
    sdm = settings.sdm
    mode = chip.access_mode(settings, (settings.read, settings.read_write))
    sdm_read = chip.vol.session is None and sdm is not None
    if mode is None and sdm is not None and sdm_read and sdm.file_read != F.NEVER:
        mode = Comm.PLAIN  # SDMFileRead grants free reading with SDM applied (ref §4.2)
    if mode is None:
        never = (settings.read, settings.read_write, sdm.file_read if sdm is not None else F.NEVER)
        raise ChipStatus(SW.PERMISSION_DENIED if set(never) == {F.NEVER} else SW.AUTHENTICATION_ERROR)
    header, payload = chip.unwrap(INS.READ_DATA, data, 7, mode)
    if payload:
        raise ChipStatus(SW.LENGTH_ERROR)
    offset, length = _span(header[1:4], header[4:7], settings.size)
    if _wrapped_len(length, mode) > 256:
        raise ChipStatus(SW.LENGTH_ERROR)  # response (SM included) must fit a short APDU
    if sdm_read:
        image = sdm_image(chip, "native", settings, cmd.previous_sdm_read, SW.PERMISSION_DENIED)
    else:
        image = bytes(chip.nv.contents[settings.file_no])
    return chip.wrap(image[offset:offset + length], mode), SW.OPERATION_OK


def write_data(chip: ChipCore, cmd: Command) -> Reply:
    data = cmd.data
    if len(data) < 7:
        raise ChipStatus(SW.LENGTH_ERROR)
    settings = chip.file(data[0])
    mode = chip.access_mode(settings, (settings.write, settings.read_write))
    if mode is None:  # 9D when no key could ever write it (DS T83), else AE
        never = settings.write == settings.read_write == F.NEVER
        raise ChipStatus(SW.PERMISSION_DENIED if never else SW.AUTHENTICATION_ERROR)
    if mode is not Comm.PLAIN and chip.nv.chained_write_disabled and cmd.apdu_len > SINGLE_FRAME_APDU:
        raise ChipStatus(SW.PERMISSION_DENIED)  # chained MAC/Full write disabled (option 04)
    header, payload = chip.unwrap(INS.WRITE_DATA, data, 7, mode)
    offset = int.from_bytes(header[1:4], "little")
    length = int.from_bytes(header[4:7], "little")
    if length == 0 or len(payload) != length:
        raise ChipStatus(SW.LENGTH_ERROR)
    if offset + length > settings.size:
        raise ChipStatus(SW.BOUNDARY_ERROR)
    chip.nv.contents[settings.file_no][offset:offset + length] = payload
    return chip.wrap(b"", mode), SW.OPERATION_OK


def sdm_image(chip: ChipCore, via: str, settings: FileSettings, previous: SdmRead | None, limit_sw: int) -> bytes:
    """The mirrored file for an unauthenticated read of the SDM file (ref §10.1).

    The first read after any other command moves SDMReadCtr and builds a new image; further
    reads with the same command type (``via``) reuse it (same counter, same random padding).
    """
    sdm = settings.sdm
    assert sdm is not None
    if previous is not None and previous.via == via:
        image = previous.image
    else:
        nv = chip.nv
        if sdm.ctr_enabled:
            at_limit = sdm.limit_enabled and nv.sdm_read_ctr >= (sdm.ctr_limit or 0)
            if at_limit or nv.sdm_read_ctr >= 0xFFFFFF:
                raise ChipStatus(limit_sw)
            nv.sdm_read_ctr += 1
        image = mirror(bytes(nv.contents[settings.file_no]), sdm, uid=nv.uid,
                       ctr=nv.sdm_read_ctr, keys=nv.keys, random=chip.draw, lrp=nv.lrp)
    chip.vol.sdm_read = SdmRead(via, image)
    return image


def _span(offset_le: bytes, length_le: bytes, size: int) -> tuple[int, int]:
    """(offset, length) of a ReadData; length 000000 reads to the end of the file (ref §7)."""
    offset = int.from_bytes(offset_le, "little")
    length = int.from_bytes(length_le, "little")
    if offset >= size:
        raise ChipStatus(SW.BOUNDARY_ERROR)
    if length == 0:
        length = size - offset
    if offset + length > size:
        raise ChipStatus(SW.BOUNDARY_ERROR)
    return offset, length


def _wrapped_len(n: int, mode: Comm) -> int:
    """Response length once secure messaging is added (ref §6.2, §6.3)."""
    if mode is Comm.PLAIN:
        return n
    if mode is Comm.MAC:
        return n + 8
    return (n // 16 + 1) * 16 + 8
