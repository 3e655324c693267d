"""A station process for the crash and concurrency tests (run as a script, not collected).

usage: station_worker.py HOME BATCH STATION COUNT SEED [POOL_DIR]
Prints one JSON line per outcome and the summary, flushing each (the test may SIGKILL it).
"""

import json
import sys
from pathlib import Path

from tagsmith.batches.db import BatchStore
from tagsmith.keystore import open_keystore
from tagsmith.provision import station
from tagsmith.provision.encode import EncodeContext
from tagsmith.provision.simpool import SimChipPool
from tagsmith.provision.workspace import Workspace

PASSPHRASE = "station-test-pass-123"


def main(home: str, batch_id: str, name: str, count: str, seed: str, pool_dir: str | None = None) -> None:
    workspace = Workspace.resolve(home)
    store = BatchStore(workspace.database)
    keys = open_keystore(workspace, PASSPHRASE)
    ctx = EncodeContext(store=store, keys=keys, product=store.batch_product(batch_id), batch_id=batch_id,
                        station=name, allow_simulator_signature=True)
    if pool_dir:
        pool = SimChipPool(Path(pool_dir))
        fresh = max(0, int(count) - len(pool.uids()))
        source = station.SimulatedSource(fresh, tear_rate=0.2, seed=int(seed), pool=pool,
                                         persist_each_apdu=True, resume_pool=True)
    else:
        source = station.SimulatedSource(int(count), seed=int(seed))
    print(json.dumps({"event": "start"}), flush=True)
    for event in station.run(ctx, source):
        print(json.dumps(event.to_json()), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
