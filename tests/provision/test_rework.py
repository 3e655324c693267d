"""provision.rework.reset_tag: back to factory, serial voided, foreign tags refused, torn resets finish."""

from __future__ import annotations

import pytest

from tagsmith.encoders.connection import TagRemovedError
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision.encode import TagRefused, process_tag
from tagsmith.provision.rework import reset_tag


def assert_factory(chip) -> None:
    fresh = SimulatedNtag424()
    assert chip.view.key_versions == (0,) * 5
    assert [chip.view.key(slot) for slot in range(5)] == [bytes(16)] * 5
    assert chip.view.file_settings_bytes(2) == fresh.view.file_settings_bytes(2)
    assert chip.view.file_contents(2) == bytes(256)
    assert chip.view.file_contents(1) == fresh.view.file_contents(1)  # the CC grants NDEF writes again, as delivered


def test_reset_returns_an_encoded_tag_to_factory_and_voids_its_serial(world):
    ctx = world.context()
    chip = SimulatedNtag424()
    first = process_tag(ctx, chip)
    assert first.result == "encoded"
    chip.place()
    result = reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
    assert result.serial == first.serial
    assert_factory(chip)
    unit = world.store.unit_by_serial(first.serial)
    assert unit.state == "voided" and unit.void_reason
    assert chip.view.tot_fail_counters == (0,) * 5  # never a failed authentication
    # placed again, the factory-fresh chip gets a new serial; the old one stays voided (burnt)
    chip.place()
    again = process_tag(ctx, chip)
    assert again.result == "encoded" and again.serial != first.serial
    assert world.store.unit_by_serial(first.serial).state == "voided"


def test_reset_tag_encodes_under_a_new_serial_in_another_workspace(world, world_factory, tmp_path):
    """Factory-fresh for real: another station database takes it as a new tag."""

    ctx = world.context()
    chip = SimulatedNtag424()
    first = process_tag(ctx, chip)
    chip.place()
    reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
    other = world_factory(tmp_path / "other")
    chip.place()
    outcome = process_tag(other.context(), chip)
    assert outcome.result == "encoded"
    assert other.store.unit_by_uid(chip.uid).state == "encoded"
    assert world.store.unit_by_serial(first.serial).state == "voided"


def test_reset_tag_reencodes_under_a_new_serial_same_database(world):
    ctx = world.context()
    chip = SimulatedNtag424()
    first = process_tag(ctx, chip)
    chip.place()
    reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
    chip.place()
    outcome = process_tag(ctx, chip)
    assert outcome.result == "encoded" and outcome.serial != first.serial


def test_foreign_tag_is_refused_without_authentication(world):
    chip = SimulatedNtag424(keys=[bytes([9]) * 16] * 5, key_versions=[3] * 5)
    sent = []

    class Recorder:
        def transceive(self, apdu):
            sent.append(bytes(apdu))
            return chip.transceive(apdu)

    with pytest.raises(TagRefused, match="not in this database"):
        reset_tag(world.store, world.keys, Recorder(), allow_simulator_signature=True)
    assert not {a[1] for a in sent if a[0] == 0x90} & {0x71, 0x77}
    assert chip.view.key_versions == (3,) * 5


def test_counterfeit_refused(world):
    ctx = world.context()
    chip = SimulatedNtag424()
    process_tag(ctx, chip)
    chip.place()
    with pytest.raises(TagRefused, match="originality"):
        reset_tag(world.store, world.keys, chip)  # simulator signature not accepted
    assert world.store.unit_by_uid(chip.uid).state == "encoded"


@pytest.mark.parametrize("commits", [True, False])
def test_torn_reset_finishes_on_a_second_run(world, commits):
    ctx = world.context()
    probe = SimulatedNtag424()
    process_tag(ctx, probe)
    probe.place()
    total = reset_tag(world.store, world.keys, probe, allow_simulator_signature=True).apdus
    for index in range(1, total + 1):
        chip = SimulatedNtag424(tear_commits=commits)
        assert process_tag(ctx, chip).result == "encoded"
        chip.place()
        chip.tear_at(index)
        with pytest.raises(TagRemovedError):
            reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
        chip.place()
        reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
        assert_factory(chip)
        assert world.store.unit_by_uid(chip.uid).state == "voided"
        assert chip.view.tot_fail_counters == (0,) * 5


def test_chip_whose_key_0_was_changed_behind_our_back_fails_once_and_is_never_tried_again(world):
    """Same version, other key (a foreign tool): one failed authentication, recorded, then refused up front."""
    from tagsmith.encoders.ntag424.session import Ntag424Session

    ctx = world.context()
    chip = SimulatedNtag424()
    assert process_tag(ctx, chip).result == "encoded"
    unit = world.store.unit_by_uid(chip.uid)
    chip.place()
    session = Ntag424Session(chip)
    session.select_application()
    session.authenticate_ev2_first(0, ctx.chip_keys(chip.uid, unit).key(0))
    session.change_key(0, bytes([5]) * 16, unit.key_versions[0])
    chip.place()
    with pytest.raises(TagRefused, match="refused key 0 .*91AE.*never authenticated again"):
        reset_tag(world.store, world.keys, chip, station="rework", allow_simulator_signature=True)
    assert chip.view.tot_fail_counters[0] == 1
    assert world.store.auth_failure(chip.uid).station == "rework"
    chip.place()
    with pytest.raises(TagRefused, match="refused an authentication"):
        reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
    chip.place()
    assert "never tried again" in process_tag(ctx, chip).reason  # the station will not try either
    assert chip.view.tot_fail_counters[0] == 1
