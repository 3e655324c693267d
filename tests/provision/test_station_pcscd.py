"""The station through pcscd + the vpcd virtual reader: the same results as in-process."""

from __future__ import annotations

import pytest

from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision import station
from tagsmith.provision.encode import process_tag

pytestmark = pytest.mark.pcscd

UIDS = [bytes.fromhex(h) for h in ("04A1B2C3D4E501", "04A1B2C3D4E502", "04A1B2C3D4E503")]


def test_station_run_through_pcscd_with_a_torn_tag(world, vpcd_reader):
    ctx = world.context("pcsc1")
    chips = [SimulatedNtag424(uid=uid) for uid in UIDS]
    # placement 1 is torn before its 11th APDU (index 10: the ChangeKey of slot 1) and placed again
    server = vpcd_reader.serve(chips, tear_at={1: 10})
    with vpcd_reader.open() as reader:
        events = list(station.run(ctx, station.ReaderSource(reader, timeout=15), count=len(chips)))
    server.join(10)
    assert server.error is None
    outcomes, summary = events[:-1], events[-1]
    assert [o.result for o in outcomes] == ["encoded", "torn", "resumed", "encoded"]
    assert summary.done == 3
    assert [p.torn for p in server.placements] == [False, True, False, False]

    reference_ctx = world.context("inproc")
    reference = SimulatedNtag424()
    assert process_tag(reference_ctx, reference).result == "encoded"
    for chip in chips:
        unit = world.store.unit_by_uid(chip.uid)
        assert unit.state == "encoded" and unit.read_counter == chip.view.read_counter
        keys = ctx.keys.chip_keys(ctx.product.keys.key_set, chip.uid, unit.key_versions)
        assert [chip.view.key(slot) for slot in range(5)] == [keys.key(slot) for slot in range(5)]
        # personalised through pcscd exactly as in-process: same keys versions and file settings
        assert chip.view.key_versions == reference.view.key_versions
        assert chip.view.file_settings_bytes(2) == reference.view.file_settings_bytes(2)
        chip.place()
        assert process_tag(reference_ctx, chip).result == "verified"
    units = list(world.store.units(ctx.batch_id))
    assert len({u.serial for u in units}) == len(units) == 4


def _station_cli(world, reader: str, batch: str, *extra: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    tagsmith = str(Path(sys.executable).with_name("tagsmith"))
    env = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": "station-test-pass-123", "COLUMNS": "200"}
    return subprocess.run([tagsmith, "--home", str(world.workspace.home), "station", "run", "--batch", batch,
                           "--reader", reader, *extra], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_a_reader_station_ends_when_its_batch_is_complete(world, vpcd_reader):
    import json

    batch = world.new_batch(2)
    spare = SimulatedNtag424(uid=bytes.fromhex("04A1B2C3D4E5FF"))
    chips = [SimulatedNtag424(uid=uid) for uid in UIDS[:2]] + [spare]
    server = vpcd_reader.serve(chips)
    run = _station_cli(world, vpcd_reader.reader, batch, "--allow-simulator-signature", "--wait", "15", "--json")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert [e["result"] for e in events[:-1]] == ["encoded", "encoded"]
    assert events[-1]["event"] == "summary" and events[-1]["batch_complete"] == {"done": 2, "quantity": 2}
    server.stop()
    server.join(10)
    # the third chip was never authenticated: the station ended before it, no work was left for it
    assert spare.view.key_versions == (0, 0, 0, 0, 0) and world.store.auth_failure(spare.uid) is None

    again = _station_cli(world, vpcd_reader.reader, batch, "--wait", "15")  # no tag placed at all
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("batch complete: 2 of 2") == 1 and "session" in again.stdout


def test_a_refused_simulated_chip_is_named_with_the_hint(world, vpcd_reader):
    chip = SimulatedNtag424(uid=UIDS[2])
    vpcd_reader.serve([chip])
    run = _station_cli(world, vpcd_reader.reader, world.batch_id, "--wait", "3")
    assert "refused" in run.stdout and UIDS[2].hex().upper() in run.stdout, run.stdout
    assert "--allow-simulator-signature" in run.stdout
    assert "Traceback" not in run.stderr
