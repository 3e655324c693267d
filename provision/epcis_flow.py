"""EPCIS export and capture of a batch, and the resolver's data-entry export: the workflows the commands call.

Export reads one snapshot of the store, decides whether and when the batch was released (an
accepting QA decision, else the first recorded override), writes the document atomically and
says what it holds. Capture reads a document back, sends it (batches/epcis_capture.py) and
records the repository's answer in the store, rejected events included.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith import ConfigError, StateError
from tagsmith.batches.epcis import Release, batch_events, epcis_document
from tagsmith.batches.epcis_capture import CaptureResult, Transport, capture_document, token_from_env
from tagsmith.batches.resolver_ce import FORMATS, resolver_ce_entries
from tagsmith.batches.store import Store, utc_now
from tagsmith.limits import read_limited

from .outputs import write_file
from .qa_plan import release_check

DOCUMENT_BYTES = 1 << 30  # a document read back for capture: about a million units' events


@dataclass(frozen=True)
class EpcisExport:
    path: Path
    batch_id: str
    sha256: str
    events: dict[str, int]  # bizStep -> count
    released: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "batch": self.batch_id, "sha256": self.sha256, "events": self.events,
                "released": self.released}


def batch_release(store: Store, batch_id: str) -> Release | None:
    """When the batch was let go: its accepting QA decision, else its first override; None if neither."""
    try:
        qa = release_check(store, batch_id)
    except StateError:
        override = next(iter(store.qa_overrides(batch_id)), None)
        return Release(override.at, "override", reason=override.reason) if override else None
    return Release(qa["decided_at"], "qa-accepted", plan_id=qa["plan_id"])


def export_epcis(store: Store, batch_id: str, target: Path) -> EpcisExport:
    """Write the batch's EPCIS 2.0 document to ``target`` (already checked as an output)."""
    with store.snapshot():
        batch = store.batch(batch_id)
        release = batch_release(store, batch_id)
        events = batch_events(store, batch_id, release)
    document = epcis_document(events, utc_now(), {"batch": batch.id, "product": batch.product_id})
    data = (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    write_file(target, data)
    steps = Counter(event["bizStep"] for event in events)
    return EpcisExport(target, batch_id, hashlib.sha256(data).hexdigest(), dict(sorted(steps.items())),
                       release is not None)


def capture_epcis(store: Store, path: Path, url: str, *, attempts: int = 6) -> CaptureResult:
    """Send the document at ``path`` to the repository at ``url`` and record its answer."""
    data = read_limited(path, DOCUMENT_BYTES, "EPCIS document")
    try:
        document = json.loads(data)
        events = document["epcisBody"]["eventList"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path}: not an EPCIS document (JSON with epcisBody.eventList)") from None
    if document.get("type") != "EPCISDocument" or not isinstance(events, list):
        raise ConfigError(f"{path}: not an EPCISDocument")
    result = capture_document(document, url, Transport(token_from_env(), attempts=attempts))
    batch_id = document.get("tagsmith:batch")
    store.record_epcis_capture(batch_id=batch_id if isinstance(batch_id, str) else None,
                               document_sha256=hashlib.sha256(data).hexdigest(), url=result.endpoint,
                               events=result.events, accepted=result.accepted, rejected=len(result.rejected),
                               receipt=result.to_dict())
    return result


def export_resolver(store: Store, batch_id: str, target: Path, fmt: str) -> dict[str, Any]:
    """Write the resolver's data-entry document for the batch's product; what it holds."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    product = store.batch_product(batch_id)
    entries = resolver_ce_entries(product)
    write_file(target, (json.dumps(entries, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return {"path": str(target), "batch": batch_id, "product": product.id, "format": fmt,
            "anchor": entries[0]["anchor"], "links": len(entries[0]["links"])}
