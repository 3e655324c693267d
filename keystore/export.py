"""Key export for the cloud resolver: what it needs to verify SUN taps, wrapped for its public key.

The payload holds the SDM meta-read and SDM file-read masters of every version (never the app
master or the other slots) and the policy (slot roles, versions, system id, diversification
scheme). It is sealed with AES-256-GCM under a one-off key that is wrapped for the resolver:
RSA-OAEP (SHA-256, at least 3072 bits) or X25519 + HKDF-SHA256, chosen by the PEM's key type.
The envelope carries ``payload_sha256`` (the resolver checks it after decrypting) and is signed
with the line's Ed25519 manifest key, so the resolver can tell a genuine export from one made by
anybody holding its public key.

Resolver side: ``unwrap_export(path, private_key_pem, signer_public_pem=manifest_pem)`` returns a
:class:`ResolverKeySet`; ``meta_read_key(v)`` decrypts PICC data, then ``file_read_key(uid, v)``
gives the chip's SUN MAC key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC, RSA
from Crypto.Random import get_random_bytes

from tagsmith import ConfigError, KeystoreError, VerificationError
from tagsmith.atomicfile import atomic_write

from .audit import utc_now
from .base import Keystore
from .diversify import diversification_input, diversify_aes128
from .file import canonical
from .model import DIVERSIFICATION_SCHEME, KeyPolicy, KeySetInfo
from .signing import (
    SIGNATURE_ALGORITHM,
    load_x25519_key,
    public_key_fingerprint,
    verify_manifest,
    x25519_unwrapping_key,
    x25519_wrapping_key,
)

EXPORT_FORMAT, EXPORT_VERSION = "tagsmith-resolver-export", 1
PAYLOAD_FORMAT = "tagsmith-resolver-keyset"
WRAP_RSA = "RSA-OAEP-SHA256+AES-256-GCM"
WRAP_X25519 = "X25519-HKDF-SHA256+AES-256-GCM"
MIN_RSA_BITS = 3072
HKDF_INFO = b"tagsmith resolver export v1"


@dataclass(frozen=True)
class ResolverKeySet:
    """An unwrapped export: the resolver's keys for one key set, and how to use them."""

    key_set: str
    system_id: bytes
    diversification: str
    policy: KeyPolicy
    current: Mapping[int, int]
    payload_sha256: str
    meta_read_keys: Mapping[int, bytes] = field(repr=False)
    file_read_masters: Mapping[int, bytes] = field(repr=False)

    def meta_read_key(self, version: int | None = None) -> bytes:
        """The shared SDM meta-read key (decrypts PICC data)."""
        return self.meta_read_keys[version or self.current[self.policy.meta_read_slot]]

    def file_read_key(self, uid: bytes, version: int | None = None) -> bytes:
        """The chip's SDM file-read key: AN10922 with M = UID || slot || system id."""
        slot = self.policy.file_read_slot
        master = self.file_read_masters[version or self.current[slot]]
        if not self.policy.slots[slot].diversified:
            return master
        return diversify_aes128(master, diversification_input(uid, slot, self.system_id))


def export_for_resolver(store: Keystore, key_set: str, recipient_public_pem: str, out: Path | None = None) -> bytes:
    """The resolver's keys (meta-read and file-read masters, all versions), wrapped and signed.

    Written atomically to ``out`` (mode 0600) when given; the bytes are returned either way,
    and only once the export is recorded in the audit log.
    """
    info = store.info(key_set)
    masters = {slot: {v.version: store.export_master(key_set, slot, v.version) for v in info.versions[slot]}
               for slot in info.policy.resolver_slots()}
    blob, fields = build_export(info, masters, recipient_public_pem, store.sign_manifest, store.manifest_public_key_pem())
    store.record_export("export", dict(key_set=key_set, out=str(out) if out else None, **fields))
    if out is not None:
        try:
            atomic_write(Path(out), blob)
        except OSError as exc:
            raise KeystoreError(f"cannot write {out}: {exc.strerror or exc}") from None
    return blob


