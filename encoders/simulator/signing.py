"""Originality signature of the simulated chip (Read_Sig, docs/reference/ntag424.md §11).

The real chip carries an NXP ECDSA signature over its UID on secp224r1 with the UID used
directly as the message representative (no hash). The simulator signs with its own TEST key
below, so a verifier accepts a simulated chip only when it is told to trust this key.
The nonce is derived deterministically in the manner of RFC 6979 (HMAC-SHA256), with the raw
UID standing in for the message hash.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterator

from Crypto.PublicKey import ECC

#: secp224r1 group order.
P224_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D
#: The simulator's TEST signing key (never an NXP key; safe to publish).
SIMULATOR_SIGNING_KEY = 0xDA646C26DDCC57DE3432CA4A853EDFB3C6DC428F2BD21061E864CE1A
#: Its public key, SEC1 uncompressed, for verifiers running in simulator mode.
SIMULATOR_PUBLIC_KEY = bytes.fromhex(
    "041B4D3B35DC492FBD300C64E3B175EBED1D700F0F72B92B045F9B1C3D4FC38B56"
    "106EF9F61D06F07A134169CC12B9CE281415F3B00D033596"
)
_QLEN = 28  # bytes of the group order
#: The secp224r1 base point G, built once: multiplying it directly skips the key checks ECC.construct does.
_GENERATOR = ECC.construct(curve="P-224", point_x=0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21,
                           point_y=0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34).pointQ


def _bits2int(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    excess = len(data) * 8 - P224_ORDER.bit_length()
    return value >> excess if excess > 0 else value


def _nonces(d: int, e: int) -> Iterator[int]:
    """RFC 6979 §3.2 candidate nonces with HMAC-SHA256 (h1 = the UID as an integer, reduced)."""
    x = d.to_bytes(_QLEN, "big")
    h1 = (e % P224_ORDER).to_bytes(_QLEN, "big")
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h1, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h1, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        t = b""
        while len(t) < _QLEN:
            v = hmac.new(k, v, hashlib.sha256).digest()
            t += v
        candidate = _bits2int(t[:_QLEN])
        if 1 <= candidate < P224_ORDER:
            yield candidate
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


@functools.lru_cache(maxsize=4096)
def sign_uid(uid: bytes, d: int = SIMULATOR_SIGNING_KEY) -> bytes:
    """r || s (28 + 28 bytes) over the raw UID: e = int.from_bytes(uid, "big"), no hashing.

    Cached: NXP writes the signature into the chip at production, so Read_Sig always returns the
    same bytes for a UID (and the deterministic nonce gives the same signature anyway).
    """
    e = int.from_bytes(uid, "big")
    for k in _nonces(d, e):
        point = _GENERATOR * k
        r = int(point.x) % P224_ORDER
        if r == 0:
            continue
        s = pow(k, -1, P224_ORDER) * (e + r * d) % P224_ORDER
        if s:
            return r.to_bytes(_QLEN, "big") + s.to_bytes(_QLEN, "big")
    raise AssertionError("unreachable")  # pragma: no cover
