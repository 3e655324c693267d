"""``tagsmith resolver``: what the brand's resolver needs to answer for a batch's units."""

from __future__ import annotations

from typing import Annotated

import typer

from tagsmith.commands.context import checked_out, opened, provide
from tagsmith.commands.options import ForceOpt, JsonFlag
from tagsmith.commands.output import emit, esc, print_line

resolver_app = typer.Typer(help="Data for the brand's GS1 resolver.", no_args_is_help=True)


@resolver_app.callback()
def _resolver(ctx: typer.Context) -> None:
    provide(ctx)


@resolver_app.command("export")
def resolver_export(
    ctx: typer.Context,
    batch: Annotated[str, typer.Option("--batch", help="Batch id (the links of the product version it was made with).")],
    out: Annotated[str, typer.Option("--out", help="File to write (an existing one only with --force).")],
    fmt: Annotated[str, typer.Option("--format", help="gs1-resolver-ce: GS1 Resolver CE v3 data entry.")]
    = "gs1-resolver-ce",
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the resolver's data entry for the batch's product: one templated entry answers for every serial."""
    from tagsmith.provision.epcis_flow import export_resolver

    data = export_resolver(opened(ctx).store, batch, checked_out(ctx, out, force), fmt)
    emit(data, as_json, lambda: print_line(
        f"{esc(data['format'])} entry {esc(data['anchor'])} with {data['links']} link(s) -> {esc(data['path'])}"))
