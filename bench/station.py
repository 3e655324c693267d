"""Encoding-station throughput: in-process on simulated tags, and through pcscd + vpcd.

Run: ``.venv/bin/python bench/station.py [--tags 1000] [--pcscd-tags 30] [--pool-tags 300] [--profile]``.
Prints tags per second, host CPU ms per tag (time.process_time), APDUs per tag, the per-round-trip
breakdown of a fresh tag, and through pcscd the median APDU round trip and the ratio
"pcscd seconds per tag / (APDUs per tag x round trip)" (target <= 1.3). That round trip is a SELECT,
which the simulated chip answers at once; the station's own commands cost the chip crypto too, so the
time spent inside transceive for these very commands is printed beside it. The pcscd part starts its
own private pcscd (needs pcscd + vsmartcard-vpcd) and serves the chips from a `tagsmith sim serve` process;
the 0.6 s gap between placements (pcscd's presence poll) is not counted: only time inside the station.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKDIR = tempfile.mkdtemp(prefix="tagsmith-bench-station-")
os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(WORKDIR, "pcscd.comm")  # before any PC/SC call

from tagsmith.batches.product import load_product  # noqa: E402
from tagsmith.batches.store import open_store  # noqa: E402
from tagsmith.keystore import init_keystore  # noqa: E402
from tagsmith.provision import station  # noqa: E402
from tagsmith.provision.catalog import create_batch, register_product  # noqa: E402
from tagsmith.provision.demo import example_product_path  # noqa: E402
from tagsmith.provision.encode import EncodeContext  # noqa: E402
from tagsmith.workspace import Workspace  # noqa: E402

SELECT_APP = bytes.fromhex("00A4040007D276000085010100")


def context(quantity: int, name: str) -> EncodeContext:
    ws = Workspace.resolve(Path(WORKDIR) / name)
    keys = init_keystore(ws, "file", passphrase="bench-pass-123", scrypt_n=2**10)
    product = load_product(example_product_path())
    keys.create_key_set(product.keys.key_set, system_id=product.keys.system_id)
    store = open_store(ws)
    register_product(store, product)
    batch = create_batch(store, product.id, quantity)
    return EncodeContext.for_batch(store, keys, batch.id, "bench", allow_simulator_signature=True)


def report(label: str, outcomes, wall: float, cpu: float) -> dict:
    n = len(outcomes)
    apdus = sum(o.apdus for o in outcomes) / n
    tag_seconds = sum(o.seconds for o in outcomes) / n
    io_seconds = sum(o.io_seconds for o in outcomes) / n
    bad = [o for o in outcomes if o.result != "encoded"]
    print(f"{label}: {n} tags, {n / wall:.1f} tags/s wall, {1000 * tag_seconds:.2f} ms/tag in the station, "
          f"{1000 * cpu / n:.2f} CPU ms/tag, {apdus:.2f} APDUs/tag" + (f", {len(bad)} NOT encoded" if bad else ""))
    return {"tags": n, "tag_seconds": tag_seconds, "apdus": apdus, "io_seconds": io_seconds}


class Breakdown:
    """Wall time per tag spent in named parts of the station, by wrapping their entry points."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)

    def attach(self, ctx: EncodeContext) -> None:
        import tagsmith.provision.encode as encode

        self.wrap(ctx.store, "allocate_unit", "SQLite: allocation (commit; its fsync runs beside the next writes)")
        self.wrap(ctx.store, "wait_synced", "SQLite: waiting for the allocation's fsync before ChangeKey")
        for name in ("auth_failure", "unit_by_uid", "start_encoding", "mark_encoded", "mark_verified"):
            self.wrap(ctx.store, name, "SQLite: lookup, steps, encoded")
        self.wrap(ctx.keys, "chip_keys", "keystore: five AN10922 keys")
        self.wrap(encode, "verify_originality", "originality signature check")
        self.wrap(encode, "verify_unit_sun", "SUN verification")

    def print(self, outcomes, tag_seconds: float, chip_label: str = "chip (simulator, inside transceive)") -> None:
        n = len(outcomes)
        io = sum(o.io_seconds for o in outcomes) / n
        parts = {chip_label: io, **{k: v / n for k, v in self.seconds.items()}}
        print("where a tag's time goes (ms/tag):")
        for label, seconds in parts.items():
            print(f"  {1000 * seconds:6.3f}  {label}")
        print(f"  {1000 * (tag_seconds - sum(parts.values())):6.3f}  the rest: host protocol, secure messaging, Python")


class Reel:
    """Factory-fresh simulated chips made before the clock starts, as a reel arrives at the line.

    Making a chip includes signing its UID (the simulator's stand-in for NXP's production step),
    which is not the station's work; placing, processing and removing them is timed.
    """

    def __init__(self, tags: int) -> None:
        import random

        from tagsmith.encoders.simulator import SimulatedNtag424
        from tagsmith.provision.simpool import random_uid

        rng = random.Random(424)
        self.chips = [SimulatedNtag424(uid=random_uid(rng)) for _ in range(tags)]
        self.current = None

    def next_tag(self):
        if not self.chips:
            return None
        self.current = self.chips.pop()
        self.current.place()
        return self.current

    def finished(self, outcome) -> None:
        self.current.remove()


