"""Reader heads at one station through the real pcscd: 1, 2 and 4 heads, 8 ms per APDU.

Run: ``.venv/bin/python bench/line.py --heads 1 2 4 [--tags 12] [--latency-ms 8]`` (or this file).

A private pcscd with four vpcd readers; one ``tagsmith sim serve`` process presents simulated chips on
as many readers as there are heads, each APDU delayed ``--latency-ms`` (a USB reader's radio round
trip); one ``tagsmith station run --reader ... --reader ...`` process encodes a batch of ``--tags``
units per head. Printed: the station's tags per second (over its session), the ratio to one head, each
head's time per tag against (round trips x the measured round trip through pcscd), and serials or UIDs
found twice (must be 0). The round trip is measured first: a plain ISOSelectFile through pcscd to one
simulated chip with the same delay.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tagsmith.encoders.pcsc import open_reader
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.encoders.simulator.pcscd import PrivatePcscd
from tagsmith.encoders.simulator.serve import with_latency
from tagsmith.encoders.simulator.vpicc import VirtualCard

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
WORKDIR = Path(tempfile.mkdtemp(prefix="tagsmith-bench-heads-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(WORKDIR / "pcscd.comm")  # before any PC/SC call, here and in the children
SELECT_APP = bytes.fromhex("00A4040C07D276000085010100")


def tagsmith(home: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}
    return subprocess.Popen([TAGSMITH, "--home", str(home), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env, **popen)


def finished(proc: subprocess.Popen[str], timeout: float = 600) -> str:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{proc.args[3:6]} failed ({proc.returncode}): {err.strip()[-400:]}")
    return out


def round_trip_ms(slot: Any, latency_ms: float, apdus: int = 40) -> float:
    """Mean time of one APDU through pcscd to a simulated chip delayed ``latency_ms``."""
    with VirtualCard(with_latency(SimulatedNtag424(), latency_ms), slot.port), open_reader(slot.reader) as reader:
        with reader.wait_for_tag(5) as connection:
            connection.transceive(SELECT_APP)
            started = time.perf_counter()
            for _ in range(apdus):
                connection.transceive(SELECT_APP)
            return 1000 * (time.perf_counter() - started) / apdus


def run_heads(home: Path, slots: list[Any], tags: int, latency_ms: float) -> dict[str, Any]:
    """One station with ``len(slots)`` heads on a new batch; its summary and the duplicates found."""
    made = json.loads(finished(tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity",
                                        str(tags * len(slots)), "--json")))
    ports = [arg for slot in slots for arg in ("--port", str(slot.port))]
    serve = tagsmith(home, "sim", "serve", *ports, "--count", str(tags), "--latency-ms", str(latency_ms), "--json")
    readers = [arg for slot in slots for arg in ("--reader", slot.reader)]
    try:
        out = finished(tagsmith(home, "station", "run", "--batch", made["id"], *readers, "--wait", "60",
                                "--allow-simulator-signature", "--json"))
    finally:
        serve.terminate()
        serve.communicate(timeout=30)
    summary = json.loads(out.splitlines()[-1])
    units = json.loads(finished(tagsmith(home, "batch", "units", made["id"], "--json")))
    summary["serials_twice"] = len(units) - len({u["serial"] for u in units})
    summary["uids_twice"] = len(units) - len({u["uid"] for u in units})
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, nargs="+", default=[1, 2, 4], help="head counts to compare (at most 4)")
    parser.add_argument("--tags", type=int, default=12, help="units per head in each run")
    parser.add_argument("--latency-ms", type=float, default=8.0)
    args = parser.parse_args(argv)
    try:
        run_all(args, WORKDIR / "ws")
    finally:
        shutil.rmtree(WORKDIR, ignore_errors=True)


def run_all(args: argparse.Namespace, home: Path) -> None:
    finished(tagsmith(home, "demo", "--units", "2", "--tear-rate", "0"))
    with PrivatePcscd(WORKDIR, ["Bench A", "Bench B"], base_port=36290) as pcscd:
        rtt = round_trip_ms(pcscd.slots[0], args.latency_ms)
        print(f"reader heads through pcscd: {args.latency_ms:g} ms per APDU, measured round trip {rtt:.2f} ms, "
              f"{args.tags} units per head, {os.cpu_count()} CPUs")
        base = None
        for count in args.heads:
            s = run_heads(home, pcscd.slots[:count], args.tags, args.latency_ms)
            rate = s["done"] / s["seconds"] if s["seconds"] else 0.0
            base = base or rate
            per_head = s.get("heads") or {pcscd.slots[0].reader: s}
            budget = ", ".join(f"{h['ms_per_tag'] / (h['apdus_per_tag'] * rtt):.3f}x" for h in per_head.values())
            print(f"  {count} head(s): {rate:5.2f} tags/s ({rate / base:.2f}x {args.heads[0]} head), {s['done']} units; "
                  f"per head, time per tag / (round trips x round trip): {budget}; "
                  f"serials twice {s['serials_twice']}, UIDs twice {s['uids_twice']}")


if __name__ == "__main__":
    main()
