"""The encoding station loop: tags in, recorded outcomes out, as a stream of events.

The loop knows nothing of rich or the terminal: it yields :class:`Outcome` per tag, a
:class:`DatabaseEvent` when a line's shared database goes away and when it is back, and a
:class:`Summary` at the end; the CLI draws them (or prints them as JSON lines).

A database that goes away mid-run (the server stopped, the network cut) stops the station: it
takes no new tag, retries the connection with backoff and carries on by itself. The tag in the
field when it went away ends as ``torn`` ("place it again"), as a lifted tag does, once the database
is back: nothing was written to it before its unit's allocation committed (a chip's first key
changes only after it), so placed again it is either still factory-fresh and gets a serial then,
or its unit is on record (also when the commit's answer was lost) and it resumes, or verifies if
its closing record had committed. The steps of the attempt the outage cut short are not
journaled; the next placement finds them done on the chip (docs/deployment.md).
"""

from __future__ import annotations

import random as _random
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tagsmith.batches.records import DONE, IN_PROGRESS
from tagsmith.batches.store import DatabaseUnreachable, Store
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.reader import Reader, TagConnection

from .encode import EncodeContext, Outcome, TagResult, process_tag

if TYPE_CHECKING:  # the simulator loads only for simulated runs
    from tagsmith.encoders.simulator import SimulatedNtag424

    from .simpool import SimChipPool

DONE_RESULTS = (TagResult.ENCODED, TagResult.RESUMED, TagResult.VERIFIED)
RETRY_FIRST, RETRY_MAX = 0.25, 4.0  # seconds between attempts to reach a lost database: doubled up to the max
T = TypeVar("T")


class TagSource(Protocol):
    """Where tags come from: a reader on the line, or simulated chips."""

    def next_tag(self) -> Connection | None:
        """Block until a tag is placed; None when no more tags will come."""
        ...

    def finished(self, outcome: Outcome) -> None:
        """The station is done with the current tag (the operator removes it)."""
        ...


@dataclass
class Summary:
    """Counts and rates for one station session."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    tag_seconds: float = 0.0
    apdus: int = 0
    tags: int = 0
    interrupted: bool = False
    complete: tuple[int, int] | None = None  # (units done, quantity) when the session ended a finished batch

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.result] = self.counts.get(outcome.result, 0) + 1
        self.tags += 1
        self.apdus += outcome.apdus
        self.tag_seconds += outcome.seconds

    @property
    def done(self) -> int:
        return sum(self.counts.get(r, 0) for r in DONE_RESULTS)

    def to_dict(self) -> dict[str, Any]:
        per_min = 60 * self.done / self.seconds if self.seconds else 0.0
        return {"event": "summary", "counts": self.counts, "tags": self.tags, "done": self.done,
                "seconds": round(self.seconds, 3), "per_minute": round(per_min, 1),
                "ms_per_tag": round(1000 * self.tag_seconds / self.tags, 2) if self.tags else None,
                "apdus_per_tag": round(self.apdus / self.tags, 2) if self.tags else None,
                "interrupted": self.interrupted,
                "batch_complete": None if self.complete is None else
                {"done": self.complete[0], "quantity": self.complete[1]}}


@dataclass(frozen=True)
class DatabaseEvent:
    """The line's database became unreachable (the station waits) or is back (it carries on)."""

    state: str  # "unreachable" or "back"
    reason: str
    waited: float = 0.0  # seconds without the database, when it is back

    def to_dict(self) -> dict[str, Any]:
        event: dict[str, Any] = {"event": "database", "state": self.state, "reason": self.reason}
        if self.state == "back":
            event["waited_s"] = round(self.waited, 2)
        return event


def wait_for_database(store: Store, sleep: Callable[[float], None] = time.sleep) -> float:
    """Reconnect until the database answers, backing off from RETRY_FIRST to RETRY_MAX; the seconds it took."""
    started, delay = time.monotonic(), RETRY_FIRST
    while True:
        sleep(delay)
        try:
            store.reconnect()
            return time.monotonic() - started
        except DatabaseUnreachable:
            delay = min(2 * delay, RETRY_MAX)


