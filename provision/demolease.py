"""The demo's second station: two simulated reader heads encoding a second batch from leased serials.

The same parts as ``station run --sim --heads 2 --lease N``: blocks of serials leased from the
workspace's database, a journal of the station's own that every allocation and step is committed
to first, a worker that pushes it and leases the next block, the unused serials returned at the
close. On a one-PC workspace the "line's database" is the workspace's SQLite file; on a line it is
the shared PostgreSQL (docs/deployment.md, "Leases").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tagsmith import TagsmithError
from tagsmith.batches.store import open_store

from ..workspace import Workspace
from .catalog import create_batch
from .encode import EncodeContext, Outcome
from .heads import HeadEvent, HeadFailed, HeadsSummary, run_heads
from .leasesession import LeaseSession, leased_events
from .station import store_batch_complete
from .stationrun import simulated_heads

LEASED_STATION = "demo-station-2"
LEASE_HOURS = 1.0


def leased_heads(ws: Workspace, keystore, product_id: str, *, units: int, heads: int, lease: int,
                 seed: int | None, say: Callable[[str], None]) -> tuple[str, str]:
    """Encode a new batch of ``units`` at a second station on ``heads`` heads from leases of ``lease``
    serials; the batch's id and one line on what happened (checked in the batch database afterwards)."""
    with open_store(ws) as store:
        batch = create_batch(store, product_id, units, lot="DEMO-LOT-2", line="demo-line")
    session = LeaseSession(ws, lambda: open_store(ws, create=False), batch.id, LEASED_STATION, size=lease,
                           hours=LEASE_HOURS)
    first = session.start()
    per_head: dict[str, int] = {}
    failed: list[str] = []
    try:
        with session.store() as journal:
            enc = EncodeContext.for_batch(journal, keystore, batch.id, LEASED_STATION, allow_simulator_signature=True)
            chosen = simulated_heads(enc, ws, heads, count=None, tear_rate=0.0, seed=seed, left=session.serials_left)
            events = run_heads(lambda: replace(enc, store=session.store()), chosen)
            for event in leased_events(events, session, journal, first):
                if isinstance(event, HeadEvent) and isinstance(event.event, Outcome) and event.event.personalised:
                    per_head[event.head] = per_head.get(event.head, 0) + 1
                elif isinstance(event, HeadFailed):
                    failed.append(f"{event.head}: {event.reason}")
                elif isinstance(event, HeadsSummary):
                    break
    finally:
        closed = session.close()
    with open_store(ws, create=False) as store:
        taken = store.leases(batch.id)
        complete = store_batch_complete(store, batch.id)
        conflicts = store.lease_conflicts(batch.id)
    if failed or complete is None or conflicts or any(lease.is_active for lease in taken):
        raise TagsmithError(f"demo: the leased station did not finish as designed ({'; '.join(failed) or closed.reason})")
    line = (f"leased station {LEASED_STATION}: batch {batch.id} of {units} units on {heads} reader heads "
            f"({', '.join(f'{head} {n}' for head, n in sorted(per_head.items()))}), from {len(taken)} leases of up to "
            f"{lease} serials, each journaled at the station, pushed and returned: {complete[0]} of {complete[1]} "
            "in the batch database, 0 conflicts")
    say(line)
    return batch.id, line
