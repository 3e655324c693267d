"""SUN URL templates: from ``https://id.example.com/01/{gtin}/21/{serial}?p={picc}&c={cmac}`` to NDEF bytes and SDM offsets.

Placeholders:

* static, filled at encode time (percent-encoded): ``{gtin}``, ``{serial}``, ``{lot}``;
* chip mirrors, written as runs of ASCII ``0`` of the length the chip fills at every tap:
  ``{picc}`` encrypted PICC data (its length is the SUN scheme's: 32 in AES mode), ``{uid}`` (14),
  ``{ctr}`` (6), ``{cmac}`` SUN MAC (16), ``{enc}`` / ``{enc:N}`` encrypted file data (N a multiple
  of 32, default 32);
* ``{mac_input}``, zero-width: the SUN MAC covers the URL text from here up to the MAC value.
  Without it the MAC input starts at ``{enc}`` when there is one, else it is empty. A verifier
  finds the start at a query parameter's value, or at the path: ``https://host{mac_input}/01/...``
  puts GTIN, serial and lot under the MAC, so a tap moved to another unit's path fails it.

Offsets count from byte 0 of the NDEF file, NLEN and record header included (docs/reference/ntag424.md §9.5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict
from urllib.parse import quote

import ndef

from tagsmith import ConfigError

from .errors import ResponseError
from .files import (
    CTR_LEN,
    ENC_LEN_UNIT,
    KEY_FREE,
    KEY_NEVER,
    MAC_LEN,
    NDEF_FILE_SIZE,
    UID_LEN,
    AccessRights,
    FileSettings,
    SdmOptions,
    SdmSettings,
)
from .sunscheme import AES_SUN, SunScheme

STATIC = ("gtin", "serial", "lot")
MIRRORS = ("picc", "uid", "ctr", "enc", "cmac")
MAC_INPUT = "mac_input"
#: ``mac_input_from`` value meaning "the MAC input starts at the URL's path" (no parameter has this name)
MAC_INPUT_FROM_PATH = "/"
PLACEHOLDER_CHAR = "0"
_TOKEN = re.compile(r"\{([A-Za-z_]+)(?::(\d+))?\}")
#: The longest URI identifier code's text in the NFC Forum URI RTD ("ftp://anonymous:anonymous@"):
#: which code a URI record uses depends on no more of the URL than this.
URI_PREFIX_MAX = 26
_MAX_LAYOUTS = 64


class VerifierParams(TypedDict, total=False):
    """The query-parameter names a verifier needs (keyword arguments of ``SunVerifier``), each only if mirrored."""

    picc_param: str
    mac_param: str
    enc_param: str
    uid_param: str
    ctr_param: str
    mac_input_from: str


@dataclass(frozen=True)
class Mirror:
    """One chip mirror in a rendered template: what, where in the file, how long, which query parameter."""

    kind: str
    offset: int
    length: int
    param: str | None


def mirror_lengths(scheme: SunScheme) -> dict[str, int]:
    """Characters each chip mirror fills (``enc``: its default and unit), PICC data's from the mode's scheme (§9.3)."""
    return {"picc": scheme.picc_data_chars, "uid": UID_LEN, "ctr": CTR_LEN, "enc": ENC_LEN_UNIT, "cmac": MAC_LEN}


def _tokens(template: str) -> list[tuple[str, str, int | None]]:
    """Split into ("text", literal, None) and ("slot", name, length) tokens."""
    out: list[tuple[str, str, int | None]] = []
    pos = 0
    for match in _TOKEN.finditer(template):
        out.append(("text", template[pos:match.start()], None))
        out.append(("slot", match.group(1), int(match.group(2)) if match.group(2) else None))
        pos = match.end()
    out.append(("text", template[pos:], None))
    for kind, text, _ in out:
        if kind == "text" and ("{" in text or "}" in text):
            raise ConfigError(f"template has a stray brace near {text!r}: placeholders look like {{serial}}")
    return [t for t in out if t[0] == "slot" or t[1]]


def _check_slots(slots: list[tuple[str, int | None]]) -> None:
    names = [name for name, _ in slots]
    known = set(STATIC) | set(MIRRORS) | {MAC_INPUT}
    for name, length in slots:
        if name not in known:
            raise ConfigError(f"unknown placeholder {{{name}}}; known: {', '.join(sorted(known))}")
        if length is not None and name != "enc":
            raise ConfigError(f"placeholder {{{name}}} takes no length; only {{enc:N}} does")
        if name == "enc" and length is not None and (length < ENC_LEN_UNIT or length % ENC_LEN_UNIT):
            raise ConfigError(f"{{enc:{length}}}: the length must be a positive multiple of {ENC_LEN_UNIT}")
    for name in (*MIRRORS, MAC_INPUT):
        if names.count(name) > 1:
            raise ConfigError(f"placeholder {{{name}}} appears more than once; the chip mirrors it once")
    _check_combinations(names)


def _check_combinations(names: list[str]) -> None:
    has = set(names).__contains__
    if has("picc") and (has("uid") or has("ctr")):
        raise ConfigError("{picc} already carries UID and counter encrypted; drop {uid}/{ctr} or use them without {picc}")
    if has("enc") and not (has("picc") or (has("uid") and has("ctr"))):
        raise ConfigError("{enc} needs the UID and counter mirrored: add {picc} (or both {uid} and {ctr})")
    if (has("enc") or has(MAC_INPUT)) and not has("cmac"):
        raise ConfigError("{enc} and {mac_input} need {cmac}: the chip only encrypts and MACs together")
    if has("cmac") and not (has("picc") or has("uid") or has("ctr")):
        raise ConfigError("{cmac} needs {picc}, {uid} or {ctr} so the verifier can derive the tap's MAC key")
    order = {name: i for i, name in enumerate(names)}
    if has("enc") and order["enc"] > order["cmac"]:
        raise ConfigError("{enc} must come before {cmac}")
    if has(MAC_INPUT) and order[MAC_INPUT] > order["cmac"]:
        raise ConfigError("{mac_input} must come before {cmac}: the MAC input ends where the MAC starts")
    if has(MAC_INPUT) and has("enc") and order[MAC_INPUT] > order["enc"]:
        raise ConfigError("{mac_input} must be at or before {enc}: the MAC input has to cover the encrypted data")


def _param_at(url: str, index: int) -> str | None:
    """Name of the query parameter whose value starts at ``index`` (``...?name=`` or ``...&name=``)."""
    if index == 0 or url[index - 1] != "=":
        return None
    sep = max(url.rfind("?", 0, index), url.rfind("&", 0, index))
    name = url[sep + 1:index - 1] if sep >= 0 else ""
    return name if name and "=" not in name and "/" not in name else None


@dataclass(frozen=True)
class RenderedTemplate:
    """One unit's NDEF file: URL with placeholders, exact file bytes, mirrors and the MAC input start."""

    url: str
    ndef_file: bytes
    mirrors: tuple[Mirror, ...]
    mac_input_offset: int | None
    mac_input_param: str | None
    # file settings already built, shared by every render of the same layout (equal mirrors and MAC input)
    _settings: dict[tuple[int, ...], FileSettings] = field(default_factory=dict, compare=False, repr=False)

    def mirror(self, kind: str) -> Mirror | None:
        """The mirror of that kind (picc, uid, ctr, enc, cmac), or None."""
        return next((m for m in self.mirrors if m.kind == kind), None)

    def sdm_layout(self) -> dict[str, Any]:
        """Where the mirrors and the MAC input sit, as a manifest's ``sdm`` field records it (docs/manifest.md)."""
        return {"url": self.url, "mac_input_offset": self.mac_input_offset, "mac_input_param": self.mac_input_param,
                "verifier_params": self.verifier_params(),
                "mirrors": [{"kind": m.kind, "offset": m.offset, "length": m.length, "param": m.param}
                            for m in self.mirrors]}

    def matches_file(self, file_bytes: bytes) -> bool:
        """True when a chip's NDEF file equals this one everywhere except inside the chip's mirrors."""
        got = file_bytes[:len(self.ndef_file)]
        if len(got) != len(self.ndef_file):
            return False
        masked = bytearray(got)
        for m in self.mirrors:
            masked[m.offset:m.offset + m.length] = self.ndef_file[m.offset:m.offset + m.length]
        return bytes(masked) == self.ndef_file

    def url_in_file(self, file_bytes: bytes) -> str:
        """The URL a phone reads from a chip file that :meth:`matches_file`: this URL, mirrors as the chip filled them.

        Such a file equals this NDEF byte for byte outside the mirrors, so its record decodes to this
        URL with the mirror bytes in place; no NDEF parse is needed (:func:`url_from_ndef_file` does one).
        """
        start = len(self.ndef_file) - len(self.url)  # file offset of URL index 0: the URL ends the file's record
        url = bytearray(self.url.encode("ascii"))
        for m in self.mirrors:
            url[m.offset - start:m.offset - start + m.length] = file_bytes[m.offset:m.offset + m.length]
        try:
            return url.decode("ascii")
        except UnicodeDecodeError:
            raise ResponseError("the chip mirrored non-ASCII bytes into the URL") from None

    def sdm_settings(self, *, meta_read: int = 2, file_read: int = 1, ctr_ret: int = KEY_NEVER) -> SdmSettings | None:
        """SDM settings for these mirrors and key numbers, or None for a static template."""
        picc, uid, ctr, enc, mac = (self.mirror(k) for k in ("picc", "uid", "ctr", "enc", "cmac"))
        if not (picc or uid or ctr):
            return None
        if picc and not 0 <= meta_read <= 4:
            raise ConfigError(f"{{picc}} needs a meta_read key 0..4, got {meta_read:X}")
        options = SdmOptions.ASCII
        if picc or uid:
            options |= SdmOptions.UID
        if picc or ctr:
            options |= SdmOptions.READ_CTR
        if enc:
            options |= SdmOptions.ENC_FILE_DATA
        return SdmSettings(
            options=options, meta_read=meta_read if picc else KEY_FREE,
            file_read=file_read if mac else KEY_NEVER, ctr_ret=ctr_ret,
            uid_offset=uid.offset if uid else None, read_ctr_offset=ctr.offset if ctr else None,
            picc_data_offset=picc.offset if picc else None,
            mac_input_offset=self.mac_input_offset if mac else None,
            enc_offset=enc.offset if enc else None, enc_length=enc.length if enc else None,
            mac_offset=mac.offset if mac else None)

    def file_settings(self, *, meta_read: int = 2, file_read: int = 1, ctr_ret: int = KEY_NEVER,
                      write: int = 0, read_write: int = 0) -> FileSettings:
        """NDEF file settings: read free, write and read-write bound to keys, change key 0, SDM for the mirrors."""
        if write in (KEY_FREE,) or read_write == KEY_FREE:
            raise ConfigError("a SUN tag's NDEF write and read-write rights must be keys, never E (free)")
        key = (meta_read, file_read, ctr_ret, write, read_write)
        settings = self._settings.get(key)
        if settings is None:
            settings = FileSettings(
                access=AccessRights(read=KEY_FREE, write=write, read_write=read_write, change=0),
                sdm=self.sdm_settings(meta_read=meta_read, file_read=file_read, ctr_ret=ctr_ret),
                file_size=NDEF_FILE_SIZE)
            picc = self.mirror("picc")
            if picc is None:
                settings.validate()
            else:
                settings.validate(picc_data_len=picc.length)
            self._settings[key] = settings
        return settings

    def verifier_params(self) -> VerifierParams:
        """Keyword arguments for :func:`~tagsmith.encoders.ntag424.sun.verify_sun_url` naming each query parameter."""
        names: dict[str, Literal["picc_param", "mac_param", "enc_param", "uid_param", "ctr_param"]] = {
            "picc": "picc_param", "cmac": "mac_param", "enc": "enc_param", "uid": "uid_param", "ctr": "ctr_param"}
        params = VerifierParams()
        for mirror in self.mirrors:
            if mirror.param is None:
                raise ConfigError(f"{{{mirror.kind}}} is not a whole query parameter value; a verifier cannot find it")
            params[names[mirror.kind]] = mirror.param
        mac = self.mirror("cmac")
        if self.mac_input_offset is not None and mac is not None and self.mac_input_offset != mac.offset:
            if self.mac_input_param is not None:
                params["mac_input_from"] = self.mac_input_param
            elif self.mac_input_offset - (len(self.ndef_file) - len(self.url)) == _path_start(self.url):
                params["mac_input_from"] = MAC_INPUT_FROM_PATH
            else:
                raise ConfigError("{mac_input} starts neither a query parameter value nor the URL's path; "
                                  "a verifier cannot locate it")
        return params


