"""``tagsmith product``, ``batch``, ``unit`` and ``manifest``: what is made, in which batches, and its release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tagsmith import ConfigError
from tagsmith.commands.context import checked_out, opened, provide, state, who
from tagsmith.commands.options import AllowIncompleteOpt, ForceOpt, IncompleteReasonOpt, JsonFlag, incomplete_reason
from tagsmith.commands.output import emit, esc, print_line, print_rows

product_app = typer.Typer(help="Product files: GTIN, URL template, serial format, key policy, label layout.",
                          no_args_is_help=True)
batch_app = typer.Typer(help="Batches of one product: serials minted up front, progress, closing.", no_args_is_help=True)
manifest_app = typer.Typer(help="Signed manifests of a batch for the cloud resolver.", no_args_is_help=True)
unit_app = typer.Typer(help="One unit: its record and journal; void a unit whose chip is lost.", no_args_is_help=True)

_UNIT_COLUMNS = ["serial", "UID", "state", "station", "key versions", "floor"]


@product_app.callback()
def _product(ctx: typer.Context) -> None:
    provide(ctx)


@batch_app.callback()
def _batch(ctx: typer.Context) -> None:
    provide(ctx)


@unit_app.callback()
def _unit(ctx: typer.Context) -> None:
    provide(ctx)


@manifest_app.callback()
def _manifest(ctx: typer.Context) -> None:
    provide(ctx)


def _check_key_set_of(ctx: typer.Context, product: Any) -> None:
    """Refuse a product whose key set, if the workspace keystore holds it, has another system id."""
    from tagsmith.provision.keysets import check_key_set_of

    check_key_set_of(state(ctx).workspace, product, lambda: opened(ctx).keys)


def _product_dict(record: Any) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "model": record.model, "gtin": record.gtin,
            "sha256": record.current_sha256, "versions": record.versions, "updated_at": record.updated_at}


def _batch_dict(store: Any, batch: Any) -> dict[str, Any]:
    manifests = [{"id": m.id, "kind": m.kind, "path": m.path, "units": m.units, "sha256": m.sha256,
                  "created_at": m.created_at, "uploaded": m.uploaded_at is not None, "uploaded_at": m.uploaded_at,
                  "receipt": m.receipt, "superseded_by": m.superseded_by} for m in store.manifests(batch.id)]
    return {"id": batch.id, "product": batch.product_id, "product_sha256": batch.product_sha256, "lot": batch.lot,
            "line": batch.line, "quantity": batch.quantity, "state": batch.state, "created_at": batch.created_at,
            "closed_at": batch.closed_at, "progress": store.batch_progress(batch.id).to_dict(),
            "manifests": manifests, "uploaded": any(m["uploaded"] for m in manifests)}


@product_app.command("add")
def product_add(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Product TOML file.")],
                confirm_irreversible: Annotated[bool, typer.Option(
                    "--confirm-irreversible", help="Confirm that an LRP product's chips are switched to LRP for good "
                    "(recorded with who and when).")] = False,
                as_json: JsonFlag = False) -> None:
    """Check a product file and record this version of it (by its SHA-256)."""
    from tagsmith.batches.product import load_product
    from tagsmith.provision.catalog import register_product

    product = load_product(file)
    _check_key_set_of(ctx, product)
    store = opened(ctx).store
    record, added = register_product(store, product, who(ctx) if confirm_irreversible else None)
    confirmed = store.irreversible_confirmation(product.sha256)
    data = {**_product_dict(record), "added": added, "secure_messaging": product.secure_messaging,
            "irreversible_confirmed": _confirmation_dict(confirmed)}
    lrp = f"; LRP: every chip is switched for good (confirmed by {esc(confirmed[0])})" if confirmed else ""
    emit(data, as_json, lambda: print_line(
        f"product {esc(record.id)} {'recorded' if added else 'unchanged'}: version {esc(record.current_sha256[:12])} "
        f"({record.versions} version(s)), GTIN {esc(record.gtin)}{lrp}"))


def _confirmation_dict(confirmed: tuple[str, str] | None) -> dict[str, str] | None:
    return {"by": confirmed[0], "at": confirmed[1]} if confirmed else None


@product_app.command("list")
def product_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List recorded products."""
    data = [_product_dict(p) for p in opened(ctx).store.products()]
    emit(data, as_json, lambda: print_rows("products", ["id", "name", "GTIN", "version", "versions"],
                                           [[p["id"], p["name"], p["gtin"], p["sha256"][:12], p["versions"]] for p in data]))


