"""The Leakage Resilient Primitive as the simulated chip computes it (PICC side).

Written from NXP AN12304 (restated in ``docs/reference/lrp.md`` §1-§3): the plaintext table
and updated keys of one AES-128 key (Algorithms 1 and 2), EvalLRP with m = 4 (Algorithm 3),
LRICB encryption (§3) and CMAC_LRP (§4). Every AES call here takes a fresh key, which is the
point of LRP, so there is no key schedule worth keeping between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
_UPPER = b"\x55" * BLOCK  # AN12304 Algorithms 1 and 2: "upper" constant
_LOWER = b"\xAA" * BLOCK  # "lower" constant
_MASK128 = (1 << 128) - 1
_BlockCipher = Callable[[bytes, bytes], bytes]  # (key, block) -> block


def aes_block(key: bytes, block: bytes) -> bytes:
    """One AES-128 encryption of one block."""
    encryptor = Cipher(algorithms.AES128(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _aes_block_decrypt(key: bytes, block: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES128(key), modes.ECB()).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def plaintexts(key: bytes) -> tuple[bytes, ...]:
    """The 16 plaintexts P0..P15 of ``key`` (AN12304 Algorithm 1)."""
    state = aes_block(key, _UPPER)
    table = []
    for _ in range(16):
        table.append(aes_block(state, _LOWER))
        state = aes_block(state, _UPPER)
    return tuple(table)


def updated_keys(key: bytes, count: int) -> tuple[bytes, ...]:
    """The first ``count`` updated keys K'_0.. of ``key`` (AN12304 Algorithm 2)."""
    state = aes_block(key, _LOWER)
    keys = []
    for _ in range(count):
        keys.append(aes_block(state, _LOWER))
        state = aes_block(state, _UPPER)
    return tuple(keys)


def nibbles_of(data: bytes) -> list[int]:
    """The 4-bit digits of ``data``, high nibble of each byte first."""
    out: list[int] = []
    for byte in data:
        out += (byte >> 4, byte & 0x0F)
    return out


def _double(value: int) -> int:
    """Doubling in GF(2^128), the CMAC subkey step (NIST SP 800-38B §6.1)."""
    value <<= 1
    return (value ^ 0x87) & _MASK128 if value >> 128 else value


class Lrp:
    """EvalLRP of one key under one of its updated keys, and what NTAG 424 DNA builds on it.

    ``repr`` never shows key material.
    """

    __slots__ = ("_table", "_updated", "_subkeys")

    def __init__(self, key: bytes, index: int = 0, *, table: Sequence[bytes] | None = None) -> None:
        if len(key) != BLOCK:
            raise ValueError("an LRP key is 16 bytes")
        self._table = tuple(table) if table is not None else plaintexts(key)
        self._updated = updated_keys(key, index + 1)[index]
        self._subkeys: tuple[int, int] | None = None

    @classmethod
    def pair(cls, key: bytes) -> tuple[Lrp, Lrp]:
        """(updated key 0, updated key 1) of ``key``, sharing one plaintext table: the MAC and ENC keys."""
        table = plaintexts(key)
        return cls(key, 0, table=table), cls(key, 1, table=table)

    def __repr__(self) -> str:
        return "Lrp(<hidden>)"

    def eval_nibbles(self, digits: Sequence[int], *, final: bool = True) -> bytes:
        """EvalLRP over a sequence of 4-bit digits (AN12304 Algorithm 3)."""
        state = self._updated
        for digit in digits:
            state = aes_block(state, self._table[digit])
        return aes_block(state, bytes(BLOCK)) if final else state

    def eval(self, data: bytes, *, final: bool = True) -> bytes:
        """EvalLRP over the nibbles of ``data``."""
        return self.eval_nibbles(nibbles_of(data), final=final)

    # --- CMAC_LRP (AN12304 §4)

    def cmac(self, data: bytes) -> bytes:
        """CMAC (NIST SP 800-38B) with EvalLRP(., final) as the block function; 16 bytes."""
        if self._subkeys is None:
            k1 = _double(int.from_bytes(self.eval(bytes(BLOCK)), "big"))
            self._subkeys = (k1, _double(k1))
        k1, k2 = self._subkeys
        size = len(data)
        if size and not size % BLOCK:
            head, last = data[:-BLOCK], int.from_bytes(data[-BLOCK:], "big") ^ k1
        else:
            cut = size - size % BLOCK
            tail = data[cut:] + b"\x80" + bytes(BLOCK - 1 - size % BLOCK)  # ISO 9797-1 method 2
            head, last = data[:cut], int.from_bytes(tail, "big") ^ k2
        chain = 0
        for start in range(0, len(head), BLOCK):
            block = int.from_bytes(head[start:start + BLOCK], "big") ^ chain
            chain = int.from_bytes(self.eval(block.to_bytes(BLOCK, "big")), "big")
        return self.eval((last ^ chain).to_bytes(BLOCK, "big"))

    def mact(self, data: bytes) -> bytes:
        """The truncated 8-byte MAC: bytes 1, 3, ..., 15 of the CMAC, as in AES mode."""
        return self.cmac(data)[1::2]

    # --- LRICB (AN12304 §3), no padding: callers pad where the protocol says

    def encrypt(self, data: bytes, counter: bytes) -> tuple[bytes, bytes]:
        """Encrypt whole blocks; returns (ciphertext, the counter after the last block)."""
        return self._lricb(data, counter, aes_block)

    def decrypt(self, data: bytes, counter: bytes) -> tuple[bytes, bytes]:
        """Decrypt whole blocks; returns (plaintext, the counter after the last block)."""
        return self._lricb(data, counter, _aes_block_decrypt)

    def _lricb(self, data: bytes, counter: bytes, cipher: _BlockCipher) -> tuple[bytes, bytes]:
        if len(data) % BLOCK:
            raise ValueError("LRICB works on whole blocks")
        out = []
        for start in range(0, len(data), BLOCK):
            out.append(cipher(self.eval(counter), data[start:start + BLOCK]))
            counter = next_counter(counter)
        return b"".join(out), counter



def next_counter(counter: bytes) -> bytes:
    """The LRICB counter plus one, wrapping within its own width (big-endian)."""
    width = len(counter)
    return ((int.from_bytes(counter, "big") + 1) % (1 << (8 * width))).to_bytes(width, "big")