def _path_start(url: str) -> int:
    """Index of the first ``/`` of the URL's path (after ``scheme://host``), or -1."""
    return url.find("/", url.find("://") + 3)


@dataclass(frozen=True)
class SunTemplate:
    """A checked template; :meth:`render` fills the static values of one unit."""

    text: str
    tokens: tuple[tuple[str, str, int | None], ...]
    scheme: SunScheme = AES_SUN
    # renders by layout, for units whose static values differ only in text (see :meth:`render`)
    _layouts: dict[tuple[object, ...], RenderedTemplate] = field(default_factory=dict, compare=False, repr=False)

    @property
    def slot_names(self) -> tuple[str, ...]:
        """Every placeholder in the template, in order."""
        return tuple(n for k, n, _ in self.tokens if k == "slot")

    @property
    def static_names(self) -> tuple[str, ...]:
        """Static placeholders this template needs at encode time."""
        return tuple(dict.fromkeys(n for k, n, _ in self.tokens if k == "slot" and n in STATIC))

    def render(self, *, enc_data: bytes = b"", **values: str | None) -> RenderedTemplate:
        """Fill static values, build the NDEF file and locate every mirror.

        A station renders one unit per tag, and the units of a batch differ only in their static
        text. Two URLs of one length, with the same mirror positions and the same first
        :data:`URI_PREFIX_MAX` characters, have the same NDEF header, URI code and mirrors, so a
        render of that layout is reused with the new URL's text in place of the old.
        """
        url, slots = self._fill(values)
        if not url.isascii():
            raise ConfigError("the URL template must be ASCII; non-ASCII static values are percent-encoded")
        layout = (len(url), url[:URI_PREFIX_MAX], tuple(slots))
        known = None if enc_data else self._layouts.get(layout)
        if known is not None:
            cut = len(known.ndef_file) - len(url) + URI_PREFIX_MAX  # file offset of URL index URI_PREFIX_MAX
            return replace(known, url=url, ndef_file=known.ndef_file[:cut] + url[URI_PREFIX_MAX:].encode("ascii"))
        rendered = self._render(url, slots, enc_data)
        if not enc_data and len(self._layouts) < _MAX_LAYOUTS:
            self._layouts[layout] = rendered
        return rendered

    def _render(self, url: str, slots: list[tuple[str, int, int]], enc_data: bytes) -> RenderedTemplate:
        record = ndef.UriRecord(url)
        message = b"".join(ndef.message_encoder([record]))
        ndef_file = len(message).to_bytes(2, "big") + message
        if len(ndef_file) > NDEF_FILE_SIZE:
            raise ConfigError(f"the template needs {len(ndef_file)} bytes but the NDEF file holds {NDEF_FILE_SIZE}")
        base = len(ndef_file) - len(url)  # file offset of URL index 0 (the prefix code replaced its start)
        mirrors, mac_at = [], None
        for name, index, length in slots:
            if name == MAC_INPUT:
                mac_at = index
                continue
            end = index + length
            param = _param_at(url, index) if end == len(url) or url[end] in "&#" else None
            mirrors.append(Mirror(name, base + index, length, param))
        ndef_file = self._place_enc_data(ndef_file, mirrors, enc_data)
        return self._finish(url, ndef_file, tuple(mirrors), mac_at, base)

    def _fill(self, values: dict[str, str | None]) -> tuple[str, list[tuple[str, int, int]]]:
        url, slots, lengths = "", [], mirror_lengths(self.scheme)
        for kind, name, length in self.tokens:
            if kind == "text":
                url += name
            elif name in STATIC:
                if values.get(name) in (None, ""):
                    raise ConfigError(f"the template needs a value for {{{name}}}")
                url += quote(str(values[name]), safe="")
            else:
                size = 0 if name == MAC_INPUT else (length or lengths[name])
                slots.append((name, len(url), size))
                url += PLACEHOLDER_CHAR * size
        return url, slots

    @staticmethod
    def _place_enc_data(ndef_file: bytes, mirrors: list[Mirror], enc_data: bytes) -> bytes:
        enc = next((m for m in mirrors if m.kind == "enc"), None)
        if not enc_data:
            return ndef_file
        if enc is None or len(enc_data) > enc.length // 2:
            limit = enc.length // 2 if enc else 0
            raise ConfigError(f"enc_data of {len(enc_data)} bytes does not fit: the {{enc}} mirror holds {limit}")
        return ndef_file[:enc.offset] + enc_data + ndef_file[enc.offset + len(enc_data):]

    def _finish(self, url: str, ndef_file: bytes, mirrors: tuple[Mirror, ...], mac_at: int | None,
                base: int) -> RenderedTemplate:
        mac = next((m for m in mirrors if m.kind == "cmac"), None)
        enc = next((m for m in mirrors if m.kind == "enc"), None)
        start, param = None, None
        if mac is not None:
            start = base + mac_at if mac_at is not None else (enc.offset if enc else mac.offset)
            param = _param_at(url, start - base) if start != mac.offset else None
        return RenderedTemplate(url=url, ndef_file=ndef_file, mirrors=mirrors,
                                mac_input_offset=start, mac_input_param=param)