def build_export(info: KeySetInfo, masters: Mapping[int, Mapping[int, bytes]], recipient_pem: str,
                 sign: Callable[[bytes], bytes], signer_pem: str) -> tuple[bytes, dict]:
    """The signed, wrapped export file's bytes, and the audit fields describing it."""
    scheme, recipient = load_recipient(recipient_pem)
    payload = _payload(info, masters)
    payload_sha256 = hashlib.sha256(payload).hexdigest()
    cek = get_random_bytes(32)
    header: dict[str, Any] = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "key_set": info.key_set, "created": utc_now(),
              "payload_sha256": payload_sha256,
              "wrapping": {"scheme": scheme, "recipient_fingerprint": _recipient_fp(recipient),
                           **_wrap_cek(recipient, cek)},
              "cipher": {"name": "AES-256-GCM", "nonce": _b64(get_random_bytes(12))},
              "signer": {"algorithm": SIGNATURE_ALGORITHM, "public_key_fingerprint": public_key_fingerprint(signer_pem)}}
    cipher = AES.new(cek, AES.MODE_GCM, nonce=base64.b64decode(header["cipher"]["nonce"]))
    cipher.update(canonical(header))
    body, tag = cipher.encrypt_and_digest(payload)
    doc = {**header, "ciphertext": _b64(body), "tag": _b64(tag)}
    doc["signature"] = _b64(sign(canonical(doc)))
    fields = {"slots": ",".join(map(str, info.policy.resolver_slots())), "wrapping": scheme,
              "recipient": header["wrapping"]["recipient_fingerprint"], "fingerprint": payload_sha256[:16]}
    return json.dumps(doc, indent=1).encode() + b"\n", fields


