"""Ed25519 (RFC 8032, pure) helpers for the line's manifest key: public PEM and verification.

Signing itself happens in the keystore backend that holds the private key; anybody holding the
public PEM (the resolver, the batches module, a test) verifies with :func:`verify_manifest`.
"""

from __future__ import annotations

import hashlib

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from tagsmith import ConfigError, TagsmithError, VerificationError


def public_pem_from_raw(raw: bytes) -> str:
    """PEM (SubjectPublicKeyInfo) of a raw 32-byte Ed25519 public key."""
    return eddsa.import_public_key(raw).export_key(format="PEM")


def public_key_fingerprint(pem: str) -> str:
    """SHA-256 of the public key's DER, truncated to 16 hex digits: how an operator names a key."""
    return hashlib.sha256(_load_ed25519(pem).export_key(format="DER")).hexdigest()[:16]


def verify_manifest(data: bytes, signature: bytes, public_key_pem: str) -> None:
    """Raise VerificationError unless ``signature`` is the manifest key's signature of ``data``."""
    try:
        eddsa.new(_load_ed25519(public_key_pem), "rfc8032").verify(data, signature)
    except ValueError:
        raise VerificationError("manifest signature does not verify with the line's manifest key") from None


def load_ec_key(pem: str | bytes, curve: str, *, error: type[TagsmithError] = ConfigError) -> ECC.EccKey:
    """An ECC key (public or private) from PEM on ``curve`` ("Ed25519", "Curve25519" for X25519).

    The one PEM loader of the manifest and export keys; ``error`` is what a bad key means to the
    caller (a ConfigError for a key given, a VerificationError for one embedded in a manifest).
    """
    try:
        key = ECC.import_key(pem)
    except (ValueError, IndexError, TypeError):
        raise error(f"not a PEM {curve} key") from None
    if key.curve != curve:
        def named(name: str) -> str:
            return f"{'an' if name[0] in 'AEIOU' else 'a'} {name} key"

        raise error(f"expected {named(curve)}, got {named(key.curve)}")
    return key


def _load_ed25519(pem: str) -> ECC.EccKey:
    return load_ec_key(pem, "Ed25519").public_key()
