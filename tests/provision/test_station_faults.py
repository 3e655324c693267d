"""Fault tests of the encoding station: a tear after every APDU, foreign/other/counterfeit tags, two stations.

A tag is cut from the field after each APDU index of a clean run in turn (verification included),
with the torn command's effect kept (``tear_commits=True``) and lost (``False``), then presented
again until done. Every cut must end as a verified unit with the target keys, one serial and a
record matching the chip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision.encode import process_tag
from tagsmith.provision.plan import FACTORY_VERSION

DONE = ("encoded", "resumed")
WORKER = Path(__file__).with_name("station_worker.py")


class RecordingChip:
    """A Connection that remembers every C-APDU sent to the chip."""

    def __init__(self, chip):
        self.chip, self.apdus = chip, []

    def transceive(self, apdu: bytes):
        self.apdus.append(bytes(apdu))
        return self.chip.transceive(apdu)

    def native_ins(self) -> set[int]:
        return {a[1] for a in self.apdus if a[0] == 0x90}


def present_until_done(ctx, chip, *, limit: int = 6, tears=()):
    """Place, process, remove; repeat until a done result. ``tears[i]`` arms a tear on placement i."""
    outcomes = []
    for placement in range(limit):
        chip.place()
        if placement < len(tears) and tears[placement]:
            chip.tear_at(tears[placement])
        outcomes.append(process_tag(ctx, chip))
        chip.cancel_tear()
        chip.remove()
        if outcomes[-1].result in DONE:
            return outcomes
        assert outcomes[-1].result == "torn", outcomes[-1]
    raise AssertionError(f"not done after {limit} placements: {outcomes}")


def target_versions(ctx) -> tuple[int, ...]:
    return tuple(ctx.versions[slot] for slot in range(5))


def assert_sound(ctx, chip, outcomes) -> None:
    """The chip is ours, fully keyed, recorded once as encoded with the chip's read counter."""
    store = ctx.store
    assert outcomes[-1].result in DONE
    assert not [o for o in outcomes if o.result not in DONE + ("torn",)], outcomes
    assert chip.view.key_versions == target_versions(ctx)
    assert chip.view.file_contents(1)[0x0E] == 0xFF  # the CC tells phones the NDEF file is not theirs to write
    unit = store.unit_by_uid(chip.uid)
    assert unit is not None and unit.state == "encoded"
    assert unit.read_counter == chip.view.read_counter
    assert unit.key_versions == {slot: v for slot, v in enumerate(target_versions(ctx))}
    assert outcomes[-1].serial == unit.serial
    units = list(store.units(ctx.batch_id))
    assert len({u.serial for u in units}) == len(units)
    assert len({u.uid for u in units}) == len(units)
    assert all(u.state not in ("allocated", "encoding") or u.uid == chip.uid for u in units)
    # a further placement verifies as complete (the phone view agrees with the record)
    chip.place()
    again = process_tag(ctx, chip)
    chip.remove()
    assert again.result == "verified", again
    assert store.unit_by_uid(chip.uid).verified_counter == chip.view.read_counter


def clean_apdu_count(ctx) -> int:
    chip = SimulatedNtag424()
    outcome = process_tag(ctx, chip)
    assert outcome.result == "encoded", outcome
    return outcome.apdus


def test_clean_run_is_within_budget(station_ctx):
    chip = SimulatedNtag424()
    outcome = process_tag(station_ctx, chip)
    assert outcome.result == "encoded"
    assert outcome.apdus == 16
    assert "GetKeyVersion" not in outcome.commands  # an unknown UID needs no probe
    assert outcome.commands[-1] == "ReadData"
    assert "AuthenticateEV2First" in outcome.commands
    unit = station_ctx.store.unit_by_uid(chip.uid)
    journal = [(e.event, (e.detail or {}).get("step")) for e in station_ctx.store.unit_events(unit.id)]
    assert journal == [("allocated", None), ("encoding_started", None), ("step", "ndef"), ("step", "sdm"),
                       ("step", "cc"), ("step", "key1"), ("step", "key2"), ("step", "key3"), ("step", "key4"), ("step", "key0"),
                       ("encoded", None)]


def test_allocation_is_on_disk_before_the_first_key_change(station_ctx, sync_helper):
    """The allocation's fsync overlaps the NDEF and settings writes, and ends before any ChangeKey."""
    import time

    synced = sync_helper(delay=0.05)  # a slow disk: without the barrier the ChangeKeys would overtake it
    sent: list[tuple[str, float]] = []

    class Logging(RecordingChip):
        def transceive(self, apdu):
            sent.append((f"{apdu[1]:02X}", time.monotonic()))
            return super().transceive(apdu)

    outcome = process_tag(station_ctx, Logging(SimulatedNtag424()))
    assert outcome.result == "encoded"
    (_, synced_at), = synced()[:1]
    first = {}
    for ins, at in sent:
        first.setdefault(ins, at)
    assert first["8D"] < synced_at < first["C4"]  # WriteData went out beside the sync; no ChangeKey before it
    assert first["71"] < first["8D"]  # the allocation (and its sync) came after the authentication


