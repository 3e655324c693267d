"""The line's public-key cryptography, in one place: Ed25519 (RFC 8032, pure) and X25519.

Ed25519 is the manifest key: the file keystore signs with a seed it holds, a PKCS#11 token signs
inside itself, and anybody holding the public PEM verifies (the resolver, a test, ``batches``,
which is handed :data:`MANIFEST_VERIFIER` and a signer instead of importing an algorithm). X25519
(with HKDF-SHA256) wraps a resolver export's one-off key for the resolver's public key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from Crypto.Hash import SHA256
from Crypto.Protocol.DH import import_x25519_private_key, import_x25519_public_key, key_agreement
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from tagsmith import ConfigError, TagsmithError, VerificationError

SIGNATURE_ALGORITHM = "Ed25519"  # as manifests' .sig files and exports name it
ED25519_OID = "1.3.101.112"  # RFC 8410 id-Ed25519: a PKCS#11 token's CKA_EC_PARAMS for the manifest key
_ED25519_POINT = 32


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


def sign_with_seed(seed: bytes, data: bytes) -> bytes:
    """Ed25519 signature of ``data`` by the key whose 32-byte private seed is ``seed`` (the file keystore's)."""
    return eddsa.new(ECC.construct(curve="Ed25519", seed=seed), "rfc8032").sign(data)


def public_raw_from_seed(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of the private ``seed``."""
    return ECC.construct(curve="Ed25519", seed=seed).public_key().export_key(format="raw")


def token_point(point: bytes) -> bytes | None:
    """The raw Ed25519 public key in a token's CKA_EC_POINT (a DER OCTET STRING in SoftHSM, bare in some
    tokens); None when it holds no 32-byte point."""
    if len(point) == _ED25519_POINT + 2 and point[:2] == b"\x04\x20":
        point = point[2:]
    return point if len(point) == _ED25519_POINT else None


def ed25519_signer(private_pem: str | bytes) -> tuple[Callable[[bytes], bytes], str]:
    """A signer and its public key PEM from an Ed25519 private key (tests, tools without a keystore)."""
    key = load_ec_key(private_pem, "Ed25519")
    if not key.has_private():
        raise ConfigError("the manifest signing key must be an Ed25519 private key")
    return eddsa.new(key, "rfc8032").sign, key.public_key().export_key(format="PEM")


def generate_ed25519() -> tuple[str, str]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    key = ECC.generate(curve="Ed25519")
    return key.export_key(format="PEM"), key.public_key().export_key(format="PEM")


class Ed25519Verifier:
    """What ``batches`` checks manifest signatures with (its ``Verifier`` protocol)."""

    def public_key(self, pem: str) -> bytes:
        """The raw public key of an Ed25519 PEM (keys are compared by it); VerificationError if it is none."""
        return load_ec_key(pem, "Ed25519", error=VerificationError).public_key().export_key(format="raw")

    def is_valid(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        try:
            eddsa.new(eddsa.import_public_key(public_key), "rfc8032").verify(data, signature)
        except ValueError:
            return False
        return True


MANIFEST_VERIFIER = Ed25519Verifier()


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


def load_x25519_key(pem: str) -> ECC.EccKey:
    """A resolver's X25519 key (public or private) from PEM; ConfigError otherwise."""
    return load_ec_key(pem, "Curve25519")


def x25519_wrapping_key(recipient: ECC.EccKey, info: bytes) -> tuple[bytes, bytes]:
    """(ephemeral public key, key-encryption key) of a new X25519 + HKDF-SHA256 agreement with ``recipient``."""
    eph = ECC.generate(curve="Curve25519")
    eph_raw, rcpt_raw = eph.public_key().export_key(format="raw"), recipient.export_key(format="raw")
    kek = key_agreement(eph_priv=eph, static_pub=recipient, kdf=lambda z: _kek(z, eph_raw, rcpt_raw, info))
    return eph_raw, kek


def x25519_unwrapping_key(private: ECC.EccKey, eph_raw: bytes, info: bytes) -> bytes:
    """The key-encryption key the holder of ``private`` agrees on with the sender's ephemeral key."""
    rcpt_raw = private.public_key().export_key(format="raw")
    return key_agreement(static_priv=private, eph_pub=import_x25519_public_key(eph_raw),
                         kdf=lambda z: _kek(z, eph_raw, rcpt_raw, info))


def x25519_from_seed(seed: bytes) -> ECC.EccKey:
    """The X25519 private key whose 32-byte secret is ``seed`` (a station's key, kept by its keystore)."""
    return import_x25519_private_key(seed)


def x25519_public_raw(raw: bytes) -> ECC.EccKey:
    """An X25519 public key from its raw 32 bytes (RFC 7748); ConfigError when it is none."""
    try:
        return import_x25519_public_key(raw)
    except ValueError:
        raise ConfigError("not a 32-byte X25519 public key") from None


def _kek(z: bytes, eph_raw: bytes, recipient_raw: bytes, info: bytes) -> bytes:
    return HKDF(z, 32, eph_raw + recipient_raw, SHA256, context=info)


def _load_ed25519(pem: str) -> ECC.EccKey:
    return load_ec_key(pem, "Ed25519").public_key()
