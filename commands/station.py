"""``tagsmith station``: place a tag, get a verified, recorded, labelled unit; the operator's live view."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Protocol

import typer

from tagsmith import ConfigError, TagsmithError
from tagsmith.commands import station_leases
from tagsmith.commands.context import opened, provide, state
from tagsmith.commands.options import AllowSimulatorSignatureSimOpt, JsonFlag
from tagsmith.commands.output import console, esc, json_line, print_line
from tagsmith.commands.station_leases import LEASE_TTL_HOURS, begin_lease, lease_line, leased_events
from tagsmith.provision.results import TagResult

station_app = typer.Typer(help="The encoding station: place a tag, get a verified, recorded, labelled unit.",
                          no_args_is_help=True)

RESULT_STYLE = {TagResult.ENCODED: "bold green", TagResult.RESUMED: "bold green", TagResult.VERIFIED: "green",
                TagResult.REFUSED: "bold yellow", TagResult.FAILED: "bold red", TagResult.TORN: "bold red"}


@station_app.callback()
def _station(ctx: typer.Context) -> None:
    provide(ctx)


class StationView(Protocol):
    """What the live view and the closing summary need of a view: one head's, or several heads' (station_heads.py)."""

    station: str | None

    def add(self, event: Any) -> None: ...

    def render(self) -> Any: ...


class OperatorView:
    """The rich live view: last tag big, counts, rate, time per tag, progress, last errors."""

    def __init__(self, store: Any, batch_id: str, station: str | None = None) -> None:
        self.store, self.batch_id, self.station = store, batch_id, station
        self.quantity = store.batch(batch_id).quantity
        self.last: Any = None
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.message = "Place a tag on the reader"
        self.database: str | None = None  # what the operator must know while the line's database is away
        self.lease: str | None = None  # a leased station's last lease event (offline, online, refused, closed)
        self.batch_counts: dict[str, int] = {}
        self.started = time.perf_counter()

    def add(self, outcome: Any) -> None:
        if outcome.to_dict()["event"] == "lease":
            self.lease = lease_line(outcome)
            return
        if outcome.to_dict()["event"] == "database":
            self.database = "database unreachable: waiting" if outcome.state == "unreachable" else None
            return
        self.last = outcome
        self.counts[outcome.result] = self.counts.get(outcome.result, 0) + 1
        if outcome.result in (TagResult.REFUSED, TagResult.FAILED, TagResult.TORN):
            who = outcome.uid if outcome.result == TagResult.REFUSED and outcome.uid else outcome.serial or outcome.uid
            self.errors = (self.errors + [f"{who or 'tag'}: {outcome.reason}"])[-4:]
            console.bell()

    def _last_tag(self) -> Any:
        from rich.text import Text

        if self.database is not None:
            return Text(self.database, style="bold red")
        if self.last is None:
            return Text(self.message, style="bold")
        o = self.last
        label = {TagResult.ENCODED: "PASS", TagResult.RESUMED: "PASS (resumed)",
                 TagResult.VERIFIED: "ALREADY DONE"}.get(o.result, o.result.upper())
        big = Text(f"{label}  {o.serial or ''}\n", style=RESULT_STYLE.get(o.result, "bold"))
        big.append(f"UID {o.uid or '?'}  ·  {o.apdus} round trips  ·  {o.seconds * 1000:.0f} ms\n{o.reason}",
                   style="default")
        return big

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        if self.database is None:  # while the database is away, the counts it gave last
            self.batch_counts = self.store.unit_counts(self.batch_id)
        counts = self.batch_counts
        done = counts.get(TagResult.ENCODED, 0) + counts.get(TagResult.VERIFIED, 0)
        elapsed = time.perf_counter() - self.started
        finished = self.counts.get(TagResult.ENCODED, 0) + self.counts.get(TagResult.RESUMED, 0)
        stats = Table.grid(padding=(0, 2))
        stats.add_row(*(f"{k} {self.counts.get(k, 0)}" for k in (TagResult.ENCODED, TagResult.RESUMED, TagResult.REFUSED,
                                                                       TagResult.FAILED, TagResult.TORN)))
        stats.add_row(f"{60 * finished / elapsed:.0f}/min" if elapsed else "", f"batch {done}/{self.quantity}")
        bar = Table.grid()
        bar.add_row(ProgressBar(total=max(self.quantity, 1), completed=done, width=50))
        errors = Text("\n".join(self.errors) or "no errors", style="red" if self.errors else "dim")
        title = f"station {esc(self.station)} · batch {esc(self.batch_id)}" if self.station else \
            f"station · batch {esc(self.batch_id)}"
        lease = [Text.from_markup(self.lease)] if self.lease else []
        return Group(Panel(self._last_tag(), title=title), *lease, stats, bar, Panel(errors, title="last errors"))


def session_exit(summary: Any) -> None:
    """Ctrl-C exits 130 (README); a session whose placements all failed is not a success either,
    unless it ended because the batch is complete."""
    if summary.interrupted:
        raise typer.Exit(130)
    if summary.complete is None and summary.done == 0 and summary.counts.get(TagResult.FAILED):
        raise TagsmithError(f"no unit was encoded: {summary.counts['failed']} placement(s) failed (see the reasons above)")
    failed = getattr(summary, "failed", {})  # several heads (station_heads.py): every one of them failed
    if summary.complete is None and summary.done == 0 and failed and len(failed) == len(summary.heads):
        raise TagsmithError("no unit was encoded: every reader head failed (" +
                            "; ".join(f"{head}: {reason}" for head, reason in failed.items()) + ")")


def outcome_line(outcome: Any) -> str:
    """One tag's result as one line of rich text: the result styled, serial (or UID) and reason verbatim;
    or the line's database gone away (the station waits) or back, or a leased station's lease event."""
    if outcome.to_dict()["event"] == "lease":
        return lease_line(outcome)
    if outcome.to_dict()["event"] == "database":
        if outcome.state == "unreachable":
            return f"[bold red]database unreachable: waiting[/] ({esc(outcome.reason)})"
        return f"[bold green]database back[/] after {outcome.waited:.1f} s: carrying on"
    style = RESULT_STYLE.get(outcome.result, "bold")
    shown = outcome.uid if outcome.result == TagResult.REFUSED and outcome.uid else outcome.serial or outcome.uid
    result, unit = f"{outcome.result:8}", f"{shown or '':14}"  # a refused chip by its UID: which one to set aside
    return f"[{style}]{esc(result)}[/] {esc(unit)} {esc(outcome.reason)}"


def _consume(events: Any, show: Callable[[Any], None]) -> Any:
    """Show events up to the Summary. A Ctrl-C while one is shown is passed into the station
    loop (suspended between tags), which then ends with its summary as for one during a tag
    (several heads first report the tags they finish while stopping)."""
    from tagsmith.provision.station import Summary

    try:
        for event in events:
            if isinstance(event, Summary):
                return event
            show(event)
    except KeyboardInterrupt:
        event = events.throw(KeyboardInterrupt)
        while not isinstance(event, Summary):  # what other heads finished while stopping, then the summary
            show(event)
            event = next(events)
        return event
    raise AssertionError("the station loop ended without its summary")


def _live(events: Any, view: StationView) -> Any:
    """The live operator view at a terminal, updated with each event; the Summary."""
    from rich.live import Live

    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        def show(event: Any) -> None:
            view.add(event)
            live.update(view.render())

        summary = _consume(events, show)
    console.print()
    return summary


def _print_summary(summary: Any, view: StationView) -> None:
    if summary.complete is not None:
        print_line("[bold green]batch complete: {} of {}[/]".format(*summary.complete))
    s = summary.to_dict()
    rates = (f"; {s['per_minute']}/min, {s['ms_per_tag']} ms and {s['apdus_per_tag']} round trips per tag"
             if s["tags"] else "")
    where = f" at station {esc(view.station)}" if view.station else ""
    print_line(f"[bold]session{where}:[/] {s['done']} done of {s['tags']} placements"
               + (f" ({', '.join(f'{esc(k)} {v}' for k, v in sorted(s['counts'].items()))})" if s["counts"] else "")
               + rates + (" — interrupted" if s["interrupted"] else ""))


def drive_station(events: Any, view: StationView, as_json: bool) -> Any:
    """Show the events: one JSON line each, the live operator view at a terminal (one line per tag when
    the output is piped or redirected, where a live view can only be cut and wrapped), then a closing
    summary; the Summary."""
    if as_json:
        summary = _consume(events, lambda event: json_line(event.to_dict()))
        json_line(summary.to_dict())
        return summary
    if console.is_terminal:
        summary = _live(events, view)
    else:
        summary = _consume(events, lambda event: print_line(outcome_line(event)))
    _print_summary(summary, view)
    return summary


@station_app.command("run")
def station_run(
    ctx: typer.Context,
    batch: Annotated[str, typer.Option("--batch", help="Batch to encode.")],
    readers: Annotated[list[str] | None, typer.Option(
        "--reader", "-r", help="A reader head: PC/SC reader name or a unique part of it, or an nfcpy path; repeat for "
                               "several heads, or 'all' for every reader present (default: TAGSMITH_READER).")] = None,
    sim: Annotated[bool, typer.Option("--sim", help="Simulated chips in-process instead of a reader.")] = False,
    sim_heads: Annotated[int, typer.Option("--heads", min=1, max=16, help="With --sim: this many simulated heads.")] = 1,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N units are done.")] = None,
    sim_tear_rate: Annotated[float, typer.Option("--sim-tear-rate", min=0.0, max=1.0,
                                                 help="Share of simulated placements lifted mid-encode.")] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for simulated chips and tears.")] = None,
    station_name: Annotated[str | None, typer.Option("--station", help="Station name (default: host name).")] = None,
    label_printer: Annotated[str | None, typer.Option(
        "--label-printer", help="Print each unit's ZPL label: a file, a device path or tcp://HOST:9100.")] = None,
    layout: Annotated[str | None, typer.Option("--layout", help="Label layout (default: the product's).")] = None,
    dpi: Annotated[int, typer.Option("--dpi", help="Label printer resolution: 203 or 300.")] = 203,
    wait: Annotated[float | None, typer.Option("--wait", help="Seconds to wait for each tag (default: forever).")] = None,
    allow_simulator_signature: AllowSimulatorSignatureSimOpt = False,
    sim_latency_ms: Annotated[float, typer.Option(
        "--sim-latency-ms", min=0.0, help="Delay each simulated APDU by this many ms, as a real reader (5-15 ms).")] = 0.0,
    lease: Annotated[int | None, typer.Option(
        "--lease", min=1, help="Lease blocks of N serials and encode from them through a database outage.")] = None,
    lease_ttl: Annotated[float, typer.Option(
        "--lease-ttl", min=0.001, help="Hours a lease may be encoded from without the database.")] = LEASE_TTL_HOURS,
    as_json: JsonFlag = False,
) -> None:
    """Encode tags for a batch: identify, personalise or resume, verify as a phone, record, label."""
    from tagsmith.commands.station_heads import reader_names, run_heads
    from tagsmith.provision import station, stationrun

    names = reader_names(readers)
    if sim == bool(names):
        raise ConfigError("choose one tag source: --reader NAME or --sim")
    if sim_heads > 1 and not sim:
        raise ConfigError("--heads counts simulated heads: for reader heads, repeat --reader (or --reader all)")
    ws = state(ctx).workspace
    stationrun.check_label_printer(label_printer, ws)
    leased = begin_lease(ctx, batch, lease, lease_ttl, station_name)  # None without --lease
    enc = stationrun.open_session(ctx.with_resource(leased.store()) if leased else opened(ctx).store, opened(ctx).keys,
                                  batch, station_name, allow_simulator_signature=allow_simulator_signature or sim)
    hook = stationrun.label_hook(enc, label_printer, layout, dpi)
    if len(names) > 1 or sim_heads > 1:
        session_exit(run_heads(ctx, enc, names, sim_heads=sim_heads, count=count, tear_rate=sim_tear_rate, seed=seed,
                               wait=wait, latency_ms=sim_latency_ms, hook=hook, as_json=as_json, leased=leased))
        return
    view = OperatorView(enc.store, batch, enc.station)
    reader = names[0] if names else None
    with stationrun.tag_source(enc, ws, sim=sim, reader=reader, count=count, tear_rate=sim_tear_rate, seed=seed,
                               wait=wait, on_wait=lambda message: setattr(view, "message", message),
                               sim_latency_ms=sim_latency_ms, sim_left=leased.serials_left if leased else None) as source:
        events = leased_events(leased, station.run(enc, source, count=count, on_done=hook), enc.store)
        summary = drive_station(events, view, as_json)
    session_exit(summary)


station_app.command("leases")(station_leases.station_leases)
station_app.command("revoke-lease")(station_leases.station_revoke_lease)
station_app.command("sync")(station_leases.station_sync)
