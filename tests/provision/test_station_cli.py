"""The station command through the real console script: JSON events, label printing, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))


def _tagsmith(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {}), "COLUMNS": "200"}
    return subprocess.run([TAGSMITH, "--home", str(home), *args], capture_output=True, text=True, env=full_env,
                          stdin=subprocess.DEVNULL,
                          timeout=300)


def _demo_home(tmp_path: Path) -> tuple[Path, dict]:
    home = tmp_path / "ws"
    done = _tagsmith(home, "demo", "--units", "2", "--tear-rate", "0", "--json")
    assert done.returncode == 0, done.stderr
    return home, {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}


def _demo_batch(home: Path) -> str:
    """The demo's batch id, read back from the workspace (ids carry the day they were made)."""
    listed = json.loads(_tagsmith(home, "batch", "list", "--json").stdout)
    return listed[0]["id"]


def test_station_sim_json_events_and_zpl_labels_per_unit(tmp_path):
    home, env = _demo_home(tmp_path)
    created = _tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "4", "--json", env=env)
    batch = json.loads(created.stdout)["id"]
    zpl = tmp_path / "labels.zpl"
    run = _tagsmith(home, "station", "run", "--batch", batch, "--sim", "--sim-tear-rate", "0.3", "--seed", "2",
                    "--label-printer", str(zpl), "--json", env=env)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    tags = [e for e in events if e["event"] == "tag"]
    done = [e for e in tags if e["result"] in ("encoded", "resumed")]
    assert events[-1]["event"] == "summary" and events[-1]["done"] == 4
    assert {"uid", "serial", "result", "apdus", "ms", "io_ms"} <= set(tags[0])
    assert all(0 <= t["io_ms"] <= t["ms"] for t in tags)
    text = zpl.read_text()
    assert text.count("^XA") == 4 and all(e["serial"] in text for e in done)
    shown = json.loads(_tagsmith(home, "batch", "show", batch, "--json", env=env).stdout)
    assert shown["progress"]["done"] == 4


def test_station_needs_exactly_one_tag_source(tmp_path):
    home, env = _demo_home(tmp_path)
    result = _tagsmith(home, "station", "run", "--batch", _demo_batch(home), env=env)
    assert result.returncode == 2
    assert "choose one tag source" in result.stderr and "Traceback" not in result.stderr


def test_station_wrong_passphrase_is_one_line_and_exit_5(tmp_path):
    home, _ = _demo_home(tmp_path)
    result = _tagsmith(home, "station", "run", "--batch", _demo_batch(home), "--sim",
                       env={"TAGSMITH_KEYSTORE_PASSPHRASE": "not-the-passphrase"})
    assert result.returncode == 5, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_refusals_are_listed_and_an_engineer_can_clear_one(tmp_path):
    home, _ = _demo_home(tmp_path)  # the demo places a foreign chip: its refusal is recorded
    listed = _tagsmith(home, "tag", "refusals", "--json")
    assert listed.returncode == 0, listed.stderr
    refusals = json.loads(listed.stdout)
    assert len(refusals) == 1 and refusals[0]["status"] == "91AE" and refusals[0]["serial"] is None
    uid = refusals[0]["uid"]
    unconfirmed = _tagsmith(home, "tag", "clear-refusal", uid, "--reason", "test tag")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert len(unconfirmed.stderr.strip().splitlines()) == 1
    cleared = _tagsmith(home, "tag", "clear-refusal", uid, "--reason", "test tag of another line", "--yes", "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["clear_reason"] == "test tag of another line"
    assert json.loads(_tagsmith(home, "tag", "refusals", "--json").stdout) == []
    everything = json.loads(_tagsmith(home, "tag", "refusals", "--all", "--json").stdout)
    assert [(r["uid"], r["clear_reason"]) for r in everything] == [(uid, "test tag of another line")]
    again = _tagsmith(home, "tag", "clear-refusal", uid, "--reason", "x", "--yes")
    assert again.returncode != 0 and "no standing refusal" in again.stderr and "Traceback" not in again.stderr
    shown = _tagsmith(home, "tag", "refusals")
    assert shown.returncode == 0 and "No chip has refused" in shown.stdout


def _one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_closed_batch_is_refused_before_any_tag(tmp_path):
    home, env = _demo_home(tmp_path)
    created = json.loads(_tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "2",
                                   "--json", env=env).stdout)["id"]
    assert _tagsmith(home, "batch", "close", created, env=env).returncode == 0
    run = _tagsmith(home, "station", "run", "--batch", created, "--sim", "--count", "1", "--json", env=env)
    assert run.returncode == 7 and run.stdout == "" and "closed" in _one_line(run)


