"""Product files: the TOML a line engineer keeps under version control, validated into a Product.

Every problem is one ConfigError line that names the file and the field. The SHA-256 of the
file's bytes identifies the exact version; each batch records it (see the store's create_batch).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith import ConfigError
from tagsmith.keyslots import MAX_SYSTEM_ID, SLOTS, slot_role
from tagsmith.limits import SMALL_FILE_BYTES, loads_toml, read_limited

from .gs1 import check_stem, normalise_gtin
from .product_links import EpcisSite, ResolverLink, parse_epcis, parse_links
from .serials import SerialFormat

PLACEHOLDERS = frozenset({"gtin", "serial", "lot", "picc", "cmac", "enc", "uid", "ctr", "mac_input"})
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_FIELD = re.compile(r"\{([^{}]*)\}")
_TOP = {"id", "name", "model", "gtin", "url", "serial", "keys", "label", "epcis", "links", "secure_messaging"}
#: The chip's secure messaging: AES (the factory mode) or LRP, which the station switches each chip to for
#: good before personalising it (NT4H2421Gx §10.5.1; docs/reference/lrp.md §7)
SECURE_MESSAGING = ("aes", "lrp")
_SECTIONS = {
    "url": {"resolver", "template", "lot_in_url"},
    "serial": {"format", "prefix", "digits", "length"},
    "keys": {"key_set", "system_id", "slots"},
    "label": {"layout"},
}


@dataclass(frozen=True)
class KeySlot:
    """One application key of the chip: its number, what it is for (a ``keyslots.SlotRole`` value), the version to write."""

    slot: int
    role: str
    version: int


@dataclass(frozen=True)
class KeyPolicy:
    """Which key set the keystore diversifies from, and the role and version of each slot."""

    key_set: str
    system_id: bytes
    slots: tuple[KeySlot, ...]

    def versions(self) -> dict[int, int]:
        return {s.slot: s.version for s in self.slots}


@dataclass(frozen=True)
class Product:
    """A validated product file (``source`` holds its exact bytes, ``sha256`` their hash)."""

    id: str
    name: str
    model: str
    gtin: str  # always 14 digits
    resolver: str  # https://host[/stem] of the Digital Link URLs
    url_template: str  # the chip's SUN URL template
    lot_in_url: bool
    serial: SerialFormat
    keys: KeyPolicy
    label_layout: str
    sha256: str
    source: bytes
    epcis: EpcisSite = EpcisSite()  # optional [epcis]: where the line is, for EPCIS events
    links: tuple[ResolverLink, ...] = ()  # optional [[links]]: what the brand's resolver offers per serial
    secure_messaging: str = "aes"  # "aes" or "lrp": the mode its chips run (LRP is irreversible on the chip)

    @property
    def lrp(self) -> bool:
        return self.secure_messaging == "lrp"

    @property
    def text(self) -> str:
        return self.source.decode("utf-8")


def load_product(path: str | Path) -> Product:
    """Read and validate a product TOML file."""
    path = Path(path)
    return parse_product(read_limited(path, SMALL_FILE_BYTES, "product file"), path.name)


def parse_product(data: bytes, origin: str = "product") -> Product:
    """Validate product TOML bytes; ``origin`` names the file in error messages."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    doc = loads_toml(text, origin)
    try:
        return _build(doc, data)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _build(doc: dict[str, Any], data: bytes) -> Product:
    _known("", doc, _TOP)
    url, serial, keys, label = (_section(doc, name) for name in ("url", "serial", "keys", "label"))
    product_id = _text(doc, "id")
    if not _ID.fullmatch(product_id):
        raise ConfigError(f"id: {product_id!r} must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    gtin = _field("gtin", lambda: normalise_gtin(_text(doc, "gtin")))
    resolver = _field("url.resolver", lambda: check_stem(_text(url, "resolver", "url.resolver")))
    lot_in_url = url.get("lot_in_url", False)
    if not isinstance(lot_in_url, bool):
        raise ConfigError("url.lot_in_url: must be true or false")
    template = _template(_text(url, "template", "url.template"), resolver, lot_in_url)
    return Product(
        id=product_id, name=_text(doc, "name", max_length=200), model=_text(doc, "model", max_length=100), gtin=gtin,
        resolver=resolver, url_template=template, lot_in_url=lot_in_url,
        serial=_field("serial", lambda: _serial(serial)), keys=_keys(keys),
        label_layout=_text(label, "layout", "label.layout"),
        sha256=hashlib.sha256(data).hexdigest(), source=data,
        epcis=_field("epcis", lambda: parse_epcis(doc.get("epcis"))), links=parse_links(doc.get("links")),
        secure_messaging=_secure_messaging(doc.get("secure_messaging", "aes")),
    )


def _secure_messaging(value: Any) -> str:
    if value not in SECURE_MESSAGING:
        raise ConfigError(f"secure_messaging: {value!r} must be \"aes\" or \"lrp\"")
    return str(value)


def _field(name: str, build: Any) -> Any:
    try:
        return build()
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith((f"{name}:", f"{name}.")) else f"{name}: {message}") from None


