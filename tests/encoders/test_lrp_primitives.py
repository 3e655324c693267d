"""The LRP primitive (encoders/ntag424/lrp.py) pinned to NXP AN12304's test vectors.

The numbers are NXP's: plaintexts, updated keys and EvalLRP of AN12304 §2, LRICB of AN12304 §3
and CMAC_LRP of AN12304 §4, as transcribed in the test suites of nfc-developer/sdm-backend
(tests/test_lrp.py, test_lrp_eval_vec.py, test_lrp_cmac_vectors.py) and lucianox777/nfc-ev2-crypto
(test_cipher_vec.py, the LRICB vectors). EvalLRP inputs are nibble strings: some have odd length.
"""

from __future__ import annotations

import pytest

from tagsmith import fastaes
from tagsmith.encoders.ntag424 import lrp
from tagsmith.encoders.ntag424.lrp import Lrp


def h(value: str) -> bytes:
    return bytes.fromhex(value)


BASE_KEY = "567826B8DA8E768432A9548DBE4AA3A0"  # AN12304 §2 worked example


def test_plaintexts_of_an12304_example():
    plaintexts = lrp.generate_plaintexts(h(BASE_KEY))
    assert len(plaintexts) == 16
    assert plaintexts[0] == h("AC20D39F5341FE98DFCA21DA86BA7914")
    assert plaintexts[15] == h("71B444AF257A93215311D758DD333247")


def test_updated_keys_of_an12304_example():
    updated = lrp.generate_updated_keys(h(BASE_KEY), 3)
    assert updated[0] == h("163D14ED24ED935373568EC521E96CF4")
    assert updated[2] == h("FE30AB50467E61783BFE6B5E0560160E")


def test_nibbles_high_first():
    assert lrp.nibbles(h("1359")) == [1, 3, 5, 9]
    assert lrp.nibbles(h("4B073B247CD48F7E0A")) == [4, 0xB, 0, 7, 3, 0xB, 2, 4, 7, 0xC, 0xD, 4, 8, 0xF, 7, 0xE, 0, 0xA]


# AN12304 EvalLRP vectors: base key, input nibbles (hex digits), updated key number, final, result
EVAL_VECTORS = [
    ("567826B8DA8E768432A9548DBE4AA3A0", "1359", 2, True, "1BA2C0C578996BC497DD181C6885A9DD"),
    ("B65557CE0E9B4C5886F232200113562B", "BB4FCF27C94076F756AB030D", 1, False, "6FDFA8D2A6AA8476BF94E71F25637F96"),
    ("88B95581002057A93E421EFE4076338B", "77299D", 2, True, "E9C04556A214AC3297B83E4BDF46F142"),
    ("C48A8E8B16571645A1557825AA66AC91", "1F0B7C0DB12889CA436CABB78BE42F9", 3, True, "51296B5E6D3B8DB8A1A7399760A19189"),
    ("CAF3750AFF93F9A0C8861BCCCCDF1A9D", "9273B7", 3, False, "468C2BFCF993E7F112E150C17298A968"),
    ("59C9C703C66A9FD2948E0A48617285DC", "F28EFF672184665744FD835B106484", 0, True, "F078390B345FC6E22EE9A75B3D8BF490"),
    ("18A4209AAEF2CFC67E48834ED7D2B62B", "4B6E0EBCBB920A0B441114478", 0, False, "D054F91224DAC4C9E46EDF7EFAB6D179"),
    ("1000076C2934BDB02750204704DAA472", "8C3E0", 2, True, "581C3B057F9312FECF4A7B8070C83B8C"),
    ("99B1647A76CD170EA07997043E1E7919", "F", 1, True, "BA5F895E8B57F7753EE5C7276E60B37F"),
    ("9FBC2045FA6215B4FD1ABA412DD9C59D", "F9B72310BDAE086C51D354B65F1F05F1", 1, True, "3F410411D5ED704572D06EDE6AB45CA2"),
    ("9AFF3EF56FFEC3153B1CADB48B445409", "4B073B247CD48F7E0A", 3, False, "909415E5C8BE77563050F2227E17C0E4"),
    ("FA89CC662EF47C75A9887F12A6C9879F", "B9", 0, True, "4973ECE66EEE903D4761EF3960210735"),
]


