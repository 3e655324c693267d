"""AES building blocks of NTAG 424 DNA secure messaging and SDM (docs/reference/ntag424.md §1, §5.3, §6, §8, §10.3).

Everything here is pure: bytes in, bytes out. ``E``/``D`` in NXP's tables are AES-128-CBC with a
zero IV; CMAC is NIST SP 800-38B; MACt keeps the odd-index bytes 1, 3, ..., 15 of the CMAC.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from tagsmith import fastaes

BLOCK = 16
ZERO_BLOCK = bytes(BLOCK)

# Session-vector labels: EV2 auth (A55A ENC, 5AA5 MAC) and SDM (C33C ENC, 3CC3 MAC).
SV_AUTH_ENC = bytes.fromhex("A55A00010080")
SV_AUTH_MAC = bytes.fromhex("5AA500010080")
SV_SDM_ENC = bytes.fromhex("C33C00010080")
SV_SDM_MAC = bytes.fromhex("3CC300010080")


def xor(a: bytes, b: bytes) -> bytes:
    """XOR two byte strings of equal length."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


class AesKey:
    """One AES-128 key expanded once, for the many short ECB/CBC/CMAC operations of a session.

    An EV2 session protects every command and response with the same two keys; expanding them
    per message cost more than the messages. ECB runs on an open context (:mod:`tagsmith.fastaes`); CBC
    and CMAC on one open CBC context that each call restarts from its own IV: the context chains
    on from its last output block, so XORing that block and the IV into the first input block
    starts the run afresh. That chain is state, so an AesKey is not shared between threads
    (a session's keys belong to the one thread talking to the chip). The CMAC subkeys are made
    on first use.
    """

    __slots__ = ("_key", "_block", "_cbc", "_chain", "_k1", "_k2")

    def __init__(self, key: bytes) -> None:
        self._key = bytes(key)
        self._block = fastaes.block_key(self._key)
        self._cbc: Callable[[bytes], bytes] | None = None
        self._chain = 0
        self._k1: int | None = None
        self._k2 = 0

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return "AesKey()"

    def ecb_encrypt(self, data: bytes) -> bytes:
        """Encrypt whole blocks, each on its own."""
        return self._block.encrypt(data)

    def cbc_encrypt(self, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
        """Encrypt whole blocks in CBC mode; NXP's E(K, M) is this with a zero IV."""
        _check_blocks(data)
        if not data:
            return b""
        if self._cbc is None:
            self._cbc = fastaes.cbc_context(self._key)
        first = int.from_bytes(data[:BLOCK], "big") ^ int.from_bytes(iv, "big") ^ self._chain
        out = self._cbc(first.to_bytes(BLOCK, "big") + data[BLOCK:])
        self._chain = int.from_bytes(out[-BLOCK:], "big")
        return out

    def cbc_decrypt(self, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
        """Decrypt whole blocks in CBC mode: one ECB pass, then XOR with the shifted ciphertext."""
        _check_blocks(data)
        if not data:
            return b""
        return xor(self._block.decrypt(data), iv + data[:-BLOCK])

    def cmac(self, data: bytes) -> bytes:
        """AES-CMAC (RFC 4493) of ``data``: CBC-MAC with the last block masked by K1 (whole) or K2 (padded)."""
        if self._k1 is None:
            self._k1 = fastaes.double(int.from_bytes(self._block.encrypt(ZERO_BLOCK), "big"))
            self._k2 = fastaes.double(self._k1)
        size = len(data)
        if size and not size % BLOCK:
            head, last = data[:-BLOCK], int.from_bytes(data[-BLOCK:], "big") ^ self._k1
        else:
            cut = size - size % BLOCK
            head, last = data[:cut], int.from_bytes(pad_m2(data[cut:]), "big") ^ self._k2
        return self.cbc_encrypt(head + last.to_bytes(BLOCK, "big"))[-BLOCK:]

    def mac_t(self, data: bytes) -> bytes:
        """Truncated CMAC as carried in commands and responses."""
        return self.cmac(data)[1::2]


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise ValueError(f"AES data must be whole 16-byte blocks, got {len(data)} bytes")


def cbc_encrypt(key: bytes, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
    """Encrypt whole blocks with AES-CBC; NXP's E(K, M) is this with a zero IV."""
    return AesKey(key).cbc_encrypt(data, iv)


def cbc_decrypt(key: bytes, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
    """Decrypt whole blocks with AES-CBC; NXP's D(K, M) is this with a zero IV."""
    return AesKey(key).cbc_decrypt(data, iv)


cmac = fastaes.cmac_once  # AES-CMAC (RFC 4493) under a key used for this one message


def truncate_mac(full_mac: bytes) -> bytes:
    """MACt: keep bytes 1, 3, ..., 15 (NXP's "even-numbered" bytes counted from S15)."""
    return full_mac[1::2]


def mac_t(key: bytes, data: bytes) -> bytes:
    """Truncated CMAC as carried in commands, responses and SUN URLs."""
    return truncate_mac(cmac(key, data))


def pad_m2(data: bytes) -> bytes:
    """ISO 9797-1 method 2 padding; always adds 80, a full block when already aligned."""
    return data + b"\x80" + bytes((-len(data) - 1) % BLOCK)


def unpad_m2(data: bytes) -> bytes:
    """Strip method-2 padding; raise ValueError when it is malformed."""
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= BLOCK:
        raise ValueError("response padding is malformed")
    return stripped[:-1]


def rotate_left(data: bytes) -> bytes:
    """Rotate one byte to the left (RndB -> RndB', RndA -> RndA')."""
    return data[1:] + data[:1]


def ev2_context(rnd_a: bytes, rnd_b: bytes) -> bytes:
    """The 26-byte session-vector context of AuthenticateEV2 (§5.3), in transmission order."""
    return rnd_a[0:2] + xor(rnd_a[2:8], rnd_b[0:6]) + rnd_b[6:16] + rnd_a[8:16]


def ev2_session_keys(key: bytes | AesKey, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """Derive (SesAuthENCKey, SesAuthMACKey) from the authenticated key and both randoms."""
    ctx, aes = ev2_context(rnd_a, rnd_b), key if isinstance(key, AesKey) else AesKey(key)
    return aes.cmac(SV_AUTH_ENC + ctx), aes.cmac(SV_AUTH_MAC + ctx)


def sdm_session_vectors(uid: bytes | None, read_ctr: int | None) -> tuple[bytes, bytes]:
    """SV1 (ENC, UID and counter always) and SV2 (MAC, only what is mirrored, zero-padded) of §10.3."""
    ctr = b"" if read_ctr is None else read_ctr.to_bytes(3, "little")
    sv1 = SV_SDM_ENC + (uid or b"") + ctr
    sv2 = SV_SDM_MAC + (uid or b"") + ctr
    return sv1, sv2 + bytes(-len(sv2) % BLOCK)


def sdm_session_keys(file_read_key: bytes, uid: bytes, read_ctr: int) -> tuple[bytes, bytes]:
    """Derive (KSesSDMFileReadENC, KSesSDMFileReadMAC) for a tap with UID and counter mirrored."""
    sv1, sv2 = sdm_session_vectors(uid, read_ctr)
    return cmac(file_read_key, sv1), cmac(file_read_key, sv2)


def crc32nk(data: bytes) -> bytes:
    """JAMCRC of ChangeKey: IEEE CRC-32 without the final inversion, LSB first (§8)."""
    return (zlib.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")
