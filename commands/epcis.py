"""``tagsmith epcis``: a batch's history as an EPCIS 2.0 document, and its capture by an EPCIS repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tagsmith.commands.context import checked_out, opened, provide
from tagsmith.commands.options import ForceOpt, JsonFlag
from tagsmith.commands.output import emit, esc, print_line

epcis_app = typer.Typer(help="EPCIS 2.0 events of a batch: export them, capture them into a repository.",
                        no_args_is_help=True)


@epcis_app.callback()
def _epcis(ctx: typer.Context) -> None:
    provide(ctx)


@epcis_app.command("export")
def epcis_export(
    ctx: typer.Context,
    batch: Annotated[str, typer.Option("--batch", help="Batch id.")],
    out: Annotated[str, typer.Option("--out", help="EPCIS JSON-LD document to write (an existing one only with --force).")],
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the batch's EPCIS 2.0 document: encoding, commissioning, sampling, inspecting and void events."""
    from tagsmith.provision.epcis_flow import export_epcis

    result = export_epcis(opened(ctx).store, batch, checked_out(ctx, out, force))
    counts = ", ".join(f"{n} {esc(step)}" for step, n in result.events.items()) or "no events"
    emit(result.to_dict(), as_json, lambda: print_line(
        f"EPCIS document for batch {esc(batch)}: {counts}{'' if result.released else ' (not released yet)'} "
        f"-> {esc(result.path)}"))


@epcis_app.command("capture")
def epcis_capture(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="EPCIS document (from tagsmith epcis export).")],
    to: Annotated[str, typer.Option("--to", help="EPCIS repository (https; POST {URL}/capture); token from "
                                                 "TAGSMITH_EPCIS_TOKEN.")],
    attempts: Annotated[int, typer.Option("--attempts", min=1, help="Tries per request before giving up.")] = 6,
    as_json: JsonFlag = False,
) -> None:
    """Capture the document's events (split to the server's limits; each job followed); the receipt is recorded."""
    from tagsmith.batches.epcis_capture import CaptureRejectedError
    from tagsmith.provision.epcis_flow import capture_epcis

    result = capture_epcis(opened(ctx).store, file, to, attempts=attempts)
    emit(result.to_dict(), as_json, lambda: print_line(
        f"captured {result.accepted} of {result.events} events in {len(result.jobs)} request(s) to {esc(result.endpoint)}"))
    for rejected in result.rejected:
        print_line(f"rejected: {esc(rejected['eventID'])}: {esc(rejected['detail'])}", err=True)
    if result.rejected:
        raise CaptureRejectedError(f"the repository rejected {len(result.rejected)} of {result.events} events")
