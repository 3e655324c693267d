"""Single-block AES for the SUN verifier's hot path, through pycryptodome's own compiled library.

pycryptodome's ``AES.new(...).encrypt`` spends microseconds in Python around a sub-microsecond C
call. The verifier needs a handful of single-block operations per tap, several under a key that
exists only for that tap, so this module calls the same C functions (``_raw_aes``/``_raw_aesni``
and ``_raw_ecb``) directly, holding the GIL. It checks itself against ``AES.new`` at import and
falls back to ``AES.new`` when the library layout differs, so results never depend on the path.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import threading
from pathlib import Path
from typing import Callable

import Crypto
from Crypto.Cipher import AES

BLOCK = 16
_ZERO = bytes(BLOCK)
_MASK = (1 << 128) - 1
_PAD_EMPTY = 0x80 << 120
_KEY_SIZE = ctypes.c_size_t(BLOCK)
_VOID, _BYREF = ctypes.c_void_p, ctypes.byref


def _find_library(name: str) -> str | None:
    folder = Path(Crypto.__file__).parent / "Cipher"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (folder / (name + suffix)).is_file():
            return str(folder / (name + suffix))
    return None


def _have_aes_ni() -> bool:
    try:
        from Crypto.Util import _cpu_features

        return bool(_cpu_features.have_aes_ni())
    except Exception:  # any layout change: use the portable code
        return False


class _Raw:
    """Bound C entry points: block-cipher start (AES-NI or portable) and the ECB mode functions."""

    def __init__(self) -> None:
        ecb_path = _find_library("_raw_ecb")
        hw = _have_aes_ni() and _find_library("_raw_aesni")
        aes_path = hw or _find_library("_raw_aes")
        if not ecb_path or not aes_path:
            raise OSError("pycryptodome raw libraries not found")
        ecb, aes = ctypes.PyDLL(ecb_path), ctypes.PyDLL(aes_path)
        self.start_cipher = getattr(aes, "AESNI_start_operation" if hw else "AES_start_operation")
        self.start_ecb, self.stop_ecb = ecb.ECB_start_operation, ecb.ECB_stop_operation
        self.stop_ecb.argtypes = [ctypes.c_void_p]
        self.encrypt, self.decrypt = ecb.ECB_encrypt, ecb.ECB_decrypt
        for function in (self.encrypt, self.decrypt):
            function.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]

    def open(self, key: bytes) -> ctypes.c_void_p:
        """Expand a 16-byte key into an ECB state (free it with ``stop_ecb``)."""
        cipher, state = _VOID(), _VOID()
        if self.start_cipher(key, _KEY_SIZE, _BYREF(cipher)) or self.start_ecb(cipher, _BYREF(state)):
            raise ValueError("AES key setup failed")
        return state


def _load() -> _Raw | None:
    try:
        raw = _Raw()
        key, block = bytes(range(16)), bytes(range(16, 32))
        state, out = raw.open(key), ctypes.create_string_buffer(BLOCK)
        raw.encrypt(state, block, out, BLOCK)
        raw.stop_ecb(state)
        return raw if out.raw == AES.new(key, AES.MODE_ECB).encrypt(block) else None
    except (OSError, AttributeError, ValueError):
        return None


_RAW = _load()
_LOCAL = threading.local()


def _block_buffer() -> ctypes.Array:
    """This thread's 16-byte output buffer (C writes into it; .raw copies it out)."""
    try:
        return _LOCAL.out
    except AttributeError:
        _LOCAL.out = ctypes.create_string_buffer(BLOCK)
        return _LOCAL.out


def using_raw_library() -> bool:
    """True when the fast path is active (for the benchmark's report)."""
    return _RAW is not None


