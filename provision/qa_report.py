"""The QA report of a batch: plan, every scan's checks, the decision, who and when, encode timeline.

One data model (:class:`QaReport`, built from the batch store) rendered two ways: PDF with
reportlab (a bar chart from reportlab.graphics) and HTML with an inline SVG chart, so the file
stands alone (no scripts, no external assets) for the quality records.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from tagsmith import ConfigError
from tagsmith.batches.qarecords import QaDecisionRecord, QaOverrideRecord, QaPlanRecord, QaResultRecord
from tagsmith.batches.records import Batch, Unit
from tagsmith.batches.store import Store, utc_now

from .outputs import write_file
from .qa_checks import SIGNER_NAMES
from .qa_plan import current_user

BUCKETS = 24


@dataclass(frozen=True)
class TimeBucket:
    start: str  # ISO time of the bucket's start
    encoded: int
    voided: int


@dataclass(frozen=True)
class QaReport:
    batch: Batch
    product_name: str
    plan: QaPlanRecord | None
    results: tuple[QaResultRecord, ...]
    decision: QaDecisionRecord | None
    overrides: tuple[QaOverrideRecord, ...]
    timeline: tuple[TimeBucket, ...]
    generated_at: str
    generated_by: str

    @property
    def verdict(self) -> str:
        if self.decision is not None:
            return self.decision.decision.upper()
        if self.plan is None:
            return "NO QA PLAN"
        return "UNDECIDED"


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _line_event(unit: Unit) -> tuple[str, bool] | None:
    """(when, voided) of the unit's last event on the line: its voiding, else its encoding; None before both."""
    if unit.voided_at:
        return unit.voided_at, True
    return (unit.encoded_at, False) if unit.encoded_at else None


def encode_timeline(times: list[tuple[str, bool]], buckets: int = BUCKETS) -> tuple[TimeBucket, ...]:
    """(timestamp, voided) pairs -> equal time buckets from the first to the last event."""
    if not times:
        return ()
    parsed = sorted((_parse(t), voided) for t, voided in times)
    first, last = parsed[0][0], parsed[-1][0]
    span = (last - first).total_seconds() or 1.0
    counts = [[0, 0] for _ in range(buckets)]
    for when, voided in parsed:
        index = min(int((when - first).total_seconds() / span * buckets), buckets - 1)
        counts[index][1 if voided else 0] += 1
    step = span / buckets
    return tuple(TimeBucket((first + timedelta(seconds=step * i)).isoformat(timespec="seconds"), e, v)
                 for i, (e, v) in enumerate(counts))


def build_report(store: Store, batch_id: str, user: str | None = None) -> QaReport:
    batch = store.batch(batch_id)
    product = store.batch_product(batch_id)
    plan = store.qa_plan(batch_id)
    results = tuple(store.qa_results(plan.id)) if plan else ()
    times = [event for unit in store.units(batch_id) if (event := _line_event(unit)) is not None]
    return QaReport(batch, product.name, plan, results, store.qa_decision(batch_id),
                    tuple(store.qa_overrides(batch_id)), encode_timeline(times), utc_now(), user or current_user())


