"""``tagsmith demo``: the whole line on simulated chips, then the commands to explore what it made."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tagsmith.commands.context import state
from tagsmith.commands.options import JsonFlag
from tagsmith.commands.output import console, emit, esc, print_line
from tagsmith.commands.station import outcome_line
from tagsmith.provision.results import TagResult


def _program_name() -> str:
    """``tagsmith`` when the shell finds this very script, else its full path (e.g. inside .venv)."""
    script = os.path.realpath(sys.argv[0])
    if not os.path.basename(script).startswith("tagsmith"):
        return f"{sys.executable} -m tagsmith"
    found = shutil.which("tagsmith")
    return "tagsmith" if found and os.path.realpath(found) == script else script


def _render_demo(data: dict[str, Any]) -> None:
    s = data["station"]
    console.print()
    console.print(soft_wrap=False)
    print_line(f"[bold green]Demo complete[/] in {data['seconds']:.1f} s. Batch [bold]{esc(data['batch'])}[/] of "
               f"{esc(data['product'])}: {s['done']} units encoded and verified as a phone would "
               f"({s['counts'].get('resumed', 0)} of them resumed after {s['counts'].get('torn', 0)} tears); "
               f"{s['apdus_per_tag']} round trips and {s['ms_per_tag']} ms per placement.")
    console.print("\nExplore what it made:")
    for command in data["commands"]:
        console.print(f"  {command}", soft_wrap=True, markup=False)


def demo(
    ctx: typer.Context,
    units: Annotated[int, typer.Option("--units", min=1, max=10000, help="Units in the demo batch.")] = 50,
    tear_rate: Annotated[float, typer.Option("--tear-rate", min=0.0, max=0.9,
                                             help="Share of placements lifted mid-encode (resumed later).")] = 0.2,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for reproducible chips and tears.")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="Workspace to use if it holds no data yet.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole line on simulated chips: keystore, product, batch, station, labels, manifest, QA."""
    from tagsmith.provision.demo import run_demo

    def say(message: str) -> None:
        if not as_json:
            print_line(f"[cyan]•[/] {esc(message)}")

    def on_tag(outcome: Any) -> None:
        if not as_json and outcome.result != TagResult.ENCODED:
            print_line(f"  {outcome_line(outcome)}")

    report = run_demo(home or state(ctx).home, units=units, tear_rate=tear_rate, seed=seed, say=say, on_tag=on_tag)
    report.program = _program_name()
    data = report.to_dict()
    emit(data, as_json, lambda: _render_demo(data))
