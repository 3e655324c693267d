"""Originality signature check of Read_Sig (reference §11, AN12196 T30).

ECDSA on secp224r1 whose message representative is the raw 7-byte UID, not a hash of it. The
signature proves NXP issued that UID; an emulator can replay it, so it is one check among others.
The tagsmith simulator signs with its own test key, accepted only when asked for explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from Crypto.PublicKey import ECC

from tagsmith import ConfigError

CURVE = "P-224"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D
_GX = 0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21
_GY = 0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34
NXP_PUBLIC_KEY = bytes.fromhex(
    "048A9B380AF2EE1B98DC417FECC263F8449C7625CECE82D9B916C992DA"
    "209D68422B81EC20B65A66B5102A61596AF3379200599316A00A1410")
SIMULATOR_PUBLIC_KEY = bytes.fromhex(
    "041B4D3B35DC492FBD300C64E3B175EBED1D700F0F72B92B045F9B1C3D"
    "4FC38B56106EF9F61D06F07A134169CC12B9CE281415F3B00D033596")


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


def _point(public_key: bytes) -> ECC.EccPoint:
    if len(public_key) != 57 or public_key[0] != 0x04:
        raise ConfigError("public key must be a 57-byte uncompressed SEC1 point on secp224r1")
    return ECC.EccPoint(int.from_bytes(public_key[1:29], "big"), int.from_bytes(public_key[29:], "big"), curve=CURVE)


_GENERATOR = ECC.EccPoint(_GX, _GY, curve=CURVE)  # pycryptodome multiplies it with precomputed tables
_NXP_POINT, _SIMULATOR_POINT = _point(NXP_PUBLIC_KEY), _point(SIMULATOR_PUBLIC_KEY)


def _scalars(uid: bytes, signature: bytes) -> tuple[int, int, int] | None:
    """(r, u1, u2) of ECDSA verification with e = int(UID), or None when r or s is out of range."""
    if len(signature) != 56:
        raise ConfigError(f"originality signature must be 56 bytes (r || s), got {len(signature)}")
    r, s = int.from_bytes(signature[:28], "big"), int.from_bytes(signature[28:], "big")
    if not (0 < r < _N and 0 < s < _N):
        return None
    w = pow(s, -1, _N)
    return r, int.from_bytes(uid, "big") * w % _N, r * w % _N


def _matches(q: ECC.EccPoint, r: int, u1_g: ECC.EccPoint, u2: int) -> bool:
    """Whether u1*G + u2*Q has x = r (mod n) for the public key point Q."""
    point = u1_g + q * u2
    return not point.is_point_at_infinity() and int(point.x) % _N == r


def verify_originality(uid: bytes, signature: bytes, *, allow_simulator: bool = False) -> OriginalityResult:
    """Verify a Read_Sig signature for a 7-byte UID against NXP's key (and the simulator's, when allowed).

    u1*G is shared by both keys. When simulated chips are allowed (demo, tests, benchmarks) their
    key is tried first, so a simulated chip costs one verification as a real one does on the line;
    no signature verifies under both keys, so the order never changes the verdict.
    """
    if len(uid) != 7:
        raise ConfigError(f"UID must be 7 bytes, got {len(uid)}")
    scalars = _scalars(uid, signature)
    if scalars is None:
        return OriginalityResult(uid, Signer.NONE)
    r, u1, u2 = scalars
    u1_g = _GENERATOR * u1
    candidates = ((_SIMULATOR_POINT, Signer.SIMULATOR), (_NXP_POINT, Signer.NXP)) if allow_simulator \
        else ((_NXP_POINT, Signer.NXP),)
    for key, signer in candidates:
        if _matches(key, r, u1_g, u2):
            return OriginalityResult(uid, signer)
    return OriginalityResult(uid, Signer.NONE)
