"""AES-128 for the per-tag hot paths (secure messaging, SUN, AN10922 diversification), on OpenSSL.

Shared by the chip protocol (``encoders.ntag424``) and key custody (``keystore.diversify``), so it
lives at the package root and imports no tagsmith folder.

A command needs one to three AES blocks, and building a cipher object per call costs more than the
blocks themselves. This module keeps one cryptography (OpenSSL) ECB context open per key instead:
ECB carries no state from one call to the next, so one context serves every whole-block call under
its key for as long as the key lives. :func:`cbc_context` gives an open CBC run for callers that
restart its chain per call (a secure-messaging session's keys). A key used for a single message (a
per-tap session key) takes cryptography's one-shot CMAC, and a key used for one or two blocks (each
step of LRP) a one-shot ECB context. docs/performance.md names the benches.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

BLOCK = 16
_ZERO = bytes(BLOCK)
_MASK = (1 << 128) - 1
_ECB = modes.ECB()


class BlockKey:
    """An AES-128 key kept expanded in an open ECB context, for whole-block operations.

    The length check is not decoration: an ECB context buffers a partial block and would prepend
    it to the next call's data, so a stray length must fail here rather than corrupt later calls.
    """

    __slots__ = ("_cipher", "_encrypt", "_decrypt")

    def __init__(self, key: bytes) -> None:
        if len(key) != BLOCK:
            raise ValueError(f"AES-128 key must be 16 bytes, got {len(key)}")
        self._cipher = Cipher(algorithms.AES128(bytes(key)), _ECB)
        self._encrypt = self._cipher.encryptor().update
        self._decrypt: Callable[[bytes], bytes] | None = None  # made on first use: most keys only encrypt

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return "BlockKey()"

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt whole blocks, each on its own (ECB)."""
        if len(data) % BLOCK:
            raise ValueError(f"AES data must be whole 16-byte blocks, got {len(data)} bytes")
        return self._encrypt(data)

    def decrypt(self, data: bytes) -> bytes:
        """Decrypt whole blocks, each on its own (ECB)."""
        if len(data) % BLOCK:
            raise ValueError(f"AES data must be whole 16-byte blocks, got {len(data)} bytes")
        if self._decrypt is None:
            self._decrypt = self._cipher.decryptor().update
        return self._decrypt(data)


def encrypt_once(key: bytes, data: bytes) -> bytes:
    """Encrypt whole blocks (ECB) under a key used only for them, as LRP uses every key it derives.

    A one-shot context: per new key cryptography's Cipher costs about half of pycryptodome's AES.new
    (docs/performance.md), and keeping the context would only cost memory.
    """
    return Cipher(algorithms.AES128(key), _ECB).encryptor().update(data)


def decrypt_once(key: bytes, data: bytes) -> bytes:
    """Decrypt whole blocks (ECB) under a key used only for them."""
    return Cipher(algorithms.AES128(key), _ECB).decryptor().update(data)


def cbc_context(key: bytes) -> Callable[[bytes], bytes]:
    """An open AES-128-CBC encryption run from a zero IV: each call continues the chain.

    For callers that restart the chain themselves (XOR the last output block and the wanted IV
    into the first input block); data must be whole blocks.
    """
    return Cipher(algorithms.AES128(bytes(key)), modes.CBC(_ZERO)).encryptor().update


def block_key(key: bytes) -> BlockKey:
    """Whole-block ``encrypt``/``decrypt`` under a fixed key, expanded once."""
    return BlockKey(key)


def double(value: int) -> int:
    """Multiply by x in GF(2^128): the CMAC subkey step (K1 = 2L, K2 = 2K1)."""
    value <<= 1
    return (value & _MASK) ^ 0x87 if value >> 128 else value


def cmac_subkeys_from_l(l_block: bytes) -> tuple[bytes, bytes]:
    """CMAC subkeys K1 = 2L and K2 = 4L from L = E(K, 0^16) (NIST SP 800-38B §6.1)."""
    k1 = double(int.from_bytes(l_block, "big"))
    return k1.to_bytes(BLOCK, "big"), double(k1).to_bytes(BLOCK, "big")


def cmac_once(key: bytes, message: bytes) -> bytes:
    """Full 16-byte AES-CMAC under a key used only this once (a per-tap session key)."""
    mac = CMAC(algorithms.AES128(key))
    mac.update(message)
    return mac.finalize()
