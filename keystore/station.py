"""A station's own key pair, to which the engineer's PC wraps the product keys it needs (keystore.bundle).

The X25519 secret lives where the station's masters live: inside the file keystore's encrypted
body, or rooted in its PKCS#11 token. The keystore records only the station's name; the public
key is always computed from the secret, so an edited keystore.json cannot redirect bundles.
``STATION.pub`` is a small JSON file: format, station name, the X25519 public key and its
fingerprint (SHA-256 of the key's DER, 16 hex digits, checked when the file is read).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import socket
from dataclasses import dataclass

from Crypto.PublicKey import ECC

from tagsmith import ConfigError, NotFoundError

from .base import Keystore
from .signing import x25519_from_seed, x25519_public_raw

STATION_FORMAT, STATION_VERSION = "tagsmith-station-key", 1
KEY_TYPE = "X25519"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class StationKey:
    """A station's public identity: its name and X25519 public key."""

    name: str
    public_raw: bytes

    @property
    def fingerprint(self) -> str:
        return x25519_fingerprint(self.public_raw)

    @property
    def public_key(self) -> ECC.EccKey:
        return x25519_public_raw(self.public_raw)

    def to_dict(self) -> dict:
        return {"format": STATION_FORMAT, "version": STATION_VERSION, "station": self.name, "key_type": KEY_TYPE,
                "public_key": base64.b64encode(self.public_raw).decode(), "fingerprint": self.fingerprint}

    def text(self) -> str:
        """The STATION.pub file's contents."""
        return json.dumps(self.to_dict(), indent=1) + "\n"


def x25519_fingerprint(public_raw: bytes) -> str:
    """How an operator names a station key: SHA-256 of its DER (SubjectPublicKeyInfo), 16 hex digits."""
    return hashlib.sha256(x25519_public_raw(public_raw).export_key(format="DER")).hexdigest()[:16]


def check_station_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"bad station name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def ensure_station_key(store: Keystore, name: str | None = None) -> tuple[StationKey, bool]:
    """This station's key (made on first use, audited) and whether it was made now.

    ``name`` defaults to the host name; once made, the key keeps its name and another is refused.
    """
    recorded = store.station_name()
    if recorded is not None:
        if name is not None and name != recorded:
            raise ConfigError(f"this station's key was made as {recorded!r}; its name does not change")
        return station_key(store), False
    chosen = check_station_name(name or socket.gethostname().split(".")[0])
    seed = store.station_seed(create=True)
    assert seed is not None
    key = StationKey(chosen, _public_of(seed))
    with store.changing([("station-key", {"station": chosen, "key_type": KEY_TYPE, "fingerprint": key.fingerprint})]):
        store.name_station(chosen)
    return key, True


def station_key(store: Keystore) -> StationKey:
    """This station's key; NotFoundError before ``keys station-key`` has made it."""
    recorded, seed = store.station_name(), store.station_seed(create=False)
    if recorded is None or seed is None:
        raise NotFoundError("this workspace has no station key yet (make it with: tagsmith keys station-key)")
    return StationKey(recorded, _public_of(seed))


def station_private_key(store: Keystore) -> ECC.EccKey:
    """The X25519 private key that unwraps bundles made for this station (held only while one is read)."""
    station_key(store)
    seed = store.station_seed(create=False)
    assert seed is not None
    return x25519_from_seed(seed)


def parse_station_pub(text: str) -> StationKey:
    """A STATION.pub file's key; a one-line ConfigError for anything else (its fingerprint is checked)."""
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != STATION_FORMAT:
            raise ValueError
    except ValueError:
        raise ConfigError("not a tagsmith station key file (make one with: tagsmith keys station-key --out FILE)") from None
    if doc.get("version") != STATION_VERSION or doc.get("key_type") != KEY_TYPE:
        raise ConfigError(f"station key file version {doc.get('version')!r} / key type {doc.get('key_type')!r} "
                          f"is not supported (expected {STATION_VERSION} / {KEY_TYPE})")
    try:
        raw = base64.b64decode(doc["public_key"], validate=True)
        key = StationKey(check_station_name(doc["station"]), raw)
        fingerprint = key.fingerprint
    except (KeyError, TypeError, binascii.Error):
        raise ConfigError("the station key file is damaged (bad station or public_key)") from None
    if doc.get("fingerprint") != fingerprint:
        raise ConfigError(f"the station key file's fingerprint {doc.get('fingerprint')!r} does not match its key "
                          f"({fingerprint}): the file was damaged or edited")
    return key


def _public_of(seed: bytes) -> bytes:
    public: bytes = x25519_from_seed(seed).public_key().export_key(format="raw")
    return public
