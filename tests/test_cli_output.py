"""Human (non --json) output: user text is never rich markup, and piped output is never cut or wrapped.

The commands run as the console script with stdout and stderr piped and no terminal anywhere
(stdin from /dev/null, COLUMNS=80), as in ``tagsmith ... | cat`` or a log file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
DISHWASHER = Path(__file__).resolve().parents[1] / "batches" / "products" / "dishwasher.toml"
NAME = "Oven [/] deluxe [bold red]X"
MODEL = "OV[/]1 [bold red]X"
STATION = "st:1.a_b-c"  # station names are checked (A-Z a-z 0-9 . _ : -): no markup can get in
LONG_URL = ("https://id.example.com/01/09506000134376/21/DW60000099FJ"
            "?p=0B7660BE1C1838B8885328A12BE81148&c=8051EB4D575F0658")  # a serial the database does not know


def tagsmith(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(TAGSMITH_KEYSTORE_PASSPHRASE="a long enough passphrase", COLUMNS="80")
    result = subprocess.run([TAGSMITH, "--home", str(home), *args], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    """A product whose name and model look like markup, a batch of it, two encoded units, a manifest."""
    base = tmp_path_factory.mktemp("out")
    home = base / "ws"
    product = base / "oven.toml"
    text = DISHWASHER.read_text()
    text = text.replace('id = "aurora-dw600"', 'id = "markup-oven"')
    text = text.replace('name = "Aurora DW-600 Dishwasher"', f'name = "{NAME}"')
    text = text.replace('model = "DW-600"', f'model = "{MODEL}"')
    product.write_text(text)
    tagsmith(home, "keys", "init", "--kdf-n", "1024", "--json")
    tagsmith(home, "product", "add", str(product), "--json")
    tagsmith(home, "keys", "create", "--product", "aurora-dw600-2026", "--json")  # system id from the product
    batch = json.loads(tagsmith(home, "batch", "create", "--product", "markup-oven", "--quantity", "5",
                                "--json").stdout)["id"]
    run = tagsmith(home, "station", "run", "--batch", batch, "--sim", "--count", "2", "--station", STATION)
    out_dir = base / "[bold red]X ["
    out_dir.mkdir()
    manifest = out_dir / "] manifest.jsonl"  # the path holds "[bold red]X [/] manifest.jsonl"
    tagsmith(home, "manifest", "export", "--batch", batch, "--out", str(manifest), "--without-qa",
             "--reason", "output test", "--json")
    return {"home": home, "batch": batch, "manifest": str(manifest), "station_run": run}


def test_product_name_and_model_print_verbatim(workspace):
    shown = tagsmith(workspace["home"], "product", "show", "markup-oven").stdout
    lines = shown.splitlines()
    assert any(NAME in line for line in lines) and any(MODEL in line for line in lines), shown
    listed = tagsmith(workspace["home"], "product", "list").stdout
    assert NAME in listed, listed


def test_batch_show_prints_paths_verbatim_and_names_both_counts(workspace):
    shown = tagsmith(workspace["home"], "batch", "show", workspace["batch"]).stdout
    assert "[bold red]X [/] manifest.jsonl" in workspace["manifest"]
    assert any(workspace["manifest"] in line for line in shown.splitlines()), shown  # whole, on one line
    # serials handed out vs units still waiting to be encoded: two different counts, two labels
    assert "serials allocated 2" in shown and "allocated (not started) 0" in shown, shown


def test_station_run_summary_names_the_station_on_one_line(workspace):
    out = workspace["station_run"].stdout
    summary = [line for line in out.splitlines() if line.startswith("session")]
    assert len(summary) == 1, out
    assert summary[0].startswith(f"session at station {STATION}: 2 done of 2 placements"), out
    assert summary[0].endswith("round trips per tag"), out  # not wrapped at 80 columns


def test_long_url_is_not_cut_when_piped(workspace):
    result = tagsmith(workspace["home"], "tag", "verify", "--url", LONG_URL, ok=False)
    assert result.returncode == 6, result.stderr
    assert any(LONG_URL in line for line in result.stdout.splitlines()), result.stdout  # whole, on one line
    assert "…" not in result.stdout


def test_tag_verify_of_an_unknown_serial_shows_no_none(workspace):
    result = tagsmith(workspace["home"], "tag", "verify", "--url", LONG_URL, ok=False)
    assert "not a tap of ours" in result.stdout  # a resolver decrypts the PICC data before any lookup
    assert "None" not in result.stdout, result.stdout
    assert any(line.split() == ["uid", "-"] for line in result.stdout.splitlines()), result.stdout


def test_product_add_line_is_not_wrapped(workspace):
    added = tagsmith(workspace["home"], "product", "add", str(DISHWASHER)).stdout
    assert len(added.splitlines()) == 1 and added.rstrip().endswith("GTIN 09506000134376"), added