def test_resumed_tag_journals_a_new_start_and_only_the_steps_it_did(world):
    ctx = world.context()
    chip = SimulatedNtag424()
    outcomes = present_until_done(ctx, chip, tears=[13])  # torn at the 13th APDU, a ChangeKey
    assert [o.result for o in outcomes] == ["torn", "resumed"]
    unit = ctx.store.unit_by_uid(chip.uid)
    journal = [(e.event, (e.detail or {}).get("step")) for e in ctx.store.unit_events(unit.id)]
    assert journal[:5] == [("allocated", None), ("encoding_started", None), ("step", "ndef"), ("step", "sdm"),
                           ("step", "cc")]
    restart = journal.index(("encoding_started", None), 2)
    assert ("step", "key0") in journal[restart:] and journal[-1] == ("encoded", None)


def journal_of(ctx, chip):
    unit = ctx.store.unit_by_uid(chip.uid)
    return [(e.detail["step"], e.detail.get("found", False)) for e in ctx.store.unit_events(unit.id)
            if e.event == "step"]


def test_a_torn_tag_journals_the_steps_the_chip_confirmed(world):
    ctx = world.context()
    chip = SimulatedNtag424()
    chip.place()
    chip.tear_at(13)  # the third ChangeKey (key 3) never reaches the chip
    assert process_tag(ctx, chip).result == "torn"
    chip.remove()
    assert journal_of(ctx, chip) == [("ndef", False), ("sdm", False), ("cc", False), ("key1", False),
                                     ("key2", False)]


def test_ctrl_c_mid_tag_journals_the_confirmed_steps_before_it_stops(world):
    ctx = world.context()

    class Interrupted(RecordingChip):
        def transceive(self, apdu):
            if len(self.apdus) == 12:  # Ctrl-C while the 13th APDU (ChangeKey 3) would go out
                raise KeyboardInterrupt
            return super().transceive(apdu)

    chip = SimulatedNtag424()
    with pytest.raises(KeyboardInterrupt):
        process_tag(ctx, Interrupted(chip))
    assert ctx.store.unit_by_uid(chip.uid).state == "encoding"
    assert journal_of(ctx, chip) == [("ndef", False), ("sdm", False), ("cc", False), ("key1", False),
                                     ("key2", False)]


def test_a_killed_station_loses_only_the_tags_steps_and_its_resume_journals_what_it_finds(world, monkeypatch):
    """A kill leaves no chance to flush; the unit stays encoding and resume reads the keys off the chip."""
    import tagsmith.provision.encode as encode

    ctx = world.context()
    chip = SimulatedNtag424()
    monkeypatch.setattr(encode, "_flush_journal", lambda tag: None)  # the process died after the chip's answer
    outcomes = present_until_done(ctx, chip, tears=[14])  # cut as key 4's change lands, unanswered
    monkeypatch.undo()
    assert [o.result for o in outcomes] == ["torn", "resumed"]
    assert journal_of(ctx, chip) == [("ndef", False), ("sdm", False), ("cc", False), ("key1", True), ("key2", True),
                                     ("key3", True), ("key4", True), ("key0", False)]
    assert_sound(ctx, chip, outcomes)


@pytest.mark.parametrize("commits", [True, False], ids=["commits", "lost"])
def test_tear_after_every_apdu_resumes(world, commits):
    ctx = world.context()
    n = clean_apdu_count(ctx)
    for index in range(1, n + 1):
        chip = SimulatedNtag424(tear_commits=commits)
        outcomes = present_until_done(ctx, chip, tears=[index])
        assert outcomes[0].result == "torn", (index, outcomes[0])
        assert_sound(ctx, chip, outcomes)


@pytest.mark.parametrize("commits", [True, False], ids=["commits", "lost"])
def test_second_tear_during_resume(world, commits):
    """Torn once, then torn again at every APDU of the resuming placement (verification included)."""
    ctx = world.context()
    n = clean_apdu_count(ctx)
    for first in range(8, n + 1, 2):  # first cut after allocation, at alternate indices
        for second in range(1, n + 1):
            chip = SimulatedNtag424(tear_commits=commits)
            outcomes = present_until_done(ctx, chip, tears=[first, second, second])
            assert_sound(ctx, chip, outcomes)


