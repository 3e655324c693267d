"""The simulated chip in LRP mode against published exchanges and taps.

Sources of the numbers (the chip's side is replayed through its injected random source):
* NXP AN12321 §4 Table 2: AuthenticateLRPFirst with the all-zero key (RndA, RndB, TI, the PCD's
  MAC and the chip's answer), as reproduced in icedevml/nfc-ev2-crypto test_lrp_auth.py.
* A real chip's AuthenticateLRPFirst/NonFirst pair with key 0 (a hardware capture replayed by
  NT4H2421Gx driver tests), for NonFirst, which AN12321 does not show.
* icedevml/nfc-ev2-crypto test_lrp_cmd.py: GetCardUID three times, and WriteData then ReadData
  in Full mode, given as the session vector, TI and the APDUs.
* nfc-developer/sdm-backend tests/test_lrp_sdm.py: two LRP SDM taps with the zero keys.
The test PCD uses the simulator's own LRP primitive, which test_sim_lrp_primitives pins to AN12304.
"""

from __future__ import annotations

import zlib

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from tagsmith.encoders.connection import TagRemovedError
from tagsmith.encoders.simulator import NvState, SimulatedNtag424
from tagsmith.encoders.simulator.lrp import Lrp
from tagsmith.encoders.simulator.sm import pad_m2, unpad_m2


def h(value: str) -> bytes:
    return bytes.fromhex(value.replace(" ", ""))


ZERO = bytes(16)
SELECT_APP = "00A4040C07D276000085010100"
LRP_FIRST_KEY0 = "9071000008" "00" "06" "020000000000" "00"  # KeyNo 00, LenCap 06, PCDcap2 02 00 00 00 00 00


def feed(*values: str):
    """A ``random=`` source handing out exactly these values, in order."""
    queue = [h(v) for v in values]

    def draw(n: int) -> bytes:
        value = queue.pop(0)
        assert len(value) == n, f"chip asked for {n} random bytes, next value has {len(value)}"
        return value

    return draw


def apdu(ins: int, data: bytes = b"") -> bytes:
    return bytes([0x90, ins, 0, 0]) + (bytes([len(data)]) + data if data else b"") + b"\x00"


def send(chip: SimulatedNtag424, command: bytes | str) -> tuple[bytes, int]:
    return chip.transceive(h(command) if isinstance(command, str) else command)


def selected(chip: SimulatedNtag424) -> SimulatedNtag424:
    assert send(chip, SELECT_APP) == (b"", 0x9000)
    return chip


class LrpPcd:
    """Just enough of the PCD side of LRP (docs/reference/lrp.md §4, §5) to drive the chip."""

    def __init__(self, chip: SimulatedNtag424) -> None:
        self.chip = chip
        self.ti = b""
        self.cmd_ctr = self.enc_ctr = 0

    def authenticate(self, key_no: int, key: bytes, rnd_a: bytes, *, first: bool = True) -> int:
        part1 = apdu(0x71, bytes([key_no, 6, 2, 0, 0, 0, 0, 0])) if first else apdu(0x77, bytes([key_no]))
        data, sw = send(self.chip, part1)
        if sw != 0x91AF:
            return sw
        assert data[0] == 0x01 and len(data) == 17
        rnd_b = data[1:]
        ctx = rnd_a[:2] + bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True)) + rnd_b[6:] + rnd_a[8:]
        self.mac, self.enc = Lrp.pair(Lrp(key, 0).cmac(h("00010080") + ctx + h("9669")))
        data, sw = send(self.chip, apdu(0xAF, rnd_a + self.mac.cmac(rnd_a + rnd_b)))
        if sw != 0x9100:
            return sw
        if first:
            assert data[16:] == self.mac.cmac(rnd_b + rnd_a + data[:16])
            plain, _ = self.enc.decrypt(data[:16], bytes(4))
            assert plain[4:] == h("020000000000 020000000000")
            self.ti, self.cmd_ctr, self.enc_ctr = plain[:4], 0, 1
        else:
            assert data == self.mac.cmac(rnd_b + rnd_a)
            self.enc_ctr = 0
        return sw

    def _crypt(self, run, data: bytes) -> bytes:
        out, after = run(data, self.enc_ctr.to_bytes(4, "big"))
        self.enc_ctr = int.from_bytes(after, "big")
        return out

    def cmd(self, ins: int, header: bytes = b"", data: bytes = b"", mode: str = "full") -> tuple[bytes, int]:
        if mode == "full" and data:
            data = self._crypt(self.enc.encrypt, pad_m2(data))
        mac = self.mac.mact(bytes([ins]) + self.cmd_ctr.to_bytes(2, "little") + self.ti + header + data)
        resp, sw = send(self.chip, apdu(ins, header + data + mac))
        if sw not in (0x9100, 0x9190):
            return resp, sw
        self.cmd_ctr += 1
        body = resp[:-8]
        rc = bytes([sw & 0xFF])
        assert resp[-8:] == self.mac.mact(rc + self.cmd_ctr.to_bytes(2, "little") + self.ti + body)
        if mode == "full" and body:
            body = unpad_m2(self._crypt(self.enc.decrypt, body))
        return body, sw


