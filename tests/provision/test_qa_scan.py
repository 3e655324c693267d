"""QA scan sessions on a batch personalised by the real station over simulated chips; release gate; CLI.

The defects are made the way they happen on a line: a door label of another serial stuck on a
unit (cloned label), an old copy of a unit's chip whose counter is not above what was recorded
(replayed chip data), and a chip that was never ours in a unit's place (foreign chip).
"""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith.batches.gs1 import UnitUrls
from tagsmith.batches.product import load_product
from tagsmith.batches.store import Store, open_store
from tagsmith.cli import app
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.keystore import init_keystore, open_keystore
from tagsmith.provision import station
from tagsmith.provision.encode import EncodeContext, process_tag
from tagsmith.provision.qa import QaSession
from tagsmith.provision.qa_plan import create_plan, release_check
from tagsmith.provision.simpool import SimChipPool, random_uid
from tagsmith.workspace import Workspace

PASSPHRASE = "qa-test-passphrase"
PRODUCT = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
runner = CliRunner()


def _build(home: Path, units: int) -> str:
    ws = Workspace.resolve(home)
    ks = init_keystore(ws, "file", passphrase=PASSPHRASE, scrypt_n=2**10)
    product = load_product(PRODUCT)
    ks.create_key_set(product.keys.key_set, system_id=product.keys.system_id)
    with open_store(ws) as store:
        store.add_product(product)
        batch = store.create_batch(product.id, units, batch_id="B1")
        ctx = EncodeContext(store=store, keys=ks, product=product, batch_id=batch.id, station="st1",
                            allow_simulator_signature=True)
        source = station.SimulatedSource(units, seed=7, pool=SimChipPool(home / "sim-chips"))
        events = list(station.run(ctx, source))
        assert events[-1].done == units
    ks.close() if hasattr(ks, "close") else None
    return batch.id


@pytest.fixture(scope="module")
def big_lot(tmp_path_factory) -> Path:
    """281 units: level III gives code letter J, AQL 1.0 -> n 80, Ac 2, Re 3."""
    home = tmp_path_factory.mktemp("big") / "ws"
    _build(home, 281)
    return home


@pytest.fixture(scope="module")
def small_lot(tmp_path_factory) -> Path:
    """60 units: level II gives code letter E, AQL 0.65 -> n 20, Ac 0, Re 1."""
    home = tmp_path_factory.mktemp("small") / "ws"
    _build(home, 60)
    return home


@pytest.fixture
def ws(request, tmp_path, monkeypatch) -> Workspace:
    """A private copy of a built workspace (the test may damage chips and write results)."""
    home = tmp_path / "ws"
    shutil.copytree(request.getfixturevalue(request.param), home)
    monkeypatch.setenv("TAGSMITH_HOME", str(home))
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", PASSPHRASE)
    return Workspace.resolve(home)


def _urls(store: Store) -> UnitUrls:
    product = store.batch_product("B1")
    return UnitUrls(product.resolver, product.gtin, None)


def _make_replayed(ws: Workspace, store: Store, serial: str) -> None:
    """Keep an old copy of the chip, let the line verify the real one, put the copy in its place."""
    pool = SimChipPool(ws.home / "sim-chips")
    unit = store.unit_by_serial(serial)
    old_copy = pool.path(unit.uid).read_bytes()
    keys = open_keystore(ws, PASSPHRASE)
    chip = pool.load(unit.uid)
    chip.place()
    ctx = EncodeContext(store=store, keys=keys, product=store.batch_product("B1"), batch_id="B1", station="st1",
                        allow_simulator_signature=True)
    outcome = process_tag(ctx, chip)
    assert outcome.result == "verified", outcome
    pool.path(unit.uid).write_bytes(old_copy)


def _make_foreign(ws: Workspace, store: Store, serial: str) -> bytes:
    """A chip that was never ours, found where the unit's chip should be."""
    pool = SimChipPool(ws.home / "sim-chips")
    unit = store.unit_by_serial(serial)
    stranger = SimulatedNtag424(uid=random_uid(random.Random(99)))
    pool.write(unit.uid, stranger.snapshot())
    return stranger.uid


def _scan(args: list[str], labels: Path | None = None):
    extra = ["--labels", str(labels)] if labels else []
    return runner.invoke(app, ["qa", "scan", *args, *extra, "--json"])


def _code(result) -> int:
    """The exit code tagsmith.cli.main would give (it maps a TagsmithError to its exit_code)."""
    if result.exception is None or isinstance(result.exception, SystemExit):
        return result.exit_code
    return getattr(result.exception, "exit_code", 70)


