"""The shared engine: one PostgreSQL database for a whole line, through psycopg 3 and the system libpq.

``conninfo`` is anything libpq takes (``postgresql://host/db?sslmode=verify-full``, or
``service=line1`` for an entry of pg_service.conf); credentials come from libpq's own places
(PGPASSWORD, ~/.pgpass, the service file), never from tagsmith. Autocommit off in libpq's sense:
the store opens each transaction itself, as on SQLite. PostgreSQL locks rows, not the database,
so the shared statements name what they must hold alone (see dialect.py); every commit is
durable when it returns (synchronous_commit), so a committed allocation is on the server's disk
before the station changes the chip's first key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from typing import Any, NoReturn

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from tagsmith import ConfigError, NotFoundError, StateError

from . import postgres_schema
from .api import ConstraintError, DatabaseError, DatabaseUnreachable
from .common import utc_now
from .core import Cursor
from .dialect import POSTGRES
from .epcis import EpcisQueries
from .qa import QaQueries

#: SQLSTATEs of a lost server: the connection exception class, and a shutdown or restart (57P..)
_LOST = ("08", "57P")
_STREAM_ROWS = 10_000  # rows a server-side cursor fetches at a time
_cursor_names = count(1)


def _one_line(exc: Exception) -> str:
    """libpq's message on one line (it indents its hints on lines of their own)."""
    return " ".join(str(exc).split())


def _check_no_password(conninfo: str) -> None:
    """Refuse a connection string with a password in it: it would show in the process list and shell history."""
    try:
        fields = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigError(f"not a PostgreSQL connection string: {_one_line(exc)}") from None
    if "password" in fields:
        raise ConfigError("the database password must not be in the connection string: put it in ~/.pgpass, "
                          "PGPASSWORD or a pg_service.conf entry")


#: libpq's words for a server that answered and refused this client: a set-up to fix, not an outage to wait out
_REFUSALS = (
    (("certificate verify failed", "does not match host name", "root certificate", "ssl error", "sslmode value"),
     "database TLS check failed"),
    (("pg_hba.conf",), "database refused this connection"),
    (("password authentication failed", "no password supplied", "authentication failed"), "database refused the login"),
)


def _refusal(exc: psycopg.Error) -> str | None:
    """What refused a connection (TLS, pg_hba, the login), or None for anything else."""
    text = str(exc).lower()
    for words, what in _REFUSALS:
        if any(word in text for word in words):
            return what
    return None


def _link_defaults(conninfo: str, timeout: float) -> dict[str, Any]:
    """How long a station waits on the network before it calls the database unreachable, unless the
    connection string says otherwise: ``timeout`` to connect; over TCP, a link silently cut (a cable
    pulled beyond the station's switch: no reset ever comes) is found by keepalives within about 20 s
    when idle, and by ``tcp_user_timeout`` when a query's bytes go unacknowledged for 10 s, instead of
    the kernel's retransmissions for a quarter of an hour. libpq ignores these on a Unix socket."""
    given = conninfo_to_dict(conninfo)
    wanted = {"connect_timeout": max(1, int(timeout)), "keepalives": 1, "keepalives_idle": 10,
              "keepalives_interval": 3, "keepalives_count": 3, "tcp_user_timeout": 10_000}
    return {name: value for name, value in wanted.items() if name not in given}


