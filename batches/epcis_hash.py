"""The CBV 2.0 event hash: an EPCIS event's identifier computed from its content (CBV 2.0, section 8.9).

The same event exported twice gets the same ``eventID``, so an EPCIS repository drops the second
copy. The event's fields are written in the canonical order into one pre-hash string, without
separators, each value after ``=``: timestamps in UTC with milliseconds and ``Z``; CBV words
(bare, URN or web form) as their ``https://ref.gs1.org/cbv/`` web URIs; EPC URIs and GS1 Digital
Link URIs as constrained canonical Digital Links on ``id.gs1.org`` (query dropped, only the finest
identification kept); numbers without trailing zeros; list members sorted; ILMD and extension
fields named ``{namespace}local`` and sorted, after the standard fields. The SHA-256 of its UTF-8
bytes, in hex, goes into an RFC 6920 ``ni:`` URI with ``?ver=CBV2.0``. docs/epcis.md says more;
tests check the result against the published examples of the reference implementation.

Sensor data (``sensorElementList``) is not covered: tagsmith writes none, and such an event is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .gs1 import check_digit

HASH_VERSION = "CBV2.0"
CBV = "https://ref.gs1.org/cbv/"
_IGNORED = {"type", "eventID", "recordTime", "errorDeclaration", "@context", "comment", "rdfs:comment"}
_VALUES = ("eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID")
_EPC_LISTS = ("epcList", "inputEPCList", "childEPCs")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList")
_AFTER_INPUTS = (("outputEPCList", "epc"), ("outputQuantityList", "quantity"), ("action", "value"),
                 ("transformationID", "value"), ("bizStep", "vocab"), ("disposition", "vocab"))
_TYPED_LISTS = (("bizTransactionList", "bizTransaction", "BTT-"), ("sourceList", "source", "SDT-"),
                ("destinationList", "destination", "SDT-"))
_VOCAB_PREFIX = {"bizStep": "BizStep-", "disposition": "Disp-", "set": "Disp-", "unset": "Disp-"}
_URN_VOCAB = (("urn:epcglobal:cbv:bizstep:", "BizStep-"), ("urn:epcglobal:cbv:disp:", "Disp-"),
              ("urn:epcglobal:cbv:btt:", "BTT-"), ("urn:epcglobal:cbv:sdt:", "SDT-"), ("urn:epcglobal:cbv:er:", "ER-"))
# EPC URI -> Digital Link: the company prefix is 6-12 digits; its length decides where the reference starts
_EPC = re.compile(r"urn:epc:(?:id|class|idpat):(sgtin|sscc|sgln|pgln|lgtin|gdti):(\d{6,12})\.(\d*)(?:\.(.+))?")
_DL_KEYS = ("00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017", "8018")
_DL_PATH = re.compile(r"https?://[^/?#]+(?:/[^?#]*?)?/(" + "|".join(_DL_KEYS)
                      + r")/(\d{4}[^/?#]*)((?:/[^/?#]+/[^/?#]+)*)/?(?:[?#].*)?")


def event_id(event: Mapping[str, Any], namespaces: Mapping[str, str]) -> str:
    """The event's ``ni:///sha-256;…?ver=CBV2.0`` identifier; ``namespaces`` maps the document's prefixes to IRIs."""
    digest = hashlib.sha256(pre_hash(event, namespaces).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"


def pre_hash(event: Mapping[str, Any], namespaces: Mapping[str, str]) -> str:
    """The canonical pre-hash string of one event (without the hash)."""
    if "sensorElementList" in event:
        raise ValueError("events with sensor data are not covered by this event hash implementation")
    fields = {k: v for k, v in event.items() if k not in _IGNORED}
    out = [f"eventType={event['type']}"]
    take = fields.pop
    for name in _VALUES:
        if name in fields:
            value = take(name)
            out.append(f"{name}={canonical_time(value) if name == 'eventTime' else canonical_value(value)}")
    for name in _EPC_LISTS:
        out.append(_epcs(name, take(name, None)))
    for name in _QUANTITY_LISTS:
        out.append(_quantities(name, take(name, None)))
    for name, kind in _AFTER_INPUTS:
        value = take(name, None)
        if kind == "epc":
            out.append(_epcs(name, value))
        elif kind == "quantity":
            out.append(_quantities(name, value))
        elif value is not None:
            out.append(f"{name}={_vocab(name, value) if kind == 'vocab' else canonical_value(value)}")
    out.append(_persistent(take("persistentDisposition", None)))
    for name in ("readPoint", "bizLocation"):
        out.append(_location(name, take(name, None), namespaces))
    # the typed lists, ILMD and extensions are sorted together as whole strings, as the reference implementation
    # does: bizTransactionList, destinationList, ilmd, sourceList, then "{namespace}…"
    rest = [_typed_list(name, member, prefix, take(name, None)) for name, member, prefix in _TYPED_LISTS]
    rest += [_generic(_node(key, value, namespaces)) for key, value in fields.items()]
    out.append("".join(sorted(rest)))
    return "".join(out)


# ---------------------------------------------------------------- values
def canonical_time(value: str) -> str:
    """A timestamp in UTC at millisecond precision with ``Z`` (the fourth decimal rounds the third)."""
    moment = datetime.fromisoformat(value.strip()).astimezone(UTC)
    rounded = moment.replace(microsecond=0) + timedelta(milliseconds=round(moment.microsecond / 1000))
    return rounded.strftime("%Y-%m-%dT%H:%M:%S.") + f"{rounded.microsecond // 1000:03d}Z"


def canonical_value(value: Any) -> str:
    """A value as the pre-hash string writes it: trimmed, CBV URNs as web URIs, numbers bare, GS1 ids canonical."""
    text = str(value).strip()
    for urn, prefix in _URN_VOCAB:
        text = text.replace(urn, CBV + prefix)
    text = _bare_number(text)
    return canonical_id(text) or text


def _bare_number(text: str) -> str:
    try:
        number = float(text)
        return str(int(number)) if number == int(number) else str(number)
    except (ValueError, OverflowError):
        return text


def canonical_id(uri: str) -> str | None:
    """An EPC URI or GS1 Digital Link URI as its constrained canonical Digital Link; None for anything else."""
    epc = _EPC.fullmatch(uri)
    if epc:
        return _from_epc(*epc.groups())
    path = _DL_PATH.fullmatch(uri)
    if path is None:
        return None
    key, value, qualifiers = path.groups()
    if key == "01":
        value = value.zfill(14) if value.isdigit() and len(value) in (8, 12, 13) else value
    pairs = re.findall(r"/([^/]+)/([^/]+)", qualifiers)
    wanted = {"01": ("21", "10", "235"), "8006": ("21", "10"), "414": ("254",), "8010": ("8011",)}.get(key, ())
    kept = next(((ai, v) for ai in wanted for a, v in pairs if a == ai), None)  # the finest level only
    return f"https://id.gs1.org/{key}/{value}" + (f"/{kept[0]}/{kept[1]}" if kept else "")


def _from_epc(scheme: str, prefix: str, reference: str, rest: str | None) -> str | None:
    if scheme in ("sgtin", "lgtin"):
        if len(prefix) + len(reference) != 13 or not rest or rest == "*":
            return _gtin(prefix, reference) if scheme == "sgtin" and rest == "*" else None
        return f"{_gtin(prefix, reference)}/{'21' if scheme == 'sgtin' else '10'}/{_dl_escape(rest)}"
    if scheme == "sscc" and rest is None and len(prefix) + len(reference) == 17:
        raw = reference[0] + prefix + reference[1:]
        return f"https://id.gs1.org/00/{raw}{check_digit(raw)}"
    if scheme == "gdti" and len(prefix) + len(reference) == 12 and rest is not None:
        gdti = prefix + reference + str(check_digit(prefix + reference))
        return f"https://id.gs1.org/253/{gdti}" + ("" if rest == "*" else _dl_escape(rest))
    if scheme in ("sgln", "pgln") and len(prefix) + len(reference) == 12:
        gln = prefix + reference + str(check_digit(prefix + reference))
        if scheme == "pgln":
            return None if rest else f"https://id.gs1.org/417/{gln}"
        return f"https://id.gs1.org/414/{gln}" + ("" if rest in (None, "0") else f"/254/{_dl_escape(rest)}")
    return None


def _gtin(prefix: str, reference: str) -> str:
    raw = reference[0] + prefix + reference[1:]
    return f"https://id.gs1.org/01/{raw}{check_digit(raw)}"


def _dl_escape(value: str) -> str:
    """An EPC URI component as the Digital Link path writes it (GS1 DL URI Syntax, table 7-1)."""
    for char, code in (("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A"), ("+", "%2B"), (",", "%2C"), (":", "%3A")):
        value = value.replace(char, code)
    return value


def _vocab(field: str, value: Any) -> str:
    text = str(value).strip()
    if ":" not in text and field in _VOCAB_PREFIX:
        return CBV + _VOCAB_PREFIX[field] + text
    return canonical_value(text)


# ---------------------------------------------------------------- structures
def _epcs(name: str, values: list[str] | None) -> str:
    members = sorted(f"epc={canonical_value(v)}" for v in values or () if str(v).strip())
    return name + "".join(members) if members else ""


def _quantities(name: str, elements: list[Mapping[str, Any]] | None) -> str:
    members = sorted("quantityElement" + "".join(f"{k}={canonical_value(e[k])}" for k in ("epcClass", "quantity", "uom")
                                                 if k in e) for e in elements or ())
    return name + "".join(members) if members else ""


def _persistent(value: Mapping[str, list[str]] | None) -> str:
    if not value:
        return ""
    parts = [p for key in ("set", "unset") for p in sorted(f"{key}={_vocab(key, v)}" for v in value.get(key, ()))]
    return "persistentDisposition" + "".join(parts) if parts else ""


def _location(name: str, value: Mapping[str, Any] | None, namespaces: Mapping[str, str]) -> str:
    if not value:
        return ""
    extensions = sorted(_generic(_node(k, v, namespaces)) for k, v in value.items() if k != "id")
    return f"{name}id={canonical_value(value['id'])}" + "".join(extensions)


def _typed_list(name: str, member: str, prefix: str, elements: list[Mapping[str, Any]] | None) -> str:
    rendered = []
    for element in elements or ():
        kind = str(element.get("type", "")).strip()
        kind = (CBV + prefix + kind if ":" not in kind else canonical_value(kind)) if kind else ""
        rendered.append((f"type={kind}" if kind else "") + f"{member}={canonical_value(element[member])}")
    return name + "".join(sorted(rendered)) if rendered else ""


Node = tuple[str, str, list[Any]]


def _name(key: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, local = key.partition(":")
    return f"{{{namespaces[prefix]}}}{local}" if local and prefix in namespaces else key


def _node(key: str, value: Any, namespaces: Mapping[str, str]) -> Node:
    """An ILMD or extension field as (name, text, children); a list repeats its name once per member."""
    name = _name(key, namespaces)
    if isinstance(value, Mapping):
        return name, "", [_node(k, v, namespaces) for k, v in value.items()]
    if isinstance(value, list):
        raise ValueError(f"{key}: lists in extension fields are not covered by this event hash implementation")
    text = str(value)
    prefix, _, local = text.partition(":")
    return name, (namespaces[prefix] + local if local and prefix in namespaces else text), []


def _generic(node: Node) -> str:
    name, text, children = node
    inner = sorted(_generic(child) for child in children)
    return name + (f"={canonical_value(text)}" if text.strip() else "") + "".join(inner)
