"""The batch database: migrations, minting, allocation, unit states, and two real processes at once."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from tagsmith import ConfigError, NotFoundError, StateError
from tagsmith.batches.product import parse_product
from tagsmith.batches.serials import is_valid
from tagsmith.batches.store import ConstraintError, DatabaseError, core, open_store, postgres_schema, sqlite_schema
from tagsmith.batches.store.sqlite_schema import MIGRATIONS
from tagsmith.workspace import Workspace

UID = bytes.fromhex("04A1B2C3D4E5F6")


def test_schema_version_and_pragmas(sqlite_store):
    store = sqlite_store
    assert store.schema_version == len(MIGRATIONS)
    rows = store._exec("SELECT version, description FROM schema_version").fetchall()
    assert rows == [(n, d) for n, (d, _) in enumerate(MIGRATIONS, start=1)] and rows[0] == (1, "initial schema")
    assert store._exec("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._exec("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store._exec("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_migrations_apply_in_order_once(tmp_path, monkeypatch):
    home = Workspace(tmp_path)
    open_store(home).close()
    applied = []
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", [*MIGRATIONS, ("add a note", lambda d: applied.append(2) or
                                                            d.execute("ALTER TABLE batches ADD COLUMN note TEXT"))])
    with open_store(home) as store:
        assert store.schema_version == len(MIGRATIONS) + 1 and applied == [2]
    with open_store(home) as store:  # reopening applies nothing again
        assert applied == [2] and "note" in store.db["batches"].columns_dict


def test_newer_database_is_refused(store_home):
    with store_home.open() as store:
        store._exec("INSERT INTO schema_version VALUES (99, 'future', 'x')")
    with pytest.raises(StateError, match="newer"):
        store_home.open()
    with pytest.raises(StateError, match="newer"):
        store_home.open(upgrade=True)


def test_a_shared_database_is_migrated_only_when_asked_and_never_created_when_reading(pg_database, monkeypatch):
    """Stations of several versions share it: opening never changes its schema unless told (tagsmith db migrate)."""
    def open_shared(**options):
        return open_store(Workspace(Path("/nonexistent")), url=pg_database, **options)

    with pytest.raises(NotFoundError, match="no tagsmith schema"):
        open_shared(create=False)
    open_shared().close()  # an empty database gets the schema
    applied = []
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", [*postgres_schema.MIGRATIONS, (
        "add a note", lambda run: applied.append(2) or run("ALTER TABLE batches ADD COLUMN note TEXT"))])
    with pytest.raises(StateError, match="older than this tagsmith .* run tagsmith db migrate"):
        open_shared()
    assert applied == []
    with open_shared(upgrade=True) as store:
        assert store.schema_version == len(postgres_schema.MIGRATIONS) and applied == [2]
        assert store._scalar("SELECT COUNT(note) FROM batches") == 0
    open_shared().close()  # up to date: opens as usual
    assert applied == [2]


def test_a_file_that_is_not_a_database_is_a_one_line_tagsmith_error(tmp_path):
    home = Workspace(tmp_path)
    home.database.write_bytes(b"not a database, just some text " * 100)
    with pytest.raises(DatabaseError, match="cannot be used: file is not a database") as raised:
        open_store(home)
    assert raised.value.exit_code == 1 and "\n" not in str(raised.value)


def test_product_versions_are_kept_and_batches_remember_theirs(store, product):
    first = store.create_batch(product.id, 3)
    changed = parse_product(product.source.replace(b'name = "Aurora DW-600 Dishwasher"', b'name = "Aurora DW-600"'))
    record, added = store.add_product(changed)
    assert added and record.versions == 2 and record.current_sha256 == changed.sha256
    assert store.add_product(changed)[1] is False  # same bytes: nothing new
    second = store.create_batch(product.id, 3)
    assert store.batch_product(first.id).name == "Aurora DW-600 Dishwasher"
    assert store.batch_product(second.id).name == "Aurora DW-600"
    assert store.batch_product(first.id).sha256 == product.sha256


def test_minting_is_idempotent_and_sequential_across_batches(store, product):
    a = store.create_batch(product.id, 5)
    b = store.create_batch(product.id, 4, lot="L2")
    assert store.mint_serials(a.id) == 0 and store.mint_serials(b.id) == 0
    serials = [r[0] for r in store._exec("SELECT serial FROM serials ORDER BY batch_id, seq")]
    assert serials == product.serial.sequential_range(1, 9)
    assert all(is_valid(s) for s in serials)
    # a batch whose minting was cut short is completed, never minted twice
    store._exec("DELETE FROM serials WHERE batch_id = ? AND seq > 2", (a.id,))
    assert store.mint_serials(a.id) == 3 and store.mint_serials(a.id) == 0
    assert store.batch_progress(a.id).minted == 5


def test_serial_uniqueness_is_enforced_by_the_database(store, product):
    batch = store.create_batch(product.id, 2)
    taken = store._exec("SELECT serial FROM serials LIMIT 1").fetchone()[0]
    with pytest.raises(ConstraintError):
        store._exec("INSERT INTO serials VALUES (?, 99, ?)", (batch.id, taken))


def test_random_serials(store, product):
    random_product = parse_product(product.source.replace(b'format = "sequential"', b'format = "random"')
                                   .replace(b'id = "aurora-dw600"', b'id = "aurora-rnd"'))
    store.add_product(random_product)
    batch = store.create_batch("aurora-rnd", 500)
    serials = [r[0] for r in store._exec("SELECT serial FROM serials WHERE batch_id = ?", (batch.id,))]
    assert len(set(serials)) == 500 and all(is_valid(s) and len(s) == 17 for s in serials)


def test_allocation_in_order_and_same_uid_returns_same_unit(store, product):
    batch = store.create_batch(product.id, 3)
    first = store.allocate_unit(batch.id, UID, "st-1")
    again = store.allocate_unit(batch.id, UID, "st-2")
    second = store.allocate_unit(batch.id, UID[:-1] + b"\x00", "st-1")
    assert first == again and first.serial == product.serial.sequential(1)
    assert second.serial == product.serial.sequential(2)
    assert store.unit_by_uid(UID) == first and store.unit_by_serial(second.serial) == second
    assert store.unit_by_uid(bytes(7)) is None


def test_allocation_refusals(store, product):
    a = store.create_batch(product.id, 1)
    b = store.create_batch(product.id, 2)
    store.allocate_unit(a.id, UID, "st-1")
    with pytest.raises(StateError, match=f"belongs to batch {a.id}"):
        store.allocate_unit(b.id, UID, "st-1")
    with pytest.raises(StateError, match="full"):
        store.allocate_unit(a.id, bytes(7), "st-1")
    store.close_batch(b.id)
    with pytest.raises(StateError, match="closed"):
        store.allocate_unit(b.id, bytes(7), "st-1")
    with pytest.raises(NotFoundError):
        store.allocate_unit("nope", bytes(6) + b"\x01", "st-1")
    with pytest.raises(ConfigError):
        store.allocate_unit(a.id, b"\x01\x02", "st-1")


def test_unit_lifecycle_and_events(store, product):
    batch = store.create_batch(product.id, 2)
    unit = store.allocate_unit(batch.id, UID, "st-1")
    unit = store.start_encoding(unit.id, "st-1")
    journal = store.step_journal(unit.id, "st-1")
    journal.add("authenticate")
    journal.flush()
    for step in ("write-ndef", "change-file-settings", "change-keys"):
        journal.add(step)
    assert store.unit(unit.id).state == "encoding"
    assert [e.event for e in store.unit_events(unit.id)].count("step") == 1  # the rest ride on the outcome
    unit = store.mark_encoded(unit.id, {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}, 3, "st-1", journal=journal)
    assert unit.state == "encoded" and unit.key_versions == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1} and unit.read_counter == 3
    assert journal.pending == ()
    journal.add("again")
    with pytest.raises(StateError, match="encoded"):
        journal.flush()
    assert journal.pending == ("again",)  # a refused commit forgets nothing
    unit = store.mark_verified(unit.id, 4, "st-2")
    unit = store.mark_verified(unit.id, 7, "st-2")
    assert unit.state == "verified" and unit.verified_counter == 7 and unit.station == "st-2"
    unit = store.record_qa(unit.id, passed=True, detail="sample 1/125")
    store.record_label_print(unit.id, "roll-50x25", "zpl", "st-2")
    events = [(e.event, (e.detail or {}).get("step")) for e in store.unit_events(unit.id)]
    assert events == [("allocated", None), ("encoding_started", None), ("step", "authenticate"),
                      ("step", "write-ndef"), ("step", "change-file-settings"), ("step", "change-keys"),
                      ("encoded", None), ("verified", None), ("verified", None), ("qa", None),
                      ("label_printed", None)]
    assert store.label_prints(unit.id)[0]["format"] == "zpl"
    assert {r[0] for r in store._exec("SELECT name FROM stations")} == {"st-1", "st-2"}


def test_void_burns_the_serial(store, product):
    batch = store.create_batch(product.id, 3)
    unit = store.allocate_unit(batch.id, UID, "st-1")
    voided = store.void_unit(unit.id, "tag cracked")
    assert voided.state == "voided" and voided.void_reason == "tag cracked"
    with pytest.raises(StateError, match="voided"):
        store.allocate_unit(batch.id, UID, "st-1")
    with pytest.raises(StateError):
        store.mark_encoded(unit.id, {0: 1}, 0, "st-1")
    nxt = store.allocate_unit(batch.id, bytes(7), "st-1")
    assert nxt.serial == product.serial.sequential(2)  # serial 1 stays burnt
    progress = store.batch_progress(batch.id)
    assert progress.by_state == {"voided": 1, "allocated": 1} and progress.remaining == 1


def test_close_batch_refuses_units_in_progress_unless_a_reason_is_recorded(store, product):
    batch = store.create_batch(product.id, 2)
    unit = store.allocate_unit(batch.id, UID, "st-1")
    with pytest.raises(StateError, match="still being encoded"):
        store.close_batch(batch.id)
    assert store.close_batch(batch.id, incomplete_reason="line stopped", by="eng").state == "closed"
    assert store.incomplete_overrides(batch.id) == [
        {"action": "batch close", "serials": [unit.serial], "reason": "line stopped", "by": "eng",
         "at": store.incomplete_overrides(batch.id)[0]["at"]}]
    with pytest.raises(StateError, match="closed"):
        store.mark_encoded(unit.id, {0: 1}, 0, "st-1")
    store.void_unit(unit.id, "batch closed")  # voids still work after closing


def record_step(store, unit_id, step, station="st-1", **kw):
    journal = store.step_journal(unit_id, station)
    journal.add(step, **kw)
    journal.flush()


def test_steps_are_journaled_only_while_encoding_in_an_open_batch(store, product):
    batch = store.create_batch(product.id, 2)
    unit = store.allocate_unit(batch.id, UID, "st-1")
    with pytest.raises(StateError, match="allocated; cannot record step ndef"):
        record_step(store, unit.id, "ndef")  # not started: nothing journaled
    store.start_encoding(unit.id, "st-1")
    record_step(store, unit.id, "ndef")
    record_step(store, unit.id, "key1", found=True)
    store.close_batch(batch.id, incomplete_reason="test", by="test")
    with pytest.raises(StateError, match=f"batch {batch.id} is closed"):
        record_step(store, unit.id, "sdm")
    with pytest.raises(NotFoundError):
        record_step(store, 9999, "sdm")
    with pytest.raises(ConfigError):
        store.step_journal(unit.id, "st-1").add("")
    steps = [e.detail for e in store.unit_events(unit.id) if e.event == "step"]
    assert steps == [{"step": "ndef"}, {"step": "key1", "found": True}]


def test_a_refused_outcome_rolls_back_its_steps_and_keeps_them_pending(store, product):
    batch = store.create_batch(product.id, 1)
    unit = store.allocate_unit(batch.id, UID, "st-1", start_encoding=True)
    journal = store.step_journal(unit.id, "st-1")
    journal.add("ndef")
    store.close_batch(batch.id, incomplete_reason="test", by="test")
    with pytest.raises(StateError, match="closed"):
        store.mark_encoded(unit.id, {0: 1}, 1, "st-1", journal=journal)
    assert journal.pending == ("ndef",)
    assert [e.event for e in store.unit_events(unit.id)] == ["allocated", "encoding_started"]
    with pytest.raises(ValueError):
        store.mark_encoded(unit.id + 1, {0: 1}, 1, "st-1", journal=journal)


def test_station_row_is_refreshed_once_a_minute_and_never_remembered_from_a_rollback(store, product, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(core.time, "monotonic", lambda: clock[0])
    done = store.create_batch(product.id, 1)
    encoded = store.allocate_unit(done.id, UID, "st-1", start_encoding=True)
    store.mark_encoded(encoded.id, {0: 1}, 1, "st-1")
    with pytest.raises(StateError, match="encoded; cannot record encoding_started"):
        store.start_encoding(encoded.id, "st-new")  # touched st-new, then the refused UPDATE rolled it back
    assert store._exec("SELECT COUNT(*) FROM stations WHERE name = 'st-new'").fetchone()[0] == 0
    batch = store.create_batch(product.id, 2)
    unit = store.allocate_unit(batch.id, bytes(6) + b"\x01", "st-1")
    store.start_encoding(unit.id, "st-new")  # the row must be made now, or the unit's FK would fail
    record_step(store, unit.id, "ndef", "st-other")  # a station first seen in a step gets its row too
    seen = dict(store._exec("SELECT name, last_seen FROM stations"))
    assert set(seen) == {"st-1", "st-new", "st-other"}
    stamps = iter(["2030-01-01T00:00:00.000Z", "2030-01-01T00:00:30.000Z", "2030-01-01T00:01:01.000Z"])
    monkeypatch.setattr(store, "_now", lambda: next(stamps))
    clock[0] += 30
    store.mark_encoded(unit.id, {0: 1}, 1, "st-new")  # 30 s later: the row is left alone
    assert store._exec("SELECT last_seen FROM stations WHERE name = 'st-new'").fetchone()[0] == seen["st-new"]
    clock[0] += 31
    store.mark_verified(unit.id, 2, "st-new")  # a minute on: refreshed
    assert store._exec("SELECT last_seen FROM stations WHERE name = 'st-new'").fetchone()[0] == \
        "2030-01-01T00:00:30.000Z"


def test_only_the_allocation_and_encoded_commits_are_synced_to_disk(sqlite_store, product, monkeypatch, sync_helper):
    """Allocation and encoded get the WAL fsync that synchronous=FULL would add; nothing else does."""
    store = sqlite_store
    import os

    from tagsmith.batches import walsync

    inline: list[str] = []
    monkeypatch.setattr(walsync.os, "fsync", lambda fd: inline.append(os.readlink(f"/proc/self/fd/{fd}")))
    overlapped = sync_helper()
    wal = f"{store.path}-wal"
    batch = store.create_batch(product.id, 3)
    assert inline == [] and overlapped() == []
    unit = store.allocate_unit(batch.id, UID, "st-1", start_encoding=True)  # synced before it returns
    assert inline == [str(Path(wal).resolve())]
    record_step(store, unit.id, "ndef")
    store.mark_encoded(unit.id, {0: 1}, 1, "st-1")  # synced by the helper process, waited for by the next
    store.mark_verified(unit.id, 2, "st-1")
    store.wait_synced()
    assert len(inline) == 1 and [p for p, _ in overlapped()] == [wal]
    assert store._exec("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no commit waits on the disk
    # overlapped: the call returns at once, wait_synced is the barrier
    store.allocate_unit(batch.id, bytes.fromhex("04AABBCCDDEEF0"), "st-1", start_encoding=True, overlap_sync=True)
    store.wait_synced()
    assert len(inline) == 1 and len(overlapped()) == 2


def test_a_failed_sync_is_a_one_line_state_error(sqlite_store, product, monkeypatch, sync_helper):
    store = sqlite_store
    from tagsmith.batches import walsync

    sync_helper(fail="5 Input/output error")
    batch = store.create_batch(product.id, 3)
    unit = store.allocate_unit(batch.id, UID, "st-1", overlap_sync=True)
    with pytest.raises(StateError, match="could not sync the database .* Input/output error"):
        store.wait_synced()
    assert store.unit(unit.id).state == "allocated"  # committed; only its power-cut safety is in doubt
    store.allocate_unit(batch.id, bytes.fromhex("04AABBCCDDEEF0"), "st-1", overlap_sync=True)
    with pytest.raises(StateError, match="Input/output error"):  # raised before its commit: nothing written
        store.allocate_unit(batch.id, bytes.fromhex("04AABBCCDDEEF1"), "st-1")
    assert store.unit_by_uid(bytes.fromhex("04AABBCCDDEEF1")) is None

    def fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(walsync.os, "fsync", fsync)  # the same for a sync done at once
    with pytest.raises(StateError, match="could not sync the database .* Input/output error"):
        store.allocate_unit(batch.id, bytes.fromhex("04AABBCCDDEEF1"), "st-1")


def test_the_sync_helper_process_reports_an_fsync_error_and_its_own_end(tmp_path):
    from tagsmith.batches.walsync import WalSync

    missing = WalSync(tmp_path / "no-such-dir" / "x.db")  # the real helper: its open() fails
    missing.start()
    with pytest.raises(OSError) as raised:
        missing.wait()
    assert raised.value.errno == 2
    sync = WalSync(tmp_path / "x.db")
    (tmp_path / "x.db-wal").write_bytes(b"wal")
    sync.start()
    sync.wait()  # the real helper synced it
    sync._helper.kill()
    sync._helper.wait()
    with pytest.raises(OSError, match="helper process has ended"):
        sync.start()
        sync.wait()
    assert sync._helper is None  # reaped
    sync.start()  # the next overlapped sync starts a new helper
    sync.wait()
    sync.close()
    missing.close()


def test_the_sync_helper_process_gets_no_secret_from_the_environment(tmp_path, monkeypatch):
    """The station's passphrase and PIN must not reach the helper (readable in /proc/PID/environ)."""
    from tagsmith.batches.walsync import WalSync

    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", "helper-must-not-see-this")
    monkeypatch.setenv("TAGSMITH_PKCS11_PIN", "987654")
    monkeypatch.setenv("TAGSMITH_SOMETHING_ELSE", "nor-this")
    (tmp_path / "x.db-wal").write_bytes(b"wal")
    sync = WalSync(tmp_path / "x.db")
    sync.start()
    sync.wait()  # the helper is running and has answered once
    try:
        environ = Path(f"/proc/{sync._helper.pid}/environ").read_bytes().split(b"\0")
    finally:
        sync.close()
    names = {entry.partition(b"=")[0] for entry in environ if entry}
    assert not any(name.startswith(b"TAGSMITH_") for name in names), names
    assert not any(b"helper-must-not-see-this" in e or b"987654" in e for e in environ)