@pytest.mark.parametrize("ws", ["big_lot"], indirect=True)
def test_scan_rejects_exactly_the_cloned_label_the_replay_and_the_foreign_chip(ws, tmp_path):
    with open_store(ws) as store:
        plan = create_plan(store, "B1", aql="1.0", level="III", seed=2859)
        assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("J", 80, 2, 3)
        cloned, replayed, foreign = plan.serials[-3:]
        other = next(u.serial for u in store.units("B1") if u.serial not in plan.serials)
        _make_replayed(ws, store, replayed)
        _make_foreign(ws, store, foreign)
        urls = _urls(store)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(urls(other if s == cloned else s) + "\n" for s in plan.serials))

    result = _scan(["--batch", "B1", "--sim"], labels)
    assert _code(result) == 6, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    units, decision = lines[:-1], lines[-1]
    assert decision["decision"] == "reject" and decision["defects"] == 3 and decision["inspected"] == 80
    failed = {u["serial"]: u for u in units if not u["passed"]}
    assert set(failed) == {None, replayed, foreign}  # the cloned label names no sample unit: matched by content
    assert all(u["counted"] for u in units) and len(units) == 80

    def verdicts(serial):
        return {c["name"]: c["passed"] for c in failed[serial]["checks"]}

    assert verdicts(None) == {"label": False}
    assert "cloned or swapped label" in failed[None]["reason"] and other in failed[None]["reason"]
    assert "not in the sample" in failed[None]["reason"]
    assert verdicts(replayed) == {"originality": True, "unit": True, "sun": True, "uid": True, "counter": False,
                                  "label": True, "sample": True}
    assert "replayed" in failed[replayed]["reason"]
    assert verdicts(foreign)["unit"] is False and "foreign chip" in failed[foreign]["reason"]
    assert verdicts(foreign)["sun"] is None and verdicts(foreign)["sample"] is True

    with open_store(ws) as store:  # everything recorded
        assert store.qa_decision("B1").decision == "reject"
        assert store.unit_by_serial(cloned).qa_status is None  # its chip was never paired with a wrong label
        assert store.unit_by_serial(other).qa_status is None  # the label names it; its chip was not inspected
        assert store.unit_by_serial(plan.serials[0]).qa_status == "pass"
        assert len(store.qa_results(plan.id)) == 80
        with pytest.raises(Exception, match="rejected"):
            release_check(store, "B1")


@pytest.mark.parametrize("ws", ["small_lot"], indirect=True)
def test_accept_only_after_the_whole_sample_and_resume_across_sessions(ws, tmp_path):
    result = runner.invoke(app, ["--user", "Dana (QA)", "qa", "plan", "--batch", "B1", "--seed", "5", "--json"],
                           catch_exceptions=False)
    plan = json.loads(result.stdout)
    assert plan["created_by"] == "Dana (QA)"
    assert (plan["code_letter"], plan["sample_size"], plan["accept"], plan["reject"]) == ("E", 20, 0, 1)
    assert len(plan["serials"]) == 20 and plan["seed"] == "5"
    again = json.loads(runner.invoke(app, ["qa", "plan", "--batch", "B1", "--json"]).stdout)
    assert again["serials"] == plan["serials"]  # recorded, never redrawn
    with open_store(ws) as store:
        urls = _urls(store)
    first, rest = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("".join(urls(s) + "\n" for s in plan["serials"][:12]))
    rest.write_text("".join(urls(s) + "\n" for s in plan["serials"][12:]))
    partial = _scan(["--batch", "B1", "--sim"], first)
    assert _code(partial) == 0
    assert json.loads(partial.stdout.splitlines()[-1])["decision"] is None  # 12 of 20: no early accept
    done = runner.invoke(app, ["qa", "scan", "--batch", "B1", "--sim", "--labels", str(rest), "--json"],
                         env={"TAGSMITH_USER": "Sam"})
    decision = json.loads(done.stdout.splitlines()[-1])
    assert _code(done) == 0 and decision["decision"] == "accept" and decision["inspected"] == 20
    with open_store(ws) as store:
        inspectors = [r.inspector for r in store.qa_results(plan["plan_id"])]
        assert inspectors[12:] == ["Sam"] * 8 and "Sam" not in inspectors[:12]
        first = store.qa_results(plan["plan_id"])[0]
        originality = next(c for c in first.checks if c["name"] == "originality")
        assert originality["passed"] and "simulator test signature" in originality["detail"]  # never "NXP"
        assert release_check(store, "B1")["plan_id"] == plan["plan_id"]
        assert store.qa_switching("aurora-dw600")["lots"] == 1
    unknown = runner.invoke(app, ["qa", "scan", "--batch", "NOPE", "--sim", "--json"])
    assert _code(unknown) == 8 and "no batch" in str(unknown.exception)