class PostgresStore(QaQueries, EpcisQueries):
    """Products, batches, serials, units and manifests in one PostgreSQL database."""

    dialect = POSTGRES

    def __init__(self, conninfo: str, *, clock: Callable[[], str] = utc_now, create: bool = True,
                 upgrade: bool = False, timeout: float = 30.0) -> None:
        """Connect; an empty database gets the schema when ``create``, an older one only when ``upgrade``."""
        super().__init__(clock)
        _check_no_password(conninfo)
        self._conninfo, self._timeout = conninfo, timeout
        self.conn = self._connect()
        info = self.conn.info
        self.where = f"{info.dbname} on {info.host or 'localhost'}"
        try:
            current = self.schema_version if self._scalar("SELECT to_regclass('schema_version')") else 0
            known = len(postgres_schema.MIGRATIONS)
            if current == 0 and not (create or upgrade):
                raise NotFoundError(f"no tagsmith schema in database {self.where} (create it with: tagsmith db init)")
            if 0 < current < known and not upgrade:
                raise StateError(f"database {self.where} has schema version {current}, older than this tagsmith "
                                 f"({known}): run tagsmith db migrate")
            if current == known:  # up to date: a station's role has no right to create tables, and needs none
                self._schema_versions = known
            else:
                self._migrate(postgres_schema.MIGRATIONS, self._run_ddl, self.where)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, **_link_defaults(self._conninfo, self._timeout))
        except psycopg.Error as exc:
            refused = _refusal(exc)
            if refused is not None:  # waiting would not help: the station stops with what to fix
                raise DatabaseError(f"{refused}: {_one_line(exc)}") from exc
            self._failed(exc)
        try:
            conn.execute(f"SET lock_timeout = {int(self._timeout * 1000)}")  # a writer waits this long, as on SQLite
        except psycopg.Error as exc:
            conn.close()
            self._failed(exc)
        return conn

    def reconnect(self) -> None:
        """A new connection in place of one the server dropped (its open transaction was rolled back there)."""
        self.conn.close()
        self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()

    def status(self) -> dict[str, Any]:
        """As every engine's, and the TLS protocol the connection uses (None over a Unix socket or plain TCP)."""
        protocol = self._scalar("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl") \
            if self.conn.pgconn.ssl_in_use else None
        return {**super().status(), "tls": protocol}

    def _failed(self, exc: psycopg.Error) -> NoReturn:
        """A driver error as the store's own: a broken rule of the schema, a lost server, or another failure."""
        if isinstance(exc, psycopg.IntegrityError):
            raise ConstraintError(f"the database refused a change: {exc}") from exc
        if isinstance(exc, psycopg.OperationalError) and (exc.sqlstate is None or exc.sqlstate.startswith(_LOST)):
            raise DatabaseUnreachable(f"database unreachable: {_one_line(exc)}") from exc
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):  # a station's role (docs/deployment.md)
            raise DatabaseError(f"this database role may not do that: {_one_line(exc)}") from exc
        raise DatabaseError(f"the database cannot be used: {_one_line(exc)}") from exc

    def _run_ddl(self, statement: str) -> None:
        self._exec(statement)

    # ---------------------------------------------------------------- driver calls
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.conn.execute(self.dialect.statement(sql), params)
        except psycopg.Error as exc:
            self._failed(exc)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(self.dialect.statement(sql), rows)
                return cursor.rowcount
        except psycopg.Error as exc:
            self._failed(exc)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows through a server-side cursor inside the open transaction, else fetched at once."""
        if self.conn.info.transaction_status == pq.TransactionStatus.IDLE:
            return iter(self._exec(sql, params).fetchall())
        cursor = self.conn.cursor(name=f"tagsmith_stream_{next(_cursor_names)}")
        cursor.itersize = _STREAM_ROWS
        try:
            cursor.execute(self.dialect.statement(sql), params)
        except psycopg.Error as exc:
            self._failed(exc)
        return self._fetching(cursor)

    def _fetching(self, cursor: psycopg.ServerCursor[Any]) -> Iterator[tuple[Any, ...]]:
        try:
            yield from cursor
        except psycopg.Error as exc:
            self._failed(exc)
        finally:
            if not self.conn.closed and self.conn.info.transaction_status == pq.TransactionStatus.INTRANS:
                cursor.close()

    def _begin_write(self) -> None:
        self._exec("BEGIN")

    def _commit(self) -> None:
        self._exec("COMMIT")

    def _rollback(self) -> None:
        if self.conn.closed or self.conn.broken:
            return  # a lost connection took its transaction with it
        if self.conn.info.transaction_status != pq.TransactionStatus.IDLE:
            self._exec("ROLLBACK")

    def _synced(self, overlap: bool) -> None:
        """Nothing to add: the server returned from COMMIT once the commit was on its disk."""

    def wait_synced(self) -> None:
        """Nothing to wait for: every commit was durable when it returned."""

    @contextmanager
    def snapshot(self) -> Iterator[PostgresStore]:
        """A read transaction: every query inside sees the same committed state."""
        try:  # BEGIN inside: a Ctrl-C landing just after it must not leave the transaction open
            self._exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield self
        finally:
            self._rollback()

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._exec("SAVEPOINT store")
        try:
            yield
        except BaseException:
            self._exec("ROLLBACK TO SAVEPOINT store")
            raise
        finally:
            self._exec("RELEASE SAVEPOINT store")
