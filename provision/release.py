"""Releasing a batch to the resolver: the QA gate, then a manifest signed with the line's key.

The gate refuses a batch QA has not accepted (unless an override with its reason is recorded) and
a batch with units still being encoded (unless going ahead is recorded with its reason); the
manifest header carries the SDM layout of the batch's URLs and the chips' diversification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith.batches.manifest import ExportResult, export_manifest
from tagsmith.keystore import DIVERSIFICATION_SCHEME
from tagsmith.provision.keysets import chips_system_id
from tagsmith.provision.qa_plan import release_check, release_override


@dataclass(frozen=True)
class Release:
    """An exported manifest and the QA record its header carries."""

    manifest: ExportResult
    qa: dict[str, Any]


def sdm_layout(product: Any, serial: str | None, lot: str | None) -> dict[str, Any] | None:
    """Where the chip's mirrors and MAC input sit in the URL, from the template compiler."""
    from .catalog import product_template

    if serial is None:
        return None
    layout: dict[str, Any] = product_template(product).render(
        gtin=product.gtin, serial=serial, lot=lot).sdm_layout()
    return layout


def release_manifest(store: Any, open_keys: Callable[[], Any], batch_id: str, target: Path, *, fmt: str,
                     without_qa: bool, reason: str | None, incomplete_reason: str | None, by: str,
                     user: str | None) -> Release:
    """Export the batch's manifest once the QA gate lets it go; the keystore is opened only after the gate."""
    store.require_complete(batch_id, "manifest export", incomplete_reason, by)
    qa = release_override(store, batch_id, reason, user) if without_qa else release_check(store, batch_id)
    first = next(store.units(batch_id, ("encoded", "verified")), None)
    product = store.batch_product(batch_id)
    layout = sdm_layout(product, first.serial if first else None, store.batch(batch_id).lot)
    keystore = open_keys()
    result = export_manifest(store, batch_id, target, signer=keystore.sign_manifest,
                             public_key_pem=keystore.manifest_public_key_pem(), fmt=fmt, sdm_layout=layout,
                             diversification=DIVERSIFICATION_SCHEME, qa=qa,
                             system_id=chips_system_id(keystore, store.batch_product(batch_id)))
    if without_qa:
        store.record_qa_override(batch_id, qa["reason"], qa["by"], result.manifest_id)
    return Release(result, qa)
