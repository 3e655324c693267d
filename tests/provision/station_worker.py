"""A station process for the crash and concurrency tests (run as a script, not collected).

usage: station_worker.py HOME BATCH STATION COUNT SEED [POOL_DIR]
Prints one JSON line per outcome and the summary, flushing each (the test may SIGKILL it).

With ``KILL_AFTER_WRITES=N`` in the environment the process SIGKILLs itself right after its
N-th writing command (WriteData, ChangeFileSettings, ChangeKey) reached the chip: the chip
acted, the station never saw the answer. Writes only follow a unit's allocation, so such a
crash lands mid-encode however fast or slow the machine is.
"""

import json
import os
import signal
import sys
from pathlib import Path

from tagsmith.batches.store import open_store
from tagsmith.keystore import open_keystore
from tagsmith.provision import station
from tagsmith.provision.encode import EncodeContext
from tagsmith.provision.simpool import SimChipPool
from tagsmith.workspace import Workspace

PASSPHRASE = "station-test-pass-123"


WRITING_INS = {0x8D, 0x5F, 0xC4}  # WriteData, ChangeFileSettings, ChangeKey


def kill_after_writes(limit: int) -> None:
    """Make PersistentChip die by SIGKILL after ``limit`` writing commands, like a power cut there."""
    from tagsmith.provision import simpool

    seen = 0
    original = simpool.PersistentChip.transceive

    def transceive(self, apdu: bytes):
        nonlocal seen
        seen += apdu[1] in WRITING_INS
        if seen >= limit:
            original(self, apdu)
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, apdu)

    simpool.PersistentChip.transceive = transceive


def main(home: str, batch_id: str, name: str, count: str, seed: str, pool_dir: str | None = None) -> None:
    workspace = Workspace.resolve(home)
    store = open_store(workspace)
    keys = open_keystore(workspace, PASSPHRASE)
    ctx = EncodeContext(store=store, keys=keys, product=store.batch_product(batch_id), batch_id=batch_id,
                        station=name, allow_simulator_signature=True)
    if "KILL_AFTER_WRITES" in os.environ:
        kill_after_writes(int(os.environ["KILL_AFTER_WRITES"]))
    if pool_dir:
        pool = SimChipPool(Path(pool_dir))
        fresh = max(0, int(count) - len(pool.uids()))
        source = station.SimulatedSource(fresh, tear_rate=0.2, seed=int(seed), pool=pool,
                                         persist_each_apdu=True, resume_pool=True)
    else:
        source = station.SimulatedSource(int(count), seed=int(seed))
    print(json.dumps({"event": "start"}), flush=True)
    for event in station.run(ctx, source):
        print(json.dumps(event.to_dict()), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
