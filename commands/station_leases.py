"""``station run --lease``, ``station leases``, ``station revoke-lease`` and ``station sync``: serial leases.

A leased station encodes from a block of serials through a network outage (provision/leases.py,
provision/leasesession.py); ``commands/station.py`` registers these commands on ``station``.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tagsmith.commands.context import opened, state, who
from tagsmith.commands.options import JsonFlag
from tagsmith.commands.output import console, emit, esc, folding_table, print_line

if TYPE_CHECKING:
    from tagsmith.provision.leasesession import LeaseSession

LEASE_TTL_HOURS = 12.0


def begin_lease(ctx: typer.Context, batch: str, size: int | None, hours: float,
                station_name: str | None) -> LeaseSession | None:
    """``station run --lease N``: the session (synced, a block leased, its worker started), closed with the
    command; None without --lease. The line's database must answer now."""
    if size is None:
        return None
    from tagsmith.batches.store import open_store
    from tagsmith.provision.leasesession import LeaseSession

    ws, url = state(ctx).workspace.ensure(), state(ctx).db
    session = LeaseSession(ws, lambda: open_store(ws, url=url, create=False, timeout=10.0), batch,
                           station_name or socket.gethostname(), size=size, hours=hours)
    session.start()
    ctx.call_on_close(session.close)
    return session


def leased_events(session: LeaseSession | None, events: Any, store: Any) -> Any:
    """The station loop's events, with the lease's between them when the station runs leased."""
    if session is None:
        return events
    from tagsmith.provision.leasesession import leased_events as interleaved

    return interleaved(events, session, store, session.first)


def lease_line(event: Any) -> str:
    """A lease event as one line for the operator (offline, online, a refused push, closed)."""
    style = {"offline": "bold yellow", "online": "bold green", "conflict": "bold red", "revoked": "bold red",
             "closed": "bold"}[event.state]
    left = f" ({event.serials_left} leased serial(s) left)" if event.serials_left is not None else ""
    return f"[{style}]lease {esc(event.state)}[/]: {esc(event.reason)}{left}"


def station_leases(
    ctx: typer.Context,
    batch: Annotated[str | None, typer.Option("--batch", help="Only this batch's leases.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only leases still active.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Serial leases in the line's database: station, batch, serials leased/used/synced, expiry, state."""
    store = opened(ctx).store
    found = store.leases(batch, active_only=active)
    conflicts = [c.to_dict() for lease in found if lease.conflicts for c in store.lease_conflicts(lease_id=lease.id)]
    emit({"leases": [lease.to_dict() for lease in found], "conflicts": conflicts}, as_json,
         lambda: _show_leases(found, conflicts))


def _show_leases(found: list[Any], conflicts: list[dict[str, Any]]) -> None:
    if not found:
        print_line("no serial leases")
        return
    table = folding_table("lease", "station", "batch", "leased", "used", "synced", "unused", "expires", "state")
    for lease in found:
        state_text = lease.state + (f" ({lease.reason})" if lease.reason else "")
        table.add_row(str(lease.id), esc(lease.station), esc(lease.batch_id), str(lease.size), str(lease.used),
                      str(lease.synced), str(lease.unused), lease.expires_at[:16].replace("T", " "), esc(state_text))
    console.print(table)
    for conflict in conflicts:
        print_line(f"[bold red]refused[/] lease #{conflict['lease']} serial {esc(conflict['serial'])} tag "
                   f"{conflict['uid']}: {esc(conflict['reason'])}")


def station_revoke_lease(
    ctx: typer.Context,
    station_name: Annotated[str, typer.Argument(metavar="STATION", help="The station whose leases end.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded), e.g. 'station PC died'.")],
    batch: Annotated[str | None, typer.Option("--batch", help="Only its lease of this batch.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """End a dead station's active leases: their unused serials go back to the batch for other stations."""
    ended = opened(ctx).store.revoke_leases(station_name, reason, who(ctx), batch)
    emit({"revoked": [lease.to_dict() for lease in ended]}, as_json, lambda: _show_revoked(ended))


def _show_revoked(ended: list[Any]) -> None:
    for lease in ended:
        print_line(f"revoked lease #{lease.id} of station {esc(lease.station)} in batch {esc(lease.batch_id)}: "
                   f"{lease.size - lease.synced} serial(s) without a unit here went back to the batch")


def station_sync(
    ctx: typer.Context,
    station_name: Annotated[str | None, typer.Option("--station", help="Only this station's journals.")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Only this batch's journal.")] = None,
    give_back: Annotated[bool, typer.Option("--return", help="Also return the active leases' unused serials.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Push this workspace's lease journals to the line's database (after a crash, or once it is back)."""
    from tagsmith.provision.leases import sync_workspace

    reports = sync_workspace(state(ctx).workspace, opened(ctx).store, station=station_name, batch_id=batch,
                             give_back=give_back)
    emit({"journals": reports}, as_json, lambda: _show_sync(reports))


def _show_sync(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        print_line(f"station {esc(report['station'])} batch {esc(report['batch'])}: {report['accepted']} unit(s) "
                   f"taken in, {len(report['conflicts'])} refused; leases " + ", ".join(
                       f"#{lease['lease']} {lease['state']}" for lease in report["leases"]))
        for conflict in report["conflicts"]:
            print_line(f"[bold red]refused[/] serial {esc(conflict['serial'])} tag {conflict['uid']}: "
                       f"{esc(conflict['reason'])}")