class _RawBlockKey:
    """A fixed AES key kept expanded in C for repeated single-block operations."""

    def __init__(self, key: bytes) -> None:
        self._state = _RAW.open(bytes(key))

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt whole blocks (ECB)."""
        out = _block_buffer() if len(data) == BLOCK else ctypes.create_string_buffer(len(data))
        _RAW.encrypt(self._state, data, out, len(data))
        return out.raw

    def decrypt(self, data: bytes) -> bytes:
        """Decrypt whole blocks (ECB)."""
        out = _block_buffer() if len(data) == BLOCK else ctypes.create_string_buffer(len(data))
        _RAW.decrypt(self._state, data, out, len(data))
        return out.raw

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state is not None and _RAW is not None:
            _RAW.stop_ecb(state)


def block_key(key: bytes):
    """An object with ``encrypt``/``decrypt`` for whole blocks under a fixed key, as fast as available."""
    if len(key) != BLOCK:
        raise ValueError(f"AES-128 key must be 16 bytes, got {len(key)}")
    return _RawBlockKey(key) if _RAW is not None else AES.new(key, AES.MODE_ECB)


def double(value: int) -> int:
    """Multiply by x in GF(2^128): the CMAC subkey step (K1 = 2L, K2 = 2K1)."""
    value <<= 1
    return (value & _MASK) ^ 0x87 if value >> 128 else value


def cmac_blocks(encrypt: Callable[[bytes], bytes], message: bytes, k1: int | None = None) -> bytes:
    """AES-CMAC (RFC 4493) given a single-block encrypt function; ``k1`` when the caller keeps it."""
    if k1 is None:
        k1 = double(int.from_bytes(encrypt(_ZERO), "big"))
    if message and not len(message) % BLOCK:
        body, last = message[:-BLOCK], int.from_bytes(message[-BLOCK:], "big") ^ k1
    else:
        cut = len(message) - len(message) % BLOCK
        tail = message[cut:] + b"\x80" + bytes(BLOCK - 1 - len(message) + cut)
        body, last = message[:cut], int.from_bytes(tail, "big") ^ double(k1)
    chain = 0
    for at in range(0, len(body), BLOCK):
        chain = int.from_bytes(encrypt((chain ^ int.from_bytes(body[at:at + BLOCK], "big")).to_bytes(16, "big")), "big")
    return encrypt((chain ^ last).to_bytes(16, "big"))


def cmac_once(key: bytes, message: bytes) -> bytes:
    """Full 16-byte AES-CMAC under a key used only this once (a per-tap session key)."""
    if _RAW is None:
        return cmac_blocks(AES.new(key, AES.MODE_ECB).encrypt, message)
    raw, out, state = _RAW, _block_buffer(), _RAW.open(key)
    try:
        if not message:  # the common SUN case: T = E(K, K2 xor 80 00..), K2 = 4 * L in GF(2^128)
            raw.encrypt(state, _ZERO, out, BLOCK)
            wide = int.from_bytes(out.raw, "big") << 2
            k2 = (wide & _MASK) ^ (0x10E if wide >> 129 else 0) ^ (0x87 if wide >> 128 & 1 else 0)
            raw.encrypt(state, (k2 ^ _PAD_EMPTY).to_bytes(BLOCK, "big"), out, BLOCK)
            return out.raw

        def encrypt(block: bytes) -> bytes:
            raw.encrypt(state, block, out, BLOCK)
            return out.raw

        return cmac_blocks(encrypt, message)
    finally:
        raw.stop_ecb(state)


def fast_pair(meta: object, file: object, file_k1: int,
              sv2_prefix: bytes) -> Callable[[bytes, bytes], tuple[bytes, bytes]] | None:
    """The SUN hot path for two cached keys, or None when the raw library is not in use.

    The returned function decrypts PICC data with ``meta``, derives the session MAC key as
    E(file, SV2 xor K1) (SV2 = ``sv2_prefix`` || UID || counter, for a C7 tag) and returns (PICC
    plaintext, MACt over ``message``), all in direct C calls.
    """
    if _RAW is None or not isinstance(meta, _RawBlockKey) or not isinstance(file, _RawBlockKey):
        return None
    meta_state, file_state, decrypt, encrypt = meta._state, file._state, _RAW.decrypt, _RAW.encrypt

    def tap(picc: bytes, message: bytes) -> tuple[bytes, bytes]:
        out = _block_buffer()
        decrypt(meta_state, picc, out, BLOCK)
        plain = out.raw
        sv2 = int.from_bytes(sv2_prefix + plain[1:11], "big")
        encrypt(file_state, (sv2 ^ file_k1).to_bytes(BLOCK, "big"), out, BLOCK)
        return plain, cmac_once(out.raw, message)[1::2]

    tap.keys = (meta, file)  # keep the key states alive as long as the function
    return tap
