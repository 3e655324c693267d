"""LRP authentication and secure messaging (encoders/ntag424/lrp_messaging.py) against published exchanges.

Sources of the numbers:
* NXP AN12321 §4 Table 2, AuthenticateLRPFirst with the all-zero key (its SV, session update keys,
  part-2 APDU and the chip's answer), as reproduced in icedevml/nfc-ev2-crypto test_lrp_auth.py and
  in the NT4H2421Gx driver tests that cite the table (SV and update keys).
* A real chip's AuthenticateLRPFirst/NonFirst pair, key 0 (a hardware capture replayed by the same
  driver tests), for NonFirst, which AN12321 does not show.
* johnnyb/ntag424-java LRPEncryptionTest: session master key, part-2 PICCData and a GetCardUID MAC.
* icedevml/nfc-ev2-crypto test_lrp_cmd.py: LRP command/response sequences (GetCardUID x3, WriteData
  and ReadData in Full mode) that show EncCtr running across commands and responses.
"""

from __future__ import annotations

import pytest

from tagsmith import ConfigError
from tagsmith.encoders.ntag424 import CommMode, NotAuthenticatedError, ResponseError, lrp_messaging
from tagsmith.encoders.ntag424.lrp import Lrp, generate_updated_keys
from tagsmith.encoders.ntag424.lrp_messaging import LrpChannel


def h(value: str) -> bytes:
    return bytes.fromhex(value)


ZERO_KEY = bytes(16)
# AN12321 §4 Table 2
RND_A = h("74D7DF6A2CEC0B72B412DE0D2B1117E6")
RND_B = h("56109A31977C855319CD4618C9D2AED2")
PART1_ANSWER = h("0156109A31977C855319CD4618C9D2AED2")
PART2_ANSWER = h("F4FC209D9D60623588B299FA5D6B2D710125F8547D9FB8D572C90D2C2A14E235")


def test_an12321_session_vector_and_update_keys():
    assert lrp_messaging.session_vector(RND_A, RND_B) == h(
        "0001008074D7897AB6DD9C0E855319CD4618C9D2AED2B412DE0D2B1117E69669")
    master = lrp_messaging.session_master_key(ZERO_KEY, RND_A, RND_B)
    assert generate_updated_keys(master, 2) == (h("F56CADE598CC2A3FE47E438CFEB885DB"),
                                                h("E9043D65AB21C0C422781099AB25EFDD"))


def test_an12321_first_part1_and_part2():
    assert lrp_messaging.PCD_CAPS == h("020000000000")  # LenCap 06 || 02 00 00 00 00 00 in Table 2's part 1
    challenge = lrp_messaging.answer_challenge(ZERO_KEY, PART1_ANSWER, RND_A)
    assert challenge.rnd_b == RND_B
    assert challenge.cryptogram == RND_A + h("189B59DCEDC31A3D3F38EF8D4810B3B4")
    channel = challenge.finish_first(PART2_ANSWER)
    assert (channel.ti, channel.cmd_ctr, channel.enc_ctr) == (h("58EE9424"), 0, 1)
    assert channel.mode == "lrp"
    assert "58EE9424" in repr(channel) and "Lrp" in repr(channel)
    # PICCData = TI || PDcap2 || PCDcap2 under SesAuthENCKey at EncCtr 0
    assert challenge.enc.decrypt(PART2_ANSWER[:16], bytes(4), pad=False)[0] == h("58EE9424020000000000020000000000")


def test_first_refuses_a_wrong_mac():
    challenge = lrp_messaging.answer_challenge(ZERO_KEY, PART1_ANSWER, RND_A)
    with pytest.raises(ResponseError, match="PICCResponse"):
        challenge.finish_first(PART2_ANSWER[:-2] + h("2211"))
    with pytest.raises(ResponseError, match="expected 32"):
        challenge.finish_first(PART2_ANSWER[:16])


def test_wrong_key_is_caught_by_the_chips_mac():
    challenge = lrp_messaging.answer_challenge(b"\x01" * 16, PART1_ANSWER, RND_A)
    with pytest.raises(ResponseError):
        challenge.finish_first(PART2_ANSWER)


def test_an_aes_chips_challenge_is_refused():
    with pytest.raises(ResponseError, match="not in LRP mode"):
        lrp_messaging.answer_challenge(ZERO_KEY, h("A04C124213C186F22399D33AC2A30215"), RND_A)
    with pytest.raises(ResponseError):
        lrp_messaging.answer_challenge(ZERO_KEY, b"\x00" + RND_B, RND_A)
    with pytest.raises(ConfigError):
        lrp_messaging.answer_challenge(ZERO_KEY, PART1_ANSWER, RND_A[:8])


def test_hardware_first_then_nonfirst_keeps_ti_and_cmd_ctr():
    first = lrp_messaging.answer_challenge(ZERO_KEY, h("01B40643A537D6B0ACD8E7816168CD85C1"),
                                           h("D1D85ACB0A57299BFEED443D832DAD0C"))
    assert first.cryptogram[16:] == h("23A13B80F26E481E4FAD3F3D75B14B7B")
    channel = first.finish_first(h("1C8EE9654067C50B188BD7652CEA8ABF4DCAF2776C80ABACEC992D6DF2D6E4EE"))
    assert channel.ti == h("9D96C13C")
    for _ in range(10):  # the capture ran ten commands before re-authenticating
        channel = channel.advanced()
    nonfirst = lrp_messaging.answer_challenge(ZERO_KEY, h("016819838A1BFA254A00E1F43DEC0BC0C7"),
                                              h("24F37E0C719E5CA42A3CBFAC3F7C0106"))
    assert nonfirst.cryptogram[16:] == h("FB57806564FCD46D58685C08419825E2")
    renewed = nonfirst.finish_nonfirst(h("3C157B2F2A8CC0C9431E64CCF71DD8B4"), channel)
    assert (renewed.ti, renewed.cmd_ctr, renewed.enc_ctr) == (h("9D96C13C"), 10, 0)
    with pytest.raises(ResponseError):
        nonfirst.finish_nonfirst(h("3C157B2F2A8CC0C9431E64CCF71DD8B5"), channel)
    with pytest.raises(ResponseError, match="expected 16"):
        nonfirst.finish_nonfirst(bytes(32), channel)


