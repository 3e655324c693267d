"""An LRP product end to end in-process: the switch inside the factory-key session, tears at every APDU,
a switched chip recognised by its 919D, and verify/reset/tag info/manifest knowing the mode.
"""

from __future__ import annotations

import dataclasses

import pytest

from tagsmith import ConfigError
from tagsmith.batches.product import parse_product
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision.catalog import register_product
from tagsmith.provision.check import check_connection, check_url
from tagsmith.provision.encode import TagRefused, process_tag
from tagsmith.provision.rework import reset_tag
from tagsmith.provision.taginfo import inspect_tag

from .conftest import DISHWASHER
from .test_station_faults import assert_sound, journal_of, present_until_done

LRP_ID = "aurora-dw600-lrp"


def lrp_product():
    data = DISHWASHER.read_bytes().replace(b'id = "aurora-dw600"', f'id = "{LRP_ID}"'.encode(), 1)
    return parse_product(b'secure_messaging = "lrp"\n' + data, "lrp product")


@pytest.fixture
def lrp_world(world):
    product = lrp_product()
    register_product(world.store, product, confirmed_by="eng")
    batch = world.store.create_batch(product.id, 200)
    return dataclasses.replace(world, product=product, batch_id=batch.id)


def assert_lrp_sound(ctx, chip, outcomes) -> None:
    assert chip.view.lrp
    assert_sound(ctx, chip, outcomes)
    assert ctx.store.auth_failure(chip.uid) is None


def test_an_lrp_product_needs_the_irreversible_switch_confirmed(world):
    product = lrp_product()
    assert product.secure_messaging == "lrp"
    with pytest.raises(ConfigError, match="an LRP chip cannot go back to AES.*--confirm-irreversible"):
        register_product(world.store, product)
    register_product(world.store, product, confirmed_by="eng")
    by, at = world.store.irreversible_confirmation(product.sha256)
    assert by == "eng" and at
    assert world.store.irreversible_confirmation(world.product.sha256) is None  # the AES product needs none


def test_a_fresh_chip_is_switched_before_any_write_and_personalised_over_lrp(lrp_world):
    ctx = lrp_world.context()
    chip = SimulatedNtag424()
    outcome = process_tag(ctx, chip)
    assert outcome.result == "encoded", outcome
    assert outcome.apdus == 20  # the AES tag's 16, SetConfiguration 1, AuthenticateLRPFirst 2, NDEF in 2 frames
    commands = list(outcome.commands)
    switch = commands.index("SetConfiguration")
    assert commands[switch - 2:switch] == ["AuthenticateEV2First", "AuthenticateEV2First+AF"]
    assert commands[switch + 1:switch + 3] == ["AuthenticateLRPFirst", "AuthenticateLRPFirst+AF"]
    assert "WriteData" not in commands[:switch]
    assert journal_of(ctx, chip)[0] == ("lrp", False)
    assert_lrp_sound(ctx, chip, [outcome])
    # a phone's tap is an LRP SUN (48 hex characters of PICC data) that the resolver's check accepts
    chip.place()
    url = Ntag424Session(chip).read_ndef_as_phone()
    assert len(url.split("p=")[1].split("&")[0]) == 48
    assert check_url(lrp_world.store, lrp_world.keys, url).ok


@pytest.mark.parametrize("commits", [True, False], ids=["commits", "lost"])
def test_tear_after_every_apdu_resumes_to_a_verified_lrp_tag(lrp_world, commits):
    ctx = lrp_world.context()
    for index in range(1, 21):
        chip = SimulatedNtag424(tear_commits=commits)
        outcomes = present_until_done(ctx, chip, tears=[index])
        assert outcomes[0].result == "torn", (index, outcomes[0])
        assert_lrp_sound(ctx, chip, outcomes)


def test_a_switch_whose_answer_was_lost_is_told_by_the_chips_919d(lrp_world):
    """Torn as the switch lands: nothing journaled; the next placement's AES authentication is answered 919D."""
    ctx = lrp_world.context()
    chip = SimulatedNtag424()
    outcomes = present_until_done(ctx, chip, tears=[8])  # SetConfiguration is the 8th APDU; its effect kept
    assert [o.result for o in outcomes] == ["torn", "resumed"]
    second = list(outcomes[1].commands)
    assert second.count("AuthenticateEV2First") == 1 and "SetConfiguration" not in second  # 919D at part 1
    assert ("lrp", False) not in journal_of(ctx, chip)
    assert_lrp_sound(ctx, chip, outcomes)


