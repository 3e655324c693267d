"""A batch's history as an EPCIS 2.0 JSON-LD document: what the line did to each unit, in CBV 2.0 words.

Events (docs/epcis.md): ``encoding``/``encoded`` for each chip personalised, ``commissioning``/
``active`` for the units released (by an accepting QA decision, or an override with its reason),
``sampling`` for each decided QA plan, ``inspecting`` for each QA scan of a batch unit, and
``decommissioning``/``inactive`` (a chip reset at a station) or ``destroying``/``destroyed`` (a unit
voided by a person) for voided units. Units are named by their GS1 Digital Link URL, never by UID
or key; the chip facts a resolver can use sit under the tagsmith extension namespace. Every event's
``eventID`` is its CBV 2.0 event hash (epcis_hash.py), so exporting twice gives the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .epcis_hash import event_id
from .gs1 import UnitUrls
from .product import Product
from .qarecords import QaDecision, QaDecisionRecord, QaPlanRecord, QaResultRecord, QaStatus
from .records import DONE, Batch, Unit, UnitState
from .store import Store

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXTENSION_PREFIX = "tagsmith"
EXTENSION_NAMESPACE = "urn:tagsmith:epcis:"  # a name, not a location: docs/epcis.md lists its terms
NAMESPACES = {EXTENSION_PREFIX: EXTENSION_NAMESPACE, "cbvmda": "urn:epcglobal:cbv:mda:"}
COMMISSION_CHUNK = 1000  # EPCs per commissioning event: events stay small enough to capture in parts
UTC_OFFSET = "+00:00"  # every time the store records is UTC


@dataclass(frozen=True)
class Release:
    """When and how the batch was let go: an accepting QA decision or a recorded override."""

    at: str
    how: str  # "qa-accepted" | "override"
    plan_id: str | None = None
    reason: str | None = None


def ext(name: str) -> str:
    return f"{EXTENSION_PREFIX}:{name}"


class EventWriter:
    """Builds the events of one batch; the product's [epcis] table places them."""

    def __init__(self, batch: Batch, product: Product) -> None:
        self.batch, self.product, self.site = batch, product, product.epcis
        self.url = UnitUrls(product.resolver, product.gtin, batch.lot if product.lot_in_url else None)
        self.sun_mode = "encrypted-picc" if "{picc}" in product.url_template else "plain-mirror"

    def read_point(self, station: str | None) -> dict[str, str]:
        where = self.site.read_point or self.site.location(station) or \
            f"{EXTENSION_NAMESPACE}station:{station or 'unknown'}"
        return {"id": where}

    def biz_location(self) -> dict[str, str] | None:
        where = self.site.biz_location or self.site.location(None) or \
            (f"{EXTENSION_NAMESPACE}line:{self.batch.line}" if self.batch.line else None)
        return {"id": where} if where else None

    def event(self, at: str, epcs: list[str], action: str, step: str, disposition: str, station: str | None,
              *, ilmd: dict[str, Any] | None = None, **extensions: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "ObjectEvent", "eventTime": at, "eventTimeZoneOffset": UTC_OFFSET,
                                 "epcList": epcs, "action": action, "bizStep": step, "disposition": disposition,
                                 "readPoint": self.read_point(station)}
        location = self.biz_location()
        if location:
            event["bizLocation"] = location
        if ilmd:
            event["ilmd"] = ilmd
        event.update({ext(k): v for k, v in extensions.items() if v is not None})
        return {"eventID": event_id(event, NAMESPACES), **event}

    def encoding(self, unit: Unit) -> dict[str, Any]:
        versions = {ext(f"slot{slot}"): version for slot, version in sorted(unit.key_versions.items())}
        return self.event(str(unit.encoded_at), [self.url(unit.serial)], "ADD", "encoding", "encoded", unit.station,
                          cryptoMode="AES", sunMode=self.sun_mode,
                          keySet=self.product.keys.key_set, keyVersions=versions or None)

    def commissioning(self, units: list[Unit], release: Release) -> Iterator[dict[str, Any]]:
        ilmd: dict[str, Any] = {"cbvmda:lotNumber": self.batch.lot} if self.batch.lot else {}
        if self.site.shelf_life_days:
            made = datetime.fromisoformat(release.at).date()
            ilmd["cbvmda:itemExpirationDate"] = (made + timedelta(days=self.site.shelf_life_days)).isoformat()
        for start in range(0, len(units), COMMISSION_CHUNK):
            epcs = [self.url(u.serial) for u in units[start:start + COMMISSION_CHUNK]]
            yield self.event(release.at, epcs, "ADD", "commissioning", "active", None, ilmd=ilmd or None,
                             release=release.how, qaPlan=release.plan_id, releaseReason=release.reason)

    def sampling(self, plan: QaPlanRecord, decision: QaDecisionRecord) -> dict[str, Any]:
        accepted = decision.decision == QaDecision.ACCEPT
        return self.event(decision.decided_at, [self.url(s) for s in plan.serials], "OBSERVE", "sampling",
                          "conformant" if accepted else "non_conformant", None, qaPlan=plan.id, aql=plan.aql,
                          inspectionLevel=plan.level, codeLetter=plan.code_letter, lotSize=plan.lot_size,
                          sampleSize=plan.sample_size, acceptNumber=plan.accept, rejectNumber=plan.reject,
                          decision=decision.decision, defects=decision.defects, inspected=decision.inspected)

    def inspecting(self, result: QaResultRecord) -> dict[str, Any]:
        failed = ",".join(str(c.get("name")) for c in result.checks if c.get("passed") is False)
        return self.event(result.at, [self.url(str(result.serial))], "OBSERVE", "inspecting",
                          "conformant" if result.passed else "non_conformant", result.station,
                          qaPlan=result.plan_id, counted=result.counted, failedChecks=failed or None,
                          reason=result.reason or None)

    def voided(self, unit: Unit) -> dict[str, Any]:
        reset = unit.voided_by is None  # a station voids the serial of a chip it reset for rework
        return self.event(str(unit.voided_at), [self.url(unit.serial)], "DELETE",
                          "decommissioning" if reset else "destroying", "inactive" if reset else "destroyed",
                          unit.station, reason=unit.void_reason)


