"""What the EPCIS export and capture need from the store: every QA decision of a batch, and capture receipts."""

from __future__ import annotations

import json
from typing import Any

from ..qarecords import QaDecisionRecord
from .core import StoreCore


class EpcisQueries(StoreCore):
    def qa_decisions(self, batch_id: str) -> list[QaDecisionRecord]:
        """Every plan's decision for the batch (a resubmitted lot has several), oldest first."""
        return [QaDecisionRecord(**row) for row in self._rows(
            "SELECT * FROM qa_decisions WHERE batch_id = ? ORDER BY decided_at, plan_id", (batch_id,))]

    def record_epcis_capture(self, *, batch_id: str | None, document_sha256: str, url: str, events: int,
                             accepted: int, rejected: int, receipt: dict[str, Any]) -> int:
        """Keep what an EPCIS repository answered to one capture of a document (its jobs, their errors)."""
        with self._write():
            row = self._one("INSERT INTO epcis_captures (batch_id, document_sha256, url, events, accepted, rejected, "
                            "receipt, captured_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                            (batch_id, document_sha256, url, events, accepted, rejected,
                             json.dumps(receipt, sort_keys=True), self._now()))
        assert row is not None
        capture_id: int = row["id"]
        return capture_id

    def epcis_captures(self, batch_id: str) -> list[dict[str, Any]]:
        """The batch's recorded captures, oldest first, each receipt parsed."""
        return [{**row, "receipt": json.loads(row["receipt"])} for row in self._rows(
            "SELECT * FROM epcis_captures WHERE batch_id = ? ORDER BY id", (batch_id,))]
