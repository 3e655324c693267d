"""Station bundles: a product's whole key sets, wrapped for one station's key and signed by the line.

A station with a file keystore cannot share the engineer's token, so the engineer's PC wraps the
key sets the product needs (every slot's masters in every version, policy, system id) for the
station's X25519 key (keystore.station): a one-off AES-256-GCM key seals the payload, and is
wrapped with AES key wrap (RFC 3394) under a key agreed by X25519 with an ephemeral key and
HKDF-SHA256. The header (product, key sets, station name and fingerprint, signer fingerprint,
payload SHA-256) is the GCM associated data, and the whole file is signed with the line's
Ed25519 manifest key. A bundle is read only in its exact written form: any byte changed is
refused before anything is unwrapped, and nothing is imported unless every check passes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from tagsmith import ConfigError, KeystoreError, StateError, VerificationError
from tagsmith.atomicfile import atomic_write
from tagsmith.keyslots import SLOTS

from .audit import utc_now
from .base import Keystore
from .file import canonical
from .model import DIVERSIFICATION_SCHEME, KeyPolicy, check_key_set_id, check_system_id, check_version
from .signing import (
    SIGNATURE_ALGORITHM,
    public_key_fingerprint,
    verify_manifest,
    x25519_unwrapping_key,
    x25519_wrapping_key,
)
from .station import StationKey, station_key, station_private_key

BUNDLE_FORMAT, BUNDLE_VERSION = "tagsmith-station-bundle", 1
PAYLOAD_FORMAT = "tagsmith-station-keysets"
WRAPPING = "X25519-HKDF-SHA256+AES-KW+AES-256-GCM"
HKDF_INFO = b"tagsmith station bundle v1"


@dataclass(frozen=True)
class ImportedKeySet:
    """What one key set of a bundle did to the station's keystore."""

    key_set: str
    added: tuple[tuple[int, int], ...]  # (slot, version) stored now
    present: int  # versions the station already held, identical

    def to_dict(self) -> dict:
        return {"key_set": self.key_set, "added": [{"slot": s, "version": v} for s, v in self.added],
                "already_present": self.present}


@dataclass(frozen=True)
class BundleImport:
    """The outcome of ``import_bundle``: nothing was written when ``changed`` is false."""

    product: str
    station: str
    signer_fingerprint: str
    key_sets: tuple[ImportedKeySet, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return any(k.added for k in self.key_sets)

    def to_dict(self) -> dict:
        return {"product": self.product, "station": self.station, "signer_fingerprint": self.signer_fingerprint,
                "changed": self.changed, "key_sets": [k.to_dict() for k in self.key_sets]}


def export_bundle(store: Keystore, product: str, key_sets: Sequence[str], station: StationKey,
                  out: Path | None = None) -> tuple[bytes, dict]:
    """The signed bundle's bytes and its audit fields; recorded in the audit log before ``out`` is written."""
    if store.backend != "file":
        raise KeystoreError("this keystore is a PKCS#11 token: its app-master, proprietary-write and spare masters "
                            "never leave it, so it makes no station bundles; let the stations share the token "
                            "(docs/keystore.md)")
    payload = canonical({"format": PAYLOAD_FORMAT, "version": BUNDLE_VERSION,
                         "key_sets": [_key_set_entry(store, name) for name in key_sets]})
    cek = get_random_bytes(32)
    eph_raw, kek = x25519_wrapping_key(station.public_key, HKDF_INFO)
    signer_pem = store.manifest_public_key_pem()
    header: dict[str, Any] = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "product": product, "key_sets": list(key_sets),
        "created": utc_now(), "station": {"name": station.name, "fingerprint": station.fingerprint},
        "signer": {"algorithm": SIGNATURE_ALGORITHM, "public_key_fingerprint": public_key_fingerprint(signer_pem)},
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "wrapping": {"scheme": WRAPPING, "ephemeral_public": _b64(eph_raw),
                     "wrapped_key": _b64(AES.new(kek, AES.MODE_KW).seal(cek))},
        "cipher": {"name": "AES-256-GCM", "nonce": _b64(get_random_bytes(12))}}
    cipher = AES.new(cek, AES.MODE_GCM, nonce=base64.b64decode(header["cipher"]["nonce"]))
    cipher.update(canonical(header))
    body, tag = cipher.encrypt_and_digest(payload)
    doc = {**header, "ciphertext": _b64(body), "tag": _b64(tag)}
    doc["signature"] = _b64(store.sign_manifest(canonical(doc)))
    fields = {"product": product, "key_sets": ",".join(key_sets), "station": station.name,
              "station_fingerprint": station.fingerprint, "out": str(out) if out else None,
              "fingerprint": header["payload_sha256"][:16]}
    store.record_export("bundle-export", fields)
    blob = _serialise(doc)
    if out is not None:
        try:
            atomic_write(Path(out), blob)
        except OSError as exc:
            raise KeystoreError(f"cannot write {out}: {exc.strerror or exc}") from None
    return blob, fields


