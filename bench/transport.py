"""Median APDU round trip: in-process simulator vs pyscard through pcscd + vpcd vs nfcpy over udp.

Run: ``.venv/bin/python bench/transport.py [--apdus 1000] [--warmup 200]``. Starts its own private
pcscd (needs pcscd and vsmartcard-vpcd installed; root for /run/pcscd/pcscd.pid) and its own
nfcpy udp card; the same simulated chip answers a 13-byte SELECT on every path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

WORKDIR = tempfile.mkdtemp(prefix="tagsmith-bench-")
os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(WORKDIR, "pcscd.comm")  # before any PC/SC call

from tagsmith.encoders.simulator.chip import SimulatedNtag424  # noqa: E402
from tagsmith.encoders.simulator.pcscd import PrivatePcscd, find_pcscd, find_vpcd_driver  # noqa: E402
from tagsmith.encoders.simulator.vpicc import VirtualCard  # noqa: E402

SELECT_APP = bytes.fromhex("00A4040007D276000085010100")


def measure(connection, apdus: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        connection.transceive(SELECT_APP)
    times = []
    for _ in range(apdus):
        started = time.perf_counter()
        data, sw = connection.transceive(SELECT_APP)
        times.append(time.perf_counter() - started)
        assert sw == 0x9000
    return times


def in_process(apdus: int, warmup: int) -> list[float]:
    return measure(SimulatedNtag424(), apdus, warmup)


def through_pcscd(apdus: int, warmup: int) -> list[float]:
    from tagsmith.encoders.pcsc import open_reader

    with PrivatePcscd(WORKDIR, ["Bench"], base_port=36190) as pcscd:
        with VirtualCard(SimulatedNtag424(), pcscd.slots[0].port), open_reader(pcscd.slots[0].reader) as reader:
            with reader.wait_for_tag(5) as connection:
                return measure(connection, apdus, warmup)


def through_nfcpy_udp(apdus: int, warmup: int) -> list[float]:
    from tagsmith.encoders.nfcpy import NfcpyReader, Type4Emulator, free_udp_path

    path = free_udp_path()
    with Type4Emulator(SimulatedNtag424(), path), NfcpyReader(path) as reader:
        with reader.wait_for_tag(5) as connection:
            return measure(connection, apdus, warmup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apdus", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    runs = [("in-process simulator", in_process)]
    if find_pcscd() and find_vpcd_driver():
        runs.append(("pyscard -> pcscd -> vpcd (QUICKACK)", through_pcscd))
    else:
        print("pcscd or vsmartcard-vpcd missing: skipping the PC/SC path", file=sys.stderr)
    runs.append(("nfcpy ISO-DEP over udp", through_nfcpy_udp))
    medians = {}
    print(f"{args.apdus} x 13-byte SELECT -> 9000 after {args.warmup} warm-up, median / p95 in ms")
    for name, run in runs:
        times = sorted(run(args.apdus, args.warmup))
        medians[name] = statistics.median(times)
        print(f"  {name:38s} {medians[name] * 1e3:8.3f} {times[int(len(times) * 0.95)] * 1e3:8.3f}")
    base = medians["in-process simulator"]
    for name, median in medians.items():
        print(f"  ratio {name:32s} {median / base:8.1f}x in-process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
