"""The file keystore (embedded default): one JSON file, key material under AES-256-GCM.

The key-encryption key comes from the passphrase through scrypt; the header (format version,
KDF and its parameters, nonce, the audit log's anchor) is GCM associated data, so any change to
it fails like a wrong passphrase. GCM cannot tell a wrong passphrase from a modified file, and the
error says so. Nothing is loaded unless the whole file authenticates.

The scrypt cost N is the keystore's own, chosen at ``keys init`` (default 2^17, r=8, p=1, about
128 MiB) and kept in the header, so a throwaway keystore (tests, the demo) may choose less. A
version-1 keystore (from before the choice, N=2^10 or 2^15) is read as it is and rewritten at
its next write as version 2, under a fresh salt and at least the default cost.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from pathlib import Path
from typing import Any

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt
from Crypto.Random import get_random_bytes

from tagsmith import ConfigError, KeystoreError

from .audit import AuditLog
from .base import Keystore, Loc
from .diversify import Diversifier
from .signing import public_raw_from_seed, sign_with_seed
from .storage import digest

FORMAT = "tagsmith-keystore"
FORMAT_VERSION = 2  # 2: the scrypt cost is the keystore's choice, and the header anchors the audit log
READ_VERSIONS = (1, 2)
DEFAULT_SCRYPT_N = 2**17  # 128 MiB with r=8 (current guidance for scrypt); README gives the time per unlock
MIN_SCRYPT_N, MAX_SCRYPT_N = 2**10, 2**20  # the floor is for throwaway keystores only (tests, the demo)
SCRYPT_R, SCRYPT_P = 8, 1
MIN_PASSPHRASE = 12
MIN_DISTINCT = 5


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase a guesser tries first: too short, or trivially repetitive (see README)."""
    reason = _weakness(passphrase)
    if reason:
        raise ConfigError(f"weak keystore passphrase: {reason} (a few unrelated words make a good one)")


