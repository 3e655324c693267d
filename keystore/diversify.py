"""AN10922 §2.2.1 AES-128 key diversification (pure; the file and PKCS#11 backends build on it).

The diversified key is CMAC(master, 01 || M) with the padded message forced to two blocks:
for a short M the standard CMAC would differ, so this is built from AES-ECB directly.
"""

from __future__ import annotations

from collections.abc import Callable

from tagsmith import fastaes

DIV_CONSTANT_AES128 = 0x01
MAX_INPUT = 31


def cmac_subkeys(encrypt_block: Callable[[bytes], bytes]) -> tuple[bytes, bytes]:
    """K1 and K2 from L = E(K, 0^16) (NIST SP 800-38B), given the key's block encryption."""
    return fastaes.cmac_subkeys_from_l(encrypt_block(bytes(16)))


def padded_diversification_block(m: bytes, k1: bytes, k2: bytes) -> bytes:
    """D' of AN10922: 01 || M padded to 32 bytes, last block XORed with K1 (full) or K2 (padded)."""
    if not 1 <= len(m) <= MAX_INPUT:
        raise ValueError(f"diversification input must be 1..{MAX_INPUT} bytes, got {len(m)}")
    d = bytes([DIV_CONSTANT_AES128]) + m
    if len(d) < 32:
        d, last = d + b"\x80" + bytes(31 - len(d)), k2
    else:
        last = k1
    return d[:16] + bytes(a ^ b for a, b in zip(d[16:], last, strict=True))


class Diversifier:
    """AN10922 under one master key, expanded once: a station derives several keys per chip."""

    __slots__ = ("_encrypt", "_k1", "_k2")

    def __init__(self, master: bytes) -> None:
        if len(master) != 16:
            raise ValueError("AES-128 master key must be 16 bytes")
        self._encrypt = fastaes.block_key(master).encrypt
        self._k1, self._k2 = cmac_subkeys(self._encrypt)

    def __repr__(self) -> str:  # the expanded key stays out of logs and tracebacks
        return "Diversifier()"

    def derive(self, m: bytes) -> bytes:
        """The diversified key for input M (1..31 bytes): the last block of CBC over D'."""
        block = padded_diversification_block(m, self._k1, self._k2)
        first = int.from_bytes(self._encrypt(block[:16]), "big")
        return self._encrypt((first ^ int.from_bytes(block[16:], "big")).to_bytes(16, "big"))


def diversify_aes128(master: bytes, m: bytes) -> bytes:
    """Derive a chip key from a 16-byte master key and diversification input M (1..31 bytes)."""
    return Diversifier(master).derive(m)


def diversification_input(uid: bytes, slot: int, system_id: bytes) -> bytes:
    """tagsmith's documented M: UID(7) || slot(1) || system identifier (at most 23 bytes)."""
    if len(uid) != 7:
        raise ValueError("UID must be 7 bytes")
    if not 0 <= slot <= 4:
        raise ValueError("key slot must be 0..4")
    if len(system_id) > MAX_INPUT - 8:
        raise ValueError(f"system identifier is at most {MAX_INPUT - 8} bytes")
    return uid + bytes([slot]) + system_id
