"""QA records: sampling plans, per-unit scan results, decisions, release overrides, switching state."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from tagsmith import ConfigError, NotFoundError, StateError

from ..qarecords import QaDecisionRecord, QaOverrideRecord, QaPlanRecord, QaResultRecord
from .manifests import ManifestQueries

_PLAN = f"SELECT {', '.join(f.name for f in fields(QaPlanRecord))} FROM qa_plans"


class QaQueries(ManifestQueries):
    def record_qa_plan(self, plan: QaPlanRecord) -> None:
        """Record a drawn sampling plan (its seed and serials make the draw auditable)."""
        values = {**vars(plan), "seed": str(plan.seed), "serials": json.dumps(list(plan.serials)),
                  "resubmission": int(plan.resubmission)}
        with self._write():
            self.batch(plan.batch_id)
            self._exec(f"INSERT INTO qa_plans ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                       tuple(values.values()))

    def _plans_newest_first(self) -> str:
        return f"ORDER BY created_at DESC, {self.dialect.insert_order} DESC"

    def qa_plan(self, batch_id: str) -> QaPlanRecord | None:
        """The batch's current (latest) QA plan."""
        row = self._one(f"{_PLAN} WHERE batch_id = ? {self._plans_newest_first()} LIMIT 1", (batch_id,))
        return _qa_plan(row) if row else None

    def qa_plans(self, batch_id: str) -> list[QaPlanRecord]:
        return [_qa_plan(r) for r in self._rows(
            f"{_PLAN} WHERE batch_id = ? ORDER BY created_at, {self.dialect.insert_order}", (batch_id,))]

    def record_qa_result(self, *, plan_id: str, batch_id: str, unit_id: int | None, serial: str | None,
                         uid: bytes | None, passed: bool, counted: bool, reason: str, checks: list[dict[str, Any]],
                         chip_url: str | None, label_url: str | None, read_counter: int | None,
                         station: str | None, inspector: str) -> QaResultRecord:
        """One scan's result; a counted one also sets the unit's qa_status, in the same transaction."""
        with self._write():
            now = self._touch_station(station)
            row = self._one(
                "INSERT INTO qa_results (plan_id, batch_id, unit_id, serial, uid, passed, counted, reason, checks, "
                "chip_url, label_url, read_counter, station, inspector, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?) RETURNING *", (plan_id, batch_id, unit_id, serial, uid, int(passed), int(counted), reason,
                                         json.dumps(checks), chip_url, label_url, read_counter, station, inspector, now))
            if counted and unit_id is not None:
                status = "pass" if passed else "fail"
                done = self._exec("UPDATE units SET qa_status = ?, qa_at = ?, updated_at = ? WHERE id = ? AND state IN "
                                  "('encoded', 'verified')", (status, now, now, unit_id)).rowcount
                if done:
                    self._event(unit_id, "qa", {"result": status, "detail": reason, "plan": plan_id}, station, now)
        assert row is not None
        return _qa_result(row)

    def qa_results(self, plan_id: str) -> list[QaResultRecord]:
        return [_qa_result(r) for r in self._rows("SELECT * FROM qa_results WHERE plan_id = ? ORDER BY id", (plan_id,))]

    def qa_last_counter(self, unit_id: int) -> int | None:
        """The highest SUN read counter QA has verified for this unit (replay detection)."""
        counter: int | None = self._scalar("SELECT MAX(read_counter) FROM qa_results WHERE unit_id = ?", (unit_id,))
        return counter

    def record_qa_decision(self, decision: QaDecisionRecord, switching: dict[str, Any] | None = None,
                           expected_lots: int | None = None) -> None:
        """Record a plan's decision and, for an original inspection, the product's new switching state.

        ``expected_lots`` is the lot count the new state was computed from: if another decision
        moved the product's state meanwhile, nothing is written (StateError) and QA decides again.
        """
        with self._write():
            self._lock_writers()
            product_id = self._scalar("SELECT product_id FROM qa_plans WHERE id = ?", (decision.plan_id,))
            if product_id is None:
                raise NotFoundError(f"no QA plan {decision.plan_id}")
            if self._scalar("SELECT 1 FROM qa_decisions WHERE plan_id = ?", (decision.plan_id,)):
                raise StateError(f"QA plan {decision.plan_id} already has a decision")
            self._exec("INSERT INTO qa_decisions (plan_id, batch_id, decision, defects, inspected, decided_at, "
                       "decided_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (decision.plan_id, decision.batch_id, decision.decision, decision.defects, decision.inspected,
                        decision.decided_at, decision.decided_by))
            if switching is not None:
                self._set_qa_switching(product_id, switching, expected_lots)

    def qa_decision(self, batch_id: str) -> QaDecisionRecord | None:
        """The decision on the batch's latest plan (None while undecided or with a newer plan)."""
        row = self._one("SELECT d.* FROM qa_decisions d WHERE d.plan_id = (SELECT id FROM qa_plans WHERE batch_id = ? "
                        f"{self._plans_newest_first()} LIMIT 1)", (batch_id,))
        return QaDecisionRecord(**row) if row else None

    def qa_switching(self, product_id: str) -> dict[str, Any] | None:
        """The product's QA switching state as stored (provision/sampling.py SwitchingState JSON)."""
        state = self._scalar("SELECT state FROM qa_switching WHERE product_id = ?", (product_id,))
        return json.loads(state) if state is not None else None

    def set_qa_switching(self, product_id: str, state: dict[str, Any], expected_lots: int | None = None) -> None:
        """Store a switching state decided outside a lot (corrective action after discontinuation)."""
        with self._write():
            self._lock_writers()
            self._set_qa_switching(product_id, state, expected_lots)

    def _set_qa_switching(self, product_id: str, state: dict[str, Any], expected_lots: int | None) -> None:
        lots = self._scalar("SELECT lots FROM qa_switching WHERE product_id = ?", (product_id,))
        if expected_lots is not None and (lots or 0) != expected_lots:
            raise StateError(f"product {product_id}'s QA switching state changed meanwhile; decide again")
        self._exec("INSERT INTO qa_switching (product_id, state, lots, updated_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(product_id) DO UPDATE SET state = excluded.state, lots = excluded.lots, "
                   "updated_at = excluded.updated_at",
                   (product_id, json.dumps(state, sort_keys=True), int(state.get("lots", 0)), self._now()))

    def record_qa_override(self, batch_id: str, reason: str, by: str, manifest_id: str | None = None) -> QaOverrideRecord:
        """A batch released without an accepted QA decision, with the reason given."""
        if not reason:
            raise ConfigError("a QA override needs a reason")
        with self._write():
            self.batch(batch_id)
            row = self._one('INSERT INTO qa_overrides (batch_id, reason, manifest_id, "by", at) VALUES (?, ?, ?, ?, ?) '
                            'RETURNING id, batch_id, reason, manifest_id, "by", at',
                            (batch_id, reason, manifest_id, by, self._now()))
        assert row is not None
        return QaOverrideRecord(**row)

    def qa_overrides(self, batch_id: str) -> list[QaOverrideRecord]:
        return [QaOverrideRecord(**r) for r in self._rows(
            'SELECT id, batch_id, reason, manifest_id, "by", at FROM qa_overrides WHERE batch_id = ? ORDER BY id',
            (batch_id,))]


def _qa_plan(row: dict[str, Any]) -> QaPlanRecord:
    row = dict(row)
    row.update(seed=int(row["seed"]), serials=tuple(json.loads(row["serials"])), resubmission=bool(row["resubmission"]))
    return QaPlanRecord(**row)


def _qa_result(row: dict[str, Any]) -> QaResultRecord:
    row = dict(row)
    row.update(uid=bytes(row["uid"]) if row["uid"] is not None else None, passed=bool(row["passed"]),
               counted=bool(row["counted"]), checks=tuple(json.loads(row["checks"])))
    return QaResultRecord(**row)
