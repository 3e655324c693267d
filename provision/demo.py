"""``tagsmith demo``: the whole line on embedded defaults, in a workspace of its own.

It reuses the workspace it is given only when that holds no data yet (a demo must never
mix throwaway keys into a real keystore); otherwise it makes a fresh directory and names it.
Steps report through ``say`` so the CLI decides how to draw them.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tagsmith import TagsmithError
from tagsmith.batches.manifest import export_manifest
from tagsmith.batches.product import load_product
from tagsmith.batches.records import DONE
from tagsmith.batches.store import Store, open_store
from tagsmith.batches.verify import verify_manifest
from tagsmith.keystore import DIVERSIFICATION_SCHEME, init_keystore
from tagsmith.keystore.signing import MANIFEST_VERIFIER, SIGNATURE_ALGORITHM

from ..workspace import Workspace
from . import station
from .catalog import create_batch, register_product
from .demolease import leased_heads
from .encode import EncodeContext, Outcome, process_tag
from .epcis_flow import export_epcis
from .labelling import UnitLabels
from .qa import QaSession, scan_simulated
from .qa_plan import create_plan, release_check
from .results import TagResult
from .simpool import SimChipPool, random_uid, sim_pool

DEMO_PASSPHRASE = "tagsmith-demo-passphrase"  # printed on purpose: the demo's keys are throwaway
LEASED_UNITS, LEASED_BLOCK = 20, 8  # the second station's batch and the serials it leases at a time
DEMO_SCRYPT_N = 2 ** 14  # below the 2^17 default on purpose: a throwaway keystore, and the demo stays quick
DEMO_STATION = "demo-station"


@dataclass
class DemoReport:
    """What the demo made, for the summary and the commands it prints."""

    home: Path
    product_id: str = ""
    batch_id: str = ""
    summary: station.Summary | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    manifest: Path | None = None
    epcis: Path | None = None
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tap_url: str | None = None
    leased_batch: str = ""  # the second station's batch, encoded on two heads from leased serials
    program: str = "tagsmith"  # how the user can call tagsmith from their shell

    def commands(self) -> list[str]:
        """Commands that explore what the demo made, working as printed."""
        home = f"{self.program} --home {self.home}"
        env = f"TAGSMITH_KEYSTORE_PASSPHRASE={DEMO_PASSPHRASE}"
        done = [o for o in self.outcomes if o.personalised and o.uid]
        out = [f"{home} batch show {self.batch_id}", f"{home} batch units {self.batch_id}"]
        if done:
            out.append(f"{home} unit show {done[0].uid}")
            out.append(f"{env} {home} tag verify --sim {done[0].uid}")
            if self.tap_url:
                out.append(f"{env} {home} tag verify --url '{self.tap_url}'")
        if self.manifest:
            out.append(f"{home} manifest verify {self.manifest}")
        if self.epcis:
            out.append(f"{home} epcis export --batch {self.batch_id} --out {self.epcis} --force")
        if self.leased_batch:
            out.append(f"{home} station leases --batch {self.leased_batch}")
        if any(line.startswith("foreign tag") for line in self.lines):  # its refusal is on record
            out.append(f"{home} tag refusals")
        pdf = self.home / "exports" / f"{self.batch_id}.labels.pdf"
        if pdf.exists():
            out.append(f"{home} labels check {pdf} --batch {self.batch_id}")
        out.append(f"{home} qa report --batch {self.batch_id} --out {self.home / 'exports' / 'qa-report.html'}")
        return out

    def to_dict(self) -> dict:
        summary = self.summary.to_dict() if self.summary else {}
        return {"home": str(self.home), "product": self.product_id, "batch": self.batch_id, "station": summary,
                "manifest": str(self.manifest) if self.manifest else None,
                "epcis": str(self.epcis) if self.epcis else None, "lines": self.lines,
                "seconds": round(self.seconds, 2), "commands": self.commands()}


def demo_workspace(requested: Path | None) -> Workspace:
    """The requested workspace if it holds no data yet, else a fresh directory."""
    if requested is not None:
        ws = Workspace.resolve(requested)
        if not ws.holds_data():
            return ws.ensure()
    return Workspace(Path(tempfile.mkdtemp(prefix="tagsmith-demo-"))).ensure()


def example_product_path() -> Path:
    """The dishwasher product file shipped inside the package."""
    return Path(str(resources.files("tagsmith.batches").joinpath("products/dishwasher.toml")))


def run_demo(requested_home: Path | None, *, units: int = 50, tear_rate: float = 0.2, seed: int | None = None,
             say: Callable[[str], None] = lambda message: None,
             on_tag: Callable[[Outcome], None] = lambda outcome: None) -> DemoReport:
    """Set up a workspace, encode a batch of simulated tags (some torn), export and verify its manifest; then a
    second station on two reader heads encodes a second batch from leased serials."""
    started = time.perf_counter()
    ws = demo_workspace(requested_home)
    report = DemoReport(ws.home)
    say(f"workspace {ws.home}")
    keystore = init_keystore(ws, "file", passphrase=DEMO_PASSPHRASE, scrypt_n=DEMO_SCRYPT_N)
    product = load_product(example_product_path())
    keystore.create_key_set(product.keys.key_set, system_id=product.keys.system_id)
    say(f"keystore with key set {product.keys.key_set} (passphrase {DEMO_PASSPHRASE!r} and scrypt cost "
        f"N=2^{DEMO_SCRYPT_N.bit_length() - 1} instead of 2^17: demo only)")
    with open_store(ws) as store:
        register_product(store, product)
        batch = create_batch(store, product.id, units, lot="DEMO-LOT-1", line="demo-line")
        report.product_id, report.batch_id = product.id, batch.id
        say(f"product {product.id} ({product.name}), batch {batch.id} of {units} units")
        ctx = EncodeContext.for_batch(store, keystore, batch.id, DEMO_STATION, allow_simulator_signature=True)
        foreign = foreign_tag(ctx, seed, say)  # while the batch has serials left: a full one authenticates none
        source = station.SimulatedSource(units, tear_rate=tear_rate, seed=seed, pool=sim_pool(ws))
        for event in station.run(ctx, source):
            if isinstance(event, station.Summary):
                report.summary = event
            elif isinstance(event, Outcome):  # the demo's own SQLite file never goes away
                report.outcomes.append(event)
                on_tag(event)
        say(f"station: {report.summary.done} units encoded and verified as a phone would" if report.summary else "")
        report.lines.append(foreign)
        ws.exports.mkdir(parents=True, exist_ok=True, mode=0o700)
        report.lines.extend(print_labels(store, ctx, ws, batch.id, say))
        report.lines.append(run_qa(store, keystore, ws, batch.id, seed, say))
        report.lines.append(resolver_taps(store, keystore, sim_pool(ws), report.outcomes, say))
        report.tap_url = phone_tap(sim_pool(ws), report.outcomes)
        first = next(store.units(batch.id, DONE))
        exported = export_manifest(store, batch.id, ws.exports / f"{batch.id}.manifest.jsonl",
                                   signer=keystore.sign_manifest, public_key_pem=keystore.manifest_public_key_pem(),
                                   sdm_layout=ctx.render(first.serial).sdm_layout(),
                                   diversification=DIVERSIFICATION_SCHEME, qa=release_check(store, batch.id))
        report.manifest = exported.path
        verify_manifest(exported.path, keystore.manifest_public_key_pem(), verifier=MANIFEST_VERIFIER)
        line = (f"manifest {exported.path.name}: {exported.units} units, released by QA, {SIGNATURE_ALGORITHM}-signed, "
                "verified")
        say(line)
        report.lines.append(line)
        epcis = export_epcis(store, batch.id, ws.exports / f"{batch.id}.epcis.jsonld")
        report.epcis = epcis.path
        line = f"EPCIS {epcis.path.name}: " + ", ".join(f"{n} {step}" for step, n in epcis.events.items())
        say(line)
        report.lines.append(line)
    report.leased_batch, line = leased_heads(ws, keystore, product.id, units=LEASED_UNITS, heads=2, lease=LEASED_BLOCK,
                                             seed=seed, say=say)
    report.lines.append(line)
    report.seconds = time.perf_counter() - started
    return report


def foreign_tag(ctx: EncodeContext, seed: int | None, say: Callable[[str], None]) -> str:
    """A genuine chip keyed by someone else, placed twice: one failed authentication, then none."""
    from tagsmith.encoders.simulator import SimulatedNtag424

    rng = random.Random(None if seed is None else f"foreign-{seed}")  # not the station's UIDs
    chip = SimulatedNtag424(uid=random_uid(rng), keys=[bytes([0x5A]) * 16] * 5, key_versions=[0x42] * 5)
    first = process_tag(ctx, chip)
    chip.remove()
    chip.place()
    again = process_tag(ctx, chip)
    if first.result != TagResult.REFUSED or again.result != TagResult.REFUSED or "AuthenticateEV2First" in again.commands:
        raise TagsmithError(f"demo: the foreign tag was not refused as designed ({first.reason}; {again.reason})")
    line = (f"foreign tag {first.uid}: refused after one failed authentication, recorded; placed again, "
            f"refused in {again.apdus} round trips without authenticating")
    say(line)
    return line


def run_qa(store: Store, keystore, ws: Workspace, batch_id: str, seed: int | None,
           say: Callable[[str], None]) -> str:
    """ISO 2859-1 plan for the batch, then an inspector's scan of each sample unit: chip and door label."""
    plan = create_plan(store, batch_id, seed=seed)
    say(f"QA plan: lot {plan.lot_size}, level {plan.level}, AQL {plan.aql}: code letter {plan.code_letter}, "
        f"sample {plan.sample_size}, accept {plan.accept} / reject {plan.reject}")
    session = QaSession(store, keystore, batch_id, station="demo-qa", allow_simulator_signature=True)
    for _ in scan_simulated(session, sim_pool(ws), genuine_labels(store, batch_id, list(session.pending))):
        pass
    tally = session.tally
    line = (f"QA: {session.decision or 'undecided'} after {len(session.inspected)} sample units scanned "
            f"(chip and label), {tally.defects} defective")
    say(line)
    return line