def batch_events(store: Store, batch_id: str, release: Release | None) -> list[dict[str, Any]]:
    """Every event of the batch, in time order (call inside ``store.snapshot()`` for one consistent view)."""
    batch = store.batch(batch_id)
    writer = EventWriter(batch, store.batch_product(batch_id))
    events: list[tuple[str, int, dict[str, Any]]] = []
    released: list[Unit] = []
    for unit in store.units(batch_id):
        if unit.encoded_at:
            events.append((unit.encoded_at, 0, writer.encoding(unit)))
        if unit.state == UnitState.VOIDED and unit.voided_at:
            events.append((unit.voided_at, 4, writer.voided(unit)))
        elif unit.state in DONE and unit.qa_status != QaStatus.FAIL:  # a unit that failed its QA scan is not released
            released.append(unit)
    plans = {plan.id: plan for plan in store.qa_plans(batch_id)}
    for plan in plans.values():
        events += [(r.at, 2, writer.inspecting(r)) for r in store.qa_results(plan.id) if r.serial]
    for decision in store.qa_decisions(batch_id):
        events.append((decision.decided_at, 1, writer.sampling(plans[decision.plan_id], decision)))
    if release is not None:
        events += [(release.at, 3, e) for e in writer.commissioning(released, release)]
    events.sort(key=lambda item: (item[0], item[1], item[2]["epcList"][0]))
    return [event for _, _, event in events]


def epcis_document(events: list[dict[str, Any]], created: str, header: dict[str, Any]) -> dict[str, Any]:
    """An EPCISDocument holding ``events``; ``header`` adds extension fields (``tagsmith:batch``...)."""
    return {"@context": [EPCIS_CONTEXT, dict(NAMESPACES)], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": created, **{ext(k): v for k, v in header.items()}, "epcisBody": {"eventList": events}}
