"""ISO 2859-1 sampling plans against tests/vectors/iso2859-tables.json, and the switching rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagsmith import ConfigError, StateError
from tagsmith.provision import sampling
from tagsmith.provision.sampling import (
    Inspection,
    SwitchingState,
    TableNotAvailable,
    code_letter,
    draw_sample,
    normal_plan,
    plan_for,
)

TABLES = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "iso2859-tables.json").read_text())
ROWS = TABLES["code_letters_by_lot_size"]
BOUNDARIES = sorted({n for r in ROWS for n in (r["lot_min"], r["lot_max"] or 1_000_000)})


@pytest.mark.parametrize("level", sampling.LEVELS)
def test_code_letters_at_every_boundary_and_level(level):
    for row in ROWS:
        for lot in (row["lot_min"], row["lot_max"] or 10_000_000):
            assert code_letter(lot, level) == row[level], (lot, level)


def test_sample_sizes_by_letter():
    assert sampling.SAMPLE_SIZES == TABLES["sample_size_by_code_letter"]


@pytest.mark.parametrize("aql", ["0.065", "0.10", "0.25", "0.65", "1.0"])
def test_table_ii_a_cells_with_arrows_resolved(aql):
    cells = TABLES["table_II_A_normal_single"]["cells"][aql]
    for letter, cell in cells.items():
        plan_letter, arrow = sampling.resolve_arrow(aql, letter)
        assert plan_letter == cell.get("use_code_letter", letter), (aql, letter)
        assert (arrow is None) == ("arrow" not in cell)
        if arrow:
            assert arrow.startswith(cell["arrow"])
        ac, re_ = (int(x) for x in sampling._cell(aql, plan_letter).split("/"))
        assert (sampling.SAMPLE_SIZES[plan_letter], ac, re_) == (cell["n"], cell["Ac"], cell["Re"])


@pytest.mark.parametrize("aql", ["0.065", "0.1", "0.25", "0.65", "1.0"])
def test_level_ii_plans_at_every_code_letter_boundary(aql):
    column = sampling.normalise_aql(aql)
    for row in TABLES["general_inspection_level_II_normal_single"]:
        expected = row["plans"][column]
        for lot in (row["lot_min"], row["lot_max"] or 2_000_000):
            plan = normal_plan(lot, aql, "II")
            assert plan.code_letter == row["code_letter"]
            assert (plan.table_sample_size, plan.accept, plan.reject) == (expected["n"], expected["Ac"], expected["Re"])
            assert plan.sample_size == min(expected["n"], lot)  # n >= lot size: inspect 100 %
            assert (plan.via_arrow or "") == expected.get("via_arrow", "")


def test_hundred_percent_and_examples_from_the_reference():
    assert normal_plan(2000, "0.65").to_dict() | {} == {
        **normal_plan(2000, "0.65").to_dict(), "code_letter": "K", "sample_size": 125, "accept": 2, "reject": 3}
    small = normal_plan(150, "0.065")
    assert small.sample_size == 150 and small.hundred_percent and (small.accept, small.reject) == (0, 1)
    assert normal_plan(1201, 1.0).accept == 3


def test_bad_inputs():
    with pytest.raises(ConfigError):
        code_letter(1)
    with pytest.raises(TableNotAvailable):
        normal_plan(100, "0.40")
    with pytest.raises(ConfigError):
        normal_plan(100, "0.65", "IV")
    with pytest.raises(TableNotAvailable, match="II-B"):
        plan_for(100, "0.65", inspection="tightened")
    with pytest.raises(TableNotAvailable, match="II-C"):
        plan_for(100, "0.65", inspection="reduced")
    with pytest.raises(StateError):
        plan_for(100, "0.65", inspection="discontinued")


def test_draw_is_reproducible_and_without_replacement():
    serials = [f"S{i:04d}" for i in range(500)]
    a, b = draw_sample(serials, 50, 1234), draw_sample(serials, 50, 1234)
    assert a == b and len(set(a)) == 50 and set(a) <= set(serials)
    assert draw_sample(serials, 50, 1235) != a


# ---------------------------------------------------------------- switching rules
PLAN_AC0 = normal_plan(100, "0.65")  # F: n 20, 0/1
PLAN_AC2 = normal_plan(2000, "0.65")  # K: n 125, 2/3 -> one step tighter Ac 1


def feed(state, results, plan=PLAN_AC0, **kw):
    for accepted in results:
        state = state.after_lot(plan, 0 if accepted else plan.reject, accepted, **kw)
    return state


def test_normal_to_tightened_on_two_of_five():
    s = feed(SwitchingState(), [True, False, True, True])
    assert s.inspection == "normal"
    s = feed(s, [False])  # 2 rejections within 5 consecutive lots
    assert s.inspection == "tightened"
    spread = feed(SwitchingState(), [False, True, True, True, True, False])  # 6 lots apart: stays normal
    assert spread.inspection == "normal"


def test_tightened_back_to_normal_after_five_accepted():
    s = feed(SwitchingState(), [False, False])
    assert s.inspection == "tightened"
    s = feed(s, [True] * 4 + [False] + [True] * 4)
    assert s.inspection == "tightened"
    s = feed(s, [True])
    assert s.inspection == "normal" and s.recent == ()


def test_discontinue_after_five_rejected_on_tightened_and_resume_at_tightened():
    s = feed(SwitchingState(), [False, False])
    s = feed(s, [False, True, False, True, False, True, False])
    assert s.inspection == "tightened" and s.rejected_on_tightened == 4
    s = feed(s, [False])  # the 5th lot not accepted since tightened began
    assert s.inspection == "discontinued"
    with pytest.raises(StateError):
        s.after_lot(PLAN_AC0, 0, True)
    assert s.corrective_action().inspection == "tightened"
    with pytest.raises(StateError):
        SwitchingState().corrective_action()


def test_switching_score_and_reduced_needs_approval():
    s = feed(SwitchingState(), [True] * 15)  # Ac 0: +2 per accepted lot
    assert s.score == 30 and s.reduced_eligible and s.inspection == "normal"
    assert feed(s, [False]).score == 0
    approved = s.after_lot(PLAN_AC0, 0, True, reduced_approved=True)
    assert approved.inspection == "reduced"
    assert feed(approved, [False]).inspection == "normal"  # a lot not accepted on reduced
    assert approved.after_lot(PLAN_AC0, 0, True, steady_production=False).inspection == "normal"


def test_switching_score_with_ac_two_or_more():
    s = SwitchingState().after_lot(PLAN_AC2, 1, True)  # accepted, and within Ac 1 one step tighter
    assert s.score == 3
    s = s.after_lot(PLAN_AC2, 2, True)  # accepted at 0.65, would not be at 0.40
    assert s.score == 0 and s.inspection == "normal"


def test_state_round_trips_through_json():
    s = feed(SwitchingState(), [True, False, True])
    assert SwitchingState.from_json(json.loads(json.dumps(s.to_dict()))) == s
    assert SwitchingState.from_json(None) == SwitchingState()
    assert Inspection(s.inspection) is Inspection.NORMAL


def test_discontinued_product_resumes_at_tightened_only_through_corrective_action(tmp_path):
    """`qa switching --corrective-action` is the only way out of discontinuation, and only from it."""
    import json as _json

    from typer.testing import CliRunner

    from tagsmith.batches.product import load_product
    from tagsmith.batches.store import open_store
    from tagsmith.cli import app
    from tagsmith.provision.demo import example_product_path
    from tagsmith.provision.sampling import SwitchingState
    from tagsmith.workspace import Workspace

    home = tmp_path / "ws"
    product = load_product(example_product_path())
    with open_store(Workspace(home)) as store:
        store.add_product(product)
        store.set_qa_switching(product.id, SwitchingState("discontinued", (), 0, 5, 12).to_dict())
    runner = CliRunner()
    shown = runner.invoke(app, ["--home", str(home), "qa", "switching", "--product", product.id, "--json"])
    assert shown.exit_code == 0 and _json.loads(shown.stdout)["inspection"] == "discontinued"
    resumed = runner.invoke(app, ["--home", str(home), "qa", "switching", "--product", product.id,
                                  "--corrective-action", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert _json.loads(resumed.stdout)["inspection"] == "tightened"
    again = runner.invoke(app, ["--home", str(home), "qa", "switching", "--product", product.id,
                                "--corrective-action"])
    assert again.exit_code != 0  # not discontinued any more: refused
    unknown = runner.invoke(app, ["--home", str(home), "qa", "switching", "--product", "nope"])
    assert unknown.exit_code != 0
