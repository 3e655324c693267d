"""GS1 rules for serialised products: GTINs, AI (10)/(21) values and Digital Link URIs (pure).

The builder makes the one URL form tagsmith prints and encodes,
``https://DOMAIN[/stem]/01/{gtin14}[/10/{lot}]/21/{serial}``. The parser is strict on purpose
(for QA and label checks): it follows the GS1 Barcode Syntax Engine's rules, agrees with it on
every vector in ``tests/vectors/gs1.json`` and knows a subset of the Syntax Dictionary (the keys,
qualifiers and common data attributes below); an AI outside that subset is rejected as unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tagsmith import ConfigError

CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
CSET39 = "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CANONICAL_STEM = "https://id.gs1.org"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_URI_CHARS = _UNRESERVED | frozenset(":/?#[]@!$&'()*+,;=%")
_SCHEMES = ("http://", "https://", "HTTP://", "HTTPS://")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9\-._]{1,20}")
_SETS = {"N": frozenset("0123456789"), "X": frozenset(CSET82), "Y": frozenset(CSET39)}
# AIs whose length GS1 predefines (by their first two digits); canonical URIs list them first.
_PREDEFINED_LENGTH = frozenset(
    "00 01 02 03 04 11 12 13 14 15 16 17 18 19 20 31 32 33 34 35 36 41".split())


class DigitalLinkError(ConfigError):
    """A URI that is not a valid GS1 Digital Link URI (the message says why)."""


@dataclass(frozen=True)
class _Part:
    kind: str  # N digits, X CSET 82, Y CSET 39
    min: int
    max: int
    csum: bool = False


@dataclass(frozen=True)
class _AI:
    ai: str
    parts: tuple[_Part, ...]
    attr: bool = False  # may appear as a Digital Link query attribute
    keys: tuple[tuple[str, ...], ...] | None = None  # primary key: allowed qualifier sequences
    date: str = ""  # "yymmdd", or "yymmd0" (day 00 allowed)


def _spec(text: str) -> tuple[_Part, ...]:
    """Parse a compact format such as ``N13+ N0..17 X..20`` (``+`` marks a check digit)."""
    parts = []
    for token in text.split():
        kind, csum, size = token[0], token.endswith("+"), token[1:].rstrip("+")
        low, _, high = size.partition("..")
        parts.append(_Part(kind, int(low or 1) if high else int(low), int(high or low), csum))
    return tuple(parts)


def _table() -> dict[str, _AI]:
    """The part of the GS1 Syntax Dictionary tagsmith checks (formats, DL flags, key qualifiers)."""
    rows: list[tuple[str, str, str]] = [  # ai, format, flags: ? attribute, k=qualifier|alternatives, d/d0 date
        ("00", "N18+", "k="), ("01", "N14+", "k=22,10,21|235"), ("02", "N14+", "?"),
        ("10", "X..20", "?"), ("11", "N6", "? d"), ("12", "N6", "? d"), ("13", "N6", "? d"),
        ("15", "N6", "? d0"), ("16", "N6", "? d"), ("17", "N6", "? d0"), ("20", "N2", "?"),
        ("21", "X..20", ""), ("22", "X..20", ""), ("235", "X..28", ""),
        ("240", "X..30", "?"), ("241", "X..30", "?"), ("242", "N..6", "?"), ("243", "X..20", "?"),
        ("250", "X..30", "?"), ("251", "X..30", "?"), ("253", "N13+ X0..17", "k="),
        ("254", "X..20", ""), ("255", "N13+ N0..12", "k="), ("30", "N..8", "?"), ("37", "N..8", "?"),
        ("400", "X..30", "?"), ("401", "X..30", "k="), ("402", "N17+", "k="), ("403", "X..30", "?"),
        ("414", "N13+", "k=254|7040"), ("415", "N13+", "k=8020"), ("417", "N13+", "k=7040"),
        ("420", "X..20", "?"), ("421", "N3 X..9", "?"), ("422", "N3", "?"), ("7003", "N10", "?"),
        ("7040", "N1 X3", ""), ("8004", "X..30", "k=7040"), ("8006", "N14+ N4", "k=22,10,21"),
        ("8010", "Y..30", "k=8011"), ("8011", "N..12", ""), ("8013", "X..25", "k="),
        ("8017", "N18+", "k=8019"), ("8018", "N18+", "k=8019"), ("8019", "N..10", ""),
        ("8020", "X..25", ""), ("90", "X..30", "?"),
        *((str(n), "X..90", "?") for n in range(91, 100)),
    ]
    measures = [*range(310, 317), *range(320, 330), *range(330, 338), *range(340, 350),
                *range(350, 358), *range(360, 370)]
    rows += [(f"{m}{d}", "N6", "?") for m in measures for d in range(6)]
    rows += [(f"392{d}", "N..15", "?") for d in range(10)] + [(f"390{d}", "N..15", "?") for d in range(10)]
    table = {}
    for ai, fmt, flags in rows:
        keys = None
        for flag in flags.split():
            if flag.startswith("k="):
                keys = tuple(tuple(a for a in alt.split(",") if a) for alt in flag[2:].split("|"))
        date = "yymmd0" if "d0" in flags.split() else "yymmdd" if "d" in flags.split() else ""
        table[ai] = _AI(ai, _spec(fmt), "?" in flags, keys, date)
    return table


AIS = _table()


def check_digit(digits: str) -> int:
    """GS1 mod-10 check digit of ``digits`` (weights 3,1,3,... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def normalise_gtin(text: str) -> str:
    """Validate a GTIN-8/12/13/14 (length, digits, check digit) and return it as 14 digits."""
    gtin = str(text).strip()
    if not gtin.isascii() or not gtin.isdigit():
        raise ConfigError(f"GTIN {gtin!r} must contain only digits")
    if len(gtin) not in (8, 12, 13, 14):
        raise ConfigError(f"GTIN {gtin!r} has {len(gtin)} digits; a GTIN has 8, 12, 13 or 14")
    expected = check_digit(gtin[:-1])
    if int(gtin[-1]) != expected:
        raise ConfigError(f"GTIN {gtin!r} has check digit {gtin[-1]}, expected {expected}")
    return gtin.zfill(14)


def _check_value(what: str, value: str) -> str:
    if not 1 <= len(value) <= 20:
        raise ConfigError(f"{what} {value!r} must be 1 to 20 characters, got {len(value)}")
    bad = sorted({c for c in value if c not in _SETS["X"]})
    if bad:
        raise ConfigError(f"{what} {value!r} has characters outside GS1 CSET 82: {''.join(bad)!r}")
    return value


def validate_serial(serial: str) -> str:
    """Check a serial against AI (21): 1-20 characters of GS1 CSET 82."""
    return _check_value("serial (AI 21)", serial)


def validate_lot(lot: str) -> str:
    """Check a batch/lot number against AI (10): 1-20 characters of GS1 CSET 82."""
    return _check_value("lot (AI 10)", lot)


def escape(value: str, query: bool = False) -> str:
    """Percent-encode every byte outside RFC 3986 unreserved characters (upper-case hex)."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char in _UNRESERVED:
            out.append(char)
        elif query and char == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _unescape(text: str, query: bool) -> str:
    """Decode %XX (hex case-insensitive; malformed escapes stay as they are; %00 is an error)."""
    if query:
        text = text.replace("+", " ")
    out, i = bytearray(), 0
    while i < len(text):
        pair = text[i + 1:i + 3]
        if text[i] == "%" and len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            out.append(int(pair, 16))
            i += 3
        else:
            out += text[i].encode("utf-8")
            i += 1
    if 0 in out:
        raise DigitalLinkError("decoded value contains an illegal null character")
    return out.decode("latin-1")


def check_stem(stem: str) -> str:
    """Validate a resolver stem ``https://host[/path]`` for unit URLs; return it without a final ``/``."""
    if not stem.startswith("https://"):
        raise ConfigError(f"resolver {stem!r} must start with https:// (phones and GS1 expect https)")
    stem = "https://" + stem[len("https://"):].rstrip("/")
    host, _, path = stem[len("https://"):].partition("/")
    if not host or any(c not in _URI_CHARS or c in "?#" for c in stem):
        raise ConfigError(f"resolver {stem!r} must be https://HOST[/PATH] with no query or fragment")
    for segment in path.split("/") if path else ():
        if not segment or segment.isdigit():
            raise ConfigError(f"resolver {stem!r} has a path segment {segment!r} that could be read as an AI")
    return stem


def unit_url(stem: str, gtin: str, serial: str, lot: str | None = None) -> str:
    """The canonical Digital Link URL of one unit on the product's resolver domain."""
    return UnitUrls(stem, gtin, lot)(serial)


class UnitUrls:
    """Build many unit URLs of one product and lot quickly (the stem, GTIN and lot are checked once)."""

    def __init__(self, stem: str, gtin: str, lot: str | None = None) -> None:
        self.prefix = f"{check_stem(stem)}/01/{normalise_gtin(gtin)}"
        if lot is not None:
            self.prefix += f"/10/{escape(validate_lot(lot))}"
        self.prefix += "/21/"

    def __call__(self, serial: str) -> str:
        if _SAFE_VALUE.fullmatch(serial):
            return self.prefix + serial
        return self.prefix + escape(validate_serial(serial))


@dataclass(frozen=True)
class DigitalLink:
    """A parsed Digital Link URI: its stem and its AIs in URI order (path first, then query)."""

    stem: str
    ais: tuple[tuple[str, str], ...]

    def get(self, ai: str) -> str | None:
        return next((value for key, value in self.ais if key == ai), None)

    @property
    def gtin(self) -> str | None:
        return self.get("01")

    @property
    def lot(self) -> str | None:
        return self.get("10")

    @property
    def serial(self) -> str | None:
        return self.get("21")

    @property
    def element_string(self) -> str:
        return "".join(f"({ai}){value}" for ai, value in self.ais)

    def canonical_uri(self) -> str:
        """The same identity on id.gs1.org, the form resolvers compare (GS1 DL URI Syntax §4.12)."""
        return build_uri(self.ais, CANONICAL_STEM)


def build_uri(ais: list[tuple[str, str]] | tuple[tuple[str, str], ...], stem: str | None = None) -> str:
    """Generate a Digital Link URI from (AI, value) pairs as GS1's engine does: key path, then attributes."""
    stem = (stem or CANONICAL_STEM).rstrip("/")
    values = dict(ais)
    key = next((ai for ai, _ in ais if AIS.get(ai) and AIS[ai].keys is not None), None)
    if key is None:
        raise DigitalLinkError("no GS1 Digital Link primary key among the AIs")
    alternatives = AIS[key].keys or ((),)
    # the qualifier sequence that leaves only valid query attributes behind, then the longest
    qualifiers = max(alternatives, key=lambda alt: (
        all(AIS[ai].attr for ai in values if ai != key and ai not in alt and ai in AIS),
        sum(q in values for q in alt)))
    path = [key, *(q for q in qualifiers if q in values)]
    rest = [ai for ai, _ in ais if ai not in path]
    rest.sort(key=lambda ai: ai[:2] not in _PREDEFINED_LENGTH)  # stable: fixed-length AIs first
    uri = stem + "".join(f"/{ai}/{escape(values[ai])}" for ai in path)
    query = "&".join(f"{ai}={escape(values[ai], query=True)}" for ai in rest)
    return uri + ("?" + query if query else "")


def _valid_date(value: str, kind: str) -> bool:
    yy, mm, dd = int(value[:2]), int(value[2:4]), int(value[4:6])
    if not 1 <= mm <= 12:
        return False
    days = [31, 29 if yy % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mm - 1]
    return 1 <= dd <= days or (dd == 0 and kind == "yymmd0")


def check_ai_value(ai: str, value: str) -> None:
    """Validate one AI value against its format (length, character set, check digit, date)."""
    entry = AIS[ai]
    low, high = sum(p.min for p in entry.parts), sum(p.max for p in entry.parts)
    if len(value) < low:
        raise DigitalLinkError(f"AI ({ai}) value is too short")
    if len(value) > high:
        raise DigitalLinkError(f"AI ({ai}) value is too long")
    pos = 0
    for index, part in enumerate(entry.parts):
        last = index == len(entry.parts) - 1
        chunk = value[pos:] if last else value[pos:pos + part.max]
        pos += len(chunk)
        if any(c not in _SETS[part.kind] for c in chunk):
            name = {"N": "numeric", "X": "CSET 82", "Y": "CSET 39"}[part.kind]
            raise DigitalLinkError(f"AI ({ai}): a non-{name} character was found")
        if part.csum and chunk and int(chunk[-1]) != check_digit(chunk[:-1]):
            raise DigitalLinkError(f"AI ({ai}): the numeric check digit is incorrect")
    if entry.date and not _valid_date(value, entry.date):
        raise DigitalLinkError(f"AI ({ai}): {value!r} is not a valid date")


def _key_path(parts: list[str]) -> int:
    """Index of the right-most ``/AI/value`` pair whose AI is a primary key (GS1 engine rule), or -1."""
    i = len(parts) - 2
    while i >= 0:
        entry = AIS.get(parts[i]) if parts[i].isdigit() else None
        if entry is None:
            return -1
        if entry.keys is not None:
            return i
        i -= 2
    return -1


def _split(uri: str) -> tuple[str, str, str]:
    """Scheme + host, path info and query of a URI, after GS1's character and scheme checks."""
    if not uri.startswith(_SCHEMES):
        raise DigitalLinkError(f"{uri!r} is not a GS1 Digital Link URI: the scheme must be http or https")
    if any(c not in _URI_CHARS for c in uri):
        raise DigitalLinkError(f"{uri!r} contains characters not allowed in a URI")
    scheme, rest = uri.split("://", 1)
    rest = rest.split("#", 1)[0]
    rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    if not host or not slash:
        raise DigitalLinkError(f"{uri!r} must contain a domain and path info")
    return f"{scheme}://{host}", "/" + path, query


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse and validate a GS1 Digital Link URI strictly; raise DigitalLinkError with the reason."""
    origin, path, query = _split(uri)
    parts = path.split("/")[1:]
    start = _key_path(parts)
    if start < 0:
        raise DigitalLinkError("no GS1 Digital Link keys found in the path info")
    pairs = list(zip(parts[start::2], parts[start + 1::2], strict=False))  # an odd tail is no pair
    key = pairs[0][0]
    alternatives = AIS[key].keys or ((),)
    qualifiers = [ai for ai, _ in pairs[1:]]
    fitting = [alt for alt in alternatives if _in_order(qualifiers, alt)]
    if not fitting:
        raise DigitalLinkError("the AIs in the path are not a valid key-qualifier sequence for the key")
    path_ais = {key, *(q for alt in fitting for q in alt)}  # AIs that belong in the path, not the query
    ais: list[tuple[str, str]] = []
    for ai, raw in pairs:
        if not raw:
            raise DigitalLinkError(f"AI ({ai}) value path element is empty")
        ais.append((ai, _decoded(ai, raw, query=False)))
    seen = {ai for ai, _ in ais}
    for param in query.split("&"):
        name, eq, raw = param.partition("=")
        if not eq or not name.isascii() or not name.isdigit():
            continue  # non-AI parameters (linkType=...) and singletons are ignored
        if name not in AIS:
            raise DigitalLinkError(f"unknown AI ({name}) in query parameters")
        if not raw:
            raise DigitalLinkError(f"AI ({name}) value query element is empty")
        if not AIS[name].attr:
            raise DigitalLinkError(f"AI ({name}) is not a valid DL URI data attribute")
        if name in seen:
            raise DigitalLinkError(f"AI ({name}) is duplicated")
        if name in path_ais:
            raise DigitalLinkError(f"AI ({name}) from query params should be in the path info")
        seen.add(name)
        ais.append((name, _decoded(name, raw, query=True)))
    stem = origin + "".join("/" + p for p in parts[:start])
    return DigitalLink(stem, tuple(ais))


def _in_order(qualifiers: list[str], sequence: tuple[str, ...]) -> bool:
    """True when ``qualifiers`` is an ordered subset of ``sequence`` without repeats."""
    positions = [sequence.index(q) if q in sequence else -1 for q in qualifiers]
    return all(p >= 0 for p in positions) and all(a < b for a, b in zip(positions, positions[1:], strict=False))


def _decoded(ai: str, raw: str, query: bool) -> str:
    try:
        value = _unescape(raw, query)
    except DigitalLinkError:
        raise DigitalLinkError(f"decoded AI ({ai}) contains an illegal null character") from None
    check_ai_value(ai, value)
    return value
