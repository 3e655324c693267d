"""Setting up a station session: the batch's encode context, its label printer, and where the tags come from.

The tags come from a reader an operator places them on, or from simulated chips in the workspace:
interrupted ones placed again first (as an operator would), then factory-fresh ones for the serials left.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tagsmith import StateError
from tagsmith.provision import station
from tagsmith.provision.encode import EncodeContext
from tagsmith.provision.outputs import check_printer
from tagsmith.workspace import Workspace


def open_session(store: Any, keys: Any, batch_id: str, station_name: str | None, *,
                 allow_simulator_signature: bool) -> EncodeContext:
    """The batch's encode context at this station (named after the host unless given)."""
    return EncodeContext.for_batch(store, keys, batch_id, station_name or socket.gethostname(),
                                   allow_simulator_signature=allow_simulator_signature)


def check_label_printer(printer: str | None, workspace: Workspace) -> None:
    """Refuse a --label-printer that names one of the workspace's own files (before anything is encoded)."""
    if printer is not None:
        check_printer(printer, workspace, option="--label-printer")


def label_hook(enc: EncodeContext, printer: str | None, layout_name: str | None, dpi: int) -> Callable[[Any], None] | None:
    """Print each newly encoded unit's ZPL label to ``printer`` and record it, or None."""
    if not printer:
        return None
    from tagsmith.provision.labelling import StationLabeller

    return StationLabeller(enc.store, enc.product, printer, layout_name, dpi, lot=enc.lot).print_unit


def simulated_source(enc: EncodeContext, workspace: Workspace, *, count: int | None, tear_rate: float,
                     seed: int | None, latency_ms: float = 0.0, left: int | None = None) -> station.SimulatedSource:
    """The workspace's simulated chips: the batch's interrupted ones first, then fresh ones for the serials
    left (``left``: as many as a leased station may still get, else the batch's)."""
    from tagsmith.provision.simpool import sim_pool

    pool = sim_pool(workspace)
    again = station.interrupted_sim_chips(enc, pool)  # placed again first, as an operator would
    if left is None:
        batch = enc.store.batch(enc.batch_id)
        left = batch.quantity - batch.allocated
    if left <= 0 and not again and station.batch_complete(enc) is None:
        raise StateError(f"batch {enc.batch_id} has no serials left and its unfinished units have no simulated chip "
                         f"here (see: tagsmith batch units {enc.batch_id} --state encoding)")
    return station.SimulatedSource(max(0, min(count or left, left)), tear_rate=tear_rate, seed=seed,
                                   pool=pool, persist_each_apdu=True, resume=again, latency_ms=latency_ms)


@contextmanager
def tag_source(enc: EncodeContext, workspace: Workspace, *, sim: bool, reader: str | None, count: int | None,
               tear_rate: float, seed: int | None, wait: float | None,
               on_wait: Callable[[str], None], sim_latency_ms: float = 0.0, sim_left: int | None = None) -> Iterator[Any]:
    """The session's tags: simulated chips (``sim``, each APDU delayed ``sim_latency_ms``, ``sim_left`` fresh
    ones at most), or an operator's placements on ``reader``, open while in use."""
    if sim:
        yield simulated_source(enc, workspace, count=count, tear_rate=tear_rate, seed=seed, latency_ms=sim_latency_ms,
                               left=sim_left)
        return
    from tagsmith.encoders.reader import open_reader

    with open_reader(reader) as device:
        yield station.ReaderSource(device, timeout=wait, on_wait=on_wait)


def simulated_heads(enc: EncodeContext, workspace: Workspace, heads: int, *, count: int | None, tear_rate: float,
                    seed: int | None, latency_ms: float = 0.0, left: int | None = None) -> list[Any]:
    """``heads`` simulated reader heads on the workspace's chips: the serials left shared out among them,
    the batch's interrupted chips placed again on the first."""
    from tagsmith.provision.heads import Head
    from tagsmith.provision.simpool import sim_pool

    first = simulated_source(enc, workspace, count=count, tear_rate=tear_rate, seed=seed, latency_ms=latency_ms,
                             left=left)
    fresh = first.remaining
    shares = [fresh // heads + (1 if i < fresh % heads else 0) for i in range(heads)]
    pool = sim_pool(workspace)

    def opener(index: int) -> Callable[[EncodeContext, Any], Any]:
        @contextmanager
        def open_source(ctx: EncodeContext, stop: Any) -> Iterator[station.SimulatedSource]:
            if index == 0:
                first.remaining = shares[0]
                yield first
                return
            yield station.SimulatedSource(shares[index], tear_rate=tear_rate, seed=None if seed is None else seed + index,
                                          pool=pool, persist_each_apdu=True, latency_ms=latency_ms)
        return open_source

    return [Head(f"sim-{index + 1}", opener(index)) for index in range(heads)]
