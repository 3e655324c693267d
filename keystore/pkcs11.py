"""PKCS#11 backend: master keys are sensitive AES keys in a token, diversified inside it.

AN10922 pads a short input to two blocks, which a token's CMAC mechanism would not do, so the
diversification is built from the token's own AES: L = E(K, 0^16) with CKM_AES_ECB (L is one
block of ciphertext and reveals nothing of K), the subkeys K1/K2 from L, D' from
:func:`keystore.diversify.padded_diversification_block`, then CKM_AES_CBC over D'.

Key attributes (the documented choice): masters of slots the resolver never needs (app master,
proprietary write, spare) are CKA_EXTRACTABLE=false. The SDM meta-read and SDM file-read masters must
leave the token twice by design (the meta-read key is written into every chip; both go to the
resolver in ``keys export``), so they are CKA_SENSITIVE=true, CKA_EXTRACTABLE=true: their value
cannot be read as an attribute, only wrapped (CKM_AES_KEY_WRAP under a one-off session key), and
only this module's extraction path, guarded to those two roles, does it. The line's Ed25519
manifest key is a CKM_EC_EDWARDS key pair in the token (CKM_EDDSA, SoftHSM >= 2.6).

Key-set metadata (policy, versions, fingerprints) is not secret: it lives in the workspace's
keystore.json with the module path and token label; the PIN comes from TAGSMITH_PKCS11_PIN.
keystore.json is not authenticated here, so the audit log's anchor lives on the token: a private
data object (CKO_DATA, CKA_PRIVATE: read and changed only after login) updated before
keystore.json is written (see keystore.audit).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pkcs11
from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import PKCS11Error, UserAlreadyLoggedIn
from pkcs11.util.ec import encode_named_curve_parameters

from tagsmith import KeystoreError

from .access import ENV_PIN
from .audit import AuditLog
from .base import Keystore, Loc
from .file import FORMAT, FORMAT_VERSION, parse_header
from .signing import ED25519_OID, token_point

STATION_SEED_LABEL = b"tagsmith station X25519 secret\x00\x00"  # two AES blocks: the 32-byte seed


class Pkcs11Keystore(Keystore):
    """Masters in a PKCS#11 token; metadata in the workspace's keystore.json."""

    backend = "pkcs11"

    def __init__(self, path: Path, doc: dict, digest_: str | None, audit: AuditLog | None, pin: str | None) -> None:
        super().__init__(path, doc["meta"], digest_, audit)
        self.module: str = doc["pkcs11"]["module"]
        self.token_label: str = doc["pkcs11"]["token_label"]
        self._namespace: str = doc["pkcs11"]["namespace"]
        self._pin = pin
        self._session: Any = None
        self._extracted: dict[Loc, bytes] = {}
        self._handles: dict[Loc, Any] = {}  # object handles are valid while the session is open

    @classmethod
    def create(cls, path: Path, module: str, token_label: str, pin: str | None, *,
               audit: AuditLog | None = None) -> Pkcs11Keystore:
        """Bind a new keystore to a token (initialised beforehand) and make the manifest key in it."""
        doc = {"meta": {"key_sets": {}},
               "pkcs11": {"module": str(module), "token_label": token_label, "namespace": secrets.token_hex(4)}}
        store = cls(path, doc, None, audit, pin)
        store._generate_manifest_key()
        try:
            store._commit([("init", {"token_label": token_label})])
        except BaseException:
            with contextlib.suppress(Exception):
                for obj in store._objects(store._label("manifest")) + store._objects(store._label("audit-anchor")):
                    obj.destroy()
            raise
        return store

    @classmethod
    def open(cls, path: Path, raw: bytes, pin: str | None, *, audit: AuditLog | None = None) -> Pkcs11Keystore:
        """The keystore described by ``raw``.

        With a PIN, the token is logged into now, so a wrong PIN fails here and not at the first
        key a station needs (a command that only lists metadata would otherwise accept any PIN).
        Without one, the token is opened only when a key is used, and that says the PIN is needed.
        """
        from .storage import digest

        doc = parse_header(path, raw)
        try:
            cfg = doc["pkcs11"]
            if not all(isinstance(cfg[k], str) for k in ("module", "token_label", "namespace")) \
                    or not isinstance(doc["meta"]["key_sets"], dict):
                raise TypeError
        except (KeyError, TypeError):
            raise KeystoreError(f"keystore {path} is damaged (bad PKCS#11 section); nothing was loaded") from None
        store = cls(path, doc, digest(raw), audit, pin)
        if pin:
            store._sess()
        return store

    def close(self) -> None:
        self._extracted.clear()
        self._handles.clear()
        if self._session is not None:
            with contextlib.suppress(PKCS11Error):
                self._session.close()
            self._session = None

    # ---- token access -------------------------------------------------------------------
    def _sess(self) -> Any:
        if self._session is None:
            if not self._pin:
                raise KeystoreError(f"the PKCS#11 token's user PIN is needed: set {ENV_PIN}")
            try:
                lib = pkcs11.lib(self.module)
            except Exception as exc:  # the binding raises plain RuntimeError/OSError on a bad module
                raise KeystoreError(f"cannot load PKCS#11 module {self.module}: {exc}") from None
            with _token_errors(f"opening token {self.token_label!r}"):
                token = lib.get_token(token_label=self.token_label)
                try:
                    self._session = token.open(user_pin=self._pin, rw=True)
                except UserAlreadyLoggedIn:
                    # Login is per process, not per session: another keystore handle in this
                    # process already logged in, and a new session shares that login.
                    self._session = token.open(rw=True)
        return self._session

    def _label(self, *parts: object) -> str:
        return ":".join(["tagsmith", self._namespace, *map(str, parts)])

    def _loc_label(self, loc: Loc) -> str:
        return self._label(loc[0], loc[1], f"v{loc[2]}")

    def _objects(self, label: str) -> list[Any]:
        return list(self._sess().get_objects({Attribute.LABEL: label}))

    def _key(self, loc: Loc) -> Any:
        if loc not in self._handles:
            with _token_errors("finding a master key"):
                found = [o for o in self._objects(self._loc_label(loc)) if o.object_class == ObjectClass.SECRET_KEY]
            if len(found) != 1:
                raise KeystoreError(f"the token holds {len(found)} objects for master {self._loc_label(loc)} "
                                    "(expected 1)")
            self._handles[loc] = found[0]
        return self._handles[loc]

    # ---- backend primitives -------------------------------------------------------------
    def _encrypt_ecb(self, loc: Loc, block: bytes) -> bytes:
        with _token_errors("AES-ECB"):
            return bytes(self._key(loc).encrypt(block, mechanism=Mechanism.AES_ECB))

    def _encrypt_cbc(self, loc: Loc, data: bytes) -> bytes:
        with _token_errors("AES-CBC"):
            return bytes(self._key(loc).encrypt(data, mechanism=Mechanism.AES_CBC, mechanism_param=bytes(16)))

    def _extract_master(self, loc: Loc) -> bytes:
        if loc not in self._extracted:
            value = get_random_bytes(16)
            with _token_errors("wrapping a resolver key"):
                wrapper = self._sess().create_object({
                    Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.VALUE: value, Attribute.TOKEN: False, Attribute.WRAP: True,
                    Attribute.ENCRYPT: False, Attribute.DECRYPT: False, Attribute.UNWRAP: False})
                try:
                    wrapped = bytes(wrapper.wrap_key(self._key(loc), mechanism=Mechanism.AES_KEY_WRAP))
                finally:
                    wrapper.destroy()
            self._extracted[loc] = AES.new(value, AES.MODE_KW).unseal(wrapped)
        return self._extracted[loc]

    def _store_master(self, loc: Loc, key: bytes | None, extractable: bool) -> None:
        label = self._loc_label(loc)
        template = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: extractable, Attribute.ENCRYPT: True, Attribute.DECRYPT: False,
                    Attribute.WRAP: False, Attribute.UNWRAP: False, Attribute.SIGN: False,
                    Attribute.VERIFY: False, Attribute.DERIVE: False, Attribute.LABEL: label,
                    Attribute.ID: label.encode()}
        with _token_errors("storing a master key"):
            if self._objects(label):
                raise KeystoreError(f"the token already holds {label}, which the keystore metadata does not "
                                    "list (left by an interrupted operation?); inspect and remove it")
            if key is None:
                self._sess().generate_key(KeyType.AES, 128, store=True, capabilities=MechanismFlag.ENCRYPT,
                                          template=template)
            else:
                self._sess().create_object({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                            Attribute.KEY_TYPE: KeyType.AES, Attribute.VALUE: key, **template})

    def audit_anchor(self) -> dict | None:
        """The anchor kept on the token (None: none yet); needs the PIN.

        Tokens keep a data object's value read-only (SoftHSM does), so a new anchor is a new object and
        the old one is destroyed after it: should both survive a crash, the one with more records is it.
        """
        anchors = [anchor for _, anchor in self._anchor_objects()]
        return max(anchors, key=lambda a: a["records"]) if anchors else None

    def _save_anchor(self, anchor: dict) -> bool:
        old = self._anchor_objects()
        with _token_errors("storing the audit log's anchor"):
            self._sess().create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                                        Attribute.PRIVATE: True, Attribute.LABEL: self._label("audit-anchor"),
                                        Attribute.APPLICATION: "tagsmith", Attribute.VALUE: json.dumps(anchor).encode()})
            for obj, _ in old:
                obj.destroy()
        self._anchor = anchor
        return True

    def _anchor_objects(self) -> list[tuple[Any, dict]]:
        with _token_errors("reading the audit log's anchor"):
            found = [(o, bytes(o[Attribute.VALUE])) for o in self._sess().get_objects(
                {Attribute.LABEL: self._label("audit-anchor"), Attribute.CLASS: ObjectClass.DATA})]
        result = []
        for obj, value in found:
            try:
                anchor = json.loads(value)
                if not isinstance(anchor, dict) or not isinstance(anchor.get("records"), int):
                    raise ValueError
            except ValueError:
                raise KeystoreError(f"the token's audit anchor {self._label('audit-anchor')} is damaged") from None
            result.append((obj, anchor))
        return result

    def _discard_master(self, loc: Loc) -> None:
        self._extracted.pop(loc, None)
        self._handles.pop(loc, None)
        for obj in self._objects(self._loc_label(loc)):
            obj.destroy()

    def station_seed(self, create: bool) -> bytes | None:
        """The station's X25519 secret: AES-ECB of a fixed label under a non-extractable token key.

        Tokens rarely offer X25519 (SoftHSM 2.6 does not), so the token keeps the root of the
        secret and the X25519 private key exists in memory only while a bundle is unwrapped.
        """
        label = self._label("station")
        with _token_errors("finding the station key"):
            found = [o for o in self._objects(label) if o.object_class == ObjectClass.SECRET_KEY]
            if not found and create:
                found = [self._sess().generate_key(KeyType.AES, 256, store=True, capabilities=MechanismFlag.ENCRYPT,
                                                   template={Attribute.TOKEN: True, Attribute.PRIVATE: True,
                                                             Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                                             Attribute.LABEL: label})]
            if not found:
                return None
            return bytes(found[0].encrypt(STATION_SEED_LABEL, mechanism=Mechanism.AES_ECB))

    def _generate_manifest_key(self) -> None:
        label = self._label("manifest")
        with _token_errors("generating the Ed25519 manifest key (needs CKM_EC_EDWARDS_KEY_PAIR_GEN)"):
            self._sess().generate_keypair(
                KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True,
                public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID),
                                 Attribute.LABEL: label, Attribute.VERIFY: True},
                private_template={Attribute.LABEL: label, Attribute.SENSITIVE: True, Attribute.PRIVATE: True,
                                  Attribute.EXTRACTABLE: False, Attribute.SIGN: True})

    def _manifest_object(self, object_class: ObjectClass) -> Any:
        with _token_errors("finding the manifest key"):
            return self._sess().get_key(object_class=object_class, label=self._label("manifest"))

    def _sign(self, data: bytes) -> bytes:
        key = self._manifest_object(ObjectClass.PRIVATE_KEY)
        with _token_errors("signing with CKM_EDDSA"):
            return bytes(key.sign(data, mechanism=Mechanism.EDDSA))

    def _manifest_public_raw(self) -> bytes:
        point = token_point(bytes(self._manifest_object(ObjectClass.PUBLIC_KEY)[Attribute.EC_POINT]))
        if point is None:
            raise KeystoreError("the token's manifest public key is not a 32-byte Ed25519 point")
        return point

    def _serialise(self) -> bytes:
        doc = {"format": FORMAT, "version": FORMAT_VERSION, "backend": "pkcs11",
               "pkcs11": {"module": self.module, "token_label": self.token_label, "namespace": self._namespace},
               "meta": self._meta}
        return json.dumps(doc, indent=1).encode() + b"\n"


@contextlib.contextmanager
def _token_errors(what: str) -> Iterator[None]:
    """Turn the binding's exceptions into one-line KeystoreErrors."""
    try:
        yield
    except PKCS11Error as exc:
        detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        raise KeystoreError(f"PKCS#11 {what} failed ({detail})") from None
