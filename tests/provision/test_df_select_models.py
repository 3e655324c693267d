"""tagsmith is correct on both candidate chips of docs/reference/ntag424.md §3.3: a DF select that ends the
authentication (the simulator's default, what silicon-tested Sphragis relies on) and one that keeps it.

The model is chosen as a line engineer would, through TAGSMITH_SIM_DF_SELECT, so every simulated chip made
here (the station's, the demo's pool, QA's) follows it. Station with a tear at every APDU index, `tag info`,
`tag verify` and `tag reset` in-process, and the demo (station, QA scan, tag verify --sim) through the CLI.
"""

from __future__ import annotations

import json

import pytest

from tagsmith.cli import main
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.encoders.simulator.chip import DF_SELECT_ENV
from tagsmith.provision.check import check_connection
from tagsmith.provision.encode import TagResult, process_tag
from tagsmith.provision.rework import reset_tag
from tagsmith.provision.taginfo import TagVerdict, inspect_tag

MODELS = ("ends-auth", "keeps-auth")


@pytest.fixture(params=MODELS)
def model(request, monkeypatch) -> str:
    monkeypatch.setenv(DF_SELECT_ENV, request.param)
    return request.param


def test_the_model_is_taken_from_the_environment(model):
    assert SimulatedNtag424()._chip.df_select_ends_auth is (model == "ends-auth")


def test_station_info_verify_and_reset_on_either_model(model, world):
    ctx = world.context()
    for index in range(1, 24):  # a tear at every APDU index of a placement, then the tag placed again
        uid = bytes([0x04, 0x51, index, 0x10, 0x20, 0x30, 0x40])
        chip = SimulatedNtag424(uid=uid, tear_after=index)
        first = process_tag(ctx, chip)
        chip.cancel_tear()  # a placement shorter than the index was not torn
        chip.place()
        again = process_tag(ctx, chip) if first.result == TagResult.TORN else first
        assert again.result in (TagResult.ENCODED, TagResult.RESUMED, TagResult.VERIFIED), (model, index, again.reason)
        chip.remove()
        chip.place()
        report = inspect_tag(chip, uid, allow_simulator_signature=True, lookup=lambda u: {"batch": world.batch_id})
        assert report.verdict == TagVerdict.TAGSMITH and 0 not in report.key_versions.values(), (model, index)
        assert report.ndef_url is not None and report.file_settings[2] != "not readable", (model, index)
        chip.remove()
        chip.place()
        checked = check_connection(world.store, world.keys, chip, allow_simulator_signature=True)
        assert checked.ok, (model, index, checked.reason)
    chip.remove()
    chip.place()
    reset = reset_tag(world.store, world.keys, chip, allow_simulator_signature=True)
    assert reset.uid == uid.hex().upper() and list(chip.view.key_versions) == [0] * 5


def test_the_demo_runs_station_qa_and_verify_on_either_model(model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", "tagsmith-demo-passphrase")
    with pytest.raises(SystemExit) as done:
        main(["--home", str(tmp_path / "ws"), "demo", "--units", "6", "--tear-rate", "0.3", "--seed", "7", "--json"])
    assert done.value.code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["station"]["batch_complete"] == {"done": 6, "quantity": 6}, summary["station"]
    assert any(line.startswith("QA: accept") for line in summary["lines"]), summary["lines"]
    assert summary["manifest"] and summary["epcis"]  # released by the QA decision, exported and verified