def unwrap_export(source: Path | str | bytes, private_key_pem: str, *,
                  signer_public_pem: str | None = None) -> ResolverKeySet:
    """Open an export with the resolver's private key; check the signature when a signer PEM is given."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    doc = _parse(raw)
    if signer_public_pem is not None:
        unsigned = {k: v for k, v in doc.items() if k != "signature"}
        verify_manifest(canonical(unsigned), _unb64(doc, "signature"), signer_public_pem)
    scheme, private = _load_private(private_key_pem)
    wrapping = doc["wrapping"]
    if wrapping.get("scheme") != scheme:
        raise KeystoreError(f"this export is wrapped with {wrapping.get('scheme')}, not for a key of type {scheme}")
    if wrapping.get("recipient_fingerprint") != _recipient_fp(private.public_key()):
        raise KeystoreError(f"this export is wrapped for resolver key {wrapping.get('recipient_fingerprint')}, "
                            f"not for the key given ({_recipient_fp(private.public_key())})")
    cek = _unwrap_cek(private, wrapping)
    header = {k: v for k, v in doc.items() if k not in ("ciphertext", "tag", "signature")}
    try:
        cipher = AES.new(cek, AES.MODE_GCM, nonce=_unb64(doc["cipher"], "nonce"))
        cipher.update(canonical(header))
        payload = cipher.decrypt_and_verify(_unb64(doc, "ciphertext"), _unb64(doc, "tag"))
    except ValueError:
        raise KeystoreError("cannot open the export: wrong private key or the file was modified") from None
    if hashlib.sha256(payload).hexdigest() != doc["payload_sha256"]:
        raise VerificationError("export payload does not match its payload_sha256 fingerprint")
    return _parse_payload(payload, doc["payload_sha256"])


def load_recipient(pem: str) -> tuple[str, RSA.RsaKey | ECC.EccKey]:
    """The wrapping scheme and key for a resolver PEM: RSA (>= 3072 bits) or X25519, public only."""
    scheme, key = _load_any(pem)
    if key.has_private():
        raise ConfigError("--for takes the resolver's PUBLIC key; this PEM holds a private key")
    return scheme, key


def _load_private(pem: str) -> tuple[str, RSA.RsaKey | ECC.EccKey]:
    scheme, key = _load_any(pem)
    if not key.has_private():
        raise ConfigError("unwrapping needs the resolver's private key")
    return scheme, key


def _load_any(pem: str) -> tuple[str, RSA.RsaKey | ECC.EccKey]:
    try:
        rsa = RSA.import_key(pem)
    except (ValueError, IndexError, TypeError):
        pass
    else:
        if rsa.size_in_bits() < MIN_RSA_BITS:
            raise ConfigError(f"the resolver's RSA key has {rsa.size_in_bits()} bits; at least {MIN_RSA_BITS} needed")
        return WRAP_RSA, rsa
    try:
        return WRAP_X25519, load_x25519_key(pem)
    except ConfigError as exc:
        raise ConfigError(f"the resolver key must be an RSA or X25519 PEM key ({exc})") from None


def _recipient_fp(public: RSA.RsaKey | ECC.EccKey) -> str:
    return hashlib.sha256(public.export_key(format="DER")).hexdigest()[:16]


def _wrap_cek(recipient: RSA.RsaKey | ECC.EccKey, cek: bytes) -> dict:
    if isinstance(recipient, RSA.RsaKey):
        return {"wrapped_key": _b64(PKCS1_OAEP.new(recipient, hashAlgo=SHA256).encrypt(cek))}
    eph_raw, kek = x25519_wrapping_key(recipient, HKDF_INFO)
    return {"ephemeral_public": _b64(eph_raw), "wrapped_key": _b64(AES.new(kek, AES.MODE_KW).seal(cek))}


def _unwrap_cek(private: RSA.RsaKey | ECC.EccKey, wrapping: dict) -> bytes:
    try:
        wrapped = _unb64(wrapping, "wrapped_key")
        if isinstance(private, RSA.RsaKey):
            return PKCS1_OAEP.new(private, hashAlgo=SHA256).decrypt(wrapped)
        kek = x25519_unwrapping_key(private, _unb64(wrapping, "ephemeral_public"), HKDF_INFO)
        return AES.new(kek, AES.MODE_KW).unseal(wrapped)
    except ValueError:
        raise KeystoreError("cannot unwrap the export's key: wrong private key or the file was modified") from None


def _payload(info: KeySetInfo, masters: Mapping[int, Mapping[int, bytes]]) -> bytes:
    keys = [{"slot": slot, "role": info.policy.slots[slot].role.value, "version": v.version,
             "diversified": info.policy.slots[slot].diversified, "fingerprint": v.fingerprint,
             "key": masters[slot][v.version].hex().upper()}
            for slot in info.policy.resolver_slots() for v in info.versions[slot]]
    return canonical({"format": PAYLOAD_FORMAT, "version": EXPORT_VERSION, "key_set": info.key_set,
                      "system_id": info.system_id.hex().upper(), "diversification": DIVERSIFICATION_SCHEME,
                      "policy": info.policy.to_dict(),
                      "current_versions": {str(s): v for s, v in info.current.items()}, "keys": keys})


def _parse(raw: bytes) -> dict:
    try:
        doc = json.loads(raw)
        if doc.get("format") != EXPORT_FORMAT:
            raise ValueError
        if doc.get("version") != EXPORT_VERSION:
            raise KeystoreError(f"export format version {doc.get('version')!r} is not supported")
        if not isinstance(doc["wrapping"], dict) or not isinstance(doc["cipher"], dict):
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeystoreError("not a tagsmith resolver export, or the file is damaged") from None
    return doc


def _parse_payload(payload: bytes, sha: str) -> ResolverKeySet:
    try:
        data = json.loads(payload)
        policy = KeyPolicy.from_json(data["policy"])
        by_slot: dict[int, dict[int, bytes]] = {policy.meta_read_slot: {}, policy.file_read_slot: {}}
        for item in data["keys"]:
            by_slot[item["slot"]][item["version"]] = bytes.fromhex(item["key"])
    except (ValueError, KeyError, TypeError):
        raise KeystoreError("the export's payload does not parse (or holds keys a resolver must not get)") from None
    return ResolverKeySet(
        key_set=data["key_set"], system_id=bytes.fromhex(data["system_id"]),
        diversification=data["diversification"], policy=policy,
        current={int(s): v for s, v in data["current_versions"].items()}, payload_sha256=sha,
        meta_read_keys=by_slot[policy.meta_read_slot], file_read_masters=by_slot[policy.file_read_slot])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(obj: dict, name: str) -> bytes:
    try:
        return base64.b64decode(obj[name], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise KeystoreError(f"the export is damaged (bad {name})") from None
