"""Resolver-side SUN verification (docs/reference/ntag424.md §10): PICC data, SDM session keys, SDMMAC, SDMENCFileData.

:class:`SunVerifier` finds the parameters in the URL and runs the steps; the mode's cryptography
and the PICC data's length come from a :class:`~.sunscheme.SunScheme` (AES by default;
:func:`scheme_for_url` tells AES from LRP by that length). It
expands every key it is given once, so in AES mode a tap costs two single-block AES calls and one
CMAC: decrypt PICC data, one block for the session MAC key, and the MAC under that one-time key.
:func:`verify_sun_url` keeps a small cache of verifiers keyed by scheme, keys and parameter names.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import NamedTuple

from tagsmith import ConfigError, VerificationError

from .channel import SecureMessaging
from .files import CTR_LEN, ENC_LEN_UNIT, MAC_LEN, UID_LEN
from .lrp_sun import LRP_SUN
from .sunscheme import AES_SUN, SdmFileKey, SunScheme

FileKey = bytes | Callable[[bytes], bytes]
PICC_TAGS = {0xC7: (True, True), 0x87: (True, False), 0x40: (False, True)}
_ENDS = "&#"
MAC_INPUT_FROM_PATH = "/"  # as template.MAC_INPUT_FROM_PATH: the MAC input starts at the URL's path


class SunResult(NamedTuple):
    """What a tap proved: UID and read counter (None when not mirrored), MAC verdict, decrypted file data.

    A NamedTuple rather than a frozen dataclass: it is built once per tap on the resolver's hot path.
    """

    uid: bytes | None
    read_counter: int | None
    cmac_valid: bool
    file_data: bytes | None


def _hex(value: str, name: str) -> bytes:
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise VerificationError(f"SUN parameter {name} is not hexadecimal") from None
    if len(data) * 2 != len(value):
        raise VerificationError(f"SUN parameter {name} is not hexadecimal")
    return data


def _key(value: bytes, name: str) -> bytes:
    if len(value) != 16:
        raise ConfigError(f"{name} must be a 16-byte AES key, got {len(value)} bytes")
    return value


def _mirrored(uid: bytes | None, ctr: int | None) -> bytes:
    """UID(7) || SDMReadCtr(3, LE), each only when mirrored: what the SDM session vectors carry (§10.3)."""
    return (uid or b"") + (b"" if ctr is None else ctr.to_bytes(3, "little"))


class SunVerifier:
    """Verify SUN URLs for one key set and one parameter naming; thread-safe and reusable."""

    def __init__(self, *, meta_key: bytes | None, file_key: FileKey, picc_param: str = "picc_data",
                 mac_param: str = "cmac", enc_param: str = "enc", uid_param: str = "uid",
                 ctr_param: str = "ctr", mac_input_from: str | None = None, scheme: SunScheme = AES_SUN) -> None:
        self._scheme = scheme
        self._picc_chars = scheme.picc_data_chars
        self._picc = None if meta_key is None else scheme.picc_decryptor(_key(meta_key, "meta key"))
        self._file_fn = file_key if callable(file_key) else None
        self._file = None if callable(file_key) else scheme.file_key(_key(file_key, "file key"))
        self._names = {"picc": picc_param, "mac": mac_param, "enc": enc_param, "uid": uid_param, "ctr": ctr_param}
        for role, name in self._names.items():
            if not name or not name.isascii() or any(c in name for c in "?&=#/ "):
                raise ConfigError(f"the {role} parameter's name {name!r} must be a non-empty query parameter name")
        self._marks = {p: ("?" + p + "=", "&" + p + "=") for p in {*self._names.values(), mac_input_from}
                       if p and p != MAC_INPUT_FROM_PATH}
        self._mac_input_from = mac_input_from

    def _find(self, url: str, query: int, param: str) -> int:
        """Index where ``param``'s value starts, or -1."""
        first, other = self._marks[param]
        if url.startswith(first, query):
            return query + len(first)
        at = url.find(other, query)
        return at + len(other) if at >= 0 else -1

    def _fixed(self, url: str, at: int, length: int, param: str) -> bytes:
        end = at + length
        if len(url) < end or (len(url) > end and url[end] not in _ENDS):
            raise VerificationError(f"SUN parameter {param} must be {length} hex characters")
        return _hex(url[at:end], param)

    def verify(self, url: str) -> SunResult:
        """Check one tapped URL; malformed input raises VerificationError, a wrong MAC gives cmac_valid False."""
        query = url.find("?")
        if query < 0:
            raise VerificationError("SUN URL has no query string")
        names = self._names
        mac_at = self._find(url, query, names["mac"])
        if mac_at < 0:
            raise VerificationError(f"SUN URL has no {names['mac']}= parameter")
        mac = self._fixed(url, mac_at, MAC_LEN, names["mac"])
        message = self._mac_input(url, query, mac_at, self._mac_input_from) if self._mac_input_from else b""
        picc_at = self._find(url, query, names["picc"])
        file = self._file
        if file is not None and self._picc is not None and picc_at >= 0:
            plain = self._picc(self._fixed(url, picc_at, self._picc_chars, names["picc"]))
            if plain[0] == 0xC7:  # UID and counter: the common case, their bytes as mirrored are plain[1:11]
                return self._result(url, query, file, plain[1:8], int.from_bytes(plain[8:11], "little"),
                                    hmac.compare_digest(file.mac(plain[1:11], message), mac))
        uid, ctr = self._identity(url, query, picc_at)
        file = self._file_key(uid)
        return self._result(url, query, file, uid, ctr, hmac.compare_digest(file.mac(_mirrored(uid, ctr), message), mac))

    def _result(self, url: str, query: int, file: SdmFileKey, uid: bytes | None, ctr: int | None,
                valid: bool) -> SunResult:
        file_data = self._file_data(url, query, file, uid, ctr) if valid and self._names["enc"] in url else None
        return SunResult(uid, ctr, valid, file_data)

    def _identity(self, url: str, query: int, picc_at: int) -> tuple[bytes | None, int | None]:
        if picc_at >= 0:
            return self._decrypt_picc(self._fixed(url, picc_at, self._picc_chars, self._names["picc"]))
        uid_at = self._find(url, query, self._names["uid"])
        ctr_at = self._find(url, query, self._names["ctr"])
        if uid_at < 0 and ctr_at < 0:
            raise VerificationError(f"SUN URL has neither {self._names['picc']}= nor {self._names['uid']}=/"
                                    f"{self._names['ctr']}= parameters")
        uid = self._fixed(url, uid_at, UID_LEN, self._names["uid"]) if uid_at >= 0 else None
        ctr = int.from_bytes(self._fixed(url, ctr_at, CTR_LEN, self._names["ctr"]), "big") if ctr_at >= 0 else None
        return uid, ctr

    def _decrypt_picc(self, picc: bytes) -> tuple[bytes | None, int | None]:
        if self._picc is None:
            raise ConfigError("encrypted PICC data needs the SDM meta-read key")
        return _picc_fields(self._picc(picc))

    def _file_key(self, uid: bytes | None) -> SdmFileKey:
        """The SDMFileRead key: the verifier's own, or a per-UID key's for this tap."""
        if self._file is not None:
            return self._file
        if uid is None:
            raise ConfigError("a per-UID file key needs the UID mirrored")
        assert self._file_fn is not None  # one of the two is set in __init__
        return self._scheme.one_tap_file_key(_key(self._file_fn(uid), "file key"))

    def _mac_input(self, url: str, query: int, mac_at: int, start_param: str) -> bytes:
        if start_param == MAC_INPUT_FROM_PATH:  # from the path's first "/": GTIN and serial under the MAC
            start = url.find("/", url.find("://") + 3)
            if start < 0 or start > query:
                raise VerificationError("SUN URL has no path before its query string")
        else:
            start = self._find(url, query, start_param)
        if start < 0 or start > mac_at:
            raise VerificationError(f"SUN URL has no {start_param}= parameter before the MAC")
        try:
            return url[start:mac_at].encode("ascii")
        except UnicodeEncodeError:
            raise VerificationError("SUN MAC input is not ASCII") from None

    def _file_data(self, url: str, query: int, file: SdmFileKey, uid: bytes | None, ctr: int | None) -> bytes | None:
        at = self._find(url, query, self._names["enc"])
        if at < 0:
            return None
        end = min((i for i in (url.find("&", at), url.find("#", at)) if i >= 0), default=len(url))
        if end == at or (end - at) % ENC_LEN_UNIT:
            raise VerificationError(f"SUN parameter {self._names['enc']} must be a multiple of {ENC_LEN_UNIT} hex characters")
        if uid is None or ctr is None:
            raise VerificationError("encrypted file data needs both UID and counter mirrored")
        return file.decrypt_file_data(uid, ctr, _hex(url[at:end], self._names["enc"]))


