"""QA's checks one by one: each judges only its explicit inputs, and a missing input skips it with a reason."""

from __future__ import annotations

import json

from tagsmith.batches.qarecords import QaDecision, QaStatus
from tagsmith.batches.records import Unit, UnitState
from tagsmith.encoders.ntag424.originality import Signer
from tagsmith.provision.qa_checks import (
    ChipReading,
    check_counter,
    check_label,
    check_originality,
    check_sample,
    check_sun,
    check_uid,
    check_unit,
    parse_link,
)

UID = bytes.fromhex("04112233445566")
LINK = "https://id.example.com/01/09506000134376/21/SN1"


def _unit(state: UnitState = UnitState.ENCODED, batch: str = "B1") -> Unit:
    return Unit(id=1, batch_id=batch, serial="SN1", uid=UID, state=state, station=None)


def test_a_check_without_its_input_is_skipped_with_the_reason() -> None:
    unreadable = ChipReading(UID, Signer.NXP, None, None, "NDEF unreadable: boom")
    check, sun = check_sun(unreadable, None)
    assert (check.passed, check.detail, sun) == (None, "NDEF unreadable: boom", None)
    readable = ChipReading(UID, Signer.NXP, b"", LINK)
    assert check_sun(readable, None)[0].detail == "no keys for an unknown chip"
    assert check_uid(readable, None, None, None).passed is None
    assert check_counter(None, 5).passed is None
    assert check_label(parse_link(LINK, "label"), parse_link(None, "chip")).passed is None


def test_each_check_judges_its_own_inputs() -> None:
    assert check_originality(ChipReading(UID, Signer.NONE, None, None)).passed is False
    assert check_originality(ChipReading(UID, Signer.NXP, None, None)).key == Signer.NXP.value
    assert check_unit(None, UID, "B1").passed is False
    assert check_unit(_unit(batch="B2"), UID, "B1").passed is False
    assert "voided" in check_unit(_unit(UnitState.VOIDED), UID, "B1").detail
    assert check_unit(_unit(), UID, "B1").passed is True
    assert check_counter(6, 5).passed is True and check_counter(5, 5).passed is False
    assert check_label(parse_link("hello", "label"), parse_link(LINK, "chip")).passed is False
    assert check_label(parse_link(LINK.replace("SN1", "SN2"), "label"), parse_link(LINK, "chip")).passed is False
    assert check_label(parse_link(LINK, "label"), parse_link(LINK, "chip")).passed is True


def test_sample_check_names_the_unit_and_notes_a_repeat() -> None:
    check, serial, note = check_sample(("SN9", "SN1"), {"SN1", "SN2"}, {"SN1"}, "P")
    assert (check.passed, serial) == (True, "SN1") and "already inspected" in note
    check, serial, note = check_sample(("SN9", None), {"SN1"}, set(), "P")
    assert (check.passed, serial, note) == (False, "SN9", "") and "not in the sample of plan P" in check.detail


def test_vocabularies_serialise_as_their_stored_text() -> None:
    row = {"id": 1, "batch_id": "B1", "serial": "SN1", "uid": UID, "state": "verified", "station": None,
           "key_versions": None, "read_counter": 3, "verified_counter": 4, "qa_status": "pass", "allocated_at": "t",
           "encoded_at": None, "verified_at": None, "voided_at": None, "void_reason": None}
    unit = Unit.from_row(row)
    assert unit.state is UnitState.VERIFIED and unit.qa_status is QaStatus.PASS
    text = json.dumps(unit.to_dict())
    assert '"state": "verified"' in text and '"qa": "pass"' in text and '"floor": 4' in text
    assert json.dumps({QaDecision.ACCEPT: QaDecision.ACCEPT}) == '{"accept": "accept"}'
    assert f"{UnitState.ENCODED:9}|" == "encoded  |"
