"""``tagsmith readers``, ``tag`` and ``sim``: readers, one tag on a reader, and simulated chips for pcscd."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import typer

from tagsmith import ConfigError
from tagsmith.commands.context import opened, provide, state
from tagsmith.commands.options import (
    AllowSimulatorSignatureOpt,
    AllowSimulatorSignatureSimOpt,
    JsonFlag,
    ReaderOption,
    check_uids,
    hex_option,
    parse_hex,
)
from tagsmith.commands.output import emit, esc, folding_table, print_line, print_rows, print_table

tag_app = typer.Typer(help="One tag on a reader: look at it (info, verify: no authentication) or reset it "
                           "for rework.", no_args_is_help=True)
sim_app = typer.Typer(help="Simulated NTAG 424 DNA chips on pcscd's virtual reader (vsmartcard vpcd).",
                      no_args_is_help=True)


@tag_app.callback()
def _tag(ctx: typer.Context) -> None:
    provide(ctx)


def _render_readers(found: list[dict[str, Any]]) -> None:
    if not found:
        print_line("No PC/SC reader connected.")
        return
    table = folding_table("Reader", "Tag", "ATR", box=None)
    for r in found:
        table.add_row(esc(r["name"]), "present" if r["tag_present"] else "-", esc(r["atr"] or ""))
    print_table(table)


def readers(as_json: JsonFlag = False) -> None:
    """List PC/SC readers and whether a tag is on each (like pcsc_scan)."""
    from tagsmith.encoders.reader import list_readers

    found = [r.to_dict() for r in list_readers()]
    emit(found, as_json, lambda: _render_readers(found))


_SOURCES = {"database": "database", "sun_url": "SUN URL's PICC data length"}


def _render_tag_report(report: Any) -> None:
    table = folding_table(box=None, show_header=False)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    table.add_row("UID", esc(report.uid))
    table.add_row("Product", f"{esc(report.product or '?')} ({esc(report.storage or '?')})")
    table.add_row("Originality", {"nxp": "valid (NXP)", "simulator": "valid (tagsmith simulator key)",
                                  "invalid": "[red]INVALID[/]"}.get(report.originality or "", "not read"))
    table.add_row("Key versions", " ".join(f"{esc(k)}:{v:02X}" for k, v in report.key_versions.items()))
    table.add_row("NDEF (as a phone)", esc(report.ndef_url or "(none)"))
    modes = report.secure_messaging
    table.add_row("Secure messaging", ", ".join(f"{m.upper()} (from the {_SOURCES[src]})" for src, m in modes.items())
                  or "not known (no SUN URL, not in the database; tag info never authenticates)")
    for file_no, settings in report.file_settings.items():
        text = settings if isinstance(settings, str) else ", ".join(f"{k} {v}" for k, v in settings.items())
        table.add_row(f"File {file_no:02X}", esc(text))
    table.add_row("Verdict", f"[bold]{esc(report.verdict)}[/]: {esc(report.reason)}")
    for note in report.notes:
        table.add_row("Note", esc(note))
    print_table(table)


@tag_app.command("info")
def tag_info(
    ctx: typer.Context,
    reader: ReaderOption = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a tag to be placed.")] = 10.0,
    allow_simulator_signature: AllowSimulatorSignatureOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Identify the tag: UID, product, originality, NDEF, file settings and whose it is."""
    from tagsmith.encoders.reader import open_reader
    from tagsmith.provision.taginfo import database_lookup, inspect_tag

    lookup = database_lookup(state(ctx).workspace)
    with open_reader(reader) as device:
        if not device.tag_present():
            print_line(f"Place a tag on {esc(device.name)} …", err=True)
        with device.wait_for_tag(wait) as connection:
            report = inspect_tag(connection, connection.get_uid(),
                                 allow_simulator_signature=allow_simulator_signature, lookup=lookup)
    emit(report.to_dict(), as_json, lambda: _render_tag_report(report))


def _render_check(report: Any) -> None:
    table = folding_table(box=None, show_header=False)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    for key, value in report.to_dict().items():
        table.add_row(esc(key), esc(value))
    print_table(table)
    print_line("[bold green]OK[/]" if report.ok else f"[bold red]FAILED[/] {esc(report.reason)}")


