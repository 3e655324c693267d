"""The CBV 2.0 event hash: the reference implementation's published examples, and its verdict on our documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tagsmith.batches.epcis_hash import canonical_id, canonical_time, event_id, pre_hash

EXAMPLES = sorted((Path(__file__).parent / "hash_examples").glob("*.jsonld"))


def _events(document: dict) -> list[dict]:
    body = document["epcisBody"]
    if "queryResults" in body:
        return body["queryResults"]["resultsBody"]["eventList"]
    return body["eventList"] if "eventList" in body else [body["event"]]


def namespaces(document: dict) -> dict[str, str]:
    found: dict[str, str] = {}
    context = document.get("@context", [])
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            found.update(entry)
    return found


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_published_examples(example):
    document = json.loads(example.read_text())
    expected = example.with_suffix(".hashes").read_text().split()
    ours = [event_id(event, namespaces(document)) for event in _events(document)]
    assert ours == expected


def test_examples_cover_what_tagsmith_writes():
    """ILMD, extensions, typed lists, persistent dispositions and every id form tagsmith emits are among them."""
    text = "".join(p.read_text() for p in EXAMPLES)
    for needle in ("ilmd", "cbvmda:", "bizTransactionList", "persistentDisposition", "urn:epc:id:sgln:",
                   "example:"):
        assert needle in text
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(("value", "expected"), [
    ("2019-04-02T15:00:00+01:00", "2019-04-02T14:00:00.000Z"),
    ("2023-01-18T11:04:03.1415Z", "2023-01-18T11:04:03.142Z"),
    ("2023-01-18T11:04:03.9996Z", "2023-01-18T11:04:04.000Z"),
])
def test_time_normalisation(value, expected):
    assert canonical_time(value) == expected


@pytest.mark.parametrize(("uri", "expected"), [
    ("https://id.example.com/01/09506000134376/21/DW60000001XX", "https://id.gs1.org/01/09506000134376/21/DW60000001XX"),
    ("https://id.example.com/stem/01/09506000134376/10/LOT-1/21/A1?x=1", "https://id.gs1.org/01/09506000134376/21/A1"),
    ("urn:epc:id:sgln:9506000.13400.demo-station", "https://id.gs1.org/414/9506000134000/254/demo-station"),
    ("urn:epc:id:sgln:9506000.13400.0", "https://id.gs1.org/414/9506000134000"),
    ("urn:tagsmith:epcis:station:s1", None),
])
def test_identifier_normalisation(uri, expected):
    assert canonical_id(uri) == expected


def test_sensor_data_is_refused_not_hashed_wrongly():
    with pytest.raises(ValueError, match="sensor"):
        pre_hash({"type": "ObjectEvent", "eventTime": "2020-01-01T00:00:00Z", "sensorElementList": []}, {})


def reference_hashes(document: dict) -> list[str]:
    """The reference implementation's ids (the test extras install it) for every event of ``document``."""
    from epcis_event_hash_generator import json_to_py
    from epcis_event_hash_generator.hash_generator import epcis_hashes_from_events

    return epcis_hashes_from_events(json_to_py.event_list_from_epcis_document_json(copy.deepcopy(document)))
