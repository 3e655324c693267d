"""One way to open a store: the engine is picked here, callers only name their workspace (and a database)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tagsmith import NotFoundError
from tagsmith.workspace import Workspace

from .api import Store
from .common import utc_now


def open_store(workspace: Workspace, *, url: str | None = None, create: bool = True, upgrade: bool = False,
               clock: Callable[[], str] = utc_now, timeout: float = 30.0, database: Path | None = None) -> Store:
    """The store for ``workspace``: the line's PostgreSQL database at ``url``, else the workspace's SQLite file.

    ``url`` is a libpq connection string (``postgresql://...`` or ``service=NAME``). ``create=False``
    opens only a database that has tagsmith's schema (NotFoundError otherwise: a command that reads
    must not leave an empty database behind). A shared PostgreSQL database is brought up to date only
    with ``upgrade`` (``tagsmith db migrate``); the workspace's own SQLite file always is. ``clock``
    stamps every row (tests fix it); ``timeout`` is how long a write waits for another's lock, in seconds.
    ``database`` names another SQLite file of the workspace than its own (a station's lease journal).
    """
    if url:
        from .postgres import PostgresStore  # psycopg and libpq are loaded only for a shared database

        return PostgresStore(url, clock=clock, create=create, upgrade=upgrade, timeout=timeout)
    from .sqlite import SqliteStore

    path = database or workspace.database
    if not create and not path.exists():
        raise NotFoundError(f"no batch database at {path}: create a batch first")
    return SqliteStore(path, clock=clock, timeout=timeout)