def test_johnnyb_session_and_getcarduid_mac():
    rnd_a, rnd_b = h("F537066D24FF8FF149D9012A47A36E5A"), h("66721F1E4830BAE9E449CFBF42D07E78")
    assert lrp_messaging.session_vector(rnd_a, rnd_b) == h(
        "00010080F537601F3BE1C7C1BAE9E449CFBF42D07E7849D9012A47A36E5A9669")
    assert lrp_messaging.session_master_key(ZERO_KEY, rnd_a, rnd_b) == h("2A5181848C630158FC56DF551BD81A6C")
    mac, enc = lrp_messaging.session_keys(ZERO_KEY, rnd_a, rnd_b)
    plain = enc.decrypt(h("FAE19D278238CA841E37ECEBF75B0E72"), bytes(4), pad=False)[0]
    assert plain == h("2F0CF791020000000000020000000000")
    channel = LrpChannel(ti=plain[:4], mac=mac, enc=enc, enc_ctr=1)
    assert channel.command_mac(0x51, b"", b"") == h("790003E69F330EAC")


def _channel_from_sv(sv: str, ti: str) -> LrpChannel:
    """A channel just after AuthenticateLRPFirst (EncCtr 1) from the published SV and the zero key."""
    mac, enc = Lrp.pair(Lrp.from_key(ZERO_KEY, 0).cmac(h(sv)))
    return LrpChannel(ti=h(ti), mac=mac, enc=enc, enc_ctr=1)


def test_getcarduid_three_times_moves_enc_ctr_by_response_blocks():
    channel = _channel_from_sv("00010080993C4EED466BFC0E7EE1D30C1EBD0DEA6F6481E0D70E9A174E789669", "4F5E8407")
    exchanges = [("C37D6270F674CC6D", "5EC351196B8E2943DB04FCD4A952F53DA2830DC2258E4539"),
                 ("D65CCB81E5591400", "D80B735F7B4C8E7E8A3CDAAA4410F35F752769C8EBC48E1A"),
                 ("8C677D7DCC349371", "9CCD031474A50199C696D8EF272E231A10173FAF41B614E4")]
    for number, (command, response) in enumerate(exchanges):
        assert channel.protect(0x51, b"", b"", CommMode.FULL) == h(command)
        assert channel.unprotect(h(response), CommMode.FULL, "GetCardUID") == h("04940D2A2F7080")
        assert channel.enc_ctr == 2 + number
        channel = channel.advanced()
    assert (channel.cmd_ctr, channel.enc_ctr) == (3, 4)


def test_write_then_read_in_full_mode():
    channel = _channel_from_sv("0001008008A6953C60BC3D34E53766689732E2A203FF23855751D644ED519669", "204F2276")
    header = h("03000000030000")
    assert channel.protect(0x8D, header, h("010203"), CommMode.FULL) == (
        header + h("EAF0FAD0430ECDC947A822E12EC8D5F3BB75F218B405FDBC"))
    assert channel.unprotect(h("D5B8D8F8CD67F23C"), CommMode.FULL, "WriteData") == b""
    channel = channel.advanced()
    assert channel.protect(0xAD, header, b"", CommMode.FULL) == header + h("59858E133A7F487D")
    response = h("39665FAE8AF18FEB23DA1767EAF2274BB97FC66CC9437713")
    assert channel.unprotect(response, CommMode.FULL, "ReadData") == h("010203")
    assert (channel.cmd_ctr, channel.enc_ctr) == (1, 3)


def test_response_checks():
    channel = _channel_from_sv("0001008008A6953C60BC3D34E53766689732E2A203FF23855751D644ED519669", "204F2276")
    channel.protect(0x8D, h("03000000030000"), h("010203"), CommMode.FULL)
    with pytest.raises(ResponseError, match="MAC does not verify"):
        channel.unprotect(h("D5B8D8F8CD67F23D"), CommMode.FULL, "WriteData")
    with pytest.raises(ResponseError, match="lacks its MAC"):
        channel.unprotect(h("D5B8"), CommMode.MAC, "WriteData")
    with pytest.raises(ResponseError, match="not whole blocks"):
        channel.decrypt_response_data(h("0102"))
    assert channel.unprotect(h("0102"), CommMode.PLAIN, "GetVersion") == h("0102")
    assert channel.protect(0x60, b"", h("0102"), CommMode.PLAIN) == h("0102")


def test_command_counter_exhaustion():
    mac, enc = Lrp.pair(ZERO_KEY)
    exhausted = LrpChannel(ti=h("204F2276"), mac=mac, enc=enc, cmd_ctr=0xFFFF)
    with pytest.raises(NotAuthenticatedError):
        exhausted.protect(0x51, b"", b"", CommMode.FULL)
