"""GS1 rules against every vector in tests/vectors/gs1.json (expectations from GS1's own engine)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tagsmith import ConfigError
from tagsmith.batches import gs1

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "gs1.json").read_text())


def _id(v):
    return v.get("uri", v.get("input", v.get("element_string")))[:70] or "<empty>"


@pytest.mark.parametrize("vector", VECTORS["dl_uri_vectors"], ids=_id)
def test_parser_agrees_with_gs1_engine(vector):
    expect = vector["expect"]
    if not expect["valid"]:
        with pytest.raises(gs1.DigitalLinkError):
            gs1.parse_digital_link(vector["uri"])
        return
    link = gs1.parse_digital_link(vector["uri"])
    assert [list(pair) for pair in link.ais] == expect["ais"]
    assert link.element_string == expect["element_string"]
    assert link.canonical_uri() == expect["canonical_uri"]


@pytest.mark.parametrize("vector", VECTORS["dl_generate_vectors"], ids=_id)
def test_generator_matches_gs1_engine(vector):
    ais = re.findall(r"\((\d+)\)([^(]*)", vector["element_string"])
    assert gs1.build_uri(ais, vector["stem"]) == vector["expect"]["uri"]


@pytest.mark.parametrize("vector", VECTORS["gtin_vectors"], ids=_id)
def test_gtin(vector):
    if vector["valid"]:
        assert gs1.normalise_gtin(vector["input"]) == vector["gtin14"]
        return
    with pytest.raises(ConfigError) as err:
        gs1.normalise_gtin(vector["input"])
    if "expected_check_digit" in vector:
        assert f"expected {vector['expected_check_digit']}" in str(err.value)


def test_percent_encoding_vectors():
    rules = VECTORS["percent_encoding"]
    for case in rules["escape"]:
        assert gs1.escape(case["raw"]) == case["path"]
        assert gs1.escape(case["raw"], query=True) == case["query"]
    for case in rules["unescape"]:
        assert gs1._unescape(case["in"], query=False) == case["path"]
        assert gs1._unescape(case["in"], query=True) == case["query"]
    with pytest.raises(gs1.DigitalLinkError):
        gs1._unescape("A%00B", query=False)


def test_cset82_matches_vector_file():
    assert gs1.CSET82 == VECTORS["cset82"]["chars"] and len(gs1.CSET82) == 82


def test_unit_url_canonical_form_and_round_trip():
    url = gs1.unit_url("https://id.example.com", "9506000134352", "SN0001")
    assert url == "https://id.example.com/01/09506000134352/21/SN0001"
    with_lot = gs1.unit_url("https://id.example.com/d/", "09506000134352", "SN0001", lot="B2026W47")
    assert with_lot == "https://id.example.com/d/01/09506000134352/10/B2026W47/21/SN0001"
    link = gs1.parse_digital_link(with_lot)
    assert (link.gtin, link.lot, link.serial, link.stem) == ("09506000134352", "B2026W47", "SN0001",
                                                               "https://id.example.com/d")
    escaped = gs1.unit_url("https://id.example.com", "09506000134352", "A/B+C")
    assert escaped.endswith("/21/A%2FB%2BC") and gs1.parse_digital_link(escaped).serial == "A/B+C"


@pytest.mark.parametrize("stem, gtin, serial, lot, message", [
    ("http://id.example.com", "09506000134352", "S1", None, "https://"),
    ("ftp://id.example.com", "09506000134352", "S1", None, "https://"),
    ("https://", "09506000134352", "S1", None, "HOST"),
    ("https://id.example.com/01", "09506000134352", "S1", None, "could be read as an AI"),
    ("https://id.example.com?x=1", "09506000134352", "S1", None, "no query"),
    ("https://id.example.com", "09506000134353", "S1", None, "check digit 3, expected 2"),
    ("https://id.example.com", "950600013435", "S1", None, "check digit"),
    ("https://id.example.com", "09506000134352", "A" * 21, None, "1 to 20"),
    ("https://id.example.com", "09506000134352", "", None, "1 to 20"),
    ("https://id.example.com", "09506000134352", "A B", None, "CSET 82"),
    ("https://id.example.com", "09506000134352", "A~B", None, "CSET 82"),
    ("https://id.example.com", "09506000134352", "Aé", None, "CSET 82"),
    ("https://id.example.com", "09506000134352", "S1", "L#1", "lot (AI 10)"),
])
def test_unit_url_errors_name_the_problem(stem, gtin, serial, lot, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        gs1.unit_url(stem, gtin, serial, lot)


def test_every_cset82_character_is_accepted_and_round_trips():
    for start in range(0, 82, 20):
        serial = gs1.CSET82[start:start + 20]
        url = gs1.unit_url("https://id.example.com", "09506000134352", serial)
        assert gs1.parse_digital_link(url).serial == serial