def _picc_fields(plain: bytes) -> tuple[bytes | None, int | None]:
    """(UID, read counter) from decrypted PICC data; its tag byte says which are mirrored."""
    has = PICC_TAGS.get(plain[0])
    if has is None:
        raise VerificationError(f"PICC data tag {plain[0]:02X} is invalid: wrong meta-read key or not a SUN")
    uid = plain[1:8] if has[0] else None
    at = 8 if has[0] else 1
    return uid, int.from_bytes(plain[at:at + 3], "little") if has[1] else None


def decrypt_picc_data(value: str, meta_key: bytes, scheme: SunScheme = AES_SUN) -> tuple[bytes | None, int | None]:
    """(UID, read counter) from a SUN's encrypted PICC data (32 hex characters in AES mode) and the SDM meta-read key.

    A resolver's first step: the meta-read key is shared by a key set, so the UID comes out before
    any per-chip key is known. A wrong key, or text that is not PICC data, is a VerificationError.
    """
    if len(value) != scheme.picc_data_chars:
        raise VerificationError(f"PICC data must be {scheme.picc_data_chars} hex characters")
    return _picc_fields(scheme.picc_decryptor(_key(meta_key, "meta key"))(_hex(value, "PICC data")))


#: every mode's SUN cryptography; a URL names its mode only by its PICC data's length
SUN_SCHEMES: dict[SecureMessaging, SunScheme] = {SecureMessaging.AES: AES_SUN, SecureMessaging.LRP: LRP_SUN}


