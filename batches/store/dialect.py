"""Where the engines' SQL differs: the few spellings the shared statements take from their engine.

The concern modules write every statement once, with ``?`` placeholders and the portable subset
both SQLite (3.35 or later) and PostgreSQL accept (``ON CONFLICT``, ``RETURNING``, ``FILTER``,
savepoints); what is left differs here. SQLite serialises every write transaction with one lock
on the file (``BEGIN IMMEDIATE``); PostgreSQL locks rows, so the shared code names the row or
the step it must hold alone, and the locks below do that there (and nothing on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Dialect:
    name: str
    greatest: str  # the larger of two values: SQLite's two-argument MAX
    insert_order: str  # a column that orders a table's rows as they were inserted
    no_index: str  # prefixed to a column so the planner keeps the index it was choosing for the ORDER BY
    lock_row: str  # holds one row by its id until the transaction ends ({table} filled in)
    lock_writers: str  # holds the one lock of the steps that read a counter and write it back
    placeholder: str  # how the driver spells a parameter

    def statement(self, sql: str) -> str:
        """A shared statement, ``?`` placeholders and all, as this engine's driver takes it."""
        return sql if self.placeholder == "?" else _respelled(sql, self.placeholder)


@lru_cache(maxsize=512)
def _respelled(sql: str, placeholder: str) -> str:
    # the statements hold no literal ? or %: each ? is a parameter, and % is psycopg's escape
    return sql.replace("%", "%%").replace("?", placeholder)


SQLITE = Dialect(name="sqlite", greatest="MAX", insert_order="rowid", no_index="+", lock_row="", lock_writers="",
                 placeholder="?")
POSTGRES = Dialect(name="postgresql", greatest="GREATEST", insert_order="seq", no_index="",
                   lock_row="SELECT 1 FROM {table} WHERE id = ? FOR UPDATE",
                   # a transaction-scoped advisory lock: the key is arbitrary, the same for every tagsmith
                   lock_writers="SELECT pg_advisory_xact_lock(4240424)", placeholder="%s")
