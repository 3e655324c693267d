"""Pure crypto of NTAG 424 DNA against AN12196 / AN10922 vectors."""

from __future__ import annotations

import os

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from tagsmith import fastaes
from tagsmith.encoders.ntag424 import Ev2Channel, crypto
from tagsmith.keystore.diversify import diversify_aes128


def h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("vid", ["an12196-t14-authenticate-ev2-first-key0", "an12196-t20-authenticate-ev2-first-key3",
                                 "an12196-t24-authenticate-ev2-nonfirst-key0"])
def test_ev2_session_keys(ntag_vectors, vid):
    v = ntag_vectors[vid]
    rnd_a, rnd_b = h(v["inputs"]["rnd_a"]), h(v["expected"]["rnd_b"])
    assert crypto.SV_AUTH_ENC + crypto.ev2_context(rnd_a, rnd_b) == h(v["expected"]["sv1"])
    enc, mac = crypto.ev2_session_keys(h(v["inputs"]["key"]), rnd_a, rnd_b)
    assert (enc, mac) == (h(v["expected"]["k_ses_auth_enc"]), h(v["expected"]["k_ses_auth_mac"]))


def test_sdm_session_keys_t2(ntag_vectors):
    v = ntag_vectors["an12196-t2-sdm-session-keys"]
    uid, ctr = h(v["inputs"]["uid"]), v["inputs"]["sdm_read_ctr"]
    assert crypto.sdm_session_vectors(uid, ctr) == (h(v["expected"]["sv1"]), h(v["expected"]["sv2"]))
    enc, mac = crypto.sdm_session_keys(h(v["inputs"]["sdm_file_read_key"]), uid, ctr)
    assert (enc, mac) == (h(v["expected"]["k_ses_sdm_file_read_enc"]), h(v["expected"]["k_ses_sdm_file_read_mac"]))


def test_sdm_sv2_pads_when_only_uid_is_mirrored():
    sv1, sv2 = crypto.sdm_session_vectors(h("04DE5F1EACC040"), None)
    assert sv2 == h("3CC30001008004DE5F1EACC040") + bytes(3) and len(sv1) == 13