def write_report(report: QaReport, out: str | Path) -> Path:
    """Write the report as PDF or HTML, chosen by the file's suffix."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm"):
        raise ConfigError(f"report file {out.name} must end in .pdf or .html")
    if suffix == ".pdf":
        buffer = io.BytesIO()
        _pdf(report, buffer)
        data = buffer.getvalue()
    else:
        data = _html(report).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_file(out, data)  # atomic, 0600; the CLI has checked ``out`` (never workspace state, --force)
    return out


# ---------------------------------------------------------------- shared text
def _plan_rows(report: QaReport) -> list[tuple[str, str]]:
    b, p = report.batch, report.plan
    rows = [("Batch", f"{b.id} ({report.product_name}, lot {b.lot or '-'}, {b.quantity} serials)")]
    if p is None:
        return rows + [("Plan", "none recorded")]
    rows += [("Plan", f"{p.id}: ISO 2859-1 single sampling, {p.inspection} inspection, level {p.level}, AQL {p.aql}%"
                      + (" (resubmitted lot)" if p.resubmission else "")),
             ("Lot / code letter", f"{p.lot_size} units, code letter {p.code_letter}"
                                   + (f" ({p.via_arrow})" if p.via_arrow else "")),
             ("Sample", f"{p.sample_size} units" + (" (100 %)" if p.sample_size == p.lot_size else "")
                        + f"; accept with <= {p.accept} defects, reject at {p.reject}"),
             ("Draw", f"seed {p.seed}, drawn {p.created_at} by {p.created_by}")]
    if p.switching_state != p.inspection:
        rows.append(("Switching", f"the product's switching rules called for {p.switching_state} inspection"))
    return rows


def _decision_text(report: QaReport) -> str:
    d = report.decision
    if d is not None:
        return f"{d.decision.upper()}: {d.defects} defect(s) in {d.inspected} inspected; decided {d.decided_at} by {d.decided_by}"
    return report.verdict


def _check_text(result: QaResultRecord) -> str:
    """One line of check verdicts; a passed originality check names the key that verified it."""
    marks = {True: "ok", False: "FAIL", None: "-"}

    def text(check: dict) -> str:
        mark = f"{check['name']}:{marks[check['passed']]}"
        if check["name"] == "originality" and check["passed"]:
            key = SIGNER_NAMES.get(check.get("key") or "")
            mark += f" ({key})" if key else f" ({check['detail']})"  # results recorded before the key was kept
        return mark

    return " ".join(text(c) for c in result.checks)


# ---------------------------------------------------------------- PDF
def _pdf(report: QaReport, out: BinaryIO) -> None:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    esc = html.escape
    story = [Paragraph(f"QA report: batch {esc(report.batch.id)}", styles["Title"]),
             Paragraph(f"Generated {esc(report.generated_at)} by {esc(report.generated_by)}", styles["Normal"]),
             Spacer(1, 4 * mm)]
    story.append(Table([[k, Paragraph(esc(v), styles["BodyText"])] for k, v in _plan_rows(report)],
                       colWidths=[35 * mm, 140 * mm], style=[("VALIGN", (0, 0), (-1, -1), "TOP")]))
    colour = {"ACCEPT": colors.darkgreen, "REJECT": colors.red}.get(report.verdict, colors.black)
    decision = f'<font color="{colour.hexval()}"><b>Decision: {esc(_decision_text(report))}</b></font>'
    story += [Spacer(1, 3 * mm), Paragraph(decision, styles["Heading3"])]
    for o in report.overrides:
        story.append(Paragraph(esc(f"Released without QA acceptance {o.at} by {o.by}: {o.reason}"
                                   + (f" (manifest {o.manifest_id})" if o.manifest_id else "")), styles["BodyText"]))
    rows = [["#", "serial", "UID", "result", "checks / reason", "by, at"]]
    for i, r in enumerate(report.results, 1):
        verdict = ("pass" if r.passed else "FAIL") + ("" if r.counted else " (not counted)")
        rows.append([str(i), r.serial or "-", r.uid.hex().upper() if r.uid else "-", verdict,
                     Paragraph(esc(_check_text(r) + ("" if r.passed else " | " + r.reason)), small),
                     Paragraph(esc(f"{r.inspector} {r.at}"), small)])
    table = Table(rows, colWidths=[8 * mm, 25 * mm, 30 * mm, 20 * mm, 70 * mm, 25 * mm], repeatRows=1)
    style = [("FONTSIZE", (0, 0), (-1, -1), 7), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
             ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    style += [("TEXTCOLOR", (3, i), (3, i), colors.red) for i, r in enumerate(report.results, 1) if not r.passed]
    table.setStyle(TableStyle(style))
    story += [Spacer(1, 3 * mm), Paragraph("Sample units scanned", styles["Heading3"]), table]
    if report.timeline:
        drawing = Drawing(170 * mm, 60 * mm)
        chart = VerticalBarChart()
        chart.x, chart.y, chart.width, chart.height = 12 * mm, 10 * mm, 150 * mm, 42 * mm
        chart.data = [[b.encoded for b in report.timeline], [b.voided for b in report.timeline]]
        chart.bars[0].fillColor, chart.bars[1].fillColor = colors.darkgreen, colors.red
        chart.categoryAxis.categoryNames = [b.start[11:16] if i % 4 == 0 else "" for i, b in enumerate(report.timeline)]
        chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 6
        chart.valueAxis.valueMin = 0
        drawing.add(chart)
        drawing.add(String(12 * mm, 55 * mm, "units encoded (green) and voided (red) over time (UTC)", fontSize=7))
        story += [Spacer(1, 3 * mm), Paragraph("Encoding of the batch", styles["Heading3"]), drawing]
    SimpleDocTemplate(out, pagesize=A4, title=f"QA report {report.batch.id}", author=report.generated_by,
                      leftMargin=15 * mm, rightMargin=15 * mm).build(story)


# ---------------------------------------------------------------- HTML
def _svg_chart(timeline: tuple[TimeBucket, ...], width: int = 600, height: int = 160) -> str:
    if not timeline:
        return "<p>No units encoded.</p>"
    top = max(b.encoded + b.voided for b in timeline) or 1
    slot = (width - 40) / len(timeline)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img" '
             f'aria-label="units encoded over time">',
             f'<line x1="30" y1="{height}" x2="{width}" y2="{height}" stroke="#888"/>',
             f'<text x="0" y="12" font-size="10">{top}</text><text x="0" y="{height}" font-size="10">0</text>']
    for i, b in enumerate(timeline):
        x = 35 + i * slot
        h_enc, h_void = b.encoded / top * (height - 10), b.voided / top * (height - 10)
        parts.append(f'<rect x="{x:.1f}" y="{height - h_enc:.1f}" width="{slot * 0.8:.1f}" height="{h_enc:.1f}" '
                     f'fill="#2e7d32"><title>{b.start}: {b.encoded} encoded</title></rect>')
        if b.voided:
            parts.append(f'<rect x="{x:.1f}" y="{height - h_enc - h_void:.1f}" width="{slot * 0.8:.1f}" '
                         f'height="{h_void:.1f}" fill="#c62828"><title>{b.start}: {b.voided} voided</title></rect>')
        if i % 4 == 0:
            parts.append(f'<text x="{x:.1f}" y="{height + 14}" font-size="9">{b.start[11:16]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html(report: QaReport) -> str:
    e = html.escape
    plan = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _plan_rows(report))
    cls = {"ACCEPT": "ok", "REJECT": "bad"}.get(report.verdict, "")
    overrides = "".join(f"<p class=bad>Released without QA acceptance {e(o.at)} by {e(o.by)}: {e(o.reason)}</p>"
                        for o in report.overrides)
    rows = "".join(
        f"<tr class={'ok' if r.passed else 'bad'}><td>{i}</td><td>{e(r.serial or '-')}</td>"
        f"<td>{r.uid.hex().upper() if r.uid else '-'}</td><td>{'pass' if r.passed else 'FAIL'}"
        f"{'' if r.counted else ' (not counted)'}</td><td>{e(_check_text(r))}</td>"
        f"<td>{'' if r.passed else e(r.reason)}</td><td>{e(r.inspector)}</td><td>{e(r.at)}</td></tr>"
        for i, r in enumerate(report.results, 1))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>QA report {e(report.batch.id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 6px;text-align:left;font-size:13px}}.ok{{color:#2e7d32}}.bad{{color:#c62828}}</style></head><body>
<h1>QA report: batch {e(report.batch.id)}</h1>
<p>Generated {e(report.generated_at)} by {e(report.generated_by)}</p>
<table>{plan}</table>
<h2 class="{cls}">Decision: {e(_decision_text(report))}</h2>{overrides}
<h2>Sample units scanned</h2>
<table><tr><th>#</th><th>serial</th><th>UID</th><th>result</th><th>checks</th><th>reason</th><th>by</th><th>at</th></tr>
{rows}</table>
<h2>Encoding of the batch</h2><p>Units encoded (green) and voided (red) over time, UTC.</p>
{_svg_chart(report.timeline)}
</body></html>
"""
