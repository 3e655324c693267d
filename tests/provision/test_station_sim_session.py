"""`station run --sim` through the console script: interrupted chips placed again, a full batch,
Ctrl-C at any moment, and chip files in step with the database."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tagsmith.batches.store import open_store
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision.simpool import SimChipPool
from tagsmith.workspace import Workspace

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}


def _tagsmith(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TAGSMITH, "--home", str(home), *args], capture_output=True, text=True,
                          env={**os.environ, **ENV, "COLUMNS": "200"}, stdin=subprocess.DEVNULL, timeout=300)


def _workspace(tmp_path: Path, quantity: int) -> tuple[Path, str]:
    home = tmp_path / "ws"
    done = _tagsmith(home, "demo", "--units", "2", "--tear-rate", "0", "--json")
    assert done.returncode == 0, done.stderr
    created = _tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity", str(quantity), "--json")
    assert created.returncode == 0, created.stderr
    return home, json.loads(created.stdout)["id"]


def _units(home: Path, batch: str) -> list:
    with open_store(Workspace.resolve(home)) as store:
        return list(store.units(batch))


def _interrupt_mid_tag(home: Path, batch: str, seed: int) -> subprocess.CompletedProcess:
    """A station on a large batch, SIGINTed at a random moment of its loop (as Ctrl-C at a terminal:
    the whole process group)."""
    process = subprocess.Popen([TAGSMITH, "--home", str(home), "station", "run", "--batch", batch, "--sim", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               env={**os.environ, **ENV}, start_new_session=True)
    assert json.loads(process.stdout.readline())["event"] == "tag"  # in the loop, the sync helper running
    time.sleep(random.Random(seed).uniform(0.0, 0.05))
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_ctrl_c_at_random_moments_never_prints_a_traceback(tmp_path):
    home, batch = _workspace(tmp_path, 100000)
    for attempt in range(12):
        done = _interrupt_mid_tag(home, batch, attempt)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 130, done.stderr
        assert json.loads(done.stdout.splitlines()[-1]).get("interrupted") is True, done.stdout[-600:]


def test_an_interrupted_chip_is_placed_again_and_resumes(tmp_path):
    home, batch = _workspace(tmp_path, 100000)
    for attempt in range(20):  # Ctrl-C lands mid-tag nearly always; between tags it leaves nothing to resume
        stopped = _interrupt_mid_tag(home, batch, 100 + attempt)
        assert stopped.returncode == 130, stopped.stderr
        interrupted = [u for u in _units(home, batch) if u.state == "encoding"]
        if interrupted:
            break
    assert len(interrupted) == 1, "no Ctrl-C landed mid-tag"
    unit = interrupted[0]
    assert unit.uid in SimChipPool(home / "sim-chips").uids()

    again = _tagsmith(home, "station", "run", "--batch", batch, "--sim", "--count", "1", "--json")
    assert again.returncode == 0, again.stderr
    first = json.loads(again.stdout.splitlines()[0])
    assert first["uid"] == unit.uid.hex().upper() and first["result"] == "resumed", first
    assert {u.state for u in _units(home, batch)} == {"encoded"}


def test_stale_temp_files_of_a_killed_run_are_swept(tmp_path):
    pool_dir = tmp_path / "pool"
    pool = SimChipPool(pool_dir)
    pool.save(SimulatedNtag424(uid=bytes.fromhex("04000000000001")))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = pool_dir / f".chip-{dead.stdout.strip()}-04000000000001"
    live = pool_dir / f".chip-{os.getpid()}-04000000000002"
    stale.write_text("{")
    live.write_text("{")
    SimChipPool(pool_dir)  # opening the pool (a station start) sweeps what no live writer owns
    assert not stale.exists() and live.exists()
    live.unlink()