def test_units_stream_in_order(store, product, encode_units):
    batch = store.create_batch(product.id, 6)
    encode_units(store, batch.id, 4)
    units = store.units(batch.id)
    assert not isinstance(units, list)
    assert [u.serial for u in units] == product.serial.sequential_range(1, 4)
    assert len(list(store.units(batch.id, ["verified"]))) == 2


def test_quantity_and_names_are_checked(store, product):
    with pytest.raises(ConfigError, match="quantity"):
        store.create_batch(product.id, 0)
    with pytest.raises(ConfigError, match="line"):
        store.create_batch(product.id, 1, line="line one")
    with pytest.raises(ConfigError, match="lot"):
        store.create_batch(product.id, 1, lot="L 1")
    with pytest.raises(NotFoundError):
        store.create_batch("nope", 1)


# ---------------------------------------------------------------- two real processes, one file
def _allocate_worker(home, batch_id, uids, out):
    with home.open() as store:
        out.put([(uid, store.allocate_unit(batch_id, uid, f"st-{uids[0][0]}").serial) for uid in uids])


def _create_worker(home, product_id, n, out):
    with home.open() as store:
        out.put([store.create_batch(product_id, 50).id for _ in range(n)])


def _run(target, args_list):
    ctx = multiprocessing.get_context("fork")  # real processes; the workers live in this test module
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for args in args_list]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_two_processes_allocating_never_collide(store, store_home, product):
    batch = store.create_batch(product.id, 400)
    uids_a = [bytes([0xA, 0, 0, 0, 0]) + i.to_bytes(2, "big") for i in range(150)]
    uids_b = [bytes([0xB, 0, 0, 0, 0]) + i.to_bytes(2, "big") for i in range(150)]
    shared = [bytes([0xC, 0, 0, 0, 0, 0, i]) for i in range(20)]  # both processes see these tags
    results = _run(_allocate_worker, [(store_home, batch.id, uids_a + shared), (store_home, batch.id, shared + uids_b)])
    pairs = [pair for result in results for pair in result]
    by_uid: dict[bytes, set[str]] = {}
    for uid, serial in pairs:
        by_uid.setdefault(uid, set()).add(serial)
    assert all(len(s) == 1 for s in by_uid.values())  # a tag seen twice got the same serial
    serials = [next(iter(s)) for s in by_uid.values()]
    assert len(serials) == len(set(serials)) == 320
    assert sorted(serials) == sorted(product.serial.sequential_range(1, 320))  # in order, no gap
    assert store.batch(batch.id).allocated == 320


