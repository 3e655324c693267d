"""Choosing a reader by name: exact, or a unique case-insensitive part; never by position."""

import pytest

from tagsmith import ConfigError, NotFoundError
from tagsmith.encoders.reader import AmbiguousReaderError, ReaderNotFoundError, is_nfcpy_path, select_reader

READERS = ["ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00",
           "ACS ACR1252 Dual Reader [ACR1252 Dual Reader SAM] 00 01",
           "Identiv uTrust 3700 F CL Reader 01 00"]


@pytest.mark.parametrize("wanted, expected", [
    (READERS[2], READERS[2]),
    ("utrust", READERS[2]),
    ("picc", READERS[0]),
    ("ACR1252 Dual Reader SAM", READERS[1]),
])
def test_picks_exact_name_or_unique_part(wanted, expected):
    assert select_reader(READERS, wanted) == expected


def test_exact_name_wins_over_a_longer_match():
    assert select_reader(["Reader", "Reader 2"], "Reader") == "Reader"


def test_ambiguous_part_lists_the_candidates():
    with pytest.raises(AmbiguousReaderError, match="matches 2 readers") as err:
        select_reader(READERS, "acr1252")
    assert READERS[0] in str(err.value) and READERS[1] in str(err.value)
    assert isinstance(err.value, ConfigError)


def test_no_match_lists_what_is_connected():
    with pytest.raises(ReaderNotFoundError, match="No reader matches 'omnikey'") as err:
        select_reader(READERS, "omnikey")
    assert "utrust" in str(err.value).lower() and isinstance(err.value, NotFoundError)


def test_without_a_name_only_a_single_reader_is_chosen():
    assert select_reader(READERS[:1], None) == READERS[0]
    with pytest.raises(AmbiguousReaderError, match="name one with --reader"):
        select_reader(READERS, None)


def test_never_by_index():
    with pytest.raises((ReaderNotFoundError, AmbiguousReaderError)):  # "0" is text, not a position
        select_reader(READERS, "0")
    with pytest.raises(ReaderNotFoundError):
        select_reader(["Virtual PCD 00 00"], "2")


def test_nfcpy_paths_are_told_apart_from_pcsc_names():
    assert is_nfcpy_path("usb:072f:2200") and is_nfcpy_path("udp:localhost:54321")
    assert not is_nfcpy_path("ACS ACR122U PICC Interface 00 00") and not is_nfcpy_path(None)