def test_a_template_the_chip_cannot_hold_is_refused_at_product_add(tmp_path):
    home, env = _demo_home(tmp_path)
    product = (Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml").read_text()
    long_path = "/x" * 120
    too_long = tmp_path / "long.toml"
    too_long.write_text(product.replace('id = "aurora-dw600"', 'id = "long-url"').replace(
        "https://id.example.com{mac_input}/01/", f"https://id.example.com{long_path}{{mac_input}}/01/").replace(
        'resolver = "https://id.example.com"', f'resolver = "https://id.example.com{long_path}"'))
    refused = _tagsmith(home, "product", "add", str(too_long), env=env)
    assert refused.returncode == 2 and "does not fit the chip" in _one_line(refused)
    no_mac = tmp_path / "nomac.toml"
    no_mac.write_text(product.replace('id = "aurora-dw600"', 'id = "no-mac"').replace("&c={cmac}", ""))
    refused = _tagsmith(home, "product", "add", str(no_mac), env=env)
    assert refused.returncode == 2 and "{cmac}" in _one_line(refused)
    listed = json.loads(_tagsmith(home, "product", "list", "--json", env=env).stdout)
    assert [p["id"] for p in listed] == ["aurora-dw600"]  # nothing recorded


def test_bad_input_is_one_line_never_markup_or_traceback(tmp_path):
    home, env = _demo_home(tmp_path)
    markup = _tagsmith(home, "product", "show", "[/]", env=env)
    assert markup.returncode == 8 and "'[/]'" in _one_line(markup)
    usage = _tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "abc", env=env)
    assert usage.returncode == 2 and "--quantity" in _one_line(usage)
    unwritable = _tagsmith(home, "labels", "print", "--batch", _demo_batch(home), "--reprint", "--out",
                           str(tmp_path / "no" / "such" / "dir" / "x.pdf"), env=env)
    assert unwritable.returncode == 2 and "No such file or directory" in _one_line(unwritable)
    missing_key = _tagsmith(home, "manifest", "verify", str(next((home / "exports").glob("*.manifest.jsonl"))),
                            "--public-key", str(tmp_path / "nope.pem"), env=env)
    assert missing_key.returncode == 2 and "nope.pem" in _one_line(missing_key)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    wrong_home = subprocess.run([TAGSMITH, "--home", str(not_a_dir), "product", "list"], capture_output=True, text=True)
    assert wrong_home.returncode == 2 and "not a directory" in _one_line(wrong_home)
    no_terminal = _tagsmith(home, "keys", "list", env={"TAGSMITH_KEYSTORE_PASSPHRASE": ""})
    assert no_terminal.returncode == 5 and "TAGSMITH_KEYSTORE_PASSPHRASE" in _one_line(no_terminal)


def test_ctrl_c_prints_the_summary_and_exits_130(tmp_path):
    import signal
    import time

    home, env = _demo_home(tmp_path)
    created = json.loads(_tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "100000",
                                   "--json", env=env).stdout)["id"]
    process = subprocess.Popen([TAGSMITH, "--home", str(home), "station", "run", "--batch", created, "--sim", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               env={**os.environ, **env})
    first = process.stdout.readline()  # a tag is done: the station is in its loop
    assert json.loads(first)["event"] == "tag"
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    summary = json.loads(rest.splitlines()[-1])
    assert process.returncode == 130 and summary["event"] == "summary" and summary["interrupted"] is True


def test_a_session_whose_placements_all_failed_is_not_a_success():
    import pytest

    from tagsmith import TagsmithError
    from tagsmith.commands.station import session_exit
    from tagsmith.provision.station import Summary

    session_exit(Summary(counts={"encoded": 1, "failed": 3}))
    session_exit(Summary(counts={"refused": 2}))  # foreign tags set aside: the station did its job
    with pytest.raises(TagsmithError, match="no unit was encoded"):
        session_exit(Summary(counts={"failed": 2, "torn": 1}))


def test_small_input_checks_come_before_any_work(tmp_path):
    home, env = _demo_home(tmp_path)
    bad_station = _tagsmith(home, "station", "run", "--batch", _demo_batch(home), "--sim", "--station", "[/]", env=env)
    assert bad_station.returncode == 2 and "station name" in _one_line(bad_station) and bad_station.stdout == ""
    bad_uid = _tagsmith(home, "sim", "serve", "--uid", "0411", "--port", "1")
    assert bad_uid.returncode == 2 and "7 bytes" in _one_line(bad_uid)
    unknown_chip = _tagsmith(home, "tag", "verify", "--sim", "04FFFFFFFFFFFF", env=env)
    assert unknown_chip.returncode == 8 and "no simulated chip" in _one_line(unknown_chip)
    both = _tagsmith(home, "qa", "plan", "--batch", _demo_batch(home), "--lot-size", "5")
    assert both.returncode == 2 and "not both" in _one_line(both)
