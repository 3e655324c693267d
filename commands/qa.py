"""``tagsmith qa``: ISO 2859-1 sampling plans, sample units scanned chip and label together, reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tagsmith import ConfigError, VerificationError
from tagsmith.batches.qarecords import QaDecision
from tagsmith.commands.context import checked_out, opened, provide, state
from tagsmith.commands.options import (
    AllowIncompleteOpt,
    AllowSimulatorSignatureSimOpt,
    ForceOpt,
    IncompleteReasonOpt,
    JsonFlag,
    incomplete_reason,
)
from tagsmith.commands.output import emit, esc, print_line

qa_app = typer.Typer(help="QA: ISO 2859-1 sampling plans, sample units scanned chip and label together, reports.",
                     no_args_is_help=True)
QaBatchOpt = Annotated[str, typer.Option("--batch", help="Batch id.")]


@qa_app.callback()
def _qa(ctx: typer.Context) -> None:
    provide(ctx)


def _qa_plan_text(data: dict[str, Any]) -> str:
    d = {k: esc(v) for k, v in data.items() if not isinstance(v, list)}
    text = (f"code letter {d['code_letter']}"
            + (f" ({d['via_arrow']})" if data.get("via_arrow") else "")
            + f": inspect {d['sample_size']} of {d['lot_size']}"
            + (" (100 %)" if data["hundred_percent"] else "")
            + f", accept <= {d['accept']} defects, reject at {d['reject']}"
            + f" (AQL {d['aql']}%, level {d['level']}, {d['inspection']} inspection)")
    if data.get("plan_id"):
        text = f"plan {d['plan_id']} for batch {d['batch']}: {text}\nseed {d['seed']}; pull these serials:\n  " \
               + "\n  ".join(esc(serial) for serial in data["serials"])
    return text


@qa_app.command("plan")
def qa_plan(
    ctx: typer.Context,
    batch: Annotated[str | None, typer.Option("--batch", help="Batch id: draw (or show) its recorded plan.")] = None,
    lot_size: Annotated[int | None, typer.Option("--lot-size", help="Just compute the plan for a lot of N.")] = None,
    aql: Annotated[str | None, typer.Option("--aql", help="AQL in percent: 0.065, 0.10, 0.25, 0.65 (default), 1.0.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="Inspection level: S-1..S-4, I, II (default), III.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Draw a new plan for a decided (resubmitted) batch.")] = False,
    inspection: Annotated[str, typer.Option("--inspection", help="auto (the product's switching state) or normal.")] = "auto",
    seed: Annotated[int | None, typer.Option("--seed", hidden=True, help="Seed for the draw (tests).")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    reason: IncompleteReasonOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """The ISO 2859-1 single sampling plan for a lot size, or a batch's recorded plan and serials to pull."""
    from tagsmith.provision.qa_plan import DEFAULT_AQL, as_sampling_plan, create_plan
    from tagsmith.provision.sampling import normal_plan

    if (batch is None) == (lot_size is None):
        raise ConfigError("give --batch ID or --lot-size N" + (", not both" if batch is not None else ""))
    if inspection not in ("auto", "normal"):
        raise ConfigError("--inspection must be auto or normal")
    if lot_size is not None:
        data = normal_plan(lot_size, aql or DEFAULT_AQL, level or "II").to_dict()
    elif batch is not None:
        record = create_plan(opened(ctx).store, batch, aql=aql, level=level, new=new, seed=seed, user=state(ctx).user,
                             inspection=None if inspection == "auto" else inspection,
                             incomplete_reason=incomplete_reason(allow_incomplete, reason))
        data = {**as_sampling_plan(record).to_dict(), **record.to_dict()}
    emit(data, as_json, lambda: print_line(_qa_plan_text(data)))


def _qa_unit_line(result: Any) -> str:
    mark = "[green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    if not result.counted:
        mark += " [yellow](not counted)[/]"
    return (f"{mark} {esc(result.serial or '?')} {result.uid.hex().upper() if result.uid else ''}  "
            f"{esc(result.note or result.reason)}")


def _show_unit(result: Any, as_json: bool) -> None:
    emit(result.to_dict(), as_json, lambda: print_line(_qa_unit_line(result)))


