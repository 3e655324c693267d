"""Serial formats and the ISO/IEC 7064 MOD 1271-36 check characters: prove every claimed catch."""

from __future__ import annotations

import random

import pytest

from tagsmith import ConfigError
from tagsmith.batches.gs1 import unit_url
from tagsmith.batches.serials import ALPHABET, CROCKFORD, SerialFormat, check_characters, is_valid, normalise_serial

RNG = random.Random(7064)


def _sample(n=150):
    """Valid serials of every length 3..20 from both formats and random bodies."""
    serials = [SerialFormat(prefix="DW6").sequential(i) for i in (1, 2, 9, 10, 999, 1234567)]
    serials += SerialFormat("random", prefix="R", length=17).random_serials(5)
    for _ in range(n):
        body = "".join(RNG.choice(ALPHABET) for _ in range(RNG.randint(1, 18)))
        serials.append(body + check_characters(body))
    return serials


SAMPLE = _sample()


def test_iso_7064_published_example():
    assert check_characters("ISO79") == "3W"  # ISO/IEC 7064 MOD 1271-36 example: ISO793W
    assert is_valid("ISO793W")


def test_every_single_substitution_is_caught():
    checked = 0
    for serial in SAMPLE:
        assert is_valid(serial)
        for pos in range(len(serial)):
            for char in ALPHABET:
                if char != serial[pos]:
                    assert not is_valid(serial[:pos] + char + serial[pos + 1:]), (serial, pos, char)
                    checked += 1
    assert checked > 50_000


def test_every_adjacent_transposition_is_caught():
    for serial in SAMPLE:
        for pos in range(len(serial) - 1):
            a, b = serial[pos], serial[pos + 1]
            if a != b:
                assert not is_valid(serial[:pos] + b + a + serial[pos + 2:]), (serial, pos)


def test_every_adjacent_transposition_of_every_pair_at_every_position():
    """Exhaustive: all 36 x 35 ordered pairs at every position of a 20-character serial."""
    for pos in range(17):  # both characters in the body
        for a in ALPHABET:
            for b in ALPHABET:
                if a != b:
                    body = "0" * pos + a + b + "0" * (16 - pos)
                    serial = body + check_characters(body)
                    assert not is_valid(serial[:pos] + b + a + serial[pos + 2:]), (serial, pos)
    for a in ALPHABET:  # last body character with the first check character, and the two check characters
        for b in ALPHABET:
            body = "0" * 16 + a + b
            serial = body + check_characters(body)
            for pos in (17, 18):
                if serial[pos] != serial[pos + 1]:
                    assert not is_valid(serial[:pos] + serial[pos + 1] + serial[pos] + serial[pos + 2:])


def test_every_jump_transposition_and_twin_error_is_caught():
    for serial in SAMPLE[:60]:
        for pos in range(len(serial) - 2):
            a, c = serial[pos], serial[pos + 2]
            if a != c:
                assert not is_valid(serial[:pos] + c + serial[pos + 1] + a + serial[pos + 3:])
        for pos in range(len(serial) - 1):
            if serial[pos] == serial[pos + 1]:
                for other in ALPHABET:
                    if other != serial[pos]:
                        assert not is_valid(serial[:pos] + other * 2 + serial[pos + 2:])


def test_sequential_format():
    fmt = SerialFormat(prefix="DW6", digits=7)
    first = fmt.sequential(1)
    assert first.startswith("DW60000001") and len(first) == 12 and is_valid(first)
    assert fmt.sequential_range(1, 3) == [fmt.sequential(i) for i in (1, 2, 3)]
    assert fmt.series == "sequential:DW6:7"
    with pytest.raises(ConfigError):
        fmt.sequential(10 ** 7)


def test_random_format_is_crockford_and_unguessable():
    fmt = SerialFormat("random", prefix="X", length=12)
    serials = fmt.random_serials(5000)
    assert len(set(serials)) == 5000
    for serial in serials:
        assert len(serial) == 15 and serial[0] == "X" and is_valid(serial)
        assert set(serial[1:13]) <= set(CROCKFORD)
    # every Crockford character turns up in every position (a CSPRNG, not a counter)
    for pos in range(1, 13):
        assert {s[pos] for s in serials} == set(CROCKFORD)


def test_serials_need_no_percent_encoding():
    for serial in SAMPLE:
        assert unit_url("https://id.example.com", "09506000134352", serial).endswith("/21/" + serial)
        assert set(serial) <= set(ALPHABET)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "counter"}, "must be 'sequential' or 'random'"),
    ({"prefix": "dw"}, "prefix"),
    ({"prefix": "D-W"}, "prefix"),
    ({"digits": 0}, "digits"),
    ({"prefix": "ABCDEFGH", "digits": 11}, "allows 20"),
    ({"kind": "random", "length": 9}, "at least 10"),
    ({"kind": "random", "prefix": "ABCDEFG", "length": 12}, "allows 20"),
])
def test_bad_formats(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SerialFormat(**kwargs)


def test_normalise_typed_serial():
    serial = SerialFormat(prefix="DW6").sequential(42)
    assert normalise_serial(" " + serial.lower()[:6] + " " + serial[6:]) == serial
    with pytest.raises(ConfigError, match="mistyped"):
        normalise_serial(serial[:-1] + ("0" if serial[-1] != "0" else "1"))