def _weakness(text: str) -> str | None:
    if len(text) < MIN_PASSPHRASE:
        return f"only {len(text)} characters, at least {MIN_PASSPHRASE} are needed"
    if len(set(text.lower())) < MIN_DISTINCT:
        return f"fewer than {MIN_DISTINCT} different characters"
    for width in range(1, len(text) // 2 + 1):
        if text == (text[:width] * (len(text) // width + 1))[:len(text)]:
            return "the same few characters repeated"
    steps = {(ord(b) - ord(a)) for a, b in zip(text, text[1:], strict=False)}
    if steps <= {1, -9} or steps <= {-1, 9} or len(steps) == 1:
        return "a run of consecutive characters (like 1234... or abcd...)"
    return None


def canonical(obj: object) -> bytes:
    """The one byte form of a JSON value used as associated data and for signatures."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def parse_header(path: Path, raw: bytes) -> dict:
    """The keystore file's JSON object, checked for format and version (no secrets needed)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeystoreError(f"keystore {path} is damaged or truncated (not valid JSON); nothing was loaded, "
                            "restore it from a backup") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeystoreError(f"{path} is not a tagsmith keystore")
    if doc.get("version") not in READ_VERSIONS:
        raise KeystoreError(f"keystore {path} has format version {doc.get('version')!r}; this tagsmith reads "
                            f"versions {', '.join(map(str, READ_VERSIONS))} (upgrade tagsmith)")
    return doc


class FileKeystore(Keystore):
    """Masters and the manifest key in one passphrase-encrypted file."""

    backend = "file"

    def __init__(self, path: Path, header: dict, kek: bytes, plain: dict, digest_: str | None,
                 audit: AuditLog | None, passphrase: str | None = None) -> None:
        super().__init__(path, plain["meta"], digest_, audit)
        self._header = header
        self._anchor = header.get("audit")
        self._kek = kek
        self._upgrade_with = passphrase if header.get("version") != FORMAT_VERSION else None
        self._masters: dict[str, str] = plain["secrets"]["masters"]
        self._diversifiers: dict[str, Diversifier] = {}  # expanded once per master, like the masters themselves
        self._manifest_seed = bytes.fromhex(plain["secrets"]["manifest_seed"])
        station = plain["secrets"].get("station_seed")  # only once `keys station-key` has made it
        self._station = bytes.fromhex(station) if station is not None else None

    @classmethod
    def create(cls, path: Path, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N,
               audit: AuditLog | None = None) -> FileKeystore:
        """A new, empty keystore with a fresh manifest key, written to ``path``."""
        check_passphrase(passphrase)
        if scrypt_n & (scrypt_n - 1) or not MIN_SCRYPT_N <= scrypt_n <= MAX_SCRYPT_N:
            raise ConfigError(f"the scrypt cost N must be a power of two from 2^10 to 2^20, not {scrypt_n}")
        header: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "backend": "file", "kdf": _new_kdf(scrypt_n),
                  "cipher": {"name": "AES-256-GCM"}}
        plain = {"meta": {"key_sets": {}},
                 "secrets": {"masters": {}, "manifest_seed": get_random_bytes(32).hex()}}
        store = cls(path, header, _derive(passphrase, header["kdf"]), plain, None, audit)
        store._commit([("init", {"kdf": f"scrypt N={scrypt_n} r={SCRYPT_R} p={SCRYPT_P}"})])
        return store

    @classmethod
    def open(cls, path: Path, raw: bytes, passphrase: str, *, audit: AuditLog | None = None) -> FileKeystore:
        """Decrypt the keystore read from ``path`` as ``raw``; all or nothing."""
        doc = parse_header(path, raw)
        header = {k: v for k, v in doc.items() if k not in ("ciphertext", "tag")}
        kdf, nonce, body, tag = _fields(path, doc)
        kek = _derive(passphrase, kdf)
        try:
            cipher = AES.new(kek, AES.MODE_GCM, nonce=nonce)
            cipher.update(canonical(header))
            plaintext = cipher.decrypt_and_verify(body, tag)
        except ValueError:
            raise KeystoreError(f"cannot open keystore {path}: wrong passphrase, or the file was modified "
                                "(AES-GCM authentication failed; the two cannot be told apart)") from None
        try:
            plain = json.loads(plaintext)
            store = cls(path, header, kek, plain, digest(raw), audit, passphrase)
        except (ValueError, KeyError, TypeError):
            raise KeystoreError(f"keystore {path} is damaged (its contents do not parse)") from None
        return store

    # ---- backend primitives -------------------------------------------------------------
    def _master(self, loc: Loc) -> bytes:
        return bytes.fromhex(self._masters[_name(loc)])

    def _encrypt_ecb(self, loc: Loc, block: bytes) -> bytes:
        return AES.new(self._master(loc), AES.MODE_ECB).encrypt(block)

    def _encrypt_cbc(self, loc: Loc, data: bytes) -> bytes:
        return AES.new(self._master(loc), AES.MODE_CBC, iv=bytes(16)).encrypt(data)

    def _diversify(self, loc: Loc, m: bytes) -> bytes:
        name = _name(loc)
        diversifier = self._diversifiers.get(name)
        if diversifier is None:
            diversifier = self._diversifiers[name] = Diversifier(self._master(loc))
        return diversifier.derive(m)

    def _extract_master(self, loc: Loc) -> bytes:
        return self._master(loc)

    def _store_master(self, loc: Loc, key: bytes | None, extractable: bool) -> None:
        if _name(loc) in self._masters:
            raise KeystoreError(f"master {_name(loc)} already exists")
        self._masters[_name(loc)] = (key if key is not None else get_random_bytes(16)).hex()

    def _discard_master(self, loc: Loc) -> None:
        self._masters.pop(_name(loc), None)
        self._diversifiers.pop(_name(loc), None)

    def _sign(self, data: bytes) -> bytes:
        return sign_with_seed(self._manifest_seed, data)

    def _manifest_public_raw(self) -> bytes:
        return public_raw_from_seed(self._manifest_seed)

    def station_seed(self, create: bool) -> bytes | None:
        if self._station is None and create:
            self._station = get_random_bytes(32)
        return self._station

    def close(self) -> None:
        """Nothing to release: the file was read whole when the keystore was opened."""

    def _serialise(self) -> bytes:
        if self._upgrade_with is not None:  # a version-1 keystore: the current format and cost from now on
            kdf = _new_kdf(max(int(self._header["kdf"]["n"]), DEFAULT_SCRYPT_N))
            self._kek, self._upgrade_with = _derive(self._upgrade_with, kdf), None
            self._header = {**self._header, "version": FORMAT_VERSION, "kdf": kdf}
        header = {**self._header, "cipher": {"name": "AES-256-GCM", "nonce": _b64(get_random_bytes(12))}}
        if self._anchor is not None:
            header["audit"] = self._anchor
        secrets = {"masters": self._masters, "manifest_seed": self._manifest_seed.hex()}
        if self._station is not None:
            secrets["station_seed"] = self._station.hex()
        plain = {"meta": self._meta, "secrets": secrets}
        cipher = AES.new(self._kek, AES.MODE_GCM, nonce=base64.b64decode(header["cipher"]["nonce"]))
        cipher.update(canonical(header))
        body, tag = cipher.encrypt_and_digest(json.dumps(plain).encode())
        return json.dumps({**header, "ciphertext": _b64(body), "tag": _b64(tag)}, indent=1).encode() + b"\n"


def _new_kdf(n: int) -> dict:
    return {"name": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "dklen": 32, "salt": _b64(get_random_bytes(16))}


def _name(loc: Loc) -> str:
    return f"{loc[0]}/{loc[1]}/{loc[2]}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _fields(path: Path, doc: dict) -> tuple[dict, bytes, bytes, bytes]:
    """KDF parameters, nonce, ciphertext and tag, each checked before any work is done."""
    try:
        kdf, cipher = doc["kdf"], doc["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "AES-256-GCM" or doc.get("backend") != "file":
            raise ValueError
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        # A tampered header must not make us spend unbounded memory before GCM can reject it.
        if n & (n - 1) or not MIN_SCRYPT_N <= n <= MAX_SCRYPT_N or not 1 <= r <= 32 or not 1 <= p <= 16 \
                or n * r > 2**21 or kdf["dklen"] != 32:
            raise ValueError
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        body = base64.b64decode(doc["ciphertext"], validate=True)
        tag = base64.b64decode(doc["tag"], validate=True)
        if len(salt) < 16 or len(nonce) != 12 or len(tag) != 16:
            raise ValueError
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise KeystoreError(f"keystore {path} is damaged (bad or missing header fields); nothing was loaded") from None
    return {**kdf, "n": n, "r": r, "p": p, "salt": kdf["salt"]}, nonce, body, tag


def _derive(passphrase: str, kdf: dict) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return scrypt(secret, base64.b64decode(kdf["salt"]), 32, N=kdf["n"], r=kdf["r"], p=kdf["p"])
