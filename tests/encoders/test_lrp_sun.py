"""LRP SUN verification pieces (encoders/ntag424/lrp_sun.py) against published LRP SDM taps.

No AN12321 SDM worked example was found transcribed in a public repository; the taps here are:
* nfc-developer/sdm-backend tests/test_lrp_sdm.py: two LRP-mode URLs with the zero keys (PICC data
  with a CMAC over PICC data, and one with SDMENCFileData too), with the decrypted PICC data and
  the session master keys, computed the way NT4H2421Gx §9.3.4.2, §9.3.6.2 and §9.3.9.2 describe.
* johnnyb/ntag424-java SdmTest.java: an LRP SDMMAC over an empty input for a given UID and
  counter, and 24-byte PICC data mirroring only the counter (tag 40).
"""

from __future__ import annotations

import pytest

from tagsmith import VerificationError
from tagsmith.encoders.ntag424 import lrp_sun
from tagsmith.encoders.ntag424.lrp_sun import LRP_SUN
from tagsmith.encoders.ntag424.sun import scheme_for_url
from tagsmith.encoders.ntag424.sunscheme import AES_SUN


def h(value: str) -> bytes:
    return bytes.fromhex(value)


ZERO = bytes(16)
DECRYPT_PICC = LRP_SUN.picc_decryptor(ZERO)
FILE_KEY = LRP_SUN.file_key(ZERO)
# sdm-backend test_lrp_sdm: https://AAE1508939ECF6FF26BCE407959AB1A5EC022819A35CD293x5E3DB82C19E3865F
TAP1_PICC = "AAE1508939ECF6FF26BCE407959AB1A5EC022819A35CD293"
# sdm-backend test_lrp_sdm_with_enc_file: ...?m=<PICC>x<SDMENCFileData>x<SDMMAC>
TAP2_PICC = "65628ED36888CF9C84797E43ECACF114C6ED9A5E101EB592"
TAP2_ENC = "4ADE304B5AB9474CB40AFFCAB0607A85"


def _mirrored(plain: bytes) -> bytes:
    assert plain[0] == 0xC7  # UID and counter mirrored
    return plain[1:11]


def test_picc_data_decrypts_with_picc_rand_as_counter():
    assert (LRP_SUN.mode, LRP_SUN.picc_data_chars) == ("lrp", 48)
    assert DECRYPT_PICC(h(TAP1_PICC)) == h("C7042E1D222A63806A000016E2CA89D1")
    assert DECRYPT_PICC(h(TAP2_PICC)) == h("C7042E1D222A63807B00002993571635")


def test_session_vector_padding():
    uid = h("042E1D222A6380")
    assert lrp_sun.session_vector(uid + h("6A0000")) == h("00010080042E1D222A63806A0000" + "1EE1")
    assert lrp_sun.session_vector(uid) == h("00010080042E1D222A6380000000" + "1EE1")
    assert lrp_sun.session_vector(b"") == h("00010080" + "00" * 10 + "1EE1")


def test_session_master_keys():
    assert FILE_KEY.session_master_key(_mirrored(DECRYPT_PICC(h(TAP1_PICC)))) == h("99C2FD9C885C2CA3C9089C20057310C0")
    assert FILE_KEY.session_master_key(_mirrored(DECRYPT_PICC(h(TAP2_PICC)))) == h("817133DD9FFF11B94FC2FB107AA4D971")


def test_sdmmac_over_the_picc_data_text():
    mirrored = _mirrored(DECRYPT_PICC(h(TAP1_PICC)))
    assert FILE_KEY.mac(mirrored, (TAP1_PICC + "x").encode()) == h("5E3DB82C19E3865F")
    assert FILE_KEY.mac(mirrored, TAP1_PICC.encode()) != h("5E3DB82C19E3865F")


def test_sdmmac_and_file_data_of_a_tap_with_encrypted_file_data():
    mirrored = _mirrored(DECRYPT_PICC(h(TAP2_PICC)))
    message = f"any.domain/?m={TAP2_PICC}x{TAP2_ENC}x".encode()
    assert FILE_KEY.mac(mirrored, message) == h("87E287E8135BFC06")
    uid, ctr = mirrored[:7], int.from_bytes(mirrored[7:], "little")
    assert FILE_KEY.decrypt_file_data(uid, ctr, h(TAP2_ENC)) == b"0102030400000000"


def test_johnnyb_sdmmac_and_counter_only_picc_data():
    assert FILE_KEY.mac(h("04827F12647380") + (7).to_bytes(3, "little"), b"") == h("A9DAF6E5B2E583ED")
    plain = DECRYPT_PICC(h("D99C1B274606743ECE77E01D0D46CCE69F00C0C246363639"))
    assert plain[0] == 0x40 and int.from_bytes(plain[1:4], "little") == 0x1A


def test_malformed_input():
    with pytest.raises(VerificationError):
        DECRYPT_PICC(h(TAP1_PICC)[:16])
    with pytest.raises(VerificationError):
        FILE_KEY.decrypt_file_data(h("04827F12647380"), 7, h("0102"))
    with pytest.raises(ValueError):
        LRP_SUN.file_key(bytes(15))
    assert repr(FILE_KEY) == "LrpSdmFileKey()"


def test_the_url_names_its_mode_by_the_picc_data_length():
    lrp_picc, aes_picc = "A" * 48, "B" * 32
    assert scheme_for_url(f"https://x/t?picc_data={lrp_picc}&cmac=00") is LRP_SUN
    assert scheme_for_url(f"https://x/t?c=00&p={lrp_picc}#frag", "p") is LRP_SUN
    assert scheme_for_url(f"https://x/t?p={aes_picc}&c=00", "p") is AES_SUN
    assert scheme_for_url(f"https://x/t?pp={lrp_picc}&c=00", "p") is AES_SUN  # another parameter's value
    for other in ("https://x/t?uid=04827F12647380&ctr=000007&cmac=00", "https://x/t", "https://x/t?p=ABC", "p=" + lrp_picc):
        assert scheme_for_url(other, "p") is AES_SUN
