"""The embedded engine: one SQLite file per workspace, through sqlite-utils.

WAL mode with foreign keys on and a busy timeout, so a station and a CLI in another process can
share the file. Every state change is one ``BEGIN IMMEDIATE`` transaction: two processes
allocating at once are serialised by SQLite, never by luck. A durable commit gets the WAL fsync
that synchronous=FULL would add, done by :class:`~tagsmith.batches.walsync.WalSync`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from sqlite_utils import Database

from tagsmith import StateError

from ..walsync import WalSync
from . import sqlite_schema
from .api import ConstraintError, DatabaseError
from .common import utc_now
from .core import Cursor
from .dialect import SQLITE
from .epcis import EpcisQueries
from .qa import QaQueries


def _private_files(database: Path) -> None:
    """Make the database and its WAL/SHM files 0600 whatever the umask or the folder's mode."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)


class SqliteStore(QaQueries, EpcisQueries):
    """Products, batches, serials, units and manifests in one SQLite file."""

    dialect = SQLITE

    def __init__(self, path: str | Path, *, clock: Callable[[], str] = utc_now, timeout: float = 30.0) -> None:
        super().__init__(clock)
        self.path = Path(path)
        self.where = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private_files(self.path)  # before SQLite creates it: its -wal and -shm then get the same mode
        try:  # isolation_level=None: no implicit transactions; the store opens each one explicitly
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            self._failed(exc)
        self._walsync = WalSync(self.path)  # the extra fsync that makes one commit survive a power cut
        try:
            self.db = Database(self.conn, execute_plugins=False)
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.db.enable_wal()
            _private_files(self.path)  # -wal/-shm left by an older version or a wider umask
            self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
            self._migrate(sqlite_schema.MIGRATIONS, self.db, self.where)
        except sqlite3.Error as exc:
            self.close()
            self._failed(exc)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self._walsync.close()
        finally:
            self.conn.close()

    def reconnect(self) -> None:
        """Nothing to do: a file in the workspace never becomes unreachable as a server does."""

    def _failed(self, exc: sqlite3.Error) -> NoReturn:
        """A driver error as the store's own: a broken rule of the schema, or a database that cannot be used."""
        if isinstance(exc, sqlite3.IntegrityError):
            raise ConstraintError(f"the database refused a change: {exc}") from exc
        raise DatabaseError(f"the workspace database cannot be used: {exc} "
                            "(a damaged file, or not a tagsmith database?)") from exc

    # ---------------------------------------------------------------- driver calls
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            self._failed(exc)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        try:
            return self.conn.executemany(sql, rows).rowcount
        except sqlite3.Error as exc:
            self._failed(exc)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        return iter(self._exec(sql, params))  # an SQLite cursor reads its rows as it is iterated

    def _begin_write(self) -> None:
        self._exec("BEGIN IMMEDIATE")  # the write lock up front: no deadlock upgrading a read lock

    def _commit(self) -> None:
        self._exec("COMMIT")

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self._exec("ROLLBACK")

    def _synced(self, overlap: bool) -> None:
        """WAL with synchronous=NORMAL survives any crash of the process; this fsync of the WAL also
        survives a power cut. Overlapped, it runs in the helper process until :meth:`wait_synced`."""
        self._syncing(self._walsync.start if overlap else self._walsync.sync)

    def wait_synced(self) -> None:
        """Return once every durable commit is on disk (the barrier before a chip's first key change)."""
        self._syncing(self._walsync.wait)

    def _syncing(self, action: Callable[[], None]) -> None:
        """Run a WalSync call; a failed fsync is a one-line StateError naming the database."""
        try:
            action()
        except OSError as exc:
            raise StateError(f"could not sync the database {self.path} to disk: {exc.strerror or exc}") from None

    @contextmanager
    def snapshot(self) -> Iterator[SqliteStore]:
        """A read transaction: every query inside sees the same committed state (WAL snapshot)."""
        try:  # BEGIN inside: a Ctrl-C landing just after it must not leave the read transaction open
            self._exec("BEGIN")
            yield self
        finally:
            if self.conn.in_transaction:
                self._exec("COMMIT")

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._exec("SAVEPOINT store")
        try:
            yield
        except BaseException:
            self._exec("ROLLBACK TO store")
            raise
        finally:
            self._exec("RELEASE store")

    # ---------------------------------------------------------------- schema
    def _migration(self, migrate: Callable[[Any], None], target: Any) -> None:
        try:
            migrate(target)
        except sqlite3.Error as exc:
            self._failed(exc)
