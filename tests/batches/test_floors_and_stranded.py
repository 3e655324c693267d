"""The store's replay floors and its refusal to go ahead with units still being encoded."""

from __future__ import annotations

import pytest

from tagsmith import StateError
from tagsmith.batches.store import ReplayError, open_store, sqlite_schema
from tagsmith.workspace import Workspace

UIDS = [bytes.fromhex(f"04A1B2C3D4E5{n:02X}") for n in range(10)]


def _encoded(store, batch_id, uid, counter=1):
    unit = store.allocate_unit(batch_id, uid, "st-1", start_encoding=True)
    return store.mark_encoded(unit.id, {0: 1}, counter, "st-1")


def test_every_counter_seen_raises_the_floor_and_never_lowers_it(store, product):
    batch = store.create_batch(product.id, 3)
    unit = _encoded(store, batch.id, UIDS[0], counter=1)
    assert unit.last_counter == 1
    unit = store.record_counter(unit.id, 5, source="qa")
    assert (unit.state, unit.verified_counter, unit.last_counter) == ("verified", 5, 5)
    assert store.record_counter(unit.id, 3, source="qa").verified_counter == 5  # lower: nothing changes
    with pytest.raises(ReplayError, match="replay: read counter 5 .* floor 5"):
        store.record_counter(unit.id, 5, source="tag verify --url", refuse_replay=True)
    with pytest.raises(ReplayError, match="floor 5"):
        store.record_counter(unit.id, 1, source="tag verify --url", refuse_replay=True)
    assert store.record_counter(unit.id, 6, source="tag verify --url", refuse_replay=True).verified_counter == 6
    taps = [e.detail for e in store.unit_events(unit.id) if e.event == "tap"]
    assert taps == [{"read_counter": 5, "source": "qa"}, {"read_counter": 6, "source": "tag verify --url"}]


def test_a_unit_not_encoded_records_no_counter(store, product):
    batch = store.create_batch(product.id, 2)
    unit = store.allocate_unit(batch.id, UIDS[1], "st-1", start_encoding=True)
    with pytest.raises(StateError, match="encoding; cannot record a read counter"):
        store.record_counter(unit.id, 4, source="qa")


def test_stranded_units_are_named_and_a_reason_lets_the_action_through(store, product):
    batch = store.create_batch(product.id, 9)
    _encoded(store, batch.id, UIDS[0])
    stranded = [store.allocate_unit(batch.id, uid, "st-1", start_encoding=True).serial for uid in UIDS[1:8]]
    with pytest.raises(StateError) as refused:
        store.require_complete(batch.id, "manifest export")
    message = str(refused.value)
    assert "7 unit(s) still being encoded" in message and "+2 more" in message
    assert all(s in message for s in stranded[:5]) and stranded[5] not in message
    assert store.require_complete(batch.id, "manifest export", "chips lost in a jam", "eng") == stranded
    (override,) = store.incomplete_overrides(batch.id)
    assert (override["action"], override["serials"], override["reason"], override["by"]) == \
        ("manifest export", stranded, "chips lost in a jam", "eng")
    for serial in stranded:
        store.void_unit(store.unit_by_serial(serial).id, "lost", by="eng")
    assert store.require_complete(batch.id, "qa plan") == []
    assert store.unit_by_serial(stranded[0]).voided_by == "eng"


def test_the_migration_raises_floors_to_the_counters_qa_already_recorded(tmp_path, product, monkeypatch):
    """A database from before floors: QA's counters were kept only in qa_results; the manifest said null."""
    mine = next(i for i, (_, f) in enumerate(sqlite_schema.MIGRATIONS) if f is sqlite_schema._m_floors_voids_incomplete)
    old_home = Workspace(tmp_path / "old")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:mine])
    with open_store(old_home) as old:
        old.add_product(product)
        batch = old.create_batch(product.id, 3)
        for seq, uid in enumerate(UIDS[:2], start=1):  # as that release encoded them (today's allocation needs leases)
            old._exec("INSERT INTO units (batch_id, serial, uid, state, key_versions, read_counter, allocated_at, "
                      "updated_at) SELECT batch_id, serial, ?, 'encoded', '{\"0\":1}', 1, 'now', 'now' FROM serials "
                      "WHERE batch_id = ? AND seq = ?", (uid, batch.id, seq))
        scanned, untouched = (old.unit_by_uid(uid) for uid in UIDS[:2])
        old._exec("INSERT INTO qa_plans (id, batch_id, product_id, lot_size, level, aql, inspection, "
                  "code_letter, sample_size, accept, reject, seed, serials, created_at, created_by) VALUES "
                  "('p1', ?, ?, 2, 'II', '0.65', 'normal', 'A', 2, 0, 1, '1', '[]', 'now', 'qa')",
                  (batch.id, product.id))
        old._exec("INSERT INTO qa_results (plan_id, batch_id, unit_id, passed, counted, reason, checks, "
                  "read_counter, inspector, at) VALUES ('p1', ?, ?, 1, 1, 'ok', '[]', 6, 'qa', "
                  "'2026-11-23T10:00:00.000Z')", (batch.id, scanned.id))
    monkeypatch.undo()
    with open_store(old_home) as store:
        now = store.unit(scanned.id)
        assert (now.state, now.verified_counter, now.verified_at) == ("verified", 6, "2026-11-23T10:00:00.000Z")
        assert store.unit(untouched.id).verified_counter is None