def compile_template(template: str, scheme: SunScheme = AES_SUN) -> SunTemplate:
    """Check a SUN URL template's placeholders and their combination; refuse with a ConfigError naming the problem.

    ``scheme`` is the SUN scheme of the chips' secure-messaging mode: it sets the ``{picc}`` mirror's length.
    """
    if not template or not template.isascii() or any(c.isspace() for c in template):
        raise ConfigError("the URL template must be non-empty ASCII without spaces")
    tokens = tuple(_tokens(template))
    _check_slots([(name, length) for kind, name, length in tokens if kind == "slot"])
    return SunTemplate(text=template, tokens=tokens, scheme=scheme)


def url_from_ndef_file(data: bytes) -> str:
    """The URL of the first URI record of a Type 4 NDEF file (NLEN big-endian, then the message)."""
    if len(data) < 2:
        raise ResponseError("NDEF file is shorter than its 2-byte NLEN")
    nlen = int.from_bytes(data[:2], "big")
    if nlen == 0 or nlen > len(data) - 2:
        raise ResponseError(f"NDEF file NLEN {nlen} does not fit the {len(data)} bytes read")
    try:
        records = list(ndef.message_decoder(data[2:2 + nlen]))
    except ndef.DecodeError as exc:
        raise ResponseError(f"NDEF message does not decode: {exc}") from None
    uri = next((r for r in records if isinstance(r, ndef.UriRecord)), None)
    if uri is None:
        raise ResponseError("NDEF message holds no URI record")
    iri: str = uri.iri  # ndef ships no type hints
    return iri