def test_an12321_authenticate_lrp_first():
    chip = selected(SimulatedNtag424(lrp=True, random=feed("56109A31977C855319CD4618C9D2AED2", "58EE9424")))
    assert send(chip, LRP_FIRST_KEY0) == (h("0156109A31977C855319CD4618C9D2AED2"), 0x91AF)
    part2 = apdu(0xAF, h("74D7DF6A2CEC0B72B412DE0D2B1117E6 189B59DCEDC31A3D3F38EF8D4810B3B4"))
    assert send(chip, part2) == (h("F4FC209D9D60623588B299FA5D6B2D710125F8547D9FB8D572C90D2C2A14E235"), 0x9100)
    assert (chip.view.secure_messaging, chip.view.authenticated_key, chip.view.cmd_ctr) == ("lrp", 0, 0)


def test_hardware_first_and_nonfirst_pair():
    chip = selected(SimulatedNtag424(lrp=True, random=feed(
        "B40643A537D6B0ACD8E7816168CD85C1", "9D96C13C", "6819838A1BFA254A00E1F43DEC0BC0C7")))
    assert send(chip, LRP_FIRST_KEY0)[0] == h("01B40643A537D6B0ACD8E7816168CD85C1")
    answer = send(chip, apdu(0xAF, h("D1D85ACB0A57299BFEED443D832DAD0C 23A13B80F26E481E4FAD3F3D75B14B7B")))
    assert answer == (h("1C8EE9654067C50B188BD7652CEA8ABF4DCAF2776C80ABACEC992D6DF2D6E4EE"), 0x9100)
    assert send(chip, "9077000001" "00" "00") == (h("016819838A1BFA254A00E1F43DEC0BC0C7"), 0x91AF)
    part2 = apdu(0xAF, h("24F37E0C719E5CA42A3CBFAC3F7C0106 FB57806564FCD46D58685C08419825E2"))
    assert send(chip, part2) == (h("3C157B2F2A8CC0C9431E64CCF71DD8B4"), 0x9100)
    assert chip.view.secure_messaging == "lrp"


def _session_from_sv(sv: str, ti: str, key_no: int, **chip_args) -> LrpPcd:
    """A chip authenticated (LRPFirst, zero key) into the session a published SV names.

    SV = 00 01 00 80 || ctx || 96 69 and ctx = RndA[0:2] || RndA[2:8]^RndB[0:6] || RndB[6:16] ||
    RndA[8:16]: with RndB[0:6] zero, RndA and RndB follow from ctx.
    """
    ctx = h(sv)[4:30]
    rnd_a, rnd_b = ctx[0:8] + ctx[18:26], bytes(6) + ctx[8:18]
    chip = selected(SimulatedNtag424(lrp=True, random=feed(rnd_b.hex(), ti), **chip_args))
    pcd = LrpPcd(chip)
    assert pcd.authenticate(key_no, ZERO, rnd_a) == 0x9100
    assert pcd.ti == h(ti)
    return pcd


def test_getcarduid_three_times_runs_enc_ctr_over_the_responses():
    pcd = _session_from_sv("00010080993C4EED466BFC0E7EE1D30C1EBD0DEA6F6481E0D70E9A174E789669", "4F5E8407", 0,
                           uid=h("04940D2A2F7080"))
    exchanges = [("C37D6270F674CC6D", "5EC351196B8E2943DB04FCD4A952F53DA2830DC2258E4539"),
                 ("D65CCB81E5591400", "D80B735F7B4C8E7E8A3CDAAA4410F35F752769C8EBC48E1A"),
                 ("8C677D7DCC349371", "9CCD031474A50199C696D8EF272E231A10173FAF41B614E4")]
    for command, response in exchanges:
        assert send(pcd.chip, apdu(0x51, h(command))) == (h(response), 0x9100)
    assert pcd.chip.view.cmd_ctr == 3