def import_bundle(store: Keystore, raw: bytes, line_public_pem: str) -> BundleImport:
    """Verify a bundle (line signature, this station's key, integrity) and import its key sets; audited.

    A key set or version the station holds already must be identical (then it is left as it is);
    a different one under the same name and version is refused, and then nothing is imported.
    """
    doc = _verified(raw, line_public_pem, station_key(store))
    entries = _unwrap(doc, station_private_key(store))
    plans = [_plan(store, entry) for entry in entries]
    result = BundleImport(doc["product"], doc["station"]["name"], doc["signer"]["public_key_fingerprint"],
                          tuple(ImportedKeySet(e["key_set"], tuple((s, v) for s, v, _ in adds), present)
                                for e, (adds, present) in zip(entries, plans, strict=True)))
    if not result.changed:
        return result
    records: list[tuple[str, dict]] = []
    with store.changing(records):
        for entry, (adds, _) in zip(entries, plans, strict=True):
            name = entry["key_set"]
            if not adds:
                continue
            store.add_key_set_record(name, entry["system_id"], entry["policy"], entry["created"])
            for slot, version, item in adds:
                if store.add_imported_version(name, slot, version, item["key"]) != item["fingerprint"]:
                    raise VerificationError(f"bundle key {name} slot {slot} v{version} does not match its fingerprint")
            records.append(("bundle-import", {
                "product": result.product, "key_set": name, "versions": " ".join(f"{s}:v{v}" for s, v, _ in adds),
                "station_fingerprint": doc["station"]["fingerprint"], "signer": result.signer_fingerprint,
                "fingerprint": doc["payload_sha256"][:16]}))
    return result


def _key_set_entry(store: Keystore, name: str) -> dict:
    info = store.info(name)
    return {"key_set": name, "system_id": info.system_id.hex().upper(), "diversification": DIVERSIFICATION_SCHEME,
            "policy": info.policy.to_dict(), "created": info.created,
            "current_versions": {str(s): v for s, v in info.current.items()},
            "keys": [{"slot": s, "version": v.version, "fingerprint": v.fingerprint,
                      "key": store.export_master(name, s, v.version).hex().upper()}
                     for s in SLOTS for v in info.versions[s]]}


def _verified(raw: bytes, line_public_pem: str, station: StationKey) -> dict:
    """The bundle's fields once its exact bytes, its line signature and its station are checked."""
    public_key_fingerprint(line_public_pem)  # a key that is no Ed25519 PEM is the caller's error, not a bad bundle
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT or _serialise(doc) != raw:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise VerificationError("not a tagsmith station bundle, or the file was damaged or modified") from None
    if doc.get("version") != BUNDLE_VERSION:
        raise KeystoreError(f"station bundle format version {doc.get('version')!r} is not supported")
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    try:
        verify_manifest(canonical(unsigned), _unb64(doc, "signature"), line_public_pem)
    except VerificationError:
        raise VerificationError("the bundle's signature does not verify with the line key given: it was modified, "
                                "or made by another line") from None
    try:
        named, fingerprint = doc["station"]["name"], doc["station"]["fingerprint"]
        str(doc["product"]), list(doc["key_sets"]), doc["payload_sha256"], doc["signer"]["public_key_fingerprint"]
    except (KeyError, TypeError):
        raise VerificationError("the bundle lacks its station, product or key set fields") from None
    if fingerprint != station.fingerprint:
        raise ConfigError(f"this bundle is for station {named!r} (key {fingerprint}), not for this station "
                          f"{station.name!r} (key {station.fingerprint}); nothing was imported")
    return doc