@pytest.mark.parametrize(("key", "digits", "index", "final", "expected"), EVAL_VECTORS)
def test_eval_lrp(key, digits, index, final, expected):
    evaluator = Lrp.from_key(h(key), index)
    assert evaluator.evaluate_nibbles([int(d, 16) for d in digits], final=final) == h(expected)


def test_eval_lrp_of_whole_bytes_walks_their_nibbles():
    assert Lrp.from_key(h(BASE_KEY), 2).evaluate(h("1359")) == h("1BA2C0C578996BC497DD181C6885A9DD")


# AN12304 LRICB vectors (updated key 0): key, counter, padding, plaintext, ciphertext
LRICB_VECTORS = [
    ("E0C4935FF0C254CD2CEF8FDDC32460CF", "C3315DBF", True, "012D7F1653CAF6503C6AB0C1010E8CB0",
     "FCBBACAA4F29182464F99DE41085266F480E863E487BAAF687B43ED1ECE0D623"),
    ("EFA5B7429CD153BF0086DEF900C0F235", "9036FFFF", False, "E7F61E012F4F3255312BA68B1D2FDABF",
     "EA6E09AC2FB97E102D8CA64C1CBC0C0C"),
    ("A2D06401CDF35822B430F4457D1D1775", "5C35A6ED", True,
     "D2D83A1971077EDDFE2DF28DF9B736A4D9D4244BCF72E9597CB47B7DCDB5A4B245B52080E79BBFEDC69F1EE983CE",
     "73B1BED57B59090BC496799FA9BFE9F5252A88350A8F48A4FF252B8E813F6D96CA8BA7C8162E4CB2DFE0D53800FF01DA"),
    ("9397878556B29FE7AFF25C2A9C748338", "D9154550", True, "CA56B814E61EB2D25AC14E9AAB48E59FE3D0FB6360637B09E6",
     "E1D03C38C92DDF5A7C5A3FC1AA52E74627192A01143D26E8F592EE5D3C335168"),
    ("9D813134CFDEE9D58755DEACD4AF72A7", "FFFFFFFF", True, "27", "F5833FC397356EA3D9ECADBB9F6FE440"),
    ("F5C3E99FB75E316B76689FC5464260CD", "0797F6B7", True, "", "93DC3EE14B612BE6A3E9E2E8040CDFCB"),
    ("2EE08B87B1CCA5A2A93548C2952E2526", "3827CF6F", True, "B8B18B", "29E99882A0DCED4E55FB3E61303DE275"),
    ("896B876BDF03D34B1DE3F8973323FDC7", "FFFFFFFF", False,  # the counter wraps to 00000000 after one block
     "4054B588DE18B6C46BA699C3E2AD7DA3AD7AADD3DA658A9D97BDB3A99805403D7BD7C27E959405E0E16EB7572ECF55AE25DBD5B0"
     "9C1D2EDACA18F120640C2C66665C480BEAFF0D1975CDF26BAD336FC7",
     "60801EEFA4D5506A73753F826F82EFE6B02E6579BB654256BAC5C7ED81E16A190BF8953A056FB869A9C5C10C87AE3FDE28CE3273"
     "0B290F4EB0062E96AB29B40F764AD5D8ACE61997EC515BB69B24E6C0"),
    ("D042503B4FE6152D279BFFBBB0D360D5", "8F9E3364", True, "649C0FB1CFDD5CB2590A814089944FAA",
     "7BB7E3DA21CBCCEAAEDB71798114656C331C7D2DCD661C43F679FC50FA0239E5"),
]


@pytest.mark.parametrize(("key", "counter", "pad", "plain", "cipher"), LRICB_VECTORS)
def test_lricb_encrypt_and_decrypt(key, counter, pad, plain, cipher):
    lricb = Lrp.from_key(h(key), 0)
    encrypted, after = lricb.encrypt(h(plain), h(counter), pad=pad)
    assert encrypted == h(cipher)
    blocks = len(encrypted) // 16
    assert after == ((int(counter, 16) + blocks) % (1 << 32)).to_bytes(4, "big")
    assert lricb.decrypt(h(cipher), h(counter), pad=pad) == (h(plain), after)


def test_lricb_refuses_partial_blocks_and_bad_padding():
    lricb = Lrp.from_key(h("E0C4935FF0C254CD2CEF8FDDC32460CF"), 0)
    with pytest.raises(ValueError):
        lricb.encrypt(h("0102"), h("00000000"), pad=False)
    with pytest.raises(ValueError):
        lricb.decrypt(h("0102"), h("00000000"))
    garbage = lricb.encrypt(bytes(16), h("00000000"), pad=False)[0]  # decrypts to zeros: no 80 marker
    with pytest.raises(ValueError):
        lricb.decrypt(garbage, h("00000000"))