def test_write_then_read_in_full_mode():
    pcd = _session_from_sv("0001008008A6953C60BC3D34E53766689732E2A203FF23855751D644ED519669", "204F2276", 3)
    header = h("03000000030000")  # file 03 (Full mode, RW key 3), offset 0, 3 bytes
    write = apdu(0x8D, header + h("EAF0FAD0430ECDC947A822E12EC8D5F3BB75F218B405FDBC"))
    assert send(pcd.chip, write) == (h("D5B8D8F8CD67F23C"), 0x9100)
    assert send(pcd.chip, apdu(0xAD, header + h("59858E133A7F487D"))) == (
        h("39665FAE8AF18FEB23DA1767EAF2274BB97FC66CC9437713"), 0x9100)
    assert pcd.chip.view.file_contents(3)[:3] == h("010203")


def test_lrp_session_errors_end_it():
    pcd = _session_from_sv("0001008008A6953C60BC3D34E53766689732E2A203FF23855751D644ED519669", "204F2276", 3)
    header = h("03000000030000")
    assert send(pcd.chip, apdu(0x8D, header + h("EAF0FAD0430ECDC947A822E12EC8D5F3BB75F218B405FDBD")))[1] == 0x911E
    assert pcd.chip.view.secure_messaging is None


def test_wrong_key_is_91ae_and_counts():
    chip = selected(SimulatedNtag424(lrp=True))
    assert LrpPcd(chip).authenticate(0, b"\x01" * 16, bytes(16)) == 0x91AE
    assert chip.view.consecutive_failures[0] == 1 and chip.view.tot_fail_counters[0] == 1
    assert LrpPcd(chip).authenticate(0, ZERO, bytes(16)) == 0x9100
    assert chip.view.consecutive_failures[0] == 0


def test_aes_chip_answers_an_lrp_request_in_aes():
    chip = selected(SimulatedNtag424())
    data, sw = send(chip, LRP_FIRST_KEY0)
    assert (len(data), sw) == (16, 0x91AF)  # E(Kx, RndB): the PCD can tell and fall back


def _switch(chip: SimulatedNtag424) -> None:
    """Switch a factory chip to LRP: SetConfiguration 05 in an AES session with key 0 (docs/reference/ntag424.md §12)."""
    rnd_a = bytes(range(16))
    enc_rnd_b, sw = send(chip, "9071000002000000")
    rnd_b = AES.new(ZERO, AES.MODE_CBC, iv=ZERO).decrypt(enc_rnd_b)
    answer = AES.new(ZERO, AES.MODE_CBC, iv=ZERO).encrypt(rnd_a + rnd_b[1:] + rnd_b[:1])
    data, sw = send(chip, apdu(0xAF, answer))
    ti = AES.new(ZERO, AES.MODE_CBC, iv=ZERO).decrypt(data)[:4]
    ctx = rnd_a[:2] + bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True)) + rnd_b[6:] + rnd_a[8:]
    k_enc = CMAC.new(ZERO, msg=h("A55A00010080") + ctx, ciphermod=AES).digest()
    k_mac = CMAC.new(ZERO, msg=h("5AA500010080") + ctx, ciphermod=AES).digest()
    iv = AES.new(k_enc, AES.MODE_ECB).encrypt(h("A55A") + ti + bytes(10))
    cryptogram = AES.new(k_enc, AES.MODE_CBC, iv=iv).encrypt(pad_m2(h("00000000 02 000000 0000")))
    mac = CMAC.new(k_mac, msg=h("5C0000") + ti + b"\x05" + cryptogram, ciphermod=AES).digest()[1::2]
    resp, sw = send(chip, apdu(0x5C, b"\x05" + cryptogram + mac))
    assert sw == 0x9100
    assert resp == CMAC.new(k_mac, msg=h("000100") + ti, ciphermod=AES).digest()[1::2]  # the response MACt


def _switched_chip() -> tuple[SimulatedNtag424, LrpPcd]:
    chip = selected(SimulatedNtag424())
    _switch(chip)
    return chip, LrpPcd(chip)


