"""Resolver-side SUN verification (docs/reference/ntag424.md §10): PICC data, SDM session keys, SDMMAC, SDMENCFileData.

:class:`SunVerifier` precomputes everything that depends only on the keys (expanded AES keys, the
CMAC subkey of the file-read key) so a tap costs two single-block AES calls and one CMAC: decrypt
PICC data, one block for the session MAC key (SV2 is a whole block, so its CMAC is E(K, SV2 xor K1)),
and the MAC itself under that one-time key. :func:`verify_sun_url` keeps a small cache of verifiers
keyed by keys and parameter names.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import NamedTuple, Union

from tagsmith import ConfigError, VerificationError

from . import crypto, fastaes

FileKey = Union[bytes, Callable[[bytes], bytes]]
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


def _key(value: bytes | None, name: str) -> bytes | None:
    if value is not None and len(value) != 16:
        raise ConfigError(f"{name} must be a 16-byte AES key, got {len(value)} bytes")
    return value


class SunVerifier:
    """Verify SUN URLs for one key set and one parameter naming; thread-safe and reusable."""

    def __init__(self, *, meta_key: bytes | None, file_key: FileKey, picc_param: str = "picc_data",
                 mac_param: str = "cmac", enc_param: str = "enc", uid_param: str = "uid",
                 ctr_param: str = "ctr", mac_input_from: str | None = None) -> None:
        self._meta = fastaes.block_key(meta_key) if _key(meta_key, "meta key") else None
        self._file_fn = file_key if callable(file_key) else None
        self._file = None if self._file_fn else fastaes.block_key(_key(file_key, "file key"))
        if self._file is not None:
            self._file_k1 = fastaes.double(int.from_bytes(self._file.encrypt(bytes(16)), "big"))
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
        mac = self._fixed(url, mac_at, 16, names["mac"])
        message = self._mac_input(url, query, mac_at) if self._mac_input_from else b""
        picc_at = self._find(url, query, names["picc"])
        if self._file is not None and self._meta is not None and picc_at >= 0:
            plain = self._meta.decrypt(self._fixed(url, picc_at, 32, names["picc"]))
            if plain[0] == 0xC7:  # UID and counter: the common case; SV2 is then exactly one block
                sv2 = int.from_bytes(crypto.SV_SDM_MAC + plain[1:11], "big")
                mac_key = self._file.encrypt((sv2 ^ self._file_k1).to_bytes(16, "big"))
                return self._result(url, query, plain[1:8], int.from_bytes(plain[8:11], "little"),
                                    hmac.compare_digest(fastaes.cmac_once(mac_key, message)[1::2], mac))
        uid, ctr = self._identity(url, query, picc_at)
        mac_key = self._session_key(uid, crypto.sdm_session_vectors(uid, ctr)[1])
        valid = hmac.compare_digest(fastaes.cmac_once(mac_key, message)[1::2], mac)
        return self._result(url, query, uid, ctr, valid)

    def _result(self, url: str, query: int, uid: bytes | None, ctr: int | None, valid: bool) -> SunResult:
        file_data = self._file_data(url, query, uid, ctr) if valid and self._names["enc"] in url else None
        return SunResult(uid, ctr, valid, file_data)

    def _identity(self, url: str, query: int, picc_at: int) -> tuple[bytes | None, int | None]:
        if picc_at >= 0:
            return self._decrypt_picc(self._fixed(url, picc_at, 32, self._names["picc"]))
        uid_at = self._find(url, query, self._names["uid"])
        ctr_at = self._find(url, query, self._names["ctr"])
        if uid_at < 0 and ctr_at < 0:
            raise VerificationError(f"SUN URL has neither {self._names['picc']}= nor {self._names['uid']}=/"
                                    f"{self._names['ctr']}= parameters")
        uid = self._fixed(url, uid_at, 14, self._names["uid"]) if uid_at >= 0 else None
        ctr = int.from_bytes(self._fixed(url, ctr_at, 6, self._names["ctr"]), "big") if ctr_at >= 0 else None
        return uid, ctr

    def _decrypt_picc(self, picc: bytes) -> tuple[bytes | None, int | None]:
        if self._meta is None:
            raise ConfigError("encrypted PICC data needs the SDM meta-read key")
        return _picc_fields(self._meta.decrypt(picc))

    def _session_key(self, uid: bytes | None, sv: bytes) -> bytes:
        """CMAC(K_SDMFileRead, SV): one block with K1 for a cached key, a full CMAC for a per-UID key."""
        if self._file is not None:
            return self._file.encrypt((int.from_bytes(sv, "big") ^ self._file_k1).to_bytes(16, "big"))
        if uid is None:
            raise ConfigError("a per-UID file key needs the UID mirrored")
        return fastaes.cmac_once(_key(self._file_fn(uid), "file key"), sv)

    def _mac_input(self, url: str, query: int, mac_at: int) -> bytes:
        if self._mac_input_from == MAC_INPUT_FROM_PATH:  # from the path's first "/": GTIN and serial under the MAC
            start = url.find("/", url.find("://") + 3)
            if start < 0 or start > query:
                raise VerificationError("SUN URL has no path before its query string")
        else:
            start = self._find(url, query, self._mac_input_from)
        if start < 0 or start > mac_at:
            raise VerificationError(f"SUN URL has no {self._mac_input_from}= parameter before the MAC")
        try:
            return url[start:mac_at].encode("ascii")
        except UnicodeEncodeError:
            raise VerificationError("SUN MAC input is not ASCII") from None

    def _file_data(self, url: str, query: int, uid: bytes | None, ctr: int | None) -> bytes | None:
        at = self._find(url, query, self._names["enc"])
        if at < 0:
            return None
        end = min((i for i in (url.find("&", at), url.find("#", at)) if i >= 0), default=len(url))
        if end == at or (end - at) % 32:
            raise VerificationError(f"SUN parameter {self._names['enc']} must be a multiple of 32 hex characters")
        if uid is None or ctr is None:
            raise VerificationError("encrypted file data needs both UID and counter mirrored")
        data = _hex(url[at:end], self._names["enc"])
        enc_key = crypto.AesKey(self._session_key(uid, crypto.sdm_session_vectors(uid, ctr)[0]))
        return enc_key.cbc_decrypt(data, enc_key.ecb_encrypt(ctr.to_bytes(3, "little") + bytes(13)))


def _picc_fields(plain: bytes) -> tuple[bytes | None, int | None]:
    """(UID, read counter) from decrypted PICC data; its tag byte says which are mirrored."""
    has = PICC_TAGS.get(plain[0])
    if has is None:
        raise VerificationError(f"PICC data tag {plain[0]:02X} is invalid: wrong meta-read key or not a SUN")
    uid = plain[1:8] if has[0] else None
    at = 8 if has[0] else 1
    return uid, int.from_bytes(plain[at:at + 3], "little") if has[1] else None


def decrypt_picc_data(value: str, meta_key: bytes) -> tuple[bytes | None, int | None]:
    """(UID, read counter) from a SUN's encrypted PICC data (32 hex characters) and the SDM meta-read key.

    A resolver's first step: the meta-read key is shared by a key set, so the UID comes out before
    any per-chip key is known. A wrong key, or text that is not PICC data, is a VerificationError.
    """
    if len(value) != 32:
        raise VerificationError("PICC data must be 32 hex characters")
    return _picc_fields(fastaes.block_key(_key(meta_key, "meta key")).decrypt(_hex(value, "PICC data")))


_VERIFIERS: dict[tuple, SunVerifier] = {}
_MAX_CACHED = 64


def verify_sun_url(url: str, *, meta_key: bytes | None, file_key: FileKey, picc_param: str = "picc_data",
                   mac_param: str = "cmac", enc_param: str = "enc", uid_param: str = "uid",
                   ctr_param: str = "ctr", mac_input_from: str | None = None) -> SunResult:
    """Verify one SUN URL; ``mac_input_from=P`` means the MAC covers the text from P's value to the MAC value.

    ``mac_input_from="/"`` means it covers the text from the first ``/`` of the path (after the host).

    ``file_key`` may be a callable ``uid -> key`` for per-UID (diversified) file-read keys. Verifiers
    for recently used key sets are cached, so repeated calls cost what :meth:`SunVerifier.verify` costs.
    """
    spec = (meta_key, file_key, picc_param, mac_param, enc_param, uid_param, ctr_param, mac_input_from)
    verifier = _VERIFIERS.get(spec)
    if verifier is None:
        verifier = SunVerifier(meta_key=meta_key, file_key=file_key, picc_param=picc_param, mac_param=mac_param,
                               enc_param=enc_param, uid_param=uid_param, ctr_param=ctr_param,
                               mac_input_from=mac_input_from)
        if len(_VERIFIERS) >= _MAX_CACHED:
            _VERIFIERS.clear()
        _VERIFIERS[spec] = verifier
    return verifier.verify(url)