def test_foreign_chip_costs_one_failed_authentication_ever(station_ctx):
    """Unknown UID: the factory key is tried once, the refusal is recorded, no later placement tries again."""
    keys = [bytes([i + 1]) * 16 for i in range(5)]
    chip = SimulatedNtag424(keys=keys, key_versions=[7, 7, 7, 7, 7])
    recorder = RecordingChip(chip)
    outcome = process_tag(station_ctx, recorder)
    assert outcome.result == "refused" and "not in this database" in outcome.reason and "91AE" in outcome.reason
    assert [a[1] for a in recorder.apdus if a[0] == 0x90].count(0x71) == 1
    assert not recorder.native_ins() & {0x8D, 0x5F, 0xC4, 0x77}
    assert station_ctx.store.unit_by_uid(chip.uid) is None
    assert station_ctx.store.batch(station_ctx.batch_id).allocated == 0  # no serial burnt
    assert chip.view.tot_fail_counters == (1, 0, 0, 0, 0)
    failure = station_ctx.store.auth_failure(chip.uid)
    assert (failure.key_no, failure.status, failure.station) == (0, "91AE", station_ctx.station)
    for _ in range(2):  # placed again, on any station sharing the database: never authenticated
        recorder.apdus.clear()
        again = process_tag(station_ctx, recorder)
        assert again.result == "refused" and "never tried again" in again.reason
        assert not recorder.native_ins() & {0x71, 0x77, 0x64}
    assert chip.view.tot_fail_counters == (1, 0, 0, 0, 0)
    station_ctx.store.clear_auth_failure(chip.uid, "test: try once more")  # an engineer clears it
    recorder.apdus.clear()
    retried = process_tag(station_ctx, recorder)  # one more authentication, refused and recorded again
    assert retried.result == "refused" and "91AE" in retried.reason
    assert [a[1] for a in recorder.apdus if a[0] == 0x90].count(0x71) == 1
    assert chip.view.tot_fail_counters == (2, 0, 0, 0, 0) and station_ctx.store.auth_failure(chip.uid) is not None


def test_a_status_that_is_no_verdict_on_the_key_fails_the_placement_only(station_ctx):
    """91CA (an aborted exchange) on the authentication is not remembered: the next placement encodes."""
    chip = SimulatedNtag424()

    class Aborting(RecordingChip):
        def transceive(self, apdu):
            if apdu[:2] == b"\x90\x71":
                return b"", 0x91CA
            return super().transceive(apdu)

    outcome = process_tag(station_ctx, Aborting(chip))
    assert outcome.result == "failed" and "91CA" in outcome.reason
    assert station_ctx.store.auth_failure(chip.uid) is None
    assert station_ctx.store.unit_by_uid(chip.uid) is None
    chip.place()
    assert process_tag(station_ctx, chip).result == "encoded"


def test_foreign_chip_with_factory_key_versions_is_refused_before_any_write(station_ctx):
    """Another tool changed key 0 but left its version 00: the authentication, not the version, decides."""
    chip = SimulatedNtag424(keys=[bytes([9]) * 16] + [bytes(16)] * 4)
    outcome = process_tag(station_ctx, chip)
    assert outcome.result == "refused" and "91AE" in outcome.reason
    assert station_ctx.store.unit_by_uid(chip.uid) is None
    assert chip.view.key_versions == (FACTORY_VERSION,) * 5 and chip.view.tot_fail_counters[0] == 1


def test_chip_of_another_batch_refused(world):
    first = world.context("st1")
    chip = SimulatedNtag424()
    assert process_tag(first, chip).result == "encoded"
    other = world.context("st2", batch_id=world.new_batch(5))
    recorder = RecordingChip(chip)
    outcome = process_tag(other, recorder)
    assert outcome.result == "refused" and first.batch_id in outcome.reason
    assert not recorder.native_ins() & {0x71, 0x77}
    assert list(world.store.units(other.batch_id)) == []


def test_counterfeit_refused(world):
    ctx = world.context(allow_simulator_signature=False)
    chip = SimulatedNtag424()
    recorder = RecordingChip(chip)
    outcome = process_tag(ctx, recorder)
    assert outcome.result == "refused" and "originality" in outcome.reason
    assert not recorder.native_ins() & {0x71, 0x77, 0xC4, 0x8D, 0x5F}
    assert world.store.unit_by_uid(chip.uid) is None
    assert chip.view.key_versions == (FACTORY_VERSION,) * 5


def test_random_id_chip_refused(station_ctx):
    chip = SimulatedNtag424(random_id=True)
    recorder = RecordingChip(chip)
    outcome = process_tag(station_ctx, recorder)
    assert outcome.result == "refused" and "Random ID" in outcome.reason
    assert not recorder.native_ins() & {0x71, 0x77}
    assert list(station_ctx.store.units(station_ctx.batch_id)) == []


def test_two_station_processes_never_share_a_serial(world):
    per_station = 40
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(world.workspace.home), world.batch_id,
                               f"st{i}", str(per_station), str(100 + i)], stdout=subprocess.PIPE, text=True)
             for i in (1, 2)]
    summaries = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert [s["counts"] for s in summaries] == [{"encoded": per_station}] * 2
    units = list(world.store.units(world.batch_id))
    assert len(units) == 2 * per_station
    assert len({u.serial for u in units}) == len(units)
    assert len({u.uid for u in units}) == len(units)
    assert {u.station for u in units} == {"st1", "st2"}
    assert all(u.state == "encoded" for u in units)
    assert world.store.batch(world.batch_id).allocated == 2 * per_station
