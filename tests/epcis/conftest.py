"""Workspaces with a finished batch to export: the demo's, and one with voids, tears and a rejected QA sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, FormatChecker

from tagsmith.batches.product import load_product
from tagsmith.batches.store import open_store
from tagsmith.keystore import init_keystore
from tagsmith.provision import station
from tagsmith.provision.demo import genuine_labels
from tagsmith.provision.encode import EncodeContext, process_tag
from tagsmith.provision.qa import QaSession, scan_simulated
from tagsmith.provision.qa_plan import create_plan, release_override
from tagsmith.provision.simpool import SimChipPool
from tagsmith.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "batches" / "products" / "dishwasher.toml"
SCHEMA = json.loads((Path(__file__).parent / "EPCIS-JSON-Schema.json").read_text())
PASSPHRASE = "epcis-test-passphrase-1"
# jsonschema checks "uri" and "date-time" only with optional packages: the two formats, as RFC 3986 and RFC 3339 say
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\"<>\\^`{|}]*")
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)
FORMATS = FormatChecker(formats=())
FORMATS.checks("uri")(lambda value: not isinstance(value, str) or bool(_URI.fullmatch(value)))
FORMATS.checks("date-time")(lambda value: not isinstance(value, str) or bool(_DATE_TIME.fullmatch(value)))


def schema_errors(document: dict) -> list[str]:
    """What GS1's EPCIS 2.0 JSON Schema finds wrong with ``document`` (empty: valid)."""
    validator = Draft7Validator(SCHEMA, format_checker=FORMATS)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def replay_chip(ctx: EncodeContext, pool: SimChipPool, uid: bytes) -> None:
    """Keep an old copy of the chip, let the line read the real one once more, put the copy back: a replayed SUN."""
    old_copy = pool.path(uid).read_bytes()
    chip = pool.load(uid)
    chip.place()
    assert process_tag(ctx, chip).result == "verified"
    pool.path(uid).write_bytes(old_copy)


@pytest.fixture(scope="session")
def rough_batch(tmp_path_factory) -> Workspace:
    """30 units encoded with tears, two voided (a chip reset at a station, a unit voided by a person), a QA
    sample rejected on its first unit (a label of a unit outside the sample), then released by an override."""
    ws = Workspace.resolve(tmp_path_factory.mktemp("rough") / "ws").ensure()
    keys = init_keystore(ws, "file", passphrase=PASSPHRASE, scrypt_n=2**10)
    product = load_product(PRODUCT)
    keys.create_key_set(product.keys.key_set, system_id=product.keys.system_id)
    with open_store(ws) as store:
        store.add_product(product)
        store.create_batch(product.id, 30, lot="LOT-7", line="line-2", batch_id="B1")
        ctx = EncodeContext(store=store, keys=keys, product=product, batch_id="B1", station="st1",
                            allow_simulator_signature=True)
        source = station.SimulatedSource(30, tear_rate=0.3, seed=11, pool=SimChipPool(ws.home / "sim-chips"))
        summary = list(station.run(ctx, source))[-1]
        assert summary.done == 30 and summary.counts.get("torn", 0) > 0
        units = list(store.units("B1"))
        store.void_unit(units[3].id, "chip reset for rework", "st1")
        store.void_unit(units[4].id, "housing cracked: unit scrapped", by="QM Lee")
        plan = create_plan(store, "B1", seed=3)
        pool = SimChipPool(ws.home / "sim-chips")
        replay_chip(ctx, pool, store.unit_by_serial(plan.serials[0]).uid)  # its first sample unit fails QA
        session = QaSession(store, keys, "B1", station="qa1", allow_simulator_signature=True)
        list(scan_simulated(session, pool, genuine_labels(store, "B1", list(plan.serials))))
        assert session.decision == "reject"
        qa = release_override(store, "B1", "released after 100 % re-inspection", "QM Lee")
        store.record_qa_override("B1", qa["reason"], qa["by"])
    return ws
