"""A leased station through a database outage: tags encoded while the server is stopped, time to sync after.

Run through ``bench/line.py --outage 10 [--lease 100] [--tags 150] [--latency-ms 8]``: one
``station run --sim --lease N`` process on the line's PostgreSQL (bench/line.py's private cluster);
after a second of steady encoding the server is stopped for ``--outage`` seconds and started again.
Reported: tags encoded while it was stopped (the station's JSON events, stamped as the bench reads
them) and that rate against the station's own rate in the second before the stop (same run), the
seconds from the restart until the line's database holds every unit encoded before it
(the station's sync worker reconnecting and pushing its journal), and serials and UIDs found twice
in the batch at the end (must be 0).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from tagsmith.batches.store import open_store
from tagsmith.workspace import Workspace


def leased_outage(cluster: Any, url: str, demo: Path, work: Path, *, cli: Any, checked: Any, duplicates: Any,
                  outage_s: float, lease: int, tags: int, latency_ms: float) -> dict[str, Any]:
    """Run one leased station through one outage of ``outage_s`` seconds; the figures (see the module)."""
    batch = json.loads(checked(cli(demo, "batch", "create", "--product", "aurora-dw600", "--quantity", str(tags),
                                   "--json", db=url)))["id"]
    home = work / "leased-station"
    shutil.copytree(demo, home, ignore=shutil.ignore_patterns("sim-chips", "exports", "leases"))
    proc = cli(home, "station", "run", "--batch", batch, "--sim", "--sim-latency-ms", str(latency_ms), "--station",
               "leased", "--lease", str(lease), "--json", db=url)
    done: list[float] = []  # monotonic times of the station's encoded tags
    waited: list[float] = []  # ... and of its "database unreachable: waiting" (the lease used up)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "tag" and event["result"] == "encoded":
                done.append(time.monotonic())
            elif event["event"] == "database" and event["state"] == "unreachable":
                waited.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while not done:
        time.sleep(0.01)
    time.sleep(1.0)
    stopped = time.monotonic()
    cluster.stop("fast")
    time.sleep(outage_s)
    cluster.start()
    back = time.monotonic()
    before = sum(t <= back for t in done)
    with open_store(Workspace.resolve(demo), url=url, create=False) as store:
        while sum(store.unit_counts(batch).values()) < before:
            time.sleep(0.02)
    synced = time.monotonic() - back
    proc.wait(600)
    reader.join()
    if proc.returncode != 0:
        raise SystemExit(f"leased station exit {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
    units, serials_twice, uids_twice = duplicates(url, demo, batch)
    during = sum(stopped < t <= back for t in done)
    steady = (sum(t <= stopped for t in done) - 1) / (stopped - done[0])  # the baseline: the database answering
    return {"outage_s": outage_s, "lease": lease, "during": during, "rate": during / outage_s, "steady": steady,
            "waited": bool(waited), "sync_s": synced, "units": units, "serials_twice": serials_twice,
            "uids_twice": uids_twice}


def report(r: dict[str, Any]) -> None:
    print(f"leased station (--lease {r['lease']}) through a {r['outage_s']:g} s database outage: "
          f"{r['during']} tags encoded while the server was stopped ({r['rate']:.1f} tags/s, "
          f"{r['rate'] / r['steady']:.2f}x the {r['steady']:.1f} tags/s before it"
          f"{', then waited: the lease ran out' if r['waited'] else ''}); every unit encoded before the restart "
          f"in the line's database {r['sync_s']:.2f} s after it; {r['units']} units, "
          f"serials twice {r['serials_twice']}, UIDs twice {r['uids_twice']}")