def test_switch_is_stored_for_good_and_aes_is_919d():
    chip, pcd = _switched_chip()
    assert chip.view.lrp
    chip.power_cycle()
    selected(chip)
    assert send(chip, "9071000002000000") == (b"", 0x919D)  # AES authentication refused
    assert send(chip, "90710000080006" + "000000000000" + "00") == (b"", 0x919D)  # PCDcap2.1 without LRP
    assert pcd.authenticate(0, ZERO, bytes(16)) == 0x9100
    assert pcd.cmd(0x51)[0] == chip.uid  # GetCardUID over LRP, Full mode
    restored = NvState.from_dict(chip.snapshot().to_dict())
    assert restored.lrp and SimulatedNtag424(state=restored).view.lrp


def test_journal_from_before_lrp_loads_as_aes():
    stored = SimulatedNtag424().snapshot().to_dict()
    del stored["lrp"], stored["pdcap2_user"]
    chip = selected(SimulatedNtag424(state=NvState.from_dict(stored)))
    assert not chip.view.lrp
    assert send(chip, "9071000002000000")[1] == 0x91AF


@pytest.mark.parametrize("commits", [True, False])
def test_tear_during_the_switch_leaves_one_mode_or_the_other(commits):
    chip = selected(SimulatedNtag424(tear_commits=commits))
    chip.tear_at(3)  # 71, AF, then SetConfiguration
    with pytest.raises(TagRemovedError):
        _switch(chip)
    chip.place()
    selected(chip)
    assert chip.view.lrp is commits  # the NVM write is atomic: all of it or none of it
    aes_answer = send(chip, "9071000002000000")
    assert aes_answer[1] == (0x919D if commits else 0x91AF)
    if commits:  # recognised by the 919D and finished over LRP
        assert LrpPcd(chip).authenticate(0, ZERO, bytes(16)) == 0x9100


def _ndef(text: str, code: int) -> bytes:
    payload = bytes([code]) + text.encode("ascii")
    record = bytes([0xD1, 0x01, len(payload), 0x55]) + payload
    return len(record).to_bytes(2, "big") + record


def _tap(chip: SimulatedNtag424, length: int) -> bytes:
    """An unauthenticated ReadData of file 02 (SDM applied), as a phone's tap reads it: a new placement."""
    chip.place()
    data, sw = send(selected(chip), apdu(0xAD, b"\x02" + bytes(3) + length.to_bytes(3, "little")))
    assert sw == 0x9100
    return data


def le3(value: int) -> bytes:
    return value.to_bytes(3, "little")


def test_lrp_sdm_tap_picc_data_and_mac():
    """sdm-backend test_lrp_sdm: https://<PICC data>x<SDMMAC>, MAC over the PICC data text and the x."""
    ndef = _ndef("P" * 48 + "x" + "M" * 16, 0x04)
    settings = h("40 E0EE C1 FF00") + le3(7) + le3(7) + le3(7 + 49)  # UID+ctr, MetaRead 0, FileRead 0
    chip = SimulatedNtag424(uid=h("042E1D222A6380"), lrp=True, files={2: ndef}, file_settings={2: settings},
                            sdm_read_ctr=0x69, random=feed("AAE1508939ECF6FF", "16E2CA89D1"))
    assert _tap(chip, len(ndef))[7:] == b"AAE1508939ECF6FF26BCE407959AB1A5EC022819A35CD293x5E3DB82C19E3865F"
    assert chip.view.read_counter == 0x6A


def test_lrp_sdm_tap_with_encrypted_file_data():
    """sdm-backend test_lrp_sdm_with_enc_file: any.domain/?m=<PICC>x<SDMENCFileData>x<SDMMAC>."""
    text = "any.domain/?m=" + "P" * 48 + "x" + "0102030400000000" + "E" * 16 + "x" + "M" * 16
    ndef = _ndef(text, 0x00)
    picc, enc, mac = 7 + 14, 7 + 14 + 49, 7 + 14 + 49 + 33
    settings = h("40 E0EE D1 FF00") + le3(picc) + le3(7) + le3(enc) + le3(32) + le3(mac)
    chip = SimulatedNtag424(uid=h("042E1D222A6380"), lrp=True, files={2: ndef}, file_settings={2: settings},
                            sdm_read_ctr=0x7A, random=feed("65628ED36888CF9C", "2993571635"))
    expected = ("any.domain/?m=65628ED36888CF9C84797E43ECACF114C6ED9A5E101EB592"
                "x4ADE304B5AB9474CB40AFFCAB0607A85x87E287E8135BFC06")
    assert _tap(chip, len(ndef))[7:] == expected.encode()


