"""The Leakage Resilient Primitive of NXP AN12304 (docs/reference/lrp.md), pure bytes in, bytes out.

LRP wraps AES-128 so that no AES key is ever used on more than a few chosen inputs: a base key
gives 16 fixed plaintexts and a series of "updated keys"; evaluating LRP on an input walks it one
nibble at a time, each step encrypting the plaintext that nibble selects under the key the
previous step produced (AN12304 §2, Algorithms 1-3). NTAG 424 DNA uses it with m = 4 (nibbles,
16 plaintexts) for LRICB encryption (AN12304 §3, Algorithm 4) and CMAC_LRP (AN12304 §4).

Every AES call here is under a fresh key, so each is a one-shot ECB context
(:func:`tagsmith.fastaes.encrypt_once`; its cost is in docs/performance.md), and an evaluation over
a 16-byte block takes 33 of them. So what depends on the key alone is made once (:class:`Lrp`: plaintexts, the updated
key, the CMAC subkeys), every chain value of Algorithms 1 and 2 encrypts both its blocks in one
context, and :meth:`Lrp.evaluate` can resume from a state reached over a fixed prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

from tagsmith import fastaes

from . import crypto

BLOCK = 16
PLAINTEXT_COUNT = 16  # 2^m with m = 4: one plaintext per nibble value
_UPPER = b"\x55" * BLOCK  # AN12304 Algorithms 1-2: the constant that steps the chain
_LOWER = b"\xaa" * BLOCK  # ... and the one that yields a plaintext or an updated key
_YIELD_THEN_STEP = _LOWER + _UPPER  # one chain value's two blocks: its output, then the next value


def _check_key(key: bytes) -> None:
    if len(key) != BLOCK:
        raise ValueError(f"an LRP key must be 16 bytes, got {len(key)}")


def _walk(chain: bytes, count: int) -> tuple[bytes, ...]:
    """``count`` outputs of a chain: each value yields AES(h, AA..AA) and steps to AES(h, 55..55), one context each."""
    encrypt = fastaes.encrypt_once
    out = []
    for _ in range(count):
        step = encrypt(chain, _YIELD_THEN_STEP)
        out.append(step[:BLOCK])
        chain = step[BLOCK:]
    return tuple(out)


def generate_plaintexts(key: bytes) -> tuple[bytes, ...]:
    """The 16 plaintexts P0..P15 of a base key (AN12304 Algorithm 1)."""
    _check_key(key)
    return _walk(fastaes.encrypt_once(key, _UPPER), PLAINTEXT_COUNT)


def generate_updated_keys(key: bytes, count: int) -> tuple[bytes, ...]:
    """The first ``count`` updated keys of a base key (AN12304 Algorithm 2)."""
    _check_key(key)
    return _walk(fastaes.encrypt_once(key, _LOWER), count)


def _tables(key: bytes, updated_count: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Plaintexts and the first updated keys together: the base key starts both chains in one context."""
    _check_key(key)
    starts = fastaes.encrypt_once(key, _UPPER + _LOWER)
    return _walk(starts[:BLOCK], PLAINTEXT_COUNT), _walk(starts[BLOCK:], updated_count)


def nibbles(data: bytes) -> list[int]:
    """Split bytes into 4-bit values, high nibble first: LRP's input alphabet with m = 4."""
    out = []
    for byte in data:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return out


def increment_counter(counter: bytes) -> bytes:
    """The next LRICB counter value: big-endian + 1, wrapping within its own width (AN12304 §3)."""
    width = len(counter)
    return ((int.from_bytes(counter, "big") + 1) % (1 << (8 * width))).to_bytes(width, "big")


