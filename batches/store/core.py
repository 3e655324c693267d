"""The core each engine builds on: transactions, the station rows and unit events, in shared SQL.

The concern modules (products, batches, units, refusals, manifests, QA) write their statements
once, with ``?`` placeholders and the engine's :class:`~.dialect.Dialect` for what differs, and
run them through the driver calls declared here, which each engine implements. Driver errors
never leave an engine: they become :class:`~.api.DatabaseError` (or ``ConstraintError``).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from tagsmith import StateError

from .common import check_station_name, utc_now
from .dialect import Dialect

STATION_TOUCH_SECONDS = 60.0


class Cursor(Protocol):
    """The part of a DB-API cursor the store reads."""

    @property
    def description(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...


class StoreCore(ABC):
    """Transactions around the driver calls, plus what every concern needs (stations, events)."""

    dialect: Dialect
    where: str  # the database, as messages name it: a file, or a database on a server

    def __init__(self, clock: Callable[[], str] = utc_now) -> None:
        self._now = clock
        self._stations_touched: dict[str, float] = {}  # station -> monotonic time of its last committed touch
        self._stations_pending: set[str] = set()

    # ---------------------------------------------------------------- driver calls, one set per engine
    @abstractmethod
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement on the store's connection."""

    @abstractmethod
    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run one statement for each row; how many rows it changed in all."""

    @abstractmethod
    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """A query's rows as tuples, fetched as they are read (a batch of a million units)."""

    @abstractmethod
    def _begin_write(self) -> None:
        """Open a write transaction."""

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None:
        """Roll back the open transaction, if one is open (a failed COMMIT may have closed it)."""

    @abstractmethod
    def _synced(self, overlap: bool) -> None:
        """Make the last commit survive a power cut: now, or overlapped until :meth:`wait_synced`."""

    @abstractmethod
    def wait_synced(self) -> None: ...

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def _savepoint(self) -> AbstractContextManager[None]:
        """A savepoint inside the open transaction: rolled back to if the block raises."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- reads
    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """One row as a dict; also for ``... RETURNING *`` (the row is read and the statement finished here)."""
        cursor = self._exec(sql, params)
        row = cursor.fetchone()
        found = None if row is None else dict(zip((d[0] for d in cursor.description), row, strict=True))
        cursor.close()
        return found

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Every row as a dict, read from the cursor as they are wanted (a batch of a million units)."""
        cursor = self._exec(sql, params)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None without a row)."""
        row = self._exec(sql, params).fetchone()
        return None if row is None else row[0]

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def _write(self, durable: bool = False, overlap_sync: bool = False) -> Iterator[None]:
        """One write transaction; the engine takes whatever lock keeps two writers from interleaving.

        ``durable`` makes the commit survive a power cut; with ``overlap_sync`` that sync runs
        alongside the caller's next work and :meth:`wait_synced` is the barrier.
        """
        if durable:
            self.wait_synced()  # an earlier sync's failure stops this commit; a later sync must not hide it
        try:  # BEGIN inside: a Ctrl-C landing just after it must not leave the transaction open
            self._begin_write()
            yield
            self._commit()
        except BaseException:  # a failed COMMIT (disk full, I/O) rolls back too
            self._stations_pending.clear()
            self._rollback()
            raise
        if durable:
            self._synced(overlap_sync)
        if self._stations_pending:
            touched = time.monotonic()
            self._stations_touched.update(dict.fromkeys(self._stations_pending, touched))
            self._stations_pending.clear()

    def _lock_row(self, table: str, key: Any) -> None:
        """Hold this row until the transaction ends, so the reads that follow stay true until the commit."""
        if self.dialect.lock_row:
            self._exec(self.dialect.lock_row.format(table=table), (key,))

    def _lock_writers(self) -> None:
        """Run the rest of this transaction alone among those that also call this (a counter read, then raised)."""
        if self.dialect.lock_writers:
            self._exec(self.dialect.lock_writers)

    # ---------------------------------------------------------------- schema
    def _migrate(self, migrations: Sequence[tuple[str, Callable[[Any], None]]], target: Any, where: str) -> None:
        """Apply the migrations the database lacks, in order, in one transaction; refuse a newer database.

        Each migration gets ``target`` (the engine's way to run DDL); the version table records each.
        """
        with self._write():
            self._lock_writers()  # two processes opening a new database migrate it once
            self._exec("CREATE TABLE IF NOT EXISTS schema_version "
                       "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
            self._schema_versions = len(migrations)
            current = self.schema_version
            if current > len(migrations):
                raise StateError(f"database {where} has schema version {current}, newer than this "
                                 f"tagsmith knows ({len(migrations)}): upgrade tagsmith")
            for number, (description, migrate) in enumerate(migrations[current:], start=current + 1):
                self._migration(migrate, target)
                self._exec("INSERT INTO schema_version VALUES (?, ?, ?)", (number, description, self._now()))

    def _migration(self, migrate: Callable[[Any], None], target: Any) -> None:
        """Run one migration (an engine turns its driver's errors into the store's here)."""
        migrate(target)

    @property
    def schema_version(self) -> int:
        version: int = self._scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return version

    def status(self) -> dict[str, Any]:
        """The engine, the database, and its schema version beside the one this tagsmith brings."""
        return {"engine": self.dialect.name, "database": self.where, "schema_version": self.schema_version,
                "tagsmith_schema_version": self._schema_versions}

    # ---------------------------------------------------------------- stations and unit events
    def _touch_station(self, station: str | None) -> str:
        """Now; and the station's row: made on first use, its last_seen refreshed at most once a minute.

        A station journals about ten changes per tag; rewriting its row each time was a third of
        the station's SQL. What this process touched counts only once its transaction commits.
        """
        now = self._now()
        if station is not None and \
                time.monotonic() - self._stations_touched.get(station, -STATION_TOUCH_SECONDS) >= STATION_TOUCH_SECONDS:
            check_station_name(station)
            self._exec("INSERT INTO stations VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET last_seen = ?",
                       (station, now, now, now))
            self._stations_pending.add(station)
        return now

    def _event(self, unit_id: int, event: str, detail: dict[str, Any] | None, station: str | None, now: str) -> None:
        self._events(unit_id, [(event, detail)], station, now)

    def _events(self, unit_id: int, events: list[tuple[str, dict[str, Any] | None]], station: str | None,
                now: str) -> None:
        """Insert a unit's events, in order, in one statement."""
        self._many("INSERT INTO unit_events (unit_id, event, detail, station, at) VALUES (?, ?, ?, ?, ?)",
                   [(unit_id, event, json.dumps(detail) if detail is not None else None, station, now)
                    for event, detail in events])