def test_sdm_configured_over_lrp_after_the_switch():
    """The station's order: switch, authenticate over LRP, then file settings in Full mode and a tap."""
    chip, pcd = _switched_chip()
    assert pcd.authenticate(0, ZERO, bytes(16)) == 0x9100
    ndef = _ndef("x.example/?p=" + "P" * 48 + "&m=" + "M" * 16, 0x04)
    assert send(chip, apdu(0x8D, b"\x02" + le3(0) + le3(len(ndef)) + ndef))[1] == 0x9100  # free write: plain
    pcd.cmd_ctr += 1  # a plain command in a session moves CmdCtr too (docs/reference/ntag424.md §6.1)
    picc, mac = 7 + 13, 7 + 13 + 48 + 3
    overlapping = h("40 E0EE C1 FF00") + le3(picc) + le3(picc) + le3(picc + 40)  # fits 32 characters, not 48
    assert pcd.cmd(0x5F, b"\x02", overlapping)[1] == 0x919E
    assert pcd.authenticate(0, ZERO, bytes(16)) == 0x9100
    assert pcd.cmd(0x5F, b"\x02", h("40 E0EE C1 FF00") + le3(picc) + le3(picc) + le3(mac)) == (b"", 0x9100)
    image = _tap(chip, len(ndef))
    picc_data = h(image[picc:picc + 48].decode())
    plain, _ = Lrp(ZERO, 0).decrypt(picc_data[8:], picc_data[:8])
    assert plain[:11] == h("C7") + chip.uid + le3(1)
    sv = h("00010080") + chip.uid + le3(1) + h("1EE1")
    assert image[mac:mac + 16] == Lrp(Lrp(ZERO, 0).cmac(sv), 0).mact(image[picc:mac]).hex().upper().encode()


def test_every_secure_messaging_command_over_lrp():
    chip, pcd = _switched_chip()
    assert pcd.authenticate(0, ZERO, bytes(16)) == 0x9100
    assert pcd.cmd(0xF5, b"\x02", mode="mac") == (h("0000E0EE000100"), 0x9100)  # GetFileSettings
    assert pcd.cmd(0x64, b"\x01", mode="mac") == (b"\x00", 0x9100)  # GetKeyVersion
    signature, sw = pcd.cmd(0x3C, b"\x00")  # Read_Sig, Full mode, RC 90
    assert (len(signature), sw) == (56, 0x9190)
    new1, new0 = b"\x11" * 16, b"\x22" * 16
    crc = (zlib.crc32(new1) ^ 0xFFFFFFFF).to_bytes(4, "little")
    assert pcd.cmd(0xC4, b"\x01", new1 + b"\x01" + crc) == (b"", 0x9100)
    assert pcd.cmd(0x5C, b"\x0B", b"\x01") == (b"", 0x9100)  # SetConfiguration in an LRP session
    ciphertext, _ = pcd.enc.encrypt(pad_m2(new0 + b"\x01"), pcd.enc_ctr.to_bytes(4, "big"))
    mac = pcd.mac.mact(h("C4") + pcd.cmd_ctr.to_bytes(2, "little") + pcd.ti + b"\x00" + ciphertext)
    assert send(chip, apdu(0xC4, b"\x00" + ciphertext + mac)) == (b"", 0x9100)  # key 0: bare 9100, session ends
    assert chip.view.key_versions == (1, 1, 0, 0, 0)
    assert pcd.authenticate(0, new0, bytes(16)) == 0x9100
    part1 = send(chip, apdu(0x60, pcd.mac.mact(h("60 0000") + pcd.ti)))  # GetVersion, MAC mode
    part2 = send(chip, "90AF000000")
    body, sw = send(chip, "90AF000000")  # the MAC over the three parts comes with the last
    assert part1[1] == part2[1] == 0x91AF and sw == 0x9100
    version = part1[0] + part2[0] + body[:-8]
    assert body[-8:] == pcd.mac.mact(h("00") + (1).to_bytes(2, "little") + pcd.ti + version)
    assert pcd.authenticate(1, new1, bytes(16), first=False) == 0x9100  # NonFirst keeps TI and CmdCtr
    assert (chip.view.authenticated_key, chip.view.cmd_ctr) == (1, 1)