@pytest.mark.parametrize("ws", ["small_lot"], indirect=True)
def test_sim_scan_matches_labels_by_content_in_any_order_and_a_repeat_is_no_defect(ws, tmp_path):
    with open_store(ws) as store:
        plan = create_plan(store, "B1", seed=21)
        urls = _urls(store)
    serials = list(plan.serials)
    shuffled = serials[::-1]
    order = shuffled[:3] + [shuffled[1]] + shuffled[3:]  # the second label is scanned twice; a blank line is no scan
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(urls(s) + "\n" for s in order[:5]) + "\n" + "".join(urls(s) + "\n" for s in order[5:]))

    result = _scan(["--batch", "B1", "--sim"], labels)
    assert _code(result) == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    units, decision = lines[:-1], lines[-1]
    assert decision["decision"] == "accept" and decision["defects"] == 0 and decision["inspected"] == 20
    assert [u["serial"] for u in units if u["counted"]] == shuffled and all(u["passed"] for u in units)
    [repeat] = [u for u in units if not u["counted"]]
    assert repeat["serial"] == shuffled[1] and "repeat" in repeat["note"]
    with open_store(ws) as store:
        assert all(store.unit_by_serial(s).qa_status == "pass" for s in serials)


@pytest.mark.parametrize("ws", ["big_lot"], indirect=True)
def test_sim_scan_label_of_no_unit_is_a_defect_with_its_reason(ws, tmp_path):
    with open_store(ws) as store:
        plan = create_plan(store, "B1", aql="1.0", level="III", seed=2859)  # Ac 2, Re 3
        urls = _urls(store)
        product = store.batch_product("B1")
    foreign_gtin = UnitUrls(product.resolver, "09506000134352", None)(plan.serials[1])
    labels = tmp_path / "labels.txt"
    labels.write_text(f"{urls(plan.serials[0])}\n{foreign_gtin}\nnot a url\n{urls('ZZ-NO-SUCH-SERIAL')}\n")

    result = _scan(["--batch", "B1", "--sim"], labels)
    assert _code(result) == 6, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    units, decision = lines[:-1], lines[-1]
    assert decision["decision"] == "reject" and decision["defects"] == 3 and decision["inspected"] == 4
    assert units[0]["passed"] and units[0]["serial"] == plan.serials[0]
    reasons = [u["reason"] for u in units[1:]]
    assert all(not u["passed"] and u["counted"] and u["serial"] is None for u in units[1:])
    assert "GTIN 09506000134352" in reasons[0] and "matches no unit of batch B1" in reasons[0]
    assert "not a GS1 Digital Link" in reasons[1]
    assert "ZZ-NO-SUCH-SERIAL" in reasons[2] and "no unit of batch B1" in reasons[2]


@pytest.mark.parametrize("ws", ["small_lot"], indirect=True)
def test_not_in_sample_and_repeat_scans_do_not_count(ws):
    with open_store(ws) as store:
        create_plan(store, "B1", seed=11)
        keys = open_keystore(ws, PASSPHRASE)
        session = QaSession(store, keys, "B1", allow_simulator_signature=True)
        urls, pool = _urls(store), SimChipPool(ws.home / "sim-chips")
        outsider = next(u for u in store.units("B1") if u.serial not in session.sample)
        sampled = store.unit_by_serial(session.plan.serials[0])

        def tap(unit, label):
            chip = pool.load(unit.uid)
            chip.place()
            try:
                return session.inspect(chip, label)
            finally:
                pool.save(chip)  # the chip keeps its advanced counter, as a real one does

        r = tap(outsider, urls(outsider.serial))
        assert not r.counted and "not in the sample" in r.reason
        assert tap(sampled, urls(sampled.serial)).counted
        again = tap(sampled, urls(sampled.serial))
        assert again.passed and not again.counted and "already inspected" in again.note
        assert session.tally.inspected == 1 and session.decision is None
        replay = SimulatedNtag424(state=pool.load(sampled.uid).snapshot())  # fine so far: the next copy is stale
        chip = pool.load(sampled.uid)
        chip.place()
        session.inspect(chip, urls(sampled.serial))  # a third tap advances the counter
        replay.place()
        stale = session.check(session.read(replay), urls(sampled.serial))
        assert not stale.passed and "replayed" in stale.reason