class PooledReel(Reel):
    """The same reel, each chip in a pool directory saved after every command that changed it, as
    ``station run --sim`` keeps its chips (``PersistentChip``): the cost of chip files in step."""

    def __init__(self, tags: int, directory: Path) -> None:
        super().__init__(tags)
        from tagsmith.provision.simpool import SimChipPool

        self.pool = SimChipPool(directory)
        for chip in self.chips:
            self.pool.save(chip)

    def next_tag(self):
        from tagsmith.provision.simpool import PersistentChip

        chip = super().next_tag()
        return None if chip is None else PersistentChip(chip, self.pool)


def pooled(tags: int) -> None:
    """In-process without, then with, chip files (same machine, same run): ms/tag for each."""
    for label, source in (("in-process, no chip files", Reel(tags)),
                          ("in-process, chips saved per command",
                           PooledReel(tags, Path(WORKDIR) / "sim-chips"))):
        ctx = context(tags, label.replace(" ", "-").replace(",", ""))
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = [e for e in station.run(ctx, source) if not isinstance(e, station.Summary)]
        report(label, outcomes, time.perf_counter() - wall, time.process_time() - cpu)


def in_process(tags: int, profile: bool) -> None:
    ctx = context(tags, "inproc")
    source = Reel(tags)
    breakdown = Breakdown()
    if not profile:
        breakdown.attach(ctx)
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = [e for e in station.run(ctx, source) if not isinstance(e, station.Summary)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        import pstats
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    r = report("in-process", outcomes, wall, cpu)
    if not profile:
        breakdown.print(outcomes, r["tag_seconds"])
    print("fresh tag round trips:", len(outcomes[0].commands))
    for i, name in enumerate(outcomes[0].commands, 1):
        print(f"  {i:2d} {name}")


def through_pcscd(tags: int) -> None:
    from tagsmith.encoders.pcsc import list_readers, open_reader
    from tagsmith.encoders.simulator.pcscd import PrivatePcscd, find_pcscd, find_vpcd_driver

    if not (find_pcscd() and find_vpcd_driver()):
        print("pcscd: skipped (pcscd or vsmartcard-vpcd not installed)")
        return
    daemon = PrivatePcscd(WORKDIR, ("Tagsmith Bench",), base_port=36190).start()
    try:
        slot = daemon.slots[0]
        deadline = time.monotonic() + 5
        while slot.reader not in {r.name for r in list_readers()}:
            if time.monotonic() > deadline:
                raise SystemExit("pcscd did not list the virtual reader")
            time.sleep(0.02)
        # the chips live in their own process (`tagsmith sim serve`), as a real chip is not on the host's CPU
        serve = subprocess.Popen([str(Path(sys.executable).with_name("tagsmith")), "sim", "serve", "--port",
                                  str(slot.port), "--count", str(tags + 1), "--json"], stdout=subprocess.DEVNULL)
        ctx = context(tags, "pcscd")
        breakdown = Breakdown()
        breakdown.attach(ctx)
        with open_reader(slot.reader) as reader:
            with reader.wait_for_tag(15) as conn:  # placement 1: the SELECT baseline
                for _ in range(100):
                    conn.transceive(SELECT_APP)
                trips = []
                for _ in range(500):
                    started = time.perf_counter()
                    conn.transceive(SELECT_APP)
                    trips.append(time.perf_counter() - started)
            reader.wait_for_removal(15)
            round_trip = statistics.median(trips)
            wall, cpu = time.perf_counter(), time.process_time()
            outcomes = [e for e in station.run(ctx, station.ReaderSource(reader, timeout=15), count=tags)
                        if not isinstance(e, station.Summary)]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        serve.wait(30)
        r = report("pcscd+vpcd", outcomes, wall, cpu)
        breakdown.print(outcomes, r["tag_seconds"], chip_label="reader + pcscd + chip (inside transceive)")
        print(f"  (wall rate includes the {tags} x 0.6 s placement gap; the station time per tag excludes it)")
        print(f"  median APDU round trip {1000 * round_trip:.3f} ms; station {1000 * r['tag_seconds']:.2f} ms/tag; "
              f"ratio {r['tag_seconds'] / (r['apdus'] * round_trip):.2f} (target <= 1.3)")
        print(f"  time inside transceive (reader + chip, these very commands) {1000 * r['io_seconds']:.2f} ms/tag; "
              f"station / that = {r['tag_seconds'] / r['io_seconds']:.2f}")
    finally:
        daemon.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--pcscd-tags", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--pool-tags", type=int, default=None,
                        help="tags for the chip-file comparison (default: --tags, at most 300; 0: skip)")
    args = parser.parse_args(argv)
    in_process(args.tags, args.profile)
    pool_tags = min(args.tags, 300) if args.pool_tags is None else args.pool_tags
    if pool_tags:
        pooled(pool_tags)
    if args.pcscd_tags:
        through_pcscd(args.pcscd_tags)


if __name__ == "__main__":
    main(sys.argv[1:])
