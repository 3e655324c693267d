"""The benchmark scripts still run against the current code (tiny sizes; figures are not checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script, args, expect", [
    ("station.py", ["--tags", "3", "--pcscd-tags", "0"], "where a tag's time goes"),
    ("sun_verify.py", ["--taps", "50"], "speed-up"),
    ("labels.py", ["--labels", "4", "--zpl", "20", "--check", "30"], "ZPL"),
    ("labels.py", ["--check-only", "--check", "30"], "labels check"),
    ("transport.py", ["--apdus", "20", "--warmup", "5"], "median / p95"),
])
def test_bench_script_runs(script, args, expect):
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout


def test_line_bench_runs(pg_cluster):
    """bench/line.py starts a cluster of its own; the fixture skips (fails in CI) where PostgreSQL cannot run."""
    done = subprocess.run([sys.executable, str(BENCH / "line.py"), "--tags", "2", "--stations", "1", "2",
                           "--latency-ms", "1", "--inproc-tags", "3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 station(s)" in done.stdout and "where a tag's time goes" in done.stdout
    assert done.stdout.count("serials twice 0, UIDs twice 0") == 2


def test_leased_outage_bench_runs(pg_cluster):
    """bench/line.py --outage: a leased station through a short outage of its own cluster."""
    done = subprocess.run([sys.executable, str(BENCH / "line.py"), "--outage", "1", "--lease", "20", "--tags", "30",
                           "--latency-ms", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tags encoded while the server was stopped" in done.stdout and "serials twice 0, UIDs twice 0" in done.stdout


@pytest.mark.pcscd
def test_heads_bench_runs_through_its_own_pcscd():
    """bench/line.py --heads: one and two reader heads through a private pcscd of the bench's own."""
    done = subprocess.run([sys.executable, str(BENCH / "line.py"), "--heads", "1", "2", "--tags", "2",
                           "--latency-ms", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 head(s)" in done.stdout and done.stdout.count("serials twice 0, UIDs twice 0") == 2