def test_two_processes_minting_batches_never_collide(store, store_home, product):
    results = _run(_create_worker, [(store_home, product.id, 10), (store_home, product.id, 10)])
    assert len({b for r in results for b in r}) == 20
    serials = [r[0] for r in store._exec("SELECT serial FROM serials")]
    assert len(serials) == len(set(serials)) == 1000
    assert sorted(serials) == sorted(product.serial.sequential_range(1, 1000))


def test_auth_failure_keeps_the_first_record(store):
    uid = bytes.fromhex("04112233445566")
    assert store.auth_failure(uid) is None
    first = store.record_auth_failure(uid, 0, "91AE", "st1")
    again = store.record_auth_failure(uid, 0, "91AD", "st2")
    assert again == first and (first.status, first.station) == ("91AE", "st1")
    with pytest.raises(ConfigError):
        store.record_auth_failure(b"\x04", 0, "91AE", "st1")


def test_a_cleared_refusal_is_kept_and_a_new_refusal_is_recorded_afresh(store, product):
    uid, other = bytes.fromhex("04112233445566"), bytes.fromhex("04AABBCCDDEEFF")
    batch = store.create_batch(product.id, 2)
    unit = store.allocate_unit(batch.id, uid, "st1")
    store.record_auth_failure(uid, 0, "91AE", "st1")
    store.record_auth_failure(other, 0, "91AD", "st2")
    listed = store.auth_failures()
    assert {(f.uid, f.serial) for f in listed} == {(uid, unit.serial), (other, None)}
    with pytest.raises(ConfigError, match="reason"):
        store.clear_auth_failure(uid, "  ")
    cleared = store.clear_auth_failure(uid, "tag of line 2, key 0 changed there")
    assert cleared.cleared_at and cleared.clear_reason == "tag of line 2, key 0 changed there"
    assert store.auth_failure(uid) is None  # stations may try it once more
    assert [f.uid for f in store.auth_failures()] == [other]
    assert {f.uid for f in store.auth_failures(include_cleared=True)} == {uid, other}
    with pytest.raises(NotFoundError, match="no standing refusal"):
        store.clear_auth_failure(uid, "again")
    refused = store.record_auth_failure(uid, 0, "91AD", "st3")  # refused again: the new refusal stands
    assert (refused.status, refused.station, refused.cleared_at) == ("91AD", "st3", None)
    assert store.auth_failure(uid) == refused
    assert '"status": "91AD"' in json.dumps(refused.to_dict()) and uid.hex().upper() in json.dumps(refused.to_dict())