class Lrp:
    """LRP under one base key and one of its updated keys: evaluation, LRICB and CMAC_LRP.

    NTAG 424 DNA uses updated key 0 for MACs and the SDM PICC data, updated key 1 for the
    secure-messaging and SDM file-data encryption (docs/reference/lrp.md).
    """

    __slots__ = ("_plaintexts", "_updated", "_k1", "_k2")

    def __init__(self, plaintexts: Sequence[bytes], updated_key: bytes) -> None:
        if len(plaintexts) != PLAINTEXT_COUNT or any(len(p) != BLOCK for p in plaintexts):
            raise ValueError("LRP needs 16 plaintexts of 16 bytes")
        _check_key(updated_key)
        self._plaintexts = tuple(plaintexts)
        self._updated = bytes(updated_key)
        self._k1: int | None = None
        self._k2 = 0

    @classmethod
    def from_key(cls, key: bytes, updated_key_index: int = 0) -> Lrp:
        """LRP under ``key`` with its updated key number ``updated_key_index``."""
        plaintexts, updated = _tables(key, updated_key_index + 1)
        return cls(plaintexts, updated[updated_key_index])

    @classmethod
    def pair(cls, key: bytes) -> tuple[Lrp, Lrp]:
        """LRP under updated keys 0 and 1 of one base key, sharing one plaintext table (MAC, ENC)."""
        plaintexts, (mac_key, enc_key) = _tables(key, 2)
        return cls(plaintexts, mac_key), cls(plaintexts, enc_key)

    def __repr__(self) -> str:  # key material stays out of logs and tracebacks
        return "Lrp()"

    def evaluate_nibbles(self, values: Sequence[int], *, final: bool = True) -> bytes:
        """EvalLRP over 4-bit values (AN12304 Algorithm 3); ``final`` adds the closing step under 0^16."""
        encrypt, plaintexts = fastaes.encrypt_once, self._plaintexts
        state = self._updated
        for value in values:
            state = encrypt(state, plaintexts[value])
        return encrypt(state, crypto.ZERO_BLOCK) if final else state

    def evaluate(self, data: bytes, *, final: bool = True, start: bytes | None = None) -> bytes:
        """EvalLRP over the nibbles of ``data``, high nibble of each byte first.

        ``start`` resumes an evaluation: the state a non-final evaluation returned over the input's
        first bytes (a prefix every input shares is evaluated once per key, not once per input).
        """
        encrypt, plaintexts = fastaes.encrypt_once, self._plaintexts
        state = self._updated if start is None else start
        for byte in data:
            state = encrypt(encrypt(state, plaintexts[byte >> 4]), plaintexts[byte & 0x0F])
        return encrypt(state, crypto.ZERO_BLOCK) if final else state

    # ------------------------------------------------------------------ LRICB (AN12304 §3)
    def encrypt(self, data: bytes, counter: bytes, *, pad: bool = True) -> tuple[bytes, bytes]:
        """LRICB-encrypt ``data`` from ``counter``; return the ciphertext and the counter after it.

        Block i is AES under EvalLRP(counter + i); ``pad`` applies ISO/IEC 9797-1 method 2 first
        (always one 80 byte, so an empty or aligned input gains a whole block).
        """
        if pad:
            data = crypto.pad_m2(data)
        elif len(data) % BLOCK:
            raise ValueError(f"LRICB without padding needs whole 16-byte blocks, got {len(data)} bytes")
        out = []
        for at in range(0, len(data), BLOCK):
            out.append(fastaes.encrypt_once(self.evaluate(counter), data[at:at + BLOCK]))
            counter = increment_counter(counter)
        return b"".join(out), counter

    def decrypt(self, data: bytes, counter: bytes, *, pad: bool = True) -> tuple[bytes, bytes]:
        """LRICB-decrypt ``data`` from ``counter``; return the plaintext and the counter after it.

        With ``pad`` the method-2 padding is checked and removed (ValueError when malformed).
        """
        if len(data) % BLOCK or (pad and not data):
            raise ValueError(f"LRICB ciphertext must be whole 16-byte blocks, got {len(data)} bytes")
        out = []
        for at in range(0, len(data), BLOCK):
            out.append(fastaes.decrypt_once(self.evaluate(counter), data[at:at + BLOCK]))
            counter = increment_counter(counter)
        plain = b"".join(out)
        return (crypto.unpad_m2(plain) if pad else plain), counter

    # ------------------------------------------------------------------ CMAC_LRP (AN12304 §4)
    def cmac_subkeys(self) -> tuple[int, int]:
        """CMAC_LRP's K1 = 2·K0 and K2 = 4·K0 with K0 = EvalLRP(0^16), made on first use (33 AES keys)."""
        if self._k1 is None:
            k1 = fastaes.double(int.from_bytes(self.evaluate(crypto.ZERO_BLOCK), "big"))
            self._k2 = fastaes.double(k1)
            self._k1 = k1  # set last: another thread that sees it also sees K2
        return self._k1, self._k2

    def cmac(self, data: bytes) -> bytes:
        """CMAC (NIST SP 800-38B) with EvalLRP (final) as the block function; 16 bytes."""
        k1, k2 = self.cmac_subkeys()
        size = len(data)
        if size and not size % BLOCK:
            head, last = data[:-BLOCK], int.from_bytes(data[-BLOCK:], "big") ^ k1
        else:
            cut = size - size % BLOCK
            head, last = data[:cut], int.from_bytes(crypto.pad_m2(data[cut:]), "big") ^ k2
        state = 0
        for at in range(0, len(head), BLOCK):
            state = int.from_bytes(self.evaluate(_block(state ^ int.from_bytes(head[at:at + BLOCK], "big"))), "big")
        return self.evaluate(_block(state ^ last))

    def mac_t(self, data: bytes) -> bytes:
        """CMAC_LRP truncated to the odd-index bytes 1, 3, ..., 15, as commands and SUN URLs carry it."""
        return crypto.truncate_mac(self.cmac(data))


def _block(value: int) -> bytes:
    return value.to_bytes(BLOCK, "big")