def _known(prefix: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown field '{prefix}{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    table = doc.get(name)
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}]: missing section")
    _known(f"{name}.", table, _SECTIONS[name])
    return table


def _text(table: dict[str, Any], key: str, name: str | None = None, *, max_length: int = 1000) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name or key}: missing or not a non-empty string")
    if len(value.strip()) > max_length or not value.strip().isprintable():
        raise ConfigError(f"{name or key}: at most {max_length} printable characters on one line (labels and "
                          "reports print it)")
    return value.strip()


def _template(template: str, resolver: str, lot_in_url: bool) -> str:
    """Basic checks only; the template compiler (encoders.ntag424.template) checks the rest."""
    if not template.startswith("https://"):
        raise ConfigError("url.template: must start with https://")
    if not template.replace("{mac_input}", "", 1).startswith(resolver + "/"):  # it may mark the path's start
        raise ConfigError(f"url.template: must start with the resolver {resolver}/")
    names = _FIELD.findall(template)
    for name in names:
        if name not in PLACEHOLDERS:
            raise ConfigError(f"url.template: unknown placeholder {{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})")
    for needed in ("gtin", "serial"):
        if needed not in names:
            raise ConfigError(f"url.template: must contain {{{needed}}}")
    if lot_in_url != ("lot" in names):
        raise ConfigError("url.template: must contain {lot} exactly when url.lot_in_url is true")
    return template


def _serial(table: dict[str, Any]) -> SerialFormat:
    kind = table.get("format", "sequential")
    for key in ("digits", "length"):
        if key in table and (not isinstance(table[key], int) or isinstance(table[key], bool)):
            raise ConfigError(f"{key}: must be an integer")
    prefix = table.get("prefix", "")
    if not isinstance(kind, str) or not isinstance(prefix, str):
        raise ConfigError("format and prefix must be strings")
    return SerialFormat(kind, prefix, table.get("digits", 7), table.get("length", 12))


def _keys(table: dict[str, Any]) -> KeyPolicy:
    key_set = _text(table, "key_set", "keys.key_set")
    raw_id = table.get("system_id", "")
    try:
        system_id = bytes.fromhex(raw_id) if isinstance(raw_id, str) else None
    except ValueError:
        system_id = None
    if system_id is None or len(system_id) > MAX_SYSTEM_ID:
        raise ConfigError(f"keys.system_id: must be hex, at most {MAX_SYSTEM_ID} bytes (AN10922 diversification input)")
    slots_table = table.get("slots")
    if not isinstance(slots_table, dict) or not slots_table:
        raise ConfigError("keys.slots: missing (one entry per key slot 0-4)")
    slots = []
    for name, entry in slots_table.items():
        where = f"keys.slots.{name}"
        if not name.isdigit() or int(name) not in SLOTS:
            raise ConfigError(f"{where}: slot must be 0 to 4")
        if not isinstance(entry, dict) or set(entry) - {"role", "version"}:
            raise ConfigError(f"{where}: must be {{ role = \"...\", version = N }}")
        version = entry.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 255:
            raise ConfigError(f"{where}.version: must be 1 to 255 (0 is the factory key)")
        role = slot_role(_text(entry, "role", f"{where}.role"), f"{where}.role").value  # legacy names read as today's
        slots.append(KeySlot(int(name), role, version))
    if 0 not in {s.slot for s in slots}:
        raise ConfigError("keys.slots: slot 0 (the application master key) is required")
    return KeyPolicy(key_set, system_id, tuple(sorted(slots, key=lambda s: s.slot)))


@dataclass(frozen=True)
class SlotPin:
    """What a product's current file does with one slot of its key set: the version its chips get."""

    product: str
    slot: int
    role: str
    pinned: int | None  # None: the file does not pin the slot, so chips get the key set's current version

    def chips_get(self, current: int) -> int:
        return current if self.pinned is None else self.pinned

    def move_to(self, version: int) -> str:
        """The ``[keys.slots]`` line that makes the product's new batches use ``version``."""
        return f'{self.slot} = {{ role = "{self.role}", version = {version} }}'


def slot_pins(products: Iterable[Product], key_set: str, slot: int) -> list[SlotPin]:
    """How each product that diversifies from ``key_set`` uses ``slot`` (a rotation changes no pinned chip)."""
    pins = []
    for product in products:
        if product.keys.key_set == key_set:
            pinned = next((s for s in product.keys.slots if s.slot == slot), None)
            pins.append(SlotPin(product.id, slot, pinned.role if pinned else "", pinned.version if pinned else None))
    return sorted(pins, key=lambda p: p.product)