def resolver_taps(store: Store, keystore, pool: SimChipPool, outcomes: list[Outcome],
                  say: Callable[[str], None]) -> str:
    """One unit tapped and checked as the resolver would, then the same URL again: a replay, refused.

    The first encoded unit, so that the URL the demo prints for exploring (the last unit's) stays fresh."""
    from .check import check_url

    done = [o for o in outcomes if o.personalised and o.uid]
    url = phone_tap(pool, done[:1])
    if url is None:
        return "resolver: no encoded unit to tap"
    first = check_url(store, keystore, url, station="demo-resolver")
    again = check_url(store, keystore, url, station="demo-resolver")
    if not first.ok or again.ok or again.check != "replay":
        raise TagsmithError(f"demo: the resolver's checks did not behave as designed ({first.reason}; {again.reason})")
    line = (f"resolver: {first.serial} tapped, every check passed at read counter {first.read_counter} (its new "
            f"floor); the same URL again refused as a replay")
    say(line)
    return line


def genuine_labels(store: Store, batch_id: str, serials: list[str]) -> list[str]:
    """The door-label URLs the batch's labels carry for ``serials`` (the demo's stand-in scanner)."""
    labels = UnitLabels(store.batch_product(batch_id), store.batch(batch_id).lot)
    return [labels.label(s).url for s in serials]