def outage(store: Store, exc: DatabaseUnreachable) -> Iterator[DatabaseEvent]:
    """Report the database gone, wait until it is back, report that."""
    yield DatabaseEvent("unreachable", str(exc))
    yield DatabaseEvent("back", "database reachable again", wait_for_database(store))


def through_outages(store: Store, step: Callable[[], T]) -> Generator[DatabaseEvent, None, T]:
    """Run ``step`` until it gets through; each database outage in between is waited out and reported."""
    while True:
        try:
            return step()
        except DatabaseUnreachable as exc:
            yield from outage(store, exc)


def cut_by_outage(seconds: float) -> Outcome:
    """The tag in the field when the database went away: to be placed again, as a lifted one."""
    return Outcome(TagResult.TORN, None, None, "the database went away during this tag: place it again",
                   0, (), seconds)


def batch_complete(ctx: EncodeContext) -> tuple[int, int] | None:
    """(done, quantity) when no serial is left, no unit waits for its chip and no lease holds one; else None."""
    return store_batch_complete(ctx.store, ctx.batch_id)


def store_batch_complete(store: Store, batch_id: str) -> tuple[int, int] | None:
    """:func:`batch_complete` of a batch in ``store``: one row read per tag; the unit counts (index-only)
    and the leases only once every serial is allocated."""
    batch = store.batch(batch_id)
    if batch.allocated < batch.quantity:
        return None
    counts = store.unit_counts(batch_id)
    if any(counts.get(state, 0) for state in IN_PROGRESS):
        return None  # an interrupted unit's chip may still come back to finish
    if any(lease.unused for lease in store.leases(batch_id, active_only=True)):
        return None  # a station encodes from its lease: its units come with its next sync
    return sum(counts.get(state, 0) for state in DONE), batch.quantity


def run(ctx: EncodeContext, source: TagSource, *, count: int | None = None,
        on_done: Callable[[Outcome], None] | None = None,
        stop: Callable[[], bool] | None = None) -> Iterator[Outcome | DatabaseEvent | Summary]:
    """Process tags until ``count`` units are done, the batch is complete, the source runs dry, or Ctrl-C.

    Ctrl-C between tags stops at once; during a tag, the steps the chip confirmed are journaled
    before it stops, and the unit stays recorded as interrupted and resumes next time. A batch
    with every serial allocated and no unit left to finish ends the session before the next
    placement (:attr:`Summary.complete`): no chip is authenticated for work that is not there.
    A lost database is waited for between steps (see the module's docstring). ``stop`` is asked
    before each placement (another thread's way to end the loop: heads.py).
    """
    summary = Summary()
    started = time.perf_counter()
    try:
        while count is None or summary.done < count:
            summary.complete = yield from through_outages(ctx.store, partial(batch_complete, ctx))
            if summary.complete is not None or (stop is not None and stop()):
                break
            connection = source.next_tag()
            if connection is None:
                break
            placed = time.perf_counter()
            try:
                outcome = process_tag(ctx, connection)  # a lifted tag comes back as a "torn" outcome
            except DatabaseUnreachable as exc:
                yield from outage(ctx.store, exc)
                outcome = cut_by_outage(time.perf_counter() - placed)
            summary.add(outcome)
            if on_done is not None and outcome.personalised:
                on_done(outcome)
            source.finished(outcome)
            yield outcome
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.seconds = time.perf_counter() - started
    yield summary


