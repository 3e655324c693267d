"""QA records the batch store hands out (plans, per-unit results, decisions, release overrides).

Kept apart from records.py so the QA tables can evolve without touching the station's records;
frozen and free of SQL like them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class QaStatus(StrEnum):
    """A sample unit's QA result, as its unit record and the manifest carry it."""

    PASS = "pass"
    FAIL = "fail"


class QaDecision(StrEnum):
    """A plan's decision (accept or reject); a manifest released without acceptance says ``override``."""

    ACCEPT = "accept"
    REJECT = "reject"
    OVERRIDE = "override"


@dataclass(frozen=True)
class QaPlanRecord:
    """A sampling plan drawn for one batch; ``serials`` are the units to pull, drawn with ``seed``."""

    id: str
    batch_id: str
    product_id: str
    lot_size: int
    level: str
    aql: str
    inspection: str  # severity used for this plan (normal)
    switching_state: str  # what the product's switching rules called for when planned
    code_letter: str
    plan_letter: str
    table_sample_size: int
    sample_size: int
    accept: int
    reject: int
    via_arrow: str | None
    seed: int
    serials: tuple[str, ...]
    resubmission: bool  # a re-inspection after a decision: ignored by the switching rules
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"plan_id": self.id, "batch": self.batch_id, "product": self.product_id, "lot_size": self.lot_size,
                "level": self.level, "aql": self.aql, "inspection": self.inspection,
                "switching_state": self.switching_state, "code_letter": self.code_letter,
                "plan_letter": self.plan_letter, "table_sample_size": self.table_sample_size,
                "sample_size": self.sample_size, "accept": self.accept, "reject": self.reject,
                "via_arrow": self.via_arrow, "seed": str(self.seed), "serials": list(self.serials),
                "resubmission": self.resubmission, "created_at": self.created_at, "created_by": self.created_by}


@dataclass(frozen=True)
class QaResultRecord:
    """One scan of a chip and its label: every check with its verdict, and whether it counts."""

    id: int
    plan_id: str
    batch_id: str
    unit_id: int | None
    serial: str | None  # the sample unit the result counts for (or the unit the chip/label named)
    uid: bytes | None
    passed: bool
    counted: bool  # False: not in the sample, or that sample unit was already inspected
    reason: str
    checks: tuple[dict[str, Any], ...]  # {"name", "passed" (True/False/None = not run), "detail"}
    chip_url: str | None
    label_url: str | None
    read_counter: int | None
    station: str | None
    inspector: str
    at: str


@dataclass(frozen=True)
class QaDecisionRecord:
    plan_id: str
    batch_id: str
    decision: str  # a QaDecision value: accept | reject
    defects: int
    inspected: int
    decided_at: str
    decided_by: str


@dataclass(frozen=True)
class QaOverrideRecord:
    """A release without an accepted QA decision (manifest export --without-qa --reason)."""

    id: int
    batch_id: str
    reason: str
    manifest_id: str | None
    by: str
    at: str
