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
                          timeout=300)


def _demo_home(tmp_path: Path) -> tuple[Path, dict]:
    home = tmp_path / "ws"
    done = _tagsmith(home, "demo", "--units", "2", "--tear-rate", "0", "--json")
    assert done.returncode == 0, done.stderr
    return home, {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}


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
    result = _tagsmith(home, "station", "run", "--batch", "20261123-001", env=env)
    assert result.returncode == 2
    assert "choose one tag source" in result.stderr and "Traceback" not in result.stderr


def test_station_wrong_passphrase_is_one_line_and_exit_5(tmp_path):
    home, _ = _demo_home(tmp_path)
    result = _tagsmith(home, "station", "run", "--batch", "20261123-001", "--sim",
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
