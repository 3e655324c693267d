"""Authentication commands: AuthenticateEV2First/NonFirst (AES) and AuthenticateLRPFirst/NonFirst.

From ``docs/reference/ntag424.md`` §5.1, §5.2 (the two passes), docs/reference/ntag424.md §5.3 (session keys) and
docs/reference/ntag424.md §12 (the
failed-authentication counters and the delay), and ``docs/reference/lrp.md`` §4 (LRP, NT4H2421Gx
§9.2.5-§9.2.7, AN12321 §4). Both use INS 71 / 77: the PCD asks for LRP with PCDcap2.1 bit 1; an
AES-mode chip answers in AES whatever is asked, an LRP-mode chip refuses AES (919D, docs/reference/ntag424.md §5.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tagsmith.encoders.apdu import SW

from .core import ChipCore, Command, Reply, check_key_no
from .sm import AesCipher, AesKey, LrpCipher, Session, ev2_session_keys, lrp_session_keys, rotl1
from .status import ChipStatus


@dataclass
class Challenge:
    """Part 1 answered with E(RndB); part 2 (the PCD's answer) is awaited."""

    key_no: int
    first: bool
    rnd_b: bytes
    key: AesKey = field(repr=False)  # the auth key, expanded once for both parts
    pcd_cap2: bytes = b""
    previous: Session | None = None  # NonFirst: the session whose TI and CmdCtr carry over

    def resume(self, chip: ChipCore, data: bytes) -> Reply:
        return _answer(chip, self, data)


@dataclass
class LrpChallenge:
    """Part 1 answered with 01 || RndB in plain; part 2 (RndA and the PCD's MAC) is awaited."""

    key_no: int
    first: bool
    rnd_b: bytes
    key: bytes = field(repr=False)
    pcd_cap2: bytes = b""
    previous: Session | None = None

    def resume(self, chip: ChipCore, data: bytes) -> Reply:
        return _lrp_answer(chip, self, data)


def authenticate_ev2_first(chip: ChipCore, cmd: Command) -> Reply:
    """Part 1 of EV2First / LRPFirst: KeyNo, LenCap, PCDcap2 (docs/reference/ntag424.md §5.1, docs/reference/lrp.md §4)."""
    data = cmd.data
    if len(data) < 2 or len(data) != 2 + data[1] or data[1] > 6:
        raise ChipStatus(SW.LENGTH_ERROR)
    chip.vol.session = chip.vol.suspended = None  # a new EV2First replaces any earlier authentication
    pcd_cap2 = (data[2:] + bytes(6))[:6]
    key_no = _gate(chip, data[0], lrp_asked=bool(pcd_cap2[0] & _PCDCAP2_LRP))
    if chip.nv.lrp:
        return _lrp_challenge(chip, key_no, first=True, pcd_cap2=pcd_cap2)
    return _challenge(chip, key_no, first=True, pcd_cap2=pcd_cap2)


def authenticate_ev2_non_first(chip: ChipCore, cmd: Command) -> Reply:
    """Part 1 of NonFirst: KeyNo only; needs a running authentication, whose mode it keeps (docs/reference/ntag424.md §5.2)."""
    vol = chip.vol
    previous = vol.session or vol.suspended  # running, or ended by a DF select (docs/reference/ntag424.md §3.3)
    if previous is None:
        raise ChipStatus(SW.PERMISSION_DENIED)  # NonFirst needs an earlier authentication (DS T33: 9D)
    if len(cmd.data) != 1:
        raise ChipStatus(SW.LENGTH_ERROR)
    vol.session = vol.suspended = None
    key_no = _gate(chip, cmd.data[0], lrp_asked=previous.mode == "lrp")
    if chip.nv.lrp:
        return _lrp_challenge(chip, key_no, first=False, previous=previous)
    return _challenge(chip, key_no, first=False, previous=previous)


#: PCDcap2.1 bit 1: the PCD asks for LRP secure messaging (docs/reference/lrp.md §4).
_PCDCAP2_LRP = 0x02


def _gate(chip: ChipCore, raw_key_no: int, *, lrp_asked: bool) -> int:
    """Refuse a blocked or delayed key before any challenge is drawn (docs/reference/ntag424.md §12)."""
    key_no = check_key_no(raw_key_no)
    nv = chip.nv
    if nv.lrp and not lrp_asked:
        raise ChipStatus(SW.PERMISSION_DENIED)  # AES EV2 auth on an LRP-mode tag (docs/reference/ntag424.md §5.4)
    if nv.failed_ctr_enabled and nv.tot_fail_ctr[key_no] >= nv.tot_fail_limit:
        raise ChipStatus(SW.PERMISSION_DENIED)  # key blocked by TotFailCtrLimit
    if nv.consecutive_failures[key_no] >= chip.auth_delay_after:
        spent = chip.vol.delay_spent
        if spent[key_no] < chip.auth_delay_attempts:
            spent[key_no] += 1
            raise ChipStatus(SW.AUTHENTICATION_DELAY)
    return key_no


def _challenge(chip: ChipCore, key_no: int, *, first: bool, pcd_cap2: bytes = b"",
               previous: Session | None = None) -> Reply:
    rnd_b = chip.draw(16)
    pending = Challenge(key_no, first, rnd_b, AesKey(chip.nv.keys[key_no]), pcd_cap2, previous)
    chip.vol.pending = pending
    return pending.key.cbc_encrypt(rnd_b), SW.ADDITIONAL_FRAME


def _lrp_challenge(chip: ChipCore, key_no: int, *, first: bool, pcd_cap2: bytes = b"",
                   previous: Session | None = None) -> Reply:
    """AuthMode 01 and RndB in plain, 17 bytes (NT4H2421Gx §9.2.5 T38, §9.2.6)."""
    rnd_b = chip.draw(16)
    chip.vol.pending = LrpChallenge(key_no, first, rnd_b, chip.nv.keys[key_no], pcd_cap2, previous)
    return b"\x01" + rnd_b, SW.ADDITIONAL_FRAME


def _answer(chip: ChipCore, pending: Challenge, data: bytes) -> Reply:
    """Part 2: check RndB', count the result, start the session (docs/reference/ntag424.md §5.1, §5.2, §5.3)."""
    if len(data) != 32:
        raise ChipStatus(SW.LENGTH_ERROR)
    key_no, key = pending.key_no, pending.key
    plain = key.cbc_decrypt(data)
    rnd_a, rnd_b_rot = plain[:16], plain[16:]
    _count(chip, key_no, passed=rnd_b_rot == rotl1(pending.rnd_b))
    enc, mac = ev2_session_keys(key, rnd_a, pending.rnd_b)
    if pending.first:
        ti = chip.draw(4)
        chip.vol.session = Session(key_no, ti, mac, AesCipher(enc), 0)
        reply = ti + rotl1(rnd_a) + _pd_cap2(chip) + pending.pcd_cap2
    else:
        assert pending.previous is not None
        previous = pending.previous
        chip.vol.session = Session(key_no, previous.ti, mac, AesCipher(enc), previous.cmd_ctr)
        reply = rotl1(rnd_a)
    return key.cbc_encrypt(reply), SW.OPERATION_OK


def _lrp_answer(chip: ChipCore, pending: LrpChallenge, data: bytes) -> Reply:
    """Part 2 in LRP: RndA || CMAC_LRP(SesAuthMACKey, RndA || RndB), untruncated (docs/reference/lrp.md §4).

    First answers PICCData (TI || PDcap2 || PCDcap2 under SesAuthENCKey, EncCtr 0) and
    CMAC_LRP(SesAuthMACKey, RndB || RndA || PICCData); NonFirst answers only
    CMAC_LRP(SesAuthMACKey, RndB || RndA) and keeps TI and CmdCtr. EncCtr then starts at 1 and 0.
    """
    if len(data) != 32:
        raise ChipStatus(SW.LENGTH_ERROR)
    key_no, rnd_a, rnd_b = pending.key_no, data[:16], pending.rnd_b
    mac, enc = lrp_session_keys(pending.key, rnd_a, rnd_b)
    _count(chip, key_no, passed=mac.cmac(rnd_a + rnd_b) == data[16:])
    if pending.first:
        ti = chip.draw(4)
        picc_data, _ = enc.encrypt(ti + _pd_cap2(chip) + pending.pcd_cap2, bytes(4))
        chip.vol.session = Session(key_no, ti, mac, LrpCipher(enc, 1), 0)
        return picc_data + mac.cmac(rnd_b + rnd_a + picc_data), SW.OPERATION_OK
    assert pending.previous is not None
    previous = pending.previous
    chip.vol.session = Session(key_no, previous.ti, mac, LrpCipher(enc, 0), previous.cmd_ctr)
    return mac.cmac(rnd_b + rnd_a), SW.OPERATION_OK


def _count(chip: ChipCore, key_no: int, *, passed: bool) -> None:
    """Move the failed-authentication counters; a failure answers 91AE (docs/reference/ntag424.md §12)."""
    nv, vol = chip.nv, chip.vol
    vol.delay_spent[key_no] = 0
    if not passed:
        nv.consecutive_failures[key_no] += 1
        if nv.failed_ctr_enabled:
            nv.tot_fail_ctr[key_no] += 1
        raise ChipStatus(SW.AUTHENTICATION_ERROR)
    nv.consecutive_failures[key_no] = 0
    if nv.failed_ctr_enabled:
        nv.tot_fail_ctr[key_no] = max(0, nv.tot_fail_ctr[key_no] - nv.tot_fail_decr)


def _pd_cap2(chip: ChipCore) -> bytes:
    """PDcap2 as authentication reports it: PDCap2.1 (02 in LRP mode), RFU, PDCap2.5 and .6 (docs/reference/ntag424.md §12)."""
    nv = chip.nv
    return bytes([0x02 if nv.lrp else 0x00, 0, 0, 0]) + nv.pdcap2_user