class _Prompts:
    """What the inspector is told on stderr during a reader scan (nothing with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, text: str) -> None:  # rich text: values in it are escaped with esc
        if not self.quiet:
            print_line(text, err=True)

    def tap(self, reader_name: str, pending: list[str]) -> None:
        self.say(f"Tap a sample unit on {esc(reader_name)} ({len(pending)} to go: "
                 f"{esc(', '.join(pending[:5]))}{' …' if len(pending) > 5 else ''})")

    def lifted(self, error: Exception) -> None:
        self.say(f"[yellow]{esc(error)}[/]")

    def remove(self) -> None:
        self.say("Remove the tag")


def _scan_label_source(labels: Path | None, as_json: bool) -> Any:
    """The next-label-line callable: from --labels, else stdin (a handheld scanner, prompted at a terminal)."""
    from tagsmith.provision.qascan import label_lines

    interactive = labels is None and sys.stdin.isatty() and not as_json
    ask = (lambda: print_line("Scan the door label …", err=True)) if interactive else None
    return label_lines(labels.open() if labels is not None else sys.stdin, ask)


def _scan_decision(batch: str, plan_id: str, session: Any, as_json: bool) -> None:
    """The decision as the scan ends: exit 6 on reject; accepted, or what is still to scan."""
    tally = session.tally
    data = {"event": "decision", "batch": batch, "plan_id": plan_id, **tally.to_dict(),
            "pending": [] if tally.decision else session.pending}
    if tally.decision == QaDecision.REJECT:
        if as_json:
            emit(data, True)
        raise VerificationError(f"batch {batch} REJECTED by QA: {tally.defects} defect(s) in {tally.inspected} "
                                f"inspected (reject at {tally.reject})")
    emit(data, as_json, lambda: print_line(
        f"[bold green]batch {esc(batch)} ACCEPTED[/]: {tally.defects} defect(s) in {tally.inspected} inspected"
        if tally.decision else f"undecided: {tally.inspected} of {tally.sample_size} inspected, {tally.defects} "
        f"defect(s); still to scan: {esc(', '.join(data['pending']))}"))


@qa_app.command("scan")
def qa_scan(
    ctx: typer.Context,
    batch: QaBatchOpt,
    reader: Annotated[str | None, typer.Option("--reader", "-r", help="Reader to tap sample units on.")] = None,
    sim: Annotated[bool, typer.Option("--sim", help="Read the sample units' simulated chips from the workspace.")] = False,
    labels: Annotated[Path | None, typer.Option("--labels", exists=True, dir_okay=False,
                                                   help="Label URLs, one per line (default: stdin, a handheld scanner).")] = None,
    station: Annotated[str | None, typer.Option("--station", help="QA station name to record.")] = None,
    wait: Annotated[float | None, typer.Option("--wait", help="Seconds to wait for each tap (default: forever).")] = None,
    allow_simulator_signature: AllowSimulatorSignatureSimOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Scan sample units: tap the chip, scan its door label; decide as soon as the plan allows. Exit 6 on reject."""
    from tagsmith.provision.qa import QaSession
    from tagsmith.provision.qascan import scan_sample

    if (reader is None) == (not sim):
        raise ConfigError("give --reader NAME or --sim")
    next_label, prompts = _scan_label_source(labels, as_json), _Prompts(quiet=as_json)
    session = QaSession(opened(ctx).store, opened(ctx).keys, batch, station=station,
                        allow_simulator_signature=allow_simulator_signature or sim, inspector=state(ctx).user)
    plan = session.plan
    prompts.say(f"plan {esc(plan.id)}: {session.tally.inspected}/{plan.sample_size} inspected, accept <= {plan.accept}, "
                f"reject at {plan.reject}")
    for result in scan_sample(session, state(ctx).workspace, sim=sim, reader=reader, wait=wait,
                              next_label=next_label, prompts=prompts):
        _show_unit(result, as_json)
    _scan_decision(batch, plan.id, session, as_json)


@qa_app.command("report")
def qa_report(
    ctx: typer.Context,
    batch: QaBatchOpt,
    out: Annotated[str, typer.Option("--out", help="Report file: .pdf or .html (an existing one only with --force).")],
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the QA report: plan, each sample unit's checks, decision, who and when, encode timeline."""
    from tagsmith.provision.qa_report import build_report, write_report

    target = checked_out(ctx, out, force)
    report = build_report(opened(ctx).store, batch, user=state(ctx).user)
    write_report(report, target)
    path = Path(out)
    data = {"batch": batch, "out": str(path), "verdict": report.verdict, "scans": len(report.results)}
    emit(data, as_json, lambda: print_line(f"QA report of batch {esc(batch)} ({esc(report.verdict)}) -> {esc(path)}"))


@qa_app.command("switching")
def qa_switching(
    ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", help="Product id.")],
    corrective_action: Annotated[bool, typer.Option(
        "--corrective-action", help="Record corrective action after discontinuation (resumes at tightened).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a product's switching state (normal, tightened, reduced, discontinued) across its batches."""
    from tagsmith.provision.qa_plan import record_corrective_action, switching_state

    current = (record_corrective_action if corrective_action else switching_state)(opened(ctx).store, product)
    data = {"product": product, **current.to_dict()}
    emit(data, as_json, lambda: print_line(
        f"product {esc(product)}: [bold]{esc(data['inspection'])}[/] inspection after {data['lots']} lot(s); "
        f"switching score {esc(data['score'])}" + ("; eligible for reduced" if data["reduced_eligible"] else "")))
