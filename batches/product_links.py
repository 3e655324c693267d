"""The optional parts of a product file that other systems read: where the line is (EPCIS) and the resolver's links.

``[epcis]`` says where the line's EPCIS events happen (docs/epcis.md): a GLN of the site (with
``company_prefix_length`` the ids are ``urn:epc:id:sgln:…``, without it GS1 Digital Links
``https://id.gs1.org/414/…``), read points per station as its GLN extension, or fixed URIs; and an
optional shelf life, which gives the ILMD expiry date. ``[[links]]`` are the GS1 link types the
brand's resolver answers for every serial of the product (docs/resolver.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tagsmith import ConfigError

from .gs1 import check_digit

_EPCIS_FIELDS = {"gln", "company_prefix_length", "read_point", "biz_location", "shelf_life_days"}
_LINK_FIELDS = {"linktype", "href", "title", "type", "hreflang", "context"}
_LINKTYPE = re.compile(r"[a-z][a-z0-9]*:[A-Za-z][A-Za-z0-9]*")
_SGLN_EXTENSION = re.compile(r"[A-Za-z0-9!'()*+,.:;=_-]{1,20}")  # AI (254) characters an EPC URI keeps as they are
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
SERIAL_PLACEHOLDER = "{serialnumber}"  # the Resolver CE template variable of the (21) qualifier


@dataclass(frozen=True)
class EpcisSite:
    """Where the product's line is: every field optional (docs/epcis.md gives the defaults)."""

    gln: str | None = None
    company_prefix_length: int | None = None
    read_point: str | None = None  # a fixed URI; else the GLN with the station's name as its extension
    biz_location: str | None = None  # a fixed URI; else the GLN itself
    shelf_life_days: int | None = None

    def location(self, extension: str | None) -> str | None:
        """The site's GLN (``extension`` None) or one of its sub-locations, as an EPCIS location id."""
        if self.gln is None:
            return None
        if extension is not None and not _SGLN_EXTENSION.fullmatch(extension):
            raise ConfigError(f"{extension!r} cannot be a GLN extension (AI 254: 1-20 of A-Z a-z 0-9 and !'()*+,.:;=_-): "
                              "set [epcis] read_point in the product file")
        if self.company_prefix_length is None:
            return f"https://id.gs1.org/414/{self.gln}" + (f"/254/{extension}" if extension else "")
        cut = self.company_prefix_length
        return f"urn:epc:id:sgln:{self.gln[:cut]}.{self.gln[cut:12]}.{extension or '0'}"


@dataclass(frozen=True)
class ResolverLink:
    """One link the resolver offers for a unit (GS1 Resolver CE data entry: ``links[]``)."""

    linktype: str
    href: str
    title: str
    type: str = "text/html"
    hreflang: tuple[str, ...] = ("en",)
    context: tuple[str, ...] = ()


def parse_epcis(table: Any) -> EpcisSite:
    """The ``[epcis]`` table (absent: every default)."""
    if table is None:
        return EpcisSite()
    if not isinstance(table, dict):
        raise ConfigError("[epcis]: must be a table")
    unknown = sorted(set(table) - _EPCIS_FIELDS)
    if unknown:
        raise ConfigError(f"unknown field 'epcis.{unknown[0]}' (allowed: {', '.join(sorted(_EPCIS_FIELDS))})")
    gln = table.get("gln")
    if gln is not None and not (isinstance(gln, str) and re.fullmatch(r"\d{13}", gln)
                                and check_digit(gln[:12]) == int(gln[12])):
        raise ConfigError("epcis.gln: must be a GLN, 13 digits with a valid check digit")
    prefix = _integer(table, "company_prefix_length", 6, 12)
    if prefix is not None and gln is None:
        raise ConfigError("epcis.company_prefix_length: goes with epcis.gln")
    for key in ("read_point", "biz_location"):
        value = table.get(key)
        if value is not None and not (isinstance(value, str) and _URI.fullmatch(value)):
            raise ConfigError(f"epcis.{key}: must be a URI (e.g. urn:epc:id:sgln:... or https://...)")
    return EpcisSite(gln, prefix, table.get("read_point"), table.get("biz_location"),
                     _integer(table, "shelf_life_days", 1, 36500))


def _integer(table: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
        raise ConfigError(f"epcis.{key}: must be an integer from {low} to {high}")
    return value


def parse_links(entries: Any) -> tuple[ResolverLink, ...]:
    """The ``[[links]]`` array (absent: none); the first link is the resolver's default."""
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("links: must be an array of tables ([[links]])")
    links = []
    for number, entry in enumerate(entries, start=1):
        where = f"links[{number}]"
        unknown = sorted(set(entry) - _LINK_FIELDS)
        if unknown:
            raise ConfigError(f"{where}: unknown field '{unknown[0]}' (allowed: {', '.join(sorted(_LINK_FIELDS))})")
        texts = {key: entry.get(key) for key in ("linktype", "href", "title", "type")}
        for key in ("linktype", "href", "title"):
            if not isinstance(texts[key], str) or not texts[key].strip():
                raise ConfigError(f"{where}.{key}: missing or not a non-empty string")
        if not _LINKTYPE.fullmatch(texts["linktype"]):
            raise ConfigError(f"{where}.linktype: {texts['linktype']!r} is not a link type such as gs1:pip")
        if not texts["href"].startswith("https://"):
            raise ConfigError(f"{where}.href: must start with https:// (it may hold {SERIAL_PLACEHOLDER})")
        lists = {key: entry.get(key, default) for key, default in (("hreflang", ["en"]), ("context", []))}
        for key, value in lists.items():
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"{where}.{key}: must be a list of strings")
        links.append(ResolverLink(texts["linktype"], texts["href"], texts["title"].strip(),
                                  texts["type"] if isinstance(texts["type"], str) else "text/html",
                                  tuple(lists["hreflang"]) or ("en",), tuple(lists["context"])))
    return tuple(links)