def phone_tap(pool: SimChipPool, outcomes: list[Outcome]) -> str | None:
    """Tap the last encoded simulated unit as a phone would (the URL its chip gives now)."""
    from tagsmith.encoders.ntag424.session import Ntag424Session

    uids = [o.uid for o in outcomes if o.personalised and o.uid]
    if not uids:
        return None
    chip = pool.load(bytes.fromhex(uids[-1]))
    chip.place()
    url = Ntag424Session(chip).read_ndef_as_phone()
    chip.remove()
    pool.save(chip)
    return url


def print_labels(store: Store, ctx: EncodeContext, ws: Workspace, batch_id: str,
                 say: Callable[[str], None]) -> list[str]:
    """Door labels for the batch as one PDF, each recorded, then decoded back and compared (if zbar is here)."""
    from tagsmith.labels import jobs
    from tagsmith.labels.check import check_pdf
    from tagsmith.labels.layouts import load_layout

    from .outputs import write_file

    labeller = UnitLabels(ctx.product, lot=ctx.lot)
    layout = load_layout(ctx.product.label_layout)
    units = list(store.units(batch_id, states=DONE))
    labels = [labeller.label(u.serial) for u in units]
    out = ws.exports / f"{batch_id}.labels.pdf"
    result = jobs.render(labels, layout, "pdf", out, write=write_file)  # atomic, 0600 like every workspace file
    for unit in units:
        store.record_label_print(unit.id, layout.name, "pdf", proof=jobs.is_proof("pdf", layout))
    lines = [f"labels {out.name}: {result.labels} QR door labels on {layout.name}"]
    say(lines[0])
    try:
        check = check_pdf(out, {d.url: d.serial for d in labels}, layout)
    except TagsmithError as exc:  # zbar or poppler missing: say so, the PDF is still there
        lines.append(f"label check skipped: {exc}")
    else:
        verdict = "every unit exactly once, every URL its own" if check.ok else \
            f"{len(check.missing)} missing, {len(check.duplicates)} duplicated, {len(check.unknown)} unknown"
        lines.append(f"label check: {check.decoded} QR codes decoded from {check.pages} pages: {verdict}")
    say(lines[-1])
    return lines


