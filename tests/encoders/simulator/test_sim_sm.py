"""The simulator's AES helper (sm.AesKey) on its own: published known answers, then pycryptodome."""

from __future__ import annotations

import os
import random

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from tagsmith.encoders.simulator.sm import AesKey

RFC_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
SP800_38A_BLOCKS = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a" "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef" "f69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize("length, mac", [
    (0, "bb1d6929e95937287fa37d129b756746"),    # RFC 4493 example 1
    (16, "070a16b46b4d4144f79bdd9dd04a287c"),   # example 2
    (40, "dfa66747de9ae63030ca32611497c827"),   # example 3
    (64, "51f0bebf7e3b9d92fc49741779363cfe"),   # example 4
])
def test_cmac_rfc4493_examples(length, mac):
    key = AesKey(RFC_KEY)
    assert key.cmac(SP800_38A_BLOCKS[:length]) == bytes.fromhex(mac)
    assert key.cmac(SP800_38A_BLOCKS[:length]) == bytes.fromhex(mac)  # again: no state leaks between calls
    assert key.mact(SP800_38A_BLOCKS[:length]) == bytes.fromhex(mac)[1::2]


def test_block_and_cbc_sp800_38a_examples():
    key = AesKey(RFC_KEY)
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    cbc = bytes.fromhex(  # SP 800-38A F.2.1 CBC-AES128.Encrypt
        "7649abac8119b246cee98e9b12e9197d" "5086cb9b507219ee95db113a917678b2"
        "73bed6b8e3c1743b7116e69e22229516" "3ff1caa1681fac09120eca307586e1a7"
    )
    assert key.encrypt_block(SP800_38A_BLOCKS[:16]) == bytes.fromhex("3ad77bb40d7a3660a89ecaf32466ef97")  # F.1.1
    assert key.cbc_encrypt(SP800_38A_BLOCKS, iv) == cbc
    assert key.cbc_decrypt(cbc, iv) == SP800_38A_BLOCKS
    assert key.cbc_encrypt(SP800_38A_BLOCKS, iv) == cbc


def test_matches_pycryptodome_in_any_order_of_calls():
    rng = random.Random(424)
    raw = os.urandom(16)
    key = AesKey(raw)
    for _ in range(400):
        op = rng.choice(("cmac", "enc", "dec", "block"))
        iv = rng.choice((bytes(16), os.urandom(16)))
        if op == "cmac":
            data = os.urandom(rng.randrange(0, 90))
            assert key.cmac(data) == CMAC.new(raw, msg=data, ciphermod=AES).digest()
        elif op == "block":
            data = os.urandom(16)
            assert key.encrypt_block(data) == AES.new(raw, AES.MODE_ECB).encrypt(data)
        else:
            data = os.urandom(16 * rng.randrange(0, 6))
            fresh = AES.new(raw, AES.MODE_CBC, iv=iv)
            if op == "enc":
                assert key.cbc_encrypt(data, iv) == fresh.encrypt(data)
            else:
                assert key.cbc_decrypt(data, iv) == fresh.decrypt(data)


def test_rejects_unaligned_data_and_hides_the_key():
    key = AesKey(RFC_KEY)
    for call in (key.cbc_encrypt, key.cbc_decrypt):
        with pytest.raises(ValueError):
            call(bytes(15))
        with pytest.raises(ValueError):
            call(bytes(16), bytes(8))
    assert key.cbc_encrypt(b"") == b"" and key.cbc_decrypt(b"") == b""
    assert RFC_KEY.hex() not in repr(key).lower() and "2B7E" not in repr(key)