def test_cmac_and_block_keys_match_pycryptodome():
    for length in (0, 1, 15, 16, 17, 32, 38, 100):
        key, message = os.urandom(16), os.urandom(length)
        assert crypto.cmac(key, message) == CMAC.new(key, message, ciphermod=AES).digest()
        blocks = message[:len(message) // 16 * 16] or bytes(16)
        block_key = fastaes.block_key(key)
        assert block_key.encrypt(blocks) == AES.new(key, AES.MODE_ECB).encrypt(blocks)
        assert block_key.decrypt(blocks) == AES.new(key, AES.MODE_ECB).decrypt(blocks)


def test_block_key_refuses_a_partial_block_and_stays_correct_after():
    """An open ECB context would keep a partial block for the next call: the length is checked first."""
    key, blocks = os.urandom(16), os.urandom(32)
    block_key = fastaes.block_key(key)
    for call in (block_key.encrypt, block_key.decrypt):
        with pytest.raises(ValueError, match="whole 16-byte blocks"):
            call(bytes(15))
    assert block_key.encrypt(blocks) == AES.new(key, AES.MODE_ECB).encrypt(blocks)
    assert block_key.decrypt(blocks) == AES.new(key, AES.MODE_ECB).decrypt(blocks)
    with pytest.raises(ValueError, match="16 bytes"):
        fastaes.block_key(bytes(15))
    assert key.hex() not in repr(block_key).lower()


def test_expanded_key_matches_pycryptodome_for_every_operation():
    key = os.urandom(16)
    aes = crypto.AesKey(key)  # one object for every length: the kept subkey must serve them all
    for length in (0, 1, 15, 16, 17, 32, 38, 100):
        message = os.urandom(length)
        assert aes.cmac(message) == CMAC.new(key, message, ciphermod=AES).digest()
        if length % 16 == 0:
            iv = os.urandom(16)
            assert aes.ecb_encrypt(message) == AES.new(key, AES.MODE_ECB).encrypt(message)
            assert aes.cbc_encrypt(message, iv) == AES.new(key, AES.MODE_CBC, iv=iv).encrypt(message)
            assert aes.cbc_decrypt(message, iv) == AES.new(key, AES.MODE_CBC, iv=iv).decrypt(message)
            assert crypto.cbc_decrypt(key, crypto.cbc_encrypt(key, message, iv), iv) == message
    with pytest.raises(ValueError, match="whole 16-byte blocks"):
        crypto.AesKey(bytes(16)).cbc_encrypt(bytes(15))
    assert repr(crypto.AesKey(bytes(range(16)))) == "AesKey()"


def test_cmac_rfc4493_examples():
    key = h("2b7e151628aed2a6abf7158809cf4f3c")
    aes = crypto.AesKey(key)
    assert aes.cmac(b"") == h("bb1d6929e95937287fa37d129b756746")
    assert aes.cmac(h("6bc1bee22e409f96e93d7e117393172a")) == h("070a16b46b4d4144f79bdd9dd04a287c")
    message = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411")
    assert aes.cmac(message) == crypto.cmac(key, message) == h("dfa66747de9ae63030ca32611497c827")


def test_channel_keeps_its_expanded_keys_across_commands():
    channel = Ev2Channel(ti=bytes(4), enc_key=os.urandom(16), mac_key=os.urandom(16))
    after = channel.advanced().advanced()
    assert after.cmd_ctr == 2 and channel.cmd_ctr == 0 and after.mac_key == channel.mac_key
    expected = crypto.mac_t(channel.mac_key, b"\x8d" + (2).to_bytes(2, "little") + bytes(4) + b"hdr" + b"data")
    assert after.command_mac(0x8D, b"hdr", b"data") == expected


def test_cmac_subkeys_t3(ntag_vectors):
    e = ntag_vectors["an12196-t3-t5-sun-encrypted-piccdata-empty-mac-input"]["expected"]
    k1, k2 = fastaes.cmac_subkeys_from_l(h(e["cmac_subkey_L"]))
    assert (k1, k2) == (h(e["cmac_subkey_k1"]), h(e["cmac_subkey_k2"]))
    full = crypto.cmac(h(e["k_ses_sdm_file_read_mac"]), b"")
    assert full == h(e["sdmmac_full"]) and crypto.truncate_mac(full) == h(e["sdmmac_truncated"])


def test_padding_method2_always_pads():
    assert crypto.pad_m2(bytes(16)) == bytes(16) + b"\x80" + bytes(15)
    assert crypto.pad_m2(b"\x01") == b"\x01\x80" + bytes(14)
    assert crypto.unpad_m2(b"\x01\x00\x80" + bytes(13)) == b"\x01\x00"
    with pytest.raises(ValueError):
        crypto.unpad_m2(bytes(16))


def test_crc32nk_t26(ntag_vectors):
    v = ntag_vectors["an12196-t26-changekey-key2"]
    assert crypto.crc32nk(h(v["inputs"]["new_key"])) == h(v["expected"]["crc32nk_new_key"])


def test_channel_mac_iv_and_encryption_t19(ntag_vectors):
    v = ntag_vectors["an12196-t19-changefilesettings-sdm"]
    i, e = v["inputs"], v["expected"]
    ch = Ev2Channel(ti=h(i["ti"]), enc_key=h(i["k_ses_auth_enc"]), mac_key=h(i["k_ses_auth_mac"]), cmd_ctr=i["cmd_ctr"])
    assert ch.command_iv() == h(e["ivc"])
    assert ch.encrypt_command_data(h(i["cmd_data"])) == h(e["encrypted"])
    assert ch.command_mac(0x5F, b"\x02", h(e["encrypted"])) == h(e["mact"])
    assert ch.response_mac(0, b"") == crypto.truncate_mac(h(e["response_cmac"]))


def test_channel_response_decryption_t29(ntag_vectors):
    v = ntag_vectors["an12196-t29-getcarduid"]
    i, e = v["inputs"], v["expected"]
    ch = Ev2Channel(ti=h(i["ti"]), enc_key=h(i["k_ses_auth_enc"]), mac_key=h(i["k_ses_auth_mac"]), cmd_ctr=0)
    assert ch.response_iv() == h(e["ivr"])
    assert ch.decrypt_response_data(h(e["r_apdu"])[:16]) == h(e["uid"])
    assert "enc_key" not in repr(ch) and i["k_ses_auth_enc"] not in repr(ch).upper()


@pytest.mark.parametrize("vid", ["an10922-aes128-example", "an10922-aes128-short-input-uid-only"])
def test_an10922_diversification(ntag_vectors, vid):
    v = ntag_vectors[vid]
    assert diversify_aes128(h(v["inputs"]["master_key"]), h(v["inputs"]["m"])) == h(v["expected"]["diversified_key"])


def test_expanded_key_restarts_its_cbc_chain_for_every_call_in_any_order():
    """CBC and CMAC share one open CBC run per key; each call must still start from its own IV."""
    import random

    rng, raw = random.Random(4242), os.urandom(16)
    aes = crypto.AesKey(raw)
    for _ in range(300):
        op, iv = rng.choice(("cmac", "enc", "dec", "ecb")), rng.choice((bytes(16), os.urandom(16)))
        if op == "cmac":
            data = os.urandom(rng.randrange(0, 70))
            assert aes.cmac(data) == CMAC.new(raw, data, ciphermod=AES).digest()
            continue
        data = os.urandom(16 * rng.randrange(0 if op != "ecb" else 1, 5))
        if op == "enc":
            assert aes.cbc_encrypt(data, iv) == AES.new(raw, AES.MODE_CBC, iv=iv).encrypt(data)
        elif op == "dec":
            assert aes.cbc_decrypt(data, iv) == AES.new(raw, AES.MODE_CBC, iv=iv).decrypt(data)
        else:
            assert aes.ecb_encrypt(data) == AES.new(raw, AES.MODE_ECB).encrypt(data)
