"""``tagsmith labels``: print a batch from the database, record prints, skip reprints, check the PDF."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tagsmith.batches.product import load_product
from tagsmith.batches.store import open_store
from tagsmith.cli import main
from tagsmith.workspace import Workspace

PRODUCT = Path(__file__).parents[2] / "batches" / "products" / "dishwasher.toml"


@pytest.fixture
def batch(home) -> str:
    """A batch of 8 dishwasher units, 7 of them encoded (the 8th serial is not allocated)."""
    with open_store(Workspace(home)) as store:
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
    pdf = tmp_path / "b1.pdf"  # a sheet's PDF is its print
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "pdf", "--layout", "a4-24up-70x37",
                        "--out", str(pdf), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["labels"] == 7 and data["recorded"] == 7 and data["layout"] == "a4-24up-70x37"
    assert data["proof"] is False
    with open_store(Workspace(home)) as store:
        unit = next(store.units(batch))
        assert [p["layout"] for p in store.label_prints(unit.id)] == ["a4-24up-70x37"]
    code, out, err = run(["labels", "check", str(pdf), "--batch", batch, "--layout", "a4-24up-70x37", "--json"], capsys)
    assert code == 0 and json.loads(out)["found"] == 7
    assert err == ""  # no progress bar when piped or --json

    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--out", str(tmp_path / "a.zpl"),
                        "--json"], capsys)
    assert json.loads(out)["labels"] == 0 and json.loads(out)["skipped_already_printed"] == 7
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--out", str(tmp_path / "a.zpl"),
                        "--reprint", "--json"], capsys)
    assert json.loads(out)["labels"] == 7
    with open_store(Workspace(home)) as store:
        unit = next(store.units(batch))
        assert [p["layout"] for p in store.label_prints(unit.id)] == ["a4-24up-70x37", "roll-50x25"]


def test_a_pdf_proof_of_a_roll_does_not_make_the_zpl_run_skip_its_labels(home, batch, tmp_path, capsys, label_tools):
    proof = tmp_path / "proof.pdf"  # the product's layout is a roll: its PDF can only be a proof
    code, out, _ = run(["labels", "print", "--batch", batch, "--out", str(proof), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["proof"] is True and data["labels"] == 7 and data["recorded"] == 7
    code, out, _ = run(["labels", "check", str(proof), "--batch", batch, "--json"], capsys)
    assert code == 0 and json.loads(out)["found"] == 7

    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--out", str(tmp_path / "a.zpl"),
                        "--json"], capsys)
    data = json.loads(out)
    assert data["labels"] == 7 and data["skipped_already_printed"] == 0 and data["proof"] is False
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--out", str(tmp_path / "b.zpl"),
                        "--json"], capsys)
    assert json.loads(out)["labels"] == 0 and json.loads(out)["skipped_already_printed"] == 7
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--proof", "--out",
                        str(tmp_path / "c.zpl"), "--json"], capsys)  # a proof covers printed units too
    assert json.loads(out)["labels"] == 7 and json.loads(out)["proof"] is True
    with open_store(Workspace(home)) as store:
        unit = next(store.units(batch))
        assert [(p["format"], p["proof"]) for p in store.label_prints(unit.id)] == [
            ("pdf", True), ("zpl", False), ("zpl", True)]
        assert [e.event for e in store.unit_events(unit.id) if e.event.startswith("label")] == [
            "label_proofed", "label_printed", "label_proofed"]


def test_serial_range_and_zpl_at_300_dpi(home, batch, tmp_path, capsys):
    with open_store(Workspace(home)) as store:
        serials = [u.serial for u in store.units(batch)]
    out_file = tmp_path / "r.zpl"
    code, out, _ = run(["labels", "print", "--batch", batch, "--format", "zpl", "--dpi", "300", "--out", str(out_file),
                        "--serials", f"{serials[2]}..{serials[4]}", "--json"], capsys)
    assert code == 0 and json.loads(out)["labels"] == 3
    zpl = out_file.read_text()
    assert zpl.count("^XA") == 3 and "^PW591" in zpl and f"/21/{serials[3]}^FS" in zpl and serials[5] not in zpl


def test_check_of_a_pdf_missing_a_unit_exits_6(home, batch, tmp_path, capsys, label_tools):
    with open_store(Workspace(home)) as store:
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


def test_check_shows_a_progress_bar_on_a_terminal_only(home, batch, tmp_path, capsys, label_tools):
    pdf = tmp_path / "sheet.pdf"
    run(["labels", "print", "--batch", batch, "--layout", "a4-24up-70x37", "--out", str(pdf)], capsys)
    argv = [str(Path(sys.executable).with_name("tagsmith")), "labels", "check", str(pdf), "--batch", batch,
            "--layout", "a4-24up-70x37"]
    env = {**os.environ, "TAGSMITH_HOME": str(home), "TERM": "xterm", "COLUMNS": "100"}
    master, slave = pty.openpty()  # stderr is a terminal, stdout a pipe
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    terminal = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        elif process.poll() is not None:
            break
    out = process.communicate(timeout=120)[0].decode()
    os.close(master)
    assert process.returncode == 0 and "each exactly once" in out
    assert b"decoding label cells" in terminal and b"1/1" in terminal and b"pages" in terminal
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""  # piped: no bar


@pytest.mark.parametrize("fmt", ["zpl", "pdf"])
def test_a_print_to_a_full_device_is_one_line_naming_it_and_records_nothing(home, batch, capsys, fmt):
    code, _, err = run(["labels", "print", "--batch", batch, "--format", fmt, "--out", "/dev/full"], capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "/dev/full" in err
    assert ("No space left on device" if fmt == "zpl" else "not a regular file") in err
    with open_store(Workspace(home)) as store:
        assert not any(store.label_printed(u.id) for u in store.units("B1"))
