"""A line on one PostgreSQL: 1, 4 and 8 station processes, and the station's store time on each engine.

Run: ``.venv/bin/python bench/line.py [--tags 40] [--stations 1 4 8] [--latency-ms 8] [--inproc-tags 300]``.
``--heads 1 2 4`` measures reader heads at one station through pcscd instead (bench/heads.py);
``--outage 10 [--lease 100]`` a leased station through a database outage (bench/leases.py).

Part 1 starts a private PostgreSQL cluster (tests/pgcluster.py's functions: initdb into a temporary
directory, a Unix socket there, removed at the end), makes a demo workspace, copies it into the
line's database and gives each station process a workspace of its own (the demo keystore copied, its
own simulated chips). For each line size, ``--tags`` units per station in one batch, each station
``tagsmith --db URL station run --sim --sim-latency-ms N``: the line's tags per second over the
window in which every station was encoding (process start-up, the keystore's unlock and the tail
where stations run out of serials are outside it), the ratio to one station, and serials and UIDs
found twice in the database (must be 0).

Part 2, in-process on simulated chips with no delay: the same station code on the workspace's SQLite
file and on the line's PostgreSQL, alternating rounds, tags per second on each, their ratio, and where
a tag's time goes: every store call timed by method, the rest being the chip, the crypto and the loop.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

from tagsmith.batches.store import Store, open_store
from tagsmith.keystore import open_keystore
from tagsmith.provision import station
from tagsmith.provision.catalog import create_batch
from tagsmith.provision.encode import EncodeContext
from tagsmith.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "tagsmith-demo-passphrase"
TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
ENV = {**os.environ, "TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}


def pgcluster() -> Any:
    """tests/pgcluster.py, loaded from its file (the bench shares the tests' way to run a private cluster)."""
    spec = importlib.util.spec_from_file_location("tagsmith_bench_pgcluster", ROOT / "tests" / "pgcluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(home: Path, *args: str, db: str | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([TAGSMITH, "--home", str(home), *(["--db", db] if db else []), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=ENV)


def checked(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{proc.args}: exit {proc.returncode}: {err.strip()}")
    return out


class StationProcess:
    """One ``station run`` process, its JSON events stamped with the time the bench read them."""

    def __init__(self, home: Path, batch: str, name: str, seed: int, latency_ms: float, url: str, tags: int) -> None:
        # --count: each station its share, so that one started late still finds serials (without it, a station
        # that starts after the others took every serial, a unit still encoding, stops with "no serials left")
        self.proc = cli(home, "station", "run", "--batch", batch, "--sim", "--sim-latency-ms", str(latency_ms),
                        "--station", name, "--seed", str(seed), "--count", str(tags), "--json", db=url)
        self.tags: list[float] = []  # monotonic times of its done tags
        self.ms: list[float] = []  # and the station's time for each
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event["event"] == "tag" and event["result"] in ("encoded", "resumed", "verified"):
                self.tags.append(time.monotonic())
                self.ms.append(event["ms"])

    def wait(self) -> None:
        self.proc.wait(600)
        self.reader.join()


def line_rate(stations: list[StationProcess]) -> tuple[float, int]:
    """Tags per second of the whole line while every station was encoding, and the tags in that window.

    A station that got no tag at all (the others took every serial: tiny runs only) is left out."""
    stations = [s for s in stations if s.tags]
    if not stations:
        return 0.0, 0
    start = max(s.tags[0] for s in stations)
    end = min(s.tags[-1] for s in stations)
    inside = sum(start < t <= end for s in stations for t in s.tags)
    return (inside / (end - start) if end > start else 0.0), inside


def duplicates(url: str, demo: Path, batch: str) -> tuple[int, int, int]:
    """(units, serials twice, UIDs twice) of the batch, read back from the line's database."""
    with open_store(Workspace.resolve(demo), url=url, create=False) as store:
        units = list(store.units(batch))
    return len(units), len(units) - len({u.serial for u in units}), len(units) - len({u.uid for u in units})


def run_line(size: int, tags: int, latency_ms: float, url: str, demo: Path, work: Path) -> dict[str, Any]:
    batch = json.loads(checked(cli(demo, "batch", "create", "--product", "aurora-dw600", "--quantity",
                                   str(size * tags), "--json", db=url)))["id"]
    homes = []
    for i in range(size):
        home = work / f"line{size}-station{i}"
        shutil.copytree(demo, home, ignore=shutil.ignore_patterns("sim-chips", "exports", "leases"))
        homes.append(home)
    stations = [StationProcess(home, batch, f"st{i}", i, latency_ms, url, tags) for i, home in enumerate(homes)]
    for s in stations:
        s.wait()
        if s.proc.returncode != 0:
            raise SystemExit(f"station exit {s.proc.returncode}: {s.proc.stderr.read() if s.proc.stderr else ''}")
    rate, inside = line_rate(stations)
    units, serials_twice, uids_twice = duplicates(url, demo, batch)
    return {"stations": size, "tags_per_s": rate, "window_tags": inside, "units": units,
            "serials_twice": serials_twice, "uids_twice": uids_twice,
            "station_ms_per_tag": sum(ms for s in stations for ms in s.ms) / max(1, sum(len(s.ms) for s in stations))}


class TimedStore:
    """A store whose every method call is timed by name (the station types against the protocol only)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.seconds: dict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return found(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def in_process(demo: Path, url: str, tags: int, rounds: int = 3) -> dict[str, dict[str, Any]]:
    """The station in-process on SQLite and on PostgreSQL, alternating rounds of ``tags`` each."""
    keys = open_keystore(Workspace.resolve(demo), PASSPHRASE)
    engines = {"sqlite": open_store(Workspace.resolve(demo)), "postgresql": open_store(Workspace.resolve(demo), url=url)}
    results: dict[str, dict[str, Any]] = {name: {"tags": 0, "seconds": 0.0, "store": defaultdict(float)}
                                          for name in engines}
    for round_no in range(rounds):
        for name, store in engines.items():
            batch = create_batch(store, "aurora-dw600", tags)
            timed = TimedStore(store)
            ctx = EncodeContext.for_batch(cast(Store, timed), keys, batch.id, "bench", allow_simulator_signature=True)
            started = time.perf_counter()
            done = [e for e in station.run(ctx, station.SimulatedSource(tags, seed=round_no))
                    if isinstance(e, station.Summary)][0].done
            results[name]["seconds"] += time.perf_counter() - started
            results[name]["tags"] += done
            for method, seconds in timed.seconds.items():
                results[name]["store"][method] += seconds
    for store in engines.values():
        store.close()
    return results


def report_in_process(results: dict[str, dict[str, Any]]) -> None:
    rates = {name: r["tags"] / r["seconds"] for name, r in results.items()}
    print(f"\nin-process, simulated chips, no APDU delay: sqlite {rates['sqlite']:.1f} tags/s, "
          f"postgresql {rates['postgresql']:.1f} tags/s, ratio postgresql/sqlite {rates['postgresql'] / rates['sqlite']:.2f}")
    print("where a tag's time goes (ms per tag):")
    for name, r in results.items():
        per_tag = 1000 * r["seconds"] / r["tags"]
        store_ms = 1000 * sum(r["store"].values()) / r["tags"]
        top = sorted(r["store"].items(), key=lambda kv: -kv[1])[:5]
        print(f"  {name:10} {per_tag:6.2f} total, {store_ms:5.2f} store, {per_tag - store_ms:5.2f} chip, crypto and loop; "
              "top store calls: " + ", ".join(f"{m} {1000 * s / r['tags']:.2f}" for m, s in top))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=40, help="units per station in each line run")
    parser.add_argument("--stations", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--latency-ms", type=float, default=8.0)
    parser.add_argument("--inproc-tags", type=int, default=300, help="tags per engine per round in part 2")
    parser.add_argument("--heads", type=int, nargs="+", help="instead: 1, 2, 4 reader heads at one station (bench/heads.py)")
    parser.add_argument("--outage", type=float, help="instead: a leased station through an outage of this many seconds")
    parser.add_argument("--lease", type=int, default=100, help="with --outage: serials per lease")
    args = parser.parse_args(argv)
    if args.heads:
        sys.path.insert(0, str(Path(__file__).parent))
        import heads  # sets PCSCLITE_CSOCK_NAME for its private pcscd: imported only for this part

        heads.main(["--heads", *map(str, args.heads), "--tags", str(min(args.tags, 12)), "--latency-ms", str(args.latency_ms)])
        return
    pg = pgcluster()
    work = Path(tempfile.mkdtemp(prefix="tagsmith-bench-line-"))
    cluster = pg.start_cluster()
    try:
        url = cluster.url(cluster.create_database("line"))
        demo = work / "demo"
        checked(cli(demo, "demo", "--units", "2", "--tear-rate", "0"))
        checked(cli(demo, "db", "copy", "--to", url))
        if args.outage:
            sys.path.insert(0, str(Path(__file__).parent))
            import leases

            leases.report(leases.leased_outage(cluster, url, demo, work, cli=cli, checked=checked, duplicates=duplicates,
                                               outage_s=args.outage, lease=args.lease, tags=args.tags,
                                               latency_ms=args.latency_ms))
            return
        print(f"line on PostgreSQL {cluster.bindir.parent.name}, {args.latency_ms:g} ms per APDU, "
              f"{args.tags} units per station, {os.cpu_count()} CPUs")
        runs = [run_line(size, args.tags, args.latency_ms, url, demo, work) for size in args.stations]
        one = runs[0]["tags_per_s"]
        for r in runs:
            print(f"  {r['stations']} station(s): {r['tags_per_s']:6.1f} tags/s for the line "
                  f"({r['tags_per_s'] / one if one else 0:.2f}x {args.stations[0]}), "
                  f"{r['station_ms_per_tag']:.0f} ms per done tag at a station, {r['units']} units, "
                  f"serials twice {r['serials_twice']}, UIDs twice {r['uids_twice']}")
        report_in_process(in_process(demo, url, args.inproc_tags))
    finally:
        cluster.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
