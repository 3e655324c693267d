"""Moving a workspace's SQLite data into a line's PostgreSQL database (``tagsmith db copy``)."""

from __future__ import annotations

from itertools import islice

from tagsmith import NotFoundError, StateError
from tagsmith.workspace import Workspace

from .postgres import PostgresStore
from .sqlite import SqliteStore

#: every table, parents before the tables that refer to them; each copied in its insertion order
TABLES = ("products", "key_policies", "product_versions", "batches", "serials", "serial_series", "stations",
          "units", "unit_events", "label_prints", "manifests", "qa_plans", "qa_results", "qa_decisions",
          "qa_overrides", "qa_switching", "auth_failures", "incomplete_overrides", "epcis_captures", "serial_leases",
          "leased_serials", "free_serials", "lease_conflicts")
#: the tables whose ids PostgreSQL numbers itself: its counters continue after the copied rows
NUMBERED = ("key_policies", "units", "unit_events", "label_prints", "qa_results", "qa_overrides", "incomplete_overrides",
            "epcis_captures", "serial_leases", "lease_conflicts")
#: insertion order where the table has no rowid
ORDER = {"serials": "batch_id, seq"}
_CHUNK = 10_000


def copy_to_postgres(source: SqliteStore, target: PostgresStore) -> dict[str, int]:
    """Copy every row of ``source`` into ``target``, an empty database, in one transaction; rows per table.

    Both must be at their engine's latest schema (the same tables and columns). Nothing is
    copied into a database that already holds products or batches: a copy never merges.
    """
    if target._scalar("SELECT COUNT(*) FROM products") or target._scalar("SELECT COUNT(*) FROM batches"):
        raise StateError(f"database {target.where} already holds products or batches: copy only into an empty one")
    copied = {}
    with source.snapshot(), target._write():
        for table in TABLES:
            columns = [d[0] for d in source._exec(f"SELECT * FROM {table} LIMIT 0").description]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = source._stream(f"SELECT {quoted} FROM {table} ORDER BY {ORDER.get(table, 'rowid')}")
            insert = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(columns))})"
            copied[table] = 0
            while chunk := list(islice(rows, _CHUNK)):
                copied[table] += target._many(insert, chunk)
        for table in NUMBERED:
            target._exec(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) "
                         f"FROM {table}")
    return copied


def copy_workspace(workspace: Workspace, url: str) -> dict[str, int]:
    """Copy the workspace's SQLite data into the PostgreSQL database at ``url`` (its schema made if it is empty)."""
    if not workspace.database.exists():
        raise NotFoundError(f"no batch database at {workspace.database}: nothing to copy")
    with SqliteStore(workspace.database) as source, PostgresStore(url) as target:
        return copy_to_postgres(source, target)
