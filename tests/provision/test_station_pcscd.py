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
        assert unit.state == "encoded" and unit.read_counter == chip.read_counter
        keys = ctx.keys.chip_keys(ctx.product.keys.key_set, chip.uid, unit.key_versions)
        assert [chip.key(slot) for slot in range(5)] == [keys.key(slot) for slot in range(5)]
        # personalised through pcscd exactly as in-process: same keys versions and file settings
        assert chip.key_versions == reference.key_versions
        assert chip.file_settings_bytes(2) == reference.file_settings_bytes(2)
        chip.place()
        assert process_tag(reference_ctx, chip).result == "verified"
    units = list(world.store.units(ctx.batch_id))
    assert len({u.serial for u in units}) == len(units) == 4
