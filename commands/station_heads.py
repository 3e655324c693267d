"""``station run`` with several reader heads: which heads, and the operator's view with a row per head."""

from __future__ import annotations

import os
import time
from typing import Any

from tagsmith import ConfigError
from tagsmith.commands.output import console, esc, print_line
from tagsmith.commands.station import RESULT_STYLE, _print_summary, drive_station, outcome_line
from tagsmith.commands.station_leases import lease_line, leased_events
from tagsmith.provision.results import TagResult

ALL_READERS = "all"
READER_ENV = "TAGSMITH_READER"


def reader_names(readers: list[str] | None) -> list[str]:
    """The --reader values (``all``: every reader present now); TAGSMITH_READER when none is given."""
    names = list(readers or ([os.environ[READER_ENV]] if os.environ.get(READER_ENV) else []))
    if ALL_READERS not in names:
        return names
    if names != [ALL_READERS]:
        raise ConfigError("--reader all names every reader: give it alone")
    from tagsmith.encoders.reader import list_readers

    found = [info.name for info in list_readers()]
    if not found:
        raise ConfigError("--reader all: no PC/SC reader is connected")
    return found


class HeadsView:
    """The live view of a station with several heads: a row per head, the batch's progress, last errors."""

    def __init__(self, store: Any, batch_id: str, station: str | None, heads: list[str]) -> None:
        self.store, self.batch_id, self.station = store, batch_id, station
        self.quantity = store.batch(batch_id).quantity
        self.rows: dict[str, dict[str, Any]] = {name: {"state": "waiting", "done": 0, "last": ""} for name in heads}
        self.errors: list[str] = []
        self.database: str | None = None
        self.started = time.perf_counter()

    def add(self, item: Any) -> None:
        data = item.to_dict()
        if data["event"] == "lease":  # a leased station's lease, not a head's
            self.database = None if item.state in ("online", "closed") else f"lease {item.state}: {item.reason}"
            return
        row = self.rows[item.head]
        if data["event"] == "head":
            row["state"] = "failed"
            self.errors = (self.errors + [f"{item.head}: {item.reason}"])[-4:]
            console.bell()
            return
        event = item.event
        if data["event"] == "database":
            self.database = "database unreachable: waiting" if event.state == "unreachable" else None
            return
        row["state"] = "running"
        style = RESULT_STYLE.get(event.result, "bold")
        row["last"] = f"[{style}]{esc(event.result)}[/] {esc(event.serial or event.uid or '')}"
        row["done"] += event.result in (TagResult.ENCODED, TagResult.RESUMED, TagResult.VERIFIED)
        if event.result in (TagResult.REFUSED, TagResult.FAILED, TagResult.TORN):
            self.errors = (self.errors + [f"{item.head}: {event.serial or event.uid or 'tag'}: {event.reason}"])[-4:]

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = max(time.perf_counter() - self.started, 1e-9)
        table = Table(title=f"station {esc(self.station)} · batch {esc(self.batch_id)}", expand=False)
        for column in ("head", "state", "last tag", "done", "/min"):
            table.add_column(column)
        for name, row in self.rows.items():
            state = "[bold red]failed[/]" if row["state"] == "failed" else row["state"]
            table.add_row(esc(name), state, row["last"], str(row["done"]), f"{60 * row['done'] / elapsed:.0f}")
        done = sum(row["done"] for row in self.rows.values())
        bar = Table.grid()
        bar.add_row(ProgressBar(total=max(self.quantity, 1), completed=min(done, self.quantity), width=50),
                    f" this session {done}, {60 * done / elapsed:.0f}/min")
        errors = Text("\n".join(self.errors) or "no errors", style="red" if self.errors else "dim")
        parts: list[Any] = [table, bar, Panel(errors, title="last errors")]
        if self.database:
            parts.insert(0, Text(self.database, style="bold red"))
        return Group(*parts)


def head_line(item: Any) -> str:
    """One event of a head as one line of rich text, the head first (a leased station's lease event as is)."""
    if item.to_dict()["event"] == "lease":
        return lease_line(item)
    if item.to_dict()["event"] == "head":
        return f"[bold]{esc(item.head)}[/] [bold red]head failed[/]: {esc(item.reason)}"
    return f"[bold]{esc(item.head)}[/] {outcome_line(item.event)}"


def drive_heads(events: Any, view: HeadsView, as_json: bool) -> Any:
    """As drive_station, for several heads: JSON lines naming the head, the live view or one line per event."""
    if as_json or console.is_terminal:
        return drive_station(events, view, as_json)
    from tagsmith.commands.station import _consume

    summary = _consume(events, lambda item: print_line(head_line(item)))
    _print_summary(summary, view)
    for name, reason in summary.failed.items():
        print_line(f"[bold red]head {esc(name)} failed[/]: {esc(reason)}")
    return summary


def run_heads(ctx: Any, enc: Any, names: list[str], *, sim_heads: int, count: int | None, tear_rate: float,
              seed: int | None, wait: float | None, latency_ms: float, hook: Any, as_json: bool,
              leased: Any = None) -> Any:
    """Run the station on several heads (reader ``names``, or ``sim_heads`` simulated ones); the HeadsSummary.
    A ``leased`` station's heads each get their own connection to its lease journal."""
    from dataclasses import replace

    from tagsmith.commands.context import open_batch_store, state
    from tagsmith.provision import heads, stationrun

    if names:
        chosen = [heads.reader_head(name, wait) for name in names]
    else:
        chosen = stationrun.simulated_heads(enc, state(ctx).workspace, sim_heads, count=count, tear_rate=tear_rate,
                                            seed=seed, latency_ms=latency_ms,
                                            left=leased.serials_left if leased else None)
    view = HeadsView(enc.store, enc.batch_id, enc.station, [head.name for head in chosen])
    stores = leased.store if leased else lambda: open_batch_store(ctx)
    events = heads.run_heads(lambda: replace(enc, store=stores()), chosen, count=count, on_done=hook)
    return drive_heads(leased_events(leased, events, enc.store), view, as_json)
