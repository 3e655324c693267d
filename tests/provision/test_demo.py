"""The demo runs the whole line, and every command it prints works as printed."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tagsmith.batches.verify import read_header
from tagsmith.keystore import DIVERSIFICATION_SCHEME

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def test_demo_encodes_labels_qa_and_releases_a_batch(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("TAGSMITH_HOME", None)
    home = tmp_path / "demo"
    done = _run([TAGSMITH, "--home", str(home), "demo", "--units", "12", "--tear-rate", "0.3", "--seed", "5",
                 "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["home"] == str(home)
    assert report["station"]["done"] == 12
    assert report["station"]["counts"].get("torn", 0) > 0  # tears happened and were resumed
    assert any("QA: accept" in line for line in report["lines"])
    assert any(line.startswith("foreign tag") and "without authenticating" in line for line in report["lines"])
    assert any(command.endswith("tag refusals") for command in report["commands"])
    assert any(line.startswith("resolver:") and "refused as a replay" in line for line in report["lines"])
    assert any(" batch units " in command for command in report["commands"])
    leased = [line for line in report["lines"] if line.startswith("leased station")]
    assert leased and "on 2 reader heads" in leased[0] and "20 of 20 in the batch database, 0 conflicts" in leased[0]
    assert any(" station leases --batch " in command for command in report["commands"])
    assert Path(report["manifest"]).exists()
    _, header = read_header(Path(report["manifest"]))  # the same header `manifest export` writes
    assert header["keys"]["diversification"] == DIVERSIFICATION_SCHEME
    assert {"url", "mac_input_offset", "mac_input_param", "verifier_params", "mirrors"} == set(header["sdm"])
    assert all({"kind", "offset", "length", "param"} == set(m) for m in header["sdm"]["mirrors"])
    for command in report["commands"]:
        words = shlex.split(command)
        extra_env = dict(w.split("=", 1) for w in words if "=" in w.split("/")[0] and not w.startswith("'"))
        argv = [w for w in words if w not in {f"{k}={v}" for k, v in extra_env.items()}]
        argv[0] = TAGSMITH
        result = _run(argv, {**env, **extra_env})
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_demo_never_reuses_a_workspace_with_data(tmp_path):
    env = {**os.environ}
    home = tmp_path / "busy"
    first = _run([TAGSMITH, "--home", str(home), "demo", "--units", "3", "--tear-rate", "0", "--json"], env)
    second = _run([TAGSMITH, "--home", str(home), "demo", "--units", "3", "--tear-rate", "0", "--json"], env)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["home"] == str(home)
    assert json.loads(second.stdout)["home"] != str(home)