@pytest.mark.parametrize("ws", ["small_lot"], indirect=True)
def test_release_gate_refuses_rejected_batch_unless_override_is_recorded(ws, tmp_path):
    out = tmp_path / "m.jsonl"
    refused = runner.invoke(app, ["manifest", "export", "--batch", "B1", "--out", str(out)])
    assert _code(refused) == 7 and not out.exists()  # no QA at all
    assert "no QA plan" in str(refused.exception)
    with open_store(ws) as store:
        plan = create_plan(store, "B1", seed=3)
        urls = _urls(store)
        outsider = next(u.serial for u in store.units("B1") if u.serial not in plan.serials)
    labels = tmp_path / "labels.txt"
    serials = list(plan.serials)
    labels.write_text("".join(urls(outsider if i == 0 else s) + "\n" for i, s in enumerate(serials)))
    rejected = _scan(["--batch", "B1", "--sim"], labels)
    assert _code(rejected) == 6  # Ac 0: the first defect rejects at once
    assert json.loads(rejected.stdout.splitlines()[-1])["inspected"] == 1

    refused = runner.invoke(app, ["manifest", "export", "--batch", "B1", "--out", str(out)])
    assert _code(refused) == 7 and "rejected" in str(refused.exception) and not out.exists()
    no_reason = runner.invoke(app, ["manifest", "export", "--batch", "B1", "--out", str(out), "--without-qa"])
    assert _code(no_reason) == 2 and not out.exists()
    ok = runner.invoke(app, ["--user", "QM Lee", "manifest", "export", "--batch", "B1", "--out", str(out), "--without-qa",
                             "--reason", "customer deviation 42 approved by QM", "--json"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    header = json.loads(out.read_text().splitlines()[0])
    assert header["qa"]["decision"] == "override" and header["qa"]["reason"] == "customer deviation 42 approved by QM"
    assert header["qa"]["qa_decision"] == "reject" and header["qa"]["by"] == "QM Lee"
    with open_store(ws) as store:
        [override] = store.qa_overrides("B1")
        assert override.reason == "customer deviation 42 approved by QM"
        assert override.manifest_id == header["manifest_id"]
    verified = runner.invoke(app, ["manifest", "verify", str(out)])
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize("ws", ["small_lot"], indirect=True)
def test_report_pdf_and_html(ws, tmp_path):
    with open_store(ws) as store:
        plan = create_plan(store, "B1", seed=4)
        urls = _urls(store)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(urls(s) + "\n" for s in plan.serials))
    assert _code(_scan(["--batch", "B1", "--sim"], labels)) == 0
    for name in ("r.pdf", "r.html"):
        result = runner.invoke(app, ["--user", "Pat <QA>", "qa", "report", "--batch", "B1", "--out",
                                     str(tmp_path / name), "--json"], catch_exceptions=False)
        assert json.loads(result.stdout)["verdict"] == "ACCEPT"
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and "ACCEPT" in page and plan.serials[0] in page and plan.id in page
    assert "by Pat &lt;QA&gt;" in page  # who generated it, escaped
    # the simulator's test key verified these chips, not NXP's: both forms say so, never a bare "ok"
    assert page.count("originality:ok (simulator test key)") == len(plan.serials)
    assert "originality:ok " not in page.replace("originality:ok (simulator test key)", "")
    assert b"originality:ok \\(simulator test key\\)" in b"".join(_pdf_streams(tmp_path / "r.pdf"))


def _pdf_streams(pdf: Path) -> list[bytes]:
    """Page content streams, undoing reportlab's ASCII85 + Flate filters."""
    out = []
    for filters, body in re.findall(rb"/Filter \[ ([^\]]*) \][^>]*>>\s*stream\r?\n(.*?)\s*endstream",
                                    pdf.read_bytes(), re.S):
        if b"ASCII85Decode" in filters:
            body = base64.a85decode(body.strip().removesuffix(b"~>"))
        out.append(zlib.decompress(body))
    return out


def test_plan_for_a_lot_size_needs_no_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSMITH_HOME", str(tmp_path / "none"))
    result = runner.invoke(app, ["qa", "plan", "--lot-size", "3200", "--aql", "0.1", "--json"])
    data = json.loads(result.stdout)
    assert (data["code_letter"], data["sample_size"], data["accept"], data["reject"]) == ("K", 125, 0, 1)
    assert runner.invoke(app, ["qa", "plan"]).exit_code != 0
    blank = runner.invoke(app, ["--user", " ", "qa", "plan", "--lot-size", "3200"])
    assert _code(blank) == 2 and "--user" in str(blank.exception)
