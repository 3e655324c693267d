"""Serial numbers: sequential or random bodies, each ending in two ISO/IEC 7064 check characters (pure).

Check system: ISO/IEC 7064 MOD 1271-36, the pure system for alphanumeric strings (radix 36,
modulus 1271 = 31 x 41, two check characters from 0-9A-Z). A serial is valid when its value
read as a base-36 number is 1 modulo 1271. Because 36 and 35 (= 36 - 1) and 37 (= 36 + 1) are
all coprime to 1271, a changed value is always a multiple of one of them times a difference
smaller than 31, never of 1271, so the check catches EVERY:

- single-character substitution (including in the check characters),
- transposition of two adjacent characters (including the check characters),
- jump transposition (``abc`` -> ``cba``) and twin error (``aa`` -> ``bb``).

(The hybrid MOD 37,36 system with one check character misses 72 adjacent transpositions in
every 45,360, and pure MOD 37-2 needs ``*``, which is not URL- or QR-alphanumeric safe.)

Serials use only upper-case A-Z and 0-9: no percent-encoding in the Digital Link URL and the
QR code stays in alphanumeric mode. Random bodies use Crockford's base32 alphabet (no I, L, O,
U) from ``secrets``; the check characters may use any of the 36 characters.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from tagsmith import ConfigError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MODULUS = 1271
MAX_LENGTH = 20  # AI (21)
MIN_RANDOM_LENGTH = 10  # 50 bits: a guessed serial is right about once in 10^15 tries
_B32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD)
_BODY = re.compile(r"[0-9A-Z]+")
_PREFIX = re.compile(r"[0-9A-Z]{0,12}")


def check_characters(body: str) -> str:
    """The two MOD 1271-36 check characters for ``body`` (``"ISO79"`` -> ``"3W"``, ISO/IEC 7064 example)."""
    if not _BODY.fullmatch(body):
        raise ConfigError(f"serial body {body!r} must use only 0-9 and A-Z")
    return _check(body)


def _check(body: str) -> str:
    # int(x, 36) reads 0-9A-Z exactly as ISO 7064 numbers them; callers have validated ``body``
    value = (1 - int(body, 36) * 36 * 36) % MODULUS
    return ALPHABET[value // 36] + ALPHABET[value % 36]


def is_valid(serial: str) -> bool:
    """True when ``serial`` is 3-20 characters of 0-9A-Z and its check characters match."""
    return 3 <= len(serial) <= MAX_LENGTH and bool(_BODY.fullmatch(serial)) and int(serial, 36) % MODULUS == 1


def normalise_serial(text: str) -> str:
    """Read a typed serial (spaces and case forgiven) and check it; raise ConfigError if mistyped."""
    serial = "".join(text.split()).upper()
    if not is_valid(serial):
        raise ConfigError(f"serial {text!r} fails its check characters (mistyped?)")
    return serial


@dataclass(frozen=True)
class SerialFormat:
    """How a product's serials look: ``sequential`` (prefix + zero-padded counter) or ``random``."""

    kind: str = "sequential"
    prefix: str = ""
    digits: int = 7  # sequential: counter width
    length: int = 12  # random: body characters after the prefix

    def __post_init__(self) -> None:
        if self.kind not in ("sequential", "random"):
            raise ConfigError(f"serial format {self.kind!r} must be 'sequential' or 'random'")
        if not _PREFIX.fullmatch(self.prefix):
            raise ConfigError(f"serial prefix {self.prefix!r} must be 0-12 characters of 0-9 and A-Z")
        body = self.digits if self.kind == "sequential" else self.length
        if self.kind == "sequential" and not 1 <= self.digits <= 15:
            raise ConfigError(f"serial digits {self.digits} must be 1 to 15")
        if self.kind == "random" and self.length < MIN_RANDOM_LENGTH:
            raise ConfigError(f"random serial length {self.length} must be at least {MIN_RANDOM_LENGTH}")
        if len(self.prefix) + body + 2 > MAX_LENGTH:
            raise ConfigError(f"serials would be {len(self.prefix) + body + 2} characters; AI (21) allows {MAX_LENGTH}"
                              " (prefix + body + 2 check characters)")

    @property
    def series(self) -> str:
        """Name of the counter space this format draws from (sequential counters are per series)."""
        body = self.digits if self.kind == "sequential" else self.length
        return f"{self.kind}:{self.prefix}:{body}"

    @property
    def capacity(self) -> int:
        """How many sequential serials the series holds (counters 1 .. 10**digits - 1)."""
        return 10 ** self.digits - 1 if self.kind == "sequential" else 32 ** self.length

    def sequential(self, counter: int) -> str:
        """The serial for ``counter`` (1-based)."""
        if not 1 <= counter <= self.capacity:
            raise ConfigError(f"serial counter {counter} is outside 1..{self.capacity} for {self.series}")
        body = f"{self.prefix}{counter:0{self.digits}d}"
        return body + _check(body)

    def sequential_range(self, first: int, count: int) -> list[str]:
        """Serials for counters ``first .. first + count - 1`` (the bulk form of :meth:`sequential`)."""
        if count and not (1 <= first and first + count - 1 <= self.capacity):
            raise ConfigError(f"serial counters {first}..{first + count - 1} overflow {self.series}")
        bodies = [f"{self.prefix}{n:0{self.digits}d}" for n in range(first, first + count)]
        return [body + _check(body) for body in bodies]

    def random_serials(self, count: int) -> list[str]:
        """``count`` random serials (CSPRNG); duplicates are possible and the database rejects them."""
        n = self.length
        blocks = (count * n + 7) // 8  # base32 turns each 5 random bytes into 8 random characters
        chars = base64.b32encode(secrets.token_bytes(blocks * 5)).decode().translate(_B32_TO_CROCKFORD)
        bodies = [self.prefix + chars[i:i + n] for i in range(0, count * n, n)]
        return [body + _check(body) for body in bodies]