def test_counter_increment_wraps_in_its_width():
    assert lrp.increment_counter(h("00")) == h("01")
    assert lrp.increment_counter(h("1211")) == h("1212")
    assert lrp.increment_counter(h("FFFFFFFF")) == h("00000000")


# AN12304 CMAC_LRP vectors (updated key 0): key, message, MAC
CMAC_VECTORS = [
    ("63A0169B4D9FE42C72B2784C806EAC21", "", "0E07C601970814A4176FDA633C6FC3DE"),
    ("8195088CE6C393708EBBE6C7914ECB0B", "BBD5B85772C7", "AD8595E0B49C5C0DB18E77355F5AAFF6"),
    ("E2F84A0B0AF40EFEB3EEA215A436605C", "8BF1DDA9FE445560A4F4EB9CE0", "D04382DF71BC293FEC4BB10BDB13805F"),
    ("5AA9F6C6DE5138113DF5D6B6C77D5D52", "A4434D740C2CB665FE5396959189383F", "8B43ADF767E46B692E8F24E837CB5EFC"),
    ("A418BA1658A6F0D90830C58679F80AC4", "06", "FF9561CC6E45FFFD4388003AA5F61233"),
    ("D66C19216297BAA60D7EA7C13E7839F9",
     "56076C610CAFB99D0EFAB679C360F34202655178EE7E7236E8BFCC1C66BDDA17F2F67F65ADBF55E70009FE84F0477B18"
     "45B7E5B48231FBD89436794CE39D36511F9F86CCE08E95430F6977E57FEE45A044B3D7AFD72694C1FAA6D07645080363"
     "D2AC6451C1AE37B621A1", "EFFA1488A73FDBCE5B91BBF9B8D51775"),
    ("651312D289F4DE957C208D35827C07E4",
     "D39E4B336C46FCDCFDF803A49EB3A603851CFCFA72B3A5F843768EBDEDEB939891059275C79F1DADE2B97E288A91E3",
     "9B1530F1AD35213EB8903D5610BFD7C4"),
    ("11ED02022570CB10502BC1DACF64B21F", "E825603F896A85CAB45E6730D89DD4CE78010599", "4A1577C366D53080D0DFD1CC47EE3CC7"),
    ("4F41663FB985F7B47200246449B3DF33", "52D12581AC3FA13F2135F325130424AC", "D21C5F1F7881C84540373E4AF9C01714"),
    ("8F4EC0BE7A3F5B6A2AAA92814F454F70",
     "6CB1DB9648E809AC7B0988B160B20BED144A648DB75E854E50A2CA0F8D5F13FE70FF229CE427315651BD",
     "CFF39D67CB2B1987DDE2841E4C7F6225"),
]


@pytest.mark.parametrize(("key", "message", "mac"), CMAC_VECTORS)
def test_cmac_lrp(key, message, mac):
    signer = Lrp.from_key(h(key), 0)
    assert signer.cmac(h(message)) == h(mac)
    assert signer.mac_t(h(message)) == h(mac)[1::2]


def test_cmac_subkey_is_four_times_eval_of_zero():
    """AN12304 §4: K2 = 4 * EvalLRP(0^16); the vector lists it as Kx."""
    k0 = int.from_bytes(Lrp.from_key(h("8195088CE6C393708EBBE6C7914ECB0B"), 0).evaluate(bytes(16)), "big")
    assert fastaes.double(fastaes.double(k0)).to_bytes(16, "big") == h("2D22571A33B2965A9B49FF4395A43046")


def test_pair_shares_one_table_for_updated_keys_0_and_1():
    mac, enc = Lrp.pair(h(BASE_KEY))
    zero = bytes(16)
    assert mac.evaluate(zero) == Lrp.from_key(h(BASE_KEY), 0).evaluate(zero)
    assert enc.evaluate(zero) == Lrp.from_key(h(BASE_KEY), 1).evaluate(zero)
    assert repr(mac) == "Lrp()"


def test_bad_key_lengths_are_refused():
    with pytest.raises(ValueError):
        Lrp.from_key(bytes(15))
    with pytest.raises(ValueError):
        Lrp(lrp.generate_plaintexts(bytes(16))[:15], bytes(16))
