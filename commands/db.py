"""``tagsmith db``: the batch database's schema on either engine, and a workspace's data moved to a shared one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tagsmith.commands.context import state
from tagsmith.commands.options import JsonFlag
from tagsmith.commands.output import emit, esc, print_line

if TYPE_CHECKING:
    from tagsmith.batches.store import Store

db_app = typer.Typer(help="The batch database: create, migrate and inspect its schema; copy a workspace to PostgreSQL.",
                     no_args_is_help=True)


def _open(ctx: typer.Context, create: bool = True, upgrade: bool = False) -> Store:
    """The store --db names (else the workspace's SQLite file), as the other commands open it."""
    from tagsmith.batches.store import open_store

    workspace = state(ctx).workspace
    return open_store(workspace.ensure() if create else workspace, url=state(ctx).db, create=create, upgrade=upgrade)


def _render_status(data: dict[str, Any]) -> None:
    tls = f" over {esc(data['tls'])}" if data.get("tls") else ""
    print_line(f"{esc(data['engine'])} database {esc(data['database'])}{tls}: schema version {data['schema_version']} "
               f"(this tagsmith's: {data['tagsmith_schema_version']})")


@db_app.command("init")
def db_init(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Create the database's schema (a --db database must be empty or already tagsmith's)."""
    with _open(ctx) as store:
        data = store.status()
    emit(data, as_json, lambda: _render_status(data))


@db_app.command("migrate")
def db_migrate(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Bring the schema up to this tagsmith's version (a shared database is never migrated otherwise)."""
    with _open(ctx, upgrade=True) as store:
        data = store.status()
    emit(data, as_json, lambda: _render_status(data))


@db_app.command("status")
def db_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Which engine and database the commands use, and its schema version."""
    with _open(ctx, create=False) as store:
        data = store.status()
    emit(data, as_json, lambda: _render_status(data))


@db_app.command("copy")
def db_copy(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="The PostgreSQL database to fill (a libpq URL or service=NAME); "
                                                 "empty, or holding no product or batch yet.")],
    as_json: JsonFlag = False,
) -> None:
    """Copy the workspace's SQLite data into a line's PostgreSQL database, in one transaction."""
    from tagsmith.batches.store.copy import copy_workspace

    rows = copy_workspace(state(ctx).workspace, to)
    data = {"from": str(state(ctx).workspace.database), "rows": rows}
    emit(data, as_json, lambda: print_line(f"copied {sum(rows.values())} rows of {len(rows)} tables from "
                                           f"{esc(data['from'])} (batches: {rows['batches']}, units: {rows['units']})"))