def _product_show_dict(record: Any, product: Any) -> dict[str, Any]:
    return {**_product_dict(record), "resolver": product.resolver, "url_template": product.url_template,
            "lot_in_url": product.lot_in_url, "serial": vars(product.serial) | {"series": product.serial.series},
            "key_set": product.keys.key_set, "system_id": product.keys.system_id.hex().upper(),
            "slots": {s.slot: {"role": s.role, "version": s.version} for s in product.keys.slots},
            "label_layout": product.label_layout, "secure_messaging": product.secure_messaging}


@product_app.command("show")
def product_show(ctx: typer.Context, product_id: Annotated[str, typer.Argument(metavar="ID")],
                 as_json: JsonFlag = False) -> None:
    """Show a product's current version: GTIN, URLs, serial format, key policy, layout."""
    store = opened(ctx).store
    record = store.product_record(product_id)
    data = {**_product_show_dict(record, store.product(product_id)),
            "irreversible_confirmed": _confirmation_dict(store.irreversible_confirmation(record.current_sha256))}
    emit(data, as_json, lambda: print_rows(f"product {product_id}", ["field", "value"],
                                           [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in data.items()]))


@batch_app.command("create")
def batch_create(
    ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", help="Product id (its current version is used).")],
    quantity: Annotated[int, typer.Option("--quantity", help="Number of serials to mint.")],
    lot: Annotated[str | None, typer.Option("--lot", help="Batch/lot number, AI (10).")] = None,
    line: Annotated[str | None, typer.Option("--line", help="Production line name.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a batch and mint its serials."""
    from tagsmith.provision.catalog import create_batch

    store = opened(ctx).store
    _check_key_set_of(ctx, store.product(product))
    batch = create_batch(store, product, quantity, lot=lot, line=line)
    data = _batch_dict(store, batch)
    emit(data, as_json, lambda: print_line(f"batch {esc(batch.id)}: {quantity} serials minted for {esc(product)}"))


@batch_app.command("list")
def batch_list(ctx: typer.Context,
               product: Annotated[str | None, typer.Option("--product", help="Only this product's batches.")] = None,
               as_json: JsonFlag = False) -> None:
    """List batches with their progress."""
    store = opened(ctx).store
    data = [_batch_dict(store, b) for b in store.batches(product)]
    emit(data, as_json, lambda: print_rows("batches", ["id", "product", "lot", "state", "done", "quantity", "uploaded"], [
        [b["id"], b["product"], b["lot"], b["state"], b["progress"]["done"], b["quantity"], b["uploaded"]] for b in data]))


def _render_batch(data: dict[str, Any]) -> None:
    progress = data["progress"]
    print_line(f"batch {esc(data['id'])}  product {esc(data['product'])} ({esc(data['product_sha256'][:12])})  "
               f"lot {esc(data['lot'] or '-')}  line {esc(data['line'] or '-')}  {esc(data['state'])}")
    # progress["allocated"] counts serials handed to tags so far; by_state["allocated"] the units
    # holding a serial whose encoding has not started yet
    print_line(f"done {progress['done']}/{data['quantity']}  serials allocated {progress['allocated']}  "
               f"serials remaining {progress['remaining']}")
    print_line("units by state: " + "  ".join(
        f"{'allocated (not started)' if k == 'allocated' else esc(k)} {v}" for k, v in progress["by_state"].items()))
    for m in data["manifests"]:
        print_line(f"manifest {esc(m['id'])} {esc(m['kind'])} {m['units']} units {esc(m['path'])}  "
                   + (f"uploaded {esc(m['uploaded_at'])}" if m["uploaded"] else "not uploaded")
                   + (f"  (file replaced by {esc(m['superseded_by'])})" if m["superseded_by"] else ""))
    for c in data["epcis_captures"]:
        print_line(f"epcis capture {c['id']} {esc(c['captured_at'])} to {esc(c['url'])}: {c['events']} events, "
                   f"{c['accepted']} accepted, {c['rejected']} rejected")


@batch_app.command("show")
def batch_show(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonFlag = False) -> None:
    """Show a batch: counts by state, progress, manifests and their upload, EPCIS captures and their receipts."""
    store = opened(ctx).store
    data = {**_batch_dict(store, store.batch(batch_id)), "epcis_captures": store.epcis_captures(batch_id)}
    emit(data, as_json, lambda: _render_batch(data))


@batch_app.command("close")
def batch_close(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")],
                allow_incomplete: AllowIncompleteOpt = False, reason: IncompleteReasonOpt = None,
                as_json: JsonFlag = False) -> None:
    """Close a batch: no more allocations (verification, QA and labels still work)."""
    store = opened(ctx).store
    data = _batch_dict(store, store.close_batch(
        batch_id, incomplete_reason=incomplete_reason(allow_incomplete, reason), by=who(ctx)))
    emit(data, as_json, lambda: print_line(f"batch {esc(batch_id)} closed"))


def _unit_row(u: dict[str, Any]) -> list[Any]:
    versions = ",".join(f"{k}:{v}" for k, v in u["key_versions"].items()) or None
    return [u["serial"], u["uid"], u["state"], u["station"], versions, u["floor"]]


def _render_units(batch_id: str, unit_state: str | None, rows: list[dict[str, Any]]) -> None:
    if not rows:
        print_line(f"batch {esc(batch_id)} has no {esc(unit_state or '')} units".replace("  ", " "))
        return
    print_rows(f"Units of batch {batch_id}" + (f" ({unit_state})" if unit_state else ""), _UNIT_COLUMNS,
               [_unit_row(u) for u in rows])


@batch_app.command("units")
def batch_units(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")],
                unit_state: Annotated[str | None, typer.Option("--state", help="Only units in this state: "
                                                                  "allocated, encoding, encoded, verified, voided.")] = None,
                as_json: JsonFlag = False) -> None:
    """List the batch's units in allocation order: serial, UID, state, station, key versions, replay floor."""
    from tagsmith.batches.records import UNIT_STATES

    if unit_state is not None and unit_state not in UNIT_STATES:
        raise ConfigError(f"--state must be one of {', '.join(UNIT_STATES)}")
    store = opened(ctx).store
    store.batch(batch_id)  # an unknown batch is not found, not empty
    rows = [u.to_dict() for u in store.units(batch_id, (unit_state,) if unit_state else None)]
    emit(rows, as_json, lambda: _render_units(batch_id, unit_state, rows))


def _render_unit(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key != "events":
            print_line(f"{esc(key)}: {esc(value)}")
    print_rows("Journal", ["at", "event", "station", "detail"],
               [[e["at"], e["event"], e["station"], json.dumps(e["detail"]) if e["detail"] else None]
                for e in data["events"]])


@unit_app.command("show")
def unit_show(ctx: typer.Context, ref: Annotated[str, typer.Argument(metavar="SERIAL|UID")],
              as_json: JsonFlag = False) -> None:
    """One unit's record and its journal (allocation, steps, encoding, verifications, taps, QA, labels, void)."""
    store = opened(ctx).store
    unit = store.find_unit(ref)
    data = {**unit.to_dict(), "events": [e.to_dict() for e in store.unit_events(unit.id)]}
    emit(data, as_json, lambda: _render_unit(data))


@unit_app.command("void")
def unit_void(ctx: typer.Context, serial: Annotated[str, typer.Argument(metavar="SERIAL")],
              reason: Annotated[str, typer.Option("--reason", help="Why (recorded with who and when).")],
              yes: Annotated[bool, typer.Option("--yes", help="Confirm: the serial is burnt, never reused.")] = False,
              encoded: Annotated[bool, typer.Option("--encoded", help="The unit is encoded and its chip is lost or "
                                                    "destroyed: void it anyway (manifests leave it out).")] = False,
              as_json: JsonFlag = False) -> None:
    """Void a unit whose chip is lost (stranded mid-encoding): its serial is never reused."""
    from tagsmith.provision.units import void_lost_unit

    if not yes:
        raise ConfigError("unit void burns the serial for good: add --yes to confirm")
    unit = void_lost_unit(opened(ctx).store, serial, reason, who(ctx), encoded=encoded)
    emit(unit.to_dict(), as_json, lambda: print_line(
        f"unit {esc(unit.serial)} voided by {esc(unit.voided_by)}: {esc(reason)}"))


def _manifest_out(ctx: typer.Context, out: str, force: bool) -> Path:
    """A manifest's --out, checked with the FILE.sig written beside it."""
    from tagsmith.batches.manifest import signature_path

    target = checked_out(ctx, out, force)
    checked_out(ctx, signature_path(target), force, option="--out (its .sig)")
    return target


@manifest_app.command("export")
def manifest_export(
    ctx: typer.Context,
    batch: Annotated[str, typer.Option("--batch", help="Batch id.")],
    out: Annotated[str, typer.Option("--out", help="Manifest file to write (FILE.sig is written beside it; "
                                                   "an existing one only with --force).")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    force: ForceOpt = False,
    without_qa: Annotated[bool, typer.Option(
        "--without-qa", help="Release without an accepted QA decision (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why it is released without QA or with units mid-encoding (recorded).")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Export the batch's encoded units as a manifest signed with the line's manifest key (QA must have accepted it)."""
    from tagsmith.provision.release import release_manifest

    if reason is not None and not (without_qa or allow_incomplete):
        raise ConfigError("--reason goes with --without-qa or --allow-incomplete")
    target = _manifest_out(ctx, out, force)
    release = release_manifest(
        opened(ctx).store, lambda: opened(ctx).keys, batch, target, fmt=fmt, without_qa=without_qa, reason=reason,
        incomplete_reason=incomplete_reason(allow_incomplete, reason if allow_incomplete else None), by=who(ctx),
        user=state(ctx).user)
    result = release.manifest
    data = {"manifest_id": result.manifest_id, "path": str(result.path), "signature": str(result.signature_path),
            "sha256": result.sha256, "units": result.units, "format": result.format, "qa": release.qa}
    emit(data, as_json, lambda: print_line(f"manifest {esc(result.manifest_id)}: {result.units} units -> "
                                           f"{esc(result.path)} (signed, {esc(result.signature_path.name)})"))


@manifest_app.command("verify")
def manifest_verify(
    file: Annotated[Path, typer.Argument(help="Manifest file (FILE.sig beside it).")],
    public_key: Annotated[Path | None, typer.Option("--public-key", help="PEM of the line's manifest key.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a manifest's signature, schema and consistency; exit 6 with the reason if anything is off."""
    from tagsmith.batches.verify import verify_manifest
    from tagsmith.keystore.signing import MANIFEST_VERIFIER
    from tagsmith.limits import PEM_BYTES, read_text_limited

    report = verify_manifest(file, read_text_limited(public_key, PEM_BYTES, "--public-key") if public_key else None,
                             verifier=MANIFEST_VERIFIER)
    data = {"ok": True, "manifest_id": report.manifest_id, "batch": report.batch_id, "units": report.units,
            "sha256": report.sha256, "format": report.format, "key_pinned": report.key_pinned}
    emit(data, as_json, lambda: print_line(
        f"manifest {esc(report.manifest_id)} OK: {report.units} units of batch {esc(report.batch_id)}"
        + ("" if report.key_pinned else " (signature checked against the key in the .sig file; "
           "pass --public-key to check who signed it)")))


@manifest_app.command("upload")
def manifest_upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Manifest file (FILE.sig beside it).")],
    to: Annotated[str, typer.Option("--to", help="Platform URL (https); token from TAGSMITH_UPLOAD_TOKEN.")],
    attempts: Annotated[int, typer.Option("--attempts", min=1, help="Tries before giving up.")] = 6,
    as_json: JsonFlag = False,
) -> None:
    """Upload a signed manifest (idempotent by manifest id, retried with backoff) and keep the receipt."""
    from tagsmith.batches.upload import upload_manifest
    from tagsmith.keystore.signing import MANIFEST_VERIFIER

    receipt = upload_manifest(file, to, verifier=MANIFEST_VERIFIER, store=opened(ctx).store, attempts=attempts)
    emit(receipt, as_json, lambda: print_line(f"uploaded manifest {esc(receipt.get('manifest_id'))}: receipt {esc(receipt)}"))


@manifest_app.command("merge")
def manifest_merge(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Manifests of the same batch from several stations.")],
    out: Annotated[str, typer.Option("--out", help="Merged manifest to write (an existing one only with --force).")],
    public_key: Annotated[list[Path] | None, typer.Option(
        "--public-key", help="PEM of a station's manifest key the inputs may be signed with (repeatable; "
                             "the line's own key is always accepted).")] = None,
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Merge station manifests of one batch; refuse an input not signed by a trusted key, and conflicts; lose no unit."""
    from tagsmith.batches.merge import MergeConflictError, merge_manifests
    from tagsmith.keystore.signing import MANIFEST_VERIFIER
    from tagsmith.limits import PEM_BYTES, read_text_limited

    target = _manifest_out(ctx, out, force)
    trusted = [read_text_limited(pem, PEM_BYTES, "--public-key") for pem in public_key or ()]
    store, keystore = opened(ctx).store, opened(ctx).keys
    try:
        result = merge_manifests(files, target, signer=keystore.sign_manifest, store=store, trusted_keys=trusted,
                                 public_key_pem=keystore.manifest_public_key_pem(), verifier=MANIFEST_VERIFIER)
    except MergeConflictError as exc:
        for conflict in exc.conflicts:
            print_line(f"conflict: {esc(conflict)}", err=True)
        raise
    data = {"manifest_id": result.manifest_id, "path": str(result.path), "sha256": result.sha256,
            "units": result.units, "duplicates_collapsed": result.duplicates,
            "sources": [{"manifest_id": r.manifest_id, "units": r.units} for r in result.sources]}
    emit(data, as_json, lambda: print_line(f"merged {len(files)} manifests: {result.units} units "
                                           f"({result.duplicates} repeats collapsed) -> {esc(result.path)}"))
