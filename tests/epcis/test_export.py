"""EPCIS export: valid against GS1's schema, ids as the reference implementation computes them, the events right."""

from __future__ import annotations

import json
from collections import Counter

from typer.testing import CliRunner

from tagsmith.cli import app
from tagsmith.provision.demo import run_demo

from .conftest import schema_errors
from .test_event_hash import reference_hashes

runner = CliRunner()


def _export(ws, out, *extra):
    result = runner.invoke(app, ["--home", str(ws.home), "epcis", "export", "--batch", "B1", "--out", str(out),
                                 "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), json.loads(out.read_text())


def test_demo_batch_document_is_valid_and_its_ids_are_the_reference_ones(tmp_path):
    report = run_demo(tmp_path / "demo", units=8, tear_rate=0.3, seed=5)
    document = json.loads(report.epcis.read_text())
    assert schema_errors(document) == []
    events = document["epcisBody"]["eventList"]
    assert [e["eventID"] for e in events] == reference_hashes(document)
    steps = Counter(e["bizStep"] for e in events)
    assert steps["encoding"] == 8 and steps["commissioning"] == 1 and steps["sampling"] == 1
    assert steps["inspecting"] == 8  # code letter A at lot 8: every unit sampled, each scan one event
    assert any(line.startswith("EPCIS ") for line in report.lines)


def test_rough_batch_document_is_valid_and_tells_voids_tears_and_the_rejected_sample(rough_batch, tmp_path):
    summary, document = _export(rough_batch, tmp_path / "b1.jsonld")
    assert schema_errors(document) == []
    events = document["epcisBody"]["eventList"]
    assert [e["eventID"] for e in events] == reference_hashes(document)
    by_step = {step: [e for e in events if e["bizStep"] == step] for step in summary["events"]}
    assert summary["released"] and len(by_step["encoding"]) == 30  # torn units resumed: each encoded once
    (reset,) = by_step["decommissioning"]
    (scrapped,) = by_step["destroying"]
    assert (reset["disposition"], reset["tagsmith:reason"]) == ("inactive", "chip reset for rework")
    assert (scrapped["disposition"], scrapped["action"]) == ("destroyed", "DELETE")
    (sampling,) = by_step["sampling"]
    assert sampling["disposition"] == "non_conformant" and sampling["tagsmith:decision"] == "reject"
    assert [e["disposition"] for e in by_step["inspecting"]] == ["non_conformant"]
    (commissioning,) = by_step["commissioning"]
    assert commissioning["tagsmith:release"] == "override" and commissioning["ilmd"] == {"cbvmda:lotNumber": "LOT-7"}
    released = set(commissioning["epcList"])
    assert len(released) == 27  # 30 less two voided, less the sample unit the defect was charged to
    assert not released & {e["epcList"][0] for e in by_step["decommissioning"] + by_step["destroying"]}
    text = json.dumps(document)
    with open_units(rough_batch) as units:
        assert not any(u.uid.hex().upper() in text.upper() for u in units)  # never a UID
    assert "urn:epc:id:sgln:9506000.13400.st1" in text and "keyVersions" in text


def test_export_twice_gives_the_same_events(rough_batch, tmp_path):
    _, first = _export(rough_batch, tmp_path / "one.jsonld")
    _, again = _export(rough_batch, tmp_path / "one.jsonld", "--force")
    assert first["epcisBody"] == again["epcisBody"]


def test_existing_output_needs_force(rough_batch, tmp_path):
    out = tmp_path / "kept.jsonld"
    out.write_text("mine")
    result = runner.invoke(app, ["--home", str(rough_batch.home), "epcis", "export", "--batch", "B1", "--out", str(out)])
    assert result.exception.exit_code == 2 and "--force" in str(result.exception) and out.read_text() == "mine"


class open_units:
    """The batch's units, read in a store opened for the block."""

    def __init__(self, ws):
        from tagsmith.batches.store import open_store

        self.store = open_store(ws)

    def __enter__(self):
        return list(self.store.units("B1"))

    def __exit__(self, *exc):
        self.store.close()