def test_a_journaled_switch_goes_straight_to_lrp(lrp_world):
    ctx = lrp_world.context()
    chip = SimulatedNtag424()
    outcomes = present_until_done(ctx, chip, tears=[10])  # torn during the LRP authentication
    assert "AuthenticateEV2First" not in outcomes[1].commands
    assert_lrp_sound(ctx, chip, outcomes)


def test_a_chip_already_in_lrp_mode_is_personalised_without_a_switch(lrp_world):
    ctx = lrp_world.context()
    chip = SimulatedNtag424(lrp=True)
    outcome = process_tag(ctx, chip)
    assert outcome.result == "encoded", outcome
    assert "SetConfiguration" not in outcome.commands and outcome.apdus == 18
    assert_lrp_sound(ctx, chip, [outcome])


def test_an_aes_product_sets_an_lrp_chip_aside(world):
    chip = SimulatedNtag424(lrp=True)
    outcome = process_tag(world.context(), chip)
    assert outcome.result == "refused" and "919D" in outcome.reason
    assert chip.view.lrp and chip.view.key_versions == (0,) * 5


def test_verify_info_and_reset_know_an_lrp_chip(lrp_world):
    ctx = lrp_world.context()
    chip = SimulatedNtag424()
    serial = process_tag(ctx, chip).serial
    chip.place()
    assert check_connection(lrp_world.store, lrp_world.keys, chip, allow_simulator_signature=True).ok

    def lookup(uid: bytes) -> dict:
        return {"product": LRP_ID, "serial": serial, "state": "encoded", "secure_messaging": "lrp"}

    report = inspect_tag(chip, chip.uid, allow_simulator_signature=True, lookup=lookup)
    assert report.secure_messaging == {"database": "lrp", "sun_url": "lrp"}
    with pytest.raises(TagRefused, match="an LRP chip cannot go back to AES"):
        reset_tag(lrp_world.store, lrp_world.keys, chip, allow_simulator_signature=True)
    assert lrp_world.store.unit_by_serial(serial).state == "verified"  # nothing voided, nothing written
    assert chip.view.lrp and chip.view.tot_fail_counters == (0,) * 5


@pytest.mark.pcscd
def test_an_lrp_product_through_pcscd_with_a_tear_as_the_switch_lands(lrp_world, vpcd_reader):
    from tagsmith.provision import station

    ctx = lrp_world.context("pcsc1")
    chips = [SimulatedNtag424(uid=bytes.fromhex(h)) for h in ("04A1B2C3D4E5A1", "04A1B2C3D4E5A2")]
    server = vpcd_reader.serve(chips, tear_at={1: 7})  # placement 1 torn at its 8th APDU, SetConfiguration
    with vpcd_reader.open() as reader:
        events = list(station.run(ctx, station.ReaderSource(reader, timeout=15), count=len(chips)))
    server.join(10)
    assert server.error is None
    assert [o.result for o in events[:-1]] == ["encoded", "torn", "resumed"]
    for chip in chips:
        assert chip.view.lrp and lrp_world.store.unit_by_uid(chip.uid).state == "encoded"
        chip.place()
        assert process_tag(lrp_world.context("inproc"), chip).result == "verified"


def test_tag_info_through_a_reader_names_the_mode_from_the_database_and_the_sun_url(lrp_world):
    from .test_taginfo_cli import _tag_info

    chip = SimulatedNtag424()
    assert process_tag(lrp_world.context(), chip).result == "encoded"
    chip.place()
    info = _tag_info(lrp_world.workspace.home, chip)
    assert info["verdict"] == "personalised by tagsmith", info
    assert info["secure_messaging"] == {"database": "lrp", "sun_url": "lrp"}
    assert chip.view.tot_fail_counters == (0,) * 5  # tag info never authenticates