class SimulatedSource:
    """Factory-fresh simulated chips placed one after another; torn ones come back later.

    ``tear_rate`` lifts that share of placements from the field at a random APDU, so the
    resume path runs in every demo and test. A chip is torn at most ``max_tears`` times.

    ``resume_pool=True`` (with a ``pool``) first presents every chip already in the pool, as an
    operator re-places the tags left on the bench after a station crash: unfinished ones resume,
    finished ones just verify; ``resume`` presents only the pool chips of these UIDs. ``count``
    then counts only the new factory-fresh chips. ``persist_each_apdu`` saves a pool chip after
    each command that changed its NVM, so the file is never behind what the database records.
    ``latency_ms`` delays each APDU as a real reader's radio link does (the chips stay instant).
    """

    def __init__(self, count: int, *, tear_rate: float = 0.0, seed: int | None = None,
                 pool: SimChipPool | None = None, persist_each_apdu: bool = False, max_tears: int = 2,
                 resume_pool: bool = False, resume: Iterable[bytes] = (), latency_ms: float = 0.0) -> None:
        self.rng = _random.Random(seed)
        self.latency_ms = latency_ms
        self.pool = pool
        self.persist_to = pool if persist_each_apdu else None  # the pool each changed chip is saved to
        self.remaining = count
        self.tear_rate = tear_rate
        self.max_tears = max_tears
        self.retry: deque[SimulatedNtag424] = deque()
        self.tears: dict[bytes, int] = {}
        self.current: SimulatedNtag424 | None = None
        self.leftover: deque[SimulatedNtag424] = deque()
        if resume_pool:
            if pool is None:
                raise ValueError("resume_pool needs a pool")
            self.leftover.extend(pool.load(uid) for uid in pool.uids())
        elif resume:
            if pool is None:
                raise ValueError("resume needs a pool")
            self.leftover.extend(pool.load(uid) for uid in resume)

    def _fresh(self) -> SimulatedNtag424:
        self.remaining -= 1
        if self.pool is not None:
            return self.pool.new_chip(self.rng)
        from tagsmith.encoders.simulator import SimulatedNtag424

        from .simpool import random_uid

        return SimulatedNtag424(uid=random_uid(self.rng))

    def next_tag(self) -> Connection | None:
        if self.leftover:
            chip = self.leftover.popleft()
        elif self.retry and (self.remaining <= 0 or self.rng.random() < 0.5):
            chip = self.retry.popleft()
        elif self.remaining > 0:
            chip = self._fresh()
        else:
            return None
        chip.place()
        if self.tears.get(chip.uid, 0) < self.max_tears and self.rng.random() < self.tear_rate:
            chip.tear_at(self.rng.randint(1, 17))
        self.current = chip
        from tagsmith.encoders.simulator.serve import with_latency

        if self.persist_to is not None:
            from .simpool import PersistentChip

            return with_latency(PersistentChip(chip, self.persist_to), self.latency_ms)
        return with_latency(chip, self.latency_ms)

    def finished(self, outcome: Outcome) -> None:
        chip, self.current = self.current, None
        if chip is None:
            return
        chip.cancel_tear()
        if outcome.result == TagResult.TORN:
            self.tears[chip.uid] = self.tears.get(chip.uid, 0) + 1
            self.retry.append(chip)
        chip.remove()
        if self.pool is not None and self.persist_to is None:
            self.pool.save(chip)


def interrupted_sim_chips(ctx: EncodeContext, pool: SimChipPool) -> list[bytes]:
    """UIDs of the batch's units left in progress (allocated, or encoding) whose simulated chip is in
    the pool: the tags an operator places again first, so that they resume."""
    return [unit.uid for unit in ctx.store.units(ctx.batch_id, states=IN_PROGRESS)
            if unit.uid is not None and pool.path(unit.uid).exists()]


class ReaderSource:
    """Tags placed by an operator on a real reader: wait for one, and for its removal after."""

    def __init__(self, reader: Reader, *, timeout: float | None = None,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.reader = reader
        self.timeout = timeout
        self.on_wait = on_wait or (lambda message: None)
        self.current: TagConnection | None = None

    def next_tag(self) -> Connection | None:
        self.on_wait("Place the next tag on the reader")
        self.current = self.reader.wait_for_tag(self.timeout)
        return self.current

    def finished(self, outcome: Outcome) -> None:
        connection, self.current = self.current, None
        if connection is not None:
            connection.close()
        self.on_wait("Remove the tag")
        self.reader.wait_for_removal(self.timeout)
