"""Several reader heads at one station: one tag loop per head, in threads, one stream of events.

Each head runs the station loop of station.py on its own store connection (an SQLite connection
belongs to one thread; on PostgreSQL a head is one more client, like another station) and its own
tag source. Its events are tagged with the head's name and merged into one queue that the caller
draws in its own thread, where the label hook runs too. A head that fails (its reader unplugged)
reports it and stops; the others go on. Stopping is a flag each loop checks between tags (a
thread cannot take Ctrl-C): on Ctrl-C, or once ``count`` units are done across heads, no head takes
a new tag, and a head in the middle of one finishes and records it (well under a second) first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from tagsmith.encoders.reader import NoTagError, Reader, TagConnection

from .encode import EncodeContext, Outcome
from .station import DONE_RESULTS, ReaderSource, Summary, TagSource, run

POLL_SECONDS = 0.25  # how often a waiting reader head looks at the stop flag
SourceOpener = Callable[[EncodeContext, threading.Event], AbstractContextManager[TagSource]]


@dataclass(frozen=True)
class Head:
    """One reader head: its name (the reader's, or sim-N) and how to open its tag source."""

    name: str
    open_source: SourceOpener


@dataclass(frozen=True)
class HeadEvent:
    """An event of one head's loop (a tag's Outcome or a DatabaseEvent), named by the head."""

    head: str
    event: Any

    def to_dict(self) -> dict[str, Any]:
        return {**self.event.to_dict(), "head": self.head}


@dataclass(frozen=True)
class HeadFailed:
    """A head stopped on an error (its reader unplugged, a setup failure); the others go on."""

    head: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": "head", "head": self.head, "state": "failed", "reason": self.reason}


@dataclass
class HeadsSummary(Summary):
    """The station's totals (as one head's Summary) and each head's own, with the heads that failed."""

    heads: dict[str, Summary] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "heads": {name: s.to_dict() for name, s in self.heads.items()},
                "failed_heads": self.failed}

    def close(self, seconds: float, interrupted: bool) -> HeadsSummary:
        """Add the heads' counts into the totals."""
        for head in self.heads.values():
            for result, n in head.counts.items():
                self.counts[result] = self.counts.get(result, 0) + n
            self.tags += head.tags
            self.apdus += head.apdus
            self.tag_seconds += head.tag_seconds
            self.complete = self.complete or head.complete
        self.seconds, self.interrupted = seconds, interrupted
        return self


@dataclass(frozen=True)
class _Ended:
    head: str


def run_heads(make_context: Callable[[], EncodeContext], heads: list[Head], *, count: int | None = None,
              on_done: Callable[[Outcome], None] | None = None) -> Iterator[HeadEvent | HeadFailed | HeadsSummary]:
    """Run every head until the batch is complete, ``count`` units are done, Ctrl-C, or every head has ended.

    ``make_context`` is called once in each head's thread (its own store connection). ``on_done`` runs
    here, in the caller's thread, for each unit a head personalised (the label printer).
    """
    events: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    summary = HeadsSummary()
    threads = [threading.Thread(target=_head_loop, args=(head, make_context, stop, events, summary.heads),
                                name=f"head {head.name}", daemon=True) for head in heads]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    running, done, interrupted = len(threads), 0, False
    try:
        while running:
            item = events.get()
            if isinstance(item, _Ended):
                running -= 1
                continue
            if isinstance(item, HeadFailed):
                summary.failed[item.head] = item.reason
            elif isinstance(item.event, Outcome):
                done += item.event.result in DONE_RESULTS
                if on_done is not None and item.event.personalised:
                    on_done(item.event)
                if count is not None and done >= count:
                    stop.set()
            yield item
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for thread in threads:  # each finishes (and records) the tag it holds
            thread.join()
        while not events.empty():  # and those tags are reported before the summary
            item = events.get()
            if isinstance(item, HeadFailed):
                summary.failed[item.head] = item.reason
            if not isinstance(item, _Ended):
                yield item
    yield summary.close(time.perf_counter() - started, interrupted)


def _head_loop(head: Head, make_context: Callable[[], EncodeContext], stop: threading.Event,
               events: queue.Queue[Any], summaries: dict[str, Summary]) -> None:
    """One head's thread: its own context and source, the station loop, its events into the queue."""
    ctx, mine, started = None, Summary(), time.perf_counter()
    summaries[head.name] = mine  # counts what the head did, also when it fails before its loop's own summary
    try:
        ctx = make_context()
        with head.open_source(ctx, stop) as source:
            for event in run(ctx, source, stop=stop.is_set):
                if isinstance(event, Summary):
                    mine.complete, mine.interrupted = event.complete, event.interrupted
                    continue
                if isinstance(event, Outcome):
                    mine.add(event)
                events.put(HeadEvent(head.name, event))
    except Exception as exc:  # any failure of one head is reported; the others go on
        events.put(HeadFailed(head.name, " ".join(str(exc).split()) or type(exc).__name__))
    finally:
        mine.seconds = time.perf_counter() - started
        if ctx is not None:
            ctx.store.close()
        events.put(_Ended(head.name))


class StoppableReaderSource(ReaderSource):
    """A reader head's placements, waiting in short steps so that the stop flag is seen."""

    def __init__(self, reader: Reader, stop: threading.Event, *, timeout: float | None = None) -> None:
        super().__init__(reader, timeout=timeout)
        self.stop = stop

    def next_tag(self) -> TagConnection | None:
        waited = 0.0
        while not self.stop.is_set():
            try:
                self.current = self.reader.wait_for_tag(POLL_SECONDS)
                return self.current
            except NoTagError:
                waited += POLL_SECONDS
                if self.timeout is not None and waited >= self.timeout:
                    raise
        return None

    def finished(self, outcome: Outcome) -> None:
        connection, self.current = self.current, None
        if connection is not None:
            connection.close()
        waited = 0.0
        while not self.stop.is_set():
            try:
                self.reader.wait_for_removal(POLL_SECONDS)
                return
            except NoTagError:
                waited += POLL_SECONDS
                if self.timeout is not None and waited >= self.timeout:
                    raise


def reader_head(name: str, wait: float | None) -> Head:
    """A head on the PC/SC or nfcpy reader ``name``."""

    @contextmanager
    def open_source(ctx: EncodeContext, stop: threading.Event) -> Iterator[TagSource]:
        from tagsmith.encoders.reader import open_reader

        with open_reader(name) as device:
            yield StoppableReaderSource(device, stop, timeout=wait)

    return Head(name, open_source)