def _unwrap(doc: dict, private: Any) -> list[dict]:
    """The key sets of a verified bundle, decrypted and checked against its header."""
    try:
        wrapping, cipher_fields = doc["wrapping"], doc["cipher"]
        if wrapping["scheme"] != WRAPPING or cipher_fields["name"] != "AES-256-GCM":
            raise KeystoreError(f"bundle wrapping {wrapping['scheme']!r} is not supported")
        kek = x25519_unwrapping_key(private, _unb64(wrapping, "ephemeral_public"), HKDF_INFO)
        cek = AES.new(kek, AES.MODE_KW).unseal(_unb64(wrapping, "wrapped_key"))
        header = {k: v for k, v in doc.items() if k not in ("ciphertext", "tag", "signature")}
        cipher = AES.new(cek, AES.MODE_GCM, nonce=_unb64(cipher_fields, "nonce"))
        cipher.update(canonical(header))
        payload = cipher.decrypt_and_verify(_unb64(doc, "ciphertext"), _unb64(doc, "tag"))
    except (ValueError, KeyError, TypeError):
        raise KeystoreError("cannot unwrap the bundle with this station's key (made for an older station key?)") from None
    if hashlib.sha256(payload).hexdigest() != doc["payload_sha256"]:
        raise VerificationError("the bundle's payload does not match its payload_sha256")
    try:
        data = json.loads(payload)
        entries = [_entry(item) for item in data["key_sets"]]
    except (ValueError, KeyError, TypeError):
        raise KeystoreError("the bundle's payload does not parse") from None
    if data.get("format") != PAYLOAD_FORMAT or [e["key_set"] for e in entries] != doc["key_sets"]:
        raise VerificationError("the bundle's payload does not name the key sets its header names")
    return entries


def _entry(item: dict) -> dict:
    """One key set of a payload, every field checked (keys as bytes)."""
    KeyPolicy.from_json(item["policy"])
    check_system_id(bytes.fromhex(item["system_id"]))
    keys = []
    for key in item["keys"]:
        raw = bytes.fromhex(key["key"])
        if len(raw) != 16 or key["slot"] not in SLOTS or not isinstance(key["fingerprint"], str):
            raise ValueError
        keys.append({"slot": key["slot"], "version": check_version(key["version"]), "fingerprint": key["fingerprint"],
                     "key": raw})
    return {"key_set": check_key_set_id(item["key_set"]), "system_id": item["system_id"], "policy": item["policy"],
            "created": str(item["created"]), "keys": keys}


def _plan(store: Keystore, entry: dict) -> tuple[list[tuple[int, int, dict]], int]:
    """The (slot, version, key) a key set adds to the station, and how many it holds already; refuses a conflict."""
    name = entry["key_set"]
    info = next((k for k in store.key_sets() if k.key_set == name), None)
    if info is None:
        return [(k["slot"], k["version"], k) for k in entry["keys"]], 0
    if info.system_id != bytes.fromhex(entry["system_id"]) or info.policy != KeyPolicy.from_json(entry["policy"]):
        raise StateError(f"this station already holds a different key set {name} (another system id or slot policy); "
                         "nothing was imported")
    adds, present = [], 0
    for key in entry["keys"]:
        held = next((v.fingerprint for v in info.versions[key["slot"]] if v.version == key["version"]), None)
        if held is None:
            adds.append((key["slot"], key["version"], key))
        elif held != key["fingerprint"]:
            raise StateError(f"this station holds a different {name} slot {key['slot']} v{key['version']} "
                             f"(fingerprint {held}, the bundle's {key['fingerprint']}); nothing was imported")
        else:
            present += 1
    return adds, present


def _serialise(doc: dict) -> bytes:
    return json.dumps(doc, indent=1).encode() + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(obj: dict, name: str) -> bytes:
    """Base64 in its one canonical spelling: a changed padding bit is a changed file too."""
    try:
        value = base64.b64decode(obj[name], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise VerificationError(f"the bundle is damaged (bad {name})") from None
    if _b64(value) != obj[name]:
        raise VerificationError(f"the bundle is damaged (bad {name})")
    return value