def test_timestamps_are_utc_iso8601_with_milliseconds(monkeypatch):
    """The stamp is formatted once a second and its milliseconds each call: both parts must be right."""
    from tagsmith.batches.store import common as db

    for instant, text in ((1_795_000_000.0, "2026-11-18T11:06:40.000Z"), (1_795_000_000.9996, "2026-11-18T11:06:40.999Z"),
                          (1_795_000_001.25, "2026-11-18T11:06:41.250Z"), (1_795_000_000.5, "2026-11-18T11:06:40.500Z"),
                          (951_782_400.0, "2000-02-29T00:00:00.000Z")):
        monkeypatch.setattr(db.time, "time", lambda instant=instant: instant)
        assert db.utc_now() == text


def test_a_stopped_server_is_a_one_line_database_unreachable(new_pg_cluster, product):
    """The line's database going away is a tagsmith error naming it, never a driver traceback."""
    cluster = new_pg_cluster()
    with open_store(Workspace(Path("/nonexistent")), url=cluster.url(cluster.create_database())) as store:
        store.add_product(product)
        cluster.stop("fast")
        with pytest.raises(DatabaseError, match="^database unreachable: ") as raised:
            store.create_batch(product.id, 2)
        assert raised.value.exit_code == 1 and "\n" not in str(raised.value)