def scheme_for_url(url: str, picc_param: str = "picc_data") -> SunScheme:
    """The mode whose PICC data is as long as the URL's ``picc_param`` value: 32 hex characters AES, 48 LRP.

    Without encrypted PICC data (plain UID and counter mirrors) the URL does not say, and any other
    length is malformed: both give AES, whose verifier reports a malformed value.
    """
    query = url.find("?")
    if query < 0:
        return AES_SUN
    if url.startswith("?" + picc_param + "=", query):
        start = query + len(picc_param) + 2
    else:
        at = url.find("&" + picc_param + "=", query)
        if at < 0:
            return AES_SUN
        start = at + len(picc_param) + 2
    end = min((i for i in (url.find("&", start), url.find("#", start)) if i >= 0), default=len(url))
    return next((scheme for scheme in SUN_SCHEMES.values() if scheme.picc_data_chars == end - start), AES_SUN)


_VERIFIERS: dict[tuple[object, ...], SunVerifier] = {}
_MAX_CACHED = 64


def verify_sun_url(url: str, *, meta_key: bytes | None, file_key: FileKey, picc_param: str = "picc_data",
                   mac_param: str = "cmac", enc_param: str = "enc", uid_param: str = "uid",
                   ctr_param: str = "ctr", mac_input_from: str | None = None, scheme: SunScheme = AES_SUN) -> SunResult:
    """Verify one SUN URL; ``mac_input_from=P`` means the MAC covers the text from P's value to the MAC value.

    ``mac_input_from="/"`` means it covers the text from the first ``/`` of the path (after the host).

    ``file_key`` may be a callable ``uid -> key`` for per-UID (diversified) file-read keys. Verifiers
    for recently used key sets are cached, so repeated calls cost what :meth:`SunVerifier.verify` costs.
    """
    spec = (scheme, meta_key, file_key, picc_param, mac_param, enc_param, uid_param, ctr_param, mac_input_from)
    verifier = _VERIFIERS.get(spec)
    if verifier is None:
        verifier = SunVerifier(meta_key=meta_key, file_key=file_key, picc_param=picc_param, mac_param=mac_param,
                               enc_param=enc_param, uid_param=uid_param, ctr_param=ctr_param,
                               mac_input_from=mac_input_from, scheme=scheme)
        if len(_VERIFIERS) >= _MAX_CACHED:
            _VERIFIERS.clear()
        _VERIFIERS[spec] = verifier
    return verifier.verify(url)