@tag_app.command("verify")
def tag_verify(
    ctx: typer.Context,
    reader: ReaderOption = None,
    sim: Annotated[Any, hex_option("--sim", help="UID of a simulated chip in this workspace.",
                                   error_name="--sim UID")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A tapped SUN URL to check as the resolver would.")] = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a tag.")] = 10.0,
    allow_simulator_signature: AllowSimulatorSignatureSimOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Check one unit as a phone would (tag) or as the resolver would (URL), against the database."""
    from tagsmith.provision.check import raise_for
    from tagsmith.provision.tagcheck import check_unit

    if sum(x is not None for x in (reader, sim, url)) != 1:
        raise ConfigError("give exactly one of --reader NAME, --sim UID or --url URL")
    report = check_unit(opened(ctx).store, opened(ctx).keys, state(ctx).workspace, url=url, sim=sim, reader=reader,
                        wait=wait, allow_simulator_signature=allow_simulator_signature)
    emit(report.to_dict(), as_json, lambda: _render_check(report))
    raise_for(report)  # 6 failed, 7 replay or unit state, 8 unknown chip


@tag_app.command("reset")
def tag_reset(
    ctx: typer.Context,
    reader: ReaderOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the unit's serial is voided for good.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the unit's record.")] = "reset to factory for rework",
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a tag.")] = 10.0,
    allow_simulator_signature: AllowSimulatorSignatureOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Return a tag of ours to factory keys and settings; its serial is voided (rework, test tags)."""
    from tagsmith.encoders.reader import open_reader
    from tagsmith.provision.rework import reset_tag

    if not yes:
        raise ConfigError("tag reset voids the unit's serial for good: add --yes to confirm")
    if reader is None:
        raise ConfigError("name the reader with --reader NAME")
    store, keys = opened(ctx).store, opened(ctx).keys
    with open_reader(reader) as device, device.wait_for_tag(wait) as connection:
        result = reset_tag(store, keys, connection, reason=reason, allow_simulator_signature=allow_simulator_signature)
    data = {"uid": result.uid, "serial": result.serial, "batch": result.batch_id, "apdus": result.apdus,
            "voided": True}
    emit(data, as_json, lambda: print_line(
        f"[bold green]reset[/] {esc(result.uid)}: factory keys and settings; serial {esc(result.serial)} voided"))


def _render_refusals(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print_line("No chip has refused an authentication here.")
        return
    print_rows("Chips refused (never authenticated again)", ["UID", "serial", "status", "station", "at", "cleared"],
               [[r["uid"], r["serial"] or "-", r["status"], r["station"] or "-", r["at"][:19].replace("T", " "),
                 f"{r['cleared_at']}: {r['clear_reason']}" if r["cleared_at"] else "-"] for r in rows])


@tag_app.command("refusals")
def tag_refusals(
    ctx: typer.Context,
    include_cleared: Annotated[bool, typer.Option("--all", help="Also list refusals an engineer has cleared.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Chips that refused an authentication here: no station authenticates them again until cleared."""
    rows = [f.to_dict() for f in opened(ctx).store.auth_failures(include_cleared=include_cleared)]
    emit(rows, as_json, lambda: _render_refusals(rows))


@tag_app.command("clear-refusal")
def tag_clear_refusal(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(metavar="UID", help="The chip's 7-byte UID in hex.")],
    reason: Annotated[str, typer.Option("--reason", help="Why trying again is safe, for the record.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the next station authenticates this chip once more.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Let stations try a refused chip once more (each refusal counts on the chip; key 0 blocks at its limit)."""
    if not yes:
        raise ConfigError("the chip counts every refused authentication: add --yes to let a station try it once more")
    cleared = opened(ctx).store.clear_auth_failure(parse_hex(uid, "UID"), reason)
    emit(cleared.to_dict(), as_json, lambda: print_line(
        f"[bold green]cleared[/] {cleared.uid.hex().upper()}: the next station will authenticate it once more"))


_REPORTING = threading.Lock()


def _reporter(port: int, named: bool, as_json: bool) -> Any:
    """A placement's events as JSON lines or text, naming the port when several readers are served."""
    def report(event: str, placement: Any) -> None:
        line = {"event": event, "placement": placement.number + 1,
                "uid": placement.uid.hex().upper() if placement.uid else None, "apdus": placement.apdus}
        if named:
            line["port"] = port
        with _REPORTING:  # several readers' threads report: one whole line at a time
            emit(line, as_json, lambda: print_line(
                (f"[{port}] " if named else "") + f"#{line['placement']} {esc(line['uid'])} {esc(event)}"
                + (f" after {placement.apdus} APDUs" if event != "placed" else "")))
    return report


@sim_app.command("serve")
def sim_serve(
    ports: Annotated[list[int] | None, typer.Option(
        "--port", min=1, max=65535,
        help="vpcd slot port (35963 is 'Virtual PCD 00 00'); repeat to serve several readers, each its own chips.")] = None,
    host: Annotated[str, typer.Option("--host", help="Host where pcscd's vpcd listens.")] = "127.0.0.1",
    count: Annotated[int, typer.Option("--count", "-n", min=0, help="Placements before stopping (0: until Ctrl-C).")] = 0,
    uids: Annotated[list[str] | None, typer.Option(
        "--uid", callback=check_uids,
        help="7-byte UID in hex; repeat to cycle through several (same UID, same chip).")] = None,
    tear_rate: Annotated[float, typer.Option(
        "--tear-rate", min=0.0, max=1.0, help="Chance per APDU that the chip leaves the field.")] = 0.0,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", help="Also remove a chip after this many seconds without an APDU.")] = None,
    latency_ms: Annotated[float, typer.Option(
        "--latency-ms", min=0.0, help="Delay each APDU by this many ms, as a real reader's radio link (5-15 ms).")] = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Present simulated chips to pcscd one after another, each until the reader side is done."""
    from tagsmith.encoders.simulator.serve import chip_sequence, serve_all
    from tagsmith.encoders.simulator.vpicc import VpiccServer

    ports = ports or [35963]
    servers = [VpiccServer(port, chip_sequence(uids or [], count, latency_ms), host=host, tear_rate=tear_rate,
                           idle_timeout=idle_timeout, on_event=_reporter(port, len(ports) > 1, as_json))
               for port in ports]
    if not as_json:
        print_line(f"Serving simulated chips to vpcd at {esc(host)}:{', '.join(map(str, ports))} (Ctrl-C stops)", err=True)
    serve_all(servers)
