"""Sync a SQLite WAL file to disk on a helper thread, so that a durable commit can overlap chip I/O.

In WAL mode synchronous=FULL is synchronous=NORMAL plus one fsync of the WAL file after each
commit (SQLite's documentation of PRAGMA synchronous). This does that fsync itself, after a
NORMAL commit, on a thread of its own: the station hands the allocation's fsync over and goes on
writing the NDEF and the file settings, and waits for it (:meth:`WalSync.wait`) only before the
first key change, the point from which a chip without a record could not be recovered.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)  # any descriptor of the file flushes its pages (fsync(2))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalSync:
    """One helper thread that fsyncs ``<database>-wal``; ``wait`` is the barrier, and raises its error."""

    def __init__(self, database: Path) -> None:
        self.wal = f"{database}-wal"
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def start(self) -> None:
        """Begin syncing what the WAL holds now (call right after COMMIT)."""
        self.wait()  # an earlier failure must surface, not be covered by a later fsync
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagsmith-walsync")
        self._pending = self._pool.submit(_fsync, self.wal)

    def wait(self) -> None:
        """Return once every commit handed over is on disk; an I/O error of the fsync is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
