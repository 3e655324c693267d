"""``tagsmith labels``: print a batch from the database, record prints, skip reprints, check the PDF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagsmith.batches.db import BatchStore
from tagsmith.batches.product import load_product
from tagsmith.cli import main

PRODUCT = Path(__file__).parents[2] / "batches" / "products" / "dishwasher.toml"


@pytest.fixture
def batch(home) -> str:
    """A batch of 8 dishwasher units, 7 of them encoded (the 8th serial is not allocated)."""
    with BatchStore(home / "tagsmith.db") as store:
        store.add_product(load_product(PRODUCT))
        b = store.create_batch("aurora-dw600", 8, batch_id="B1")
        store.bulk_encoded(b.id, ((bytes([4, 1, 2, 3, 4, 5, i]), {0: 1}, 0) for i in range(7)), "st1")
    return "B1"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_print_records_each_unit_and_skips_them_next_time(home, batch, tmp_path, capsys, label_tools):
    pdf = tmp_path / "b1.pdf"
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "pdf", "--out", str(pdf), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["labels"] == 7 and data["recorded"] == 7 and data["layout"] == "roll-50x25"
    with BatchStore(home / "tagsmith.db") as store:
        unit = next(store.units(batch))
        assert [p["layout"] for p in store.label_prints(unit.id)] == ["roll-50x25"]
    code, out, _ = run(["labels", "check", str(pdf), "--batch", batch, "--json"], capsys)
    assert code == 0 and json.loads(out)["found"] == 7

    code, out, _ = run(["labels", "print", "--batch", batch, "--out", str(tmp_path / "again.pdf"), "--json"], capsys)
    assert json.loads(out)["labels"] == 0 and json.loads(out)["skipped_already_printed"] == 7
    code, out, _ = run(["labels", "print", "--batch", batch, "--out", str(tmp_path / "again.pdf"),
                        "--layout", "a4-24up-70x37", "--reprint", "--json"], capsys)
    assert json.loads(out)["labels"] == 7
    with BatchStore(home / "tagsmith.db") as store:
        unit = next(store.units(batch))
        assert [p["layout"] for p in store.label_prints(unit.id)] == ["roll-50x25", "a4-24up-70x37"]


def test_serial_range_and_zpl_at_300_dpi(home, batch, tmp_path, capsys):
    with BatchStore(home / "tagsmith.db") as store:
        serials = [u.serial for u in store.units(batch)]
    out_file = tmp_path / "r.zpl"
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--dpi", "300", "--out", str(out_file),
                        "--serials", f"{serials[2]}..{serials[4]}", "--json"], capsys)
    assert code == 0 and json.loads(out)["labels"] == 3
    zpl = out_file.read_text()
    assert zpl.count("^XA") == 3 and "^PW591" in zpl and f"/21/{serials[3]}^FS" in zpl and serials[5] not in zpl


def test_check_of_a_pdf_missing_a_unit_exits_6(home, batch, tmp_path, capsys, label_tools):
    with BatchStore(home / "tagsmith.db") as store:
        serials = [u.serial for u in store.units(batch)]
    pdf = tmp_path / "part.pdf"
    run(["labels", "print", "--batch", batch, "--out", str(pdf), "--serials", f"{serials[0]}..{serials[5]}"], capsys)
    code, _, err = run(["labels", "check", str(pdf), "--batch", batch], capsys)
    assert code == 6 and "1 missing, 0 duplicated, 0 unknown" in err


def test_previews_write_one_file_per_label_and_record_nothing(home, batch, tmp_path, capsys):
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "svg", "--out", str(tmp_path / "p.svg"),
                        "--json"], capsys)
    assert code == 0 and len(json.loads(out)["outputs"]) == 7 and json.loads(out)["recorded"] == 0


def test_errors_are_one_line_with_their_exit_code(home, batch, tmp_path, capsys):
    code, _, err = run(["labels", "print", "--batch", "NOPE", "--out", str(tmp_path / "x.pdf")], capsys)
    assert code == 8 and "no batch 'NOPE'" in err
    code, _, err = run(["labels", "print", "--batch", batch, "--format", "gif", "--out", "x"], capsys)
    assert code == 2 and "use one of pdf, zpl, png, svg" in err
    code, _, err = run(["labels", "print", "--batch", batch, "--layout", "nope", "--out", "x"], capsys)
    assert code == 8 and "shipped:" in err


def test_layouts_lists_the_shipped_stocks(capsys):
    code, out, _ = run(["labels", "layouts", "--json"], capsys)
    names = [r["name"] for r in json.loads(out)]
    assert code == 0 and "a4-24up-70x37" in names and "letter-30up-5160" in names and "roll-4x6in" in names
