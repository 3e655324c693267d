"""Originality signature check of Read_Sig (docs/reference/ntag424.md §11, AN12196 T30).

ECDSA on secp224r1 whose message representative is the raw 7-byte UID, not a hash of it. The
signature proves NXP issued that UID; an emulator can replay it, so it is one check among others.
The tagsmith simulator signs with its own test key, accepted only when asked for explicitly.

The verification is OpenSSL's (``cryptography``): about three times faster than point arithmetic
through pycryptodome, and no ECDSA of our own. ECDSA takes the leftmost 224 bits of the digest
as the integer e, so the UID zero-padded on the left to 28 bytes and passed as a prehashed
SHA-224 digest gives exactly e = int(UID), the value NXP signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tagsmith import ConfigError

NXP_PUBLIC_KEY = bytes.fromhex(
    "048A9B380AF2EE1B98DC417FECC263F8449C7625CECE82D9B916C992DA"
    "209D68422B81EC20B65A66B5102A61596AF3379200599316A00A1410")
SIMULATOR_PUBLIC_KEY = bytes.fromhex(
    "041B4D3B35DC492FBD300C64E3B175EBED1D700F0F72B92B045F9B1C3D"
    "4FC38B56106EF9F61D06F07A134169CC12B9CE281415F3B00D033596")
_FIELD_BYTES = 28  # secp224r1: coordinates, r, s and the digest e are 28 bytes each
_ALGORITHM = ec.ECDSA(utils.Prehashed(hashes.SHA224()))


class Signer(Enum):
    """Whose key verified the signature."""

    NXP = "nxp"
    SIMULATOR = "simulator"
    NONE = "none"


@dataclass(frozen=True)
class OriginalityResult:
    """The verdict: which key (if any) verified the signature over the UID."""

    uid: bytes
    signer: Signer

    @property
    def valid(self) -> bool:
        """True when a trusted key verified the signature."""
        return self.signer is not Signer.NONE


def _public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    if len(point) != 1 + 2 * _FIELD_BYTES or point[0] != 0x04:
        raise ConfigError("public key must be a 57-byte uncompressed SEC1 point on secp224r1")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP224R1(), point)


_NXP_KEY, _SIMULATOR_KEY = _public_key(NXP_PUBLIC_KEY), _public_key(SIMULATOR_PUBLIC_KEY)


def _verifies(key: ec.EllipticCurvePublicKey, der_signature: bytes, representative: bytes) -> bool:
    try:
        key.verify(der_signature, representative, _ALGORITHM)
    except InvalidSignature:
        return False
    return True


def verify_originality(uid: bytes, signature: bytes, *, allow_simulator: bool = False) -> OriginalityResult:
    """Verify a Read_Sig signature for a 7-byte UID against NXP's key (and the simulator's, when allowed).

    When simulated chips are allowed (demo, tests, benchmarks) their key is tried first, so a
    simulated chip costs one verification as a real one does on the line; no signature verifies
    under both keys, so the order never changes the verdict. An r or s outside [1, n-1] verifies
    under no key.
    """
    if len(uid) != 7:
        raise ConfigError(f"UID must be 7 bytes, got {len(uid)}")
    if len(signature) != 2 * _FIELD_BYTES:
        raise ConfigError(f"originality signature must be 56 bytes (r || s), got {len(signature)}")
    der = utils.encode_dss_signature(int.from_bytes(signature[:_FIELD_BYTES], "big"),
                                     int.from_bytes(signature[_FIELD_BYTES:], "big"))
    representative = uid.rjust(_FIELD_BYTES, b"\x00")
    candidates = ((_SIMULATOR_KEY, Signer.SIMULATOR), (_NXP_KEY, Signer.NXP)) if allow_simulator \
        else ((_NXP_KEY, Signer.NXP),)
    for key, signer in candidates:
        if _verifies(key, der, representative):
            return OriginalityResult(uid, signer)
    return OriginalityResult(uid, Signer.NONE)
