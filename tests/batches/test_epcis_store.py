"""The store's EPCIS queries, on every engine: capture receipts kept per batch, every QA decision of a batch."""

from __future__ import annotations

from tagsmith.batches.qarecords import QaDecisionRecord, QaPlanRecord


def _plan(plan_id: str, at: str) -> QaPlanRecord:
    return QaPlanRecord(id=plan_id, batch_id="B1", product_id="aurora-dw600", lot_size=2, level="II", aql="0.65",
                        inspection="normal", switching_state="normal", code_letter="A", plan_letter="A",
                        table_sample_size=2, sample_size=2, accept=0, reject=1, via_arrow=None, seed=1,
                        serials=("S1", "S2"), resubmission=plan_id == "p2", created_at=at, created_by="qa")


def test_capture_receipts_and_decisions(store, product):
    store.create_batch(product.id, 2, batch_id="B1")
    first = store.record_epcis_capture(batch_id="B1", document_sha256="ab" * 32, url="https://r/capture", events=5,
                                       accepted=4, rejected=1, receipt={"rejected": [{"eventID": "ni:x"}]})
    second = store.record_epcis_capture(batch_id="B1", document_sha256="ab" * 32, url="https://r/capture", events=5,
                                        accepted=5, rejected=0, receipt={"rejected": []})
    receipts = store.epcis_captures("B1")
    assert [r["id"] for r in receipts] == [first, second] and second > first
    assert receipts[0]["receipt"] == {"rejected": [{"eventID": "ni:x"}]} and receipts[1]["accepted"] == 5
    assert store.epcis_captures("other") == []
    for plan_id, at, verdict in (("p1", "2026-01-01T00:00:00.000Z", "reject"), ("p2", "2026-01-02T00:00:00.000Z",
                                                                                   "accept")):
        store.record_qa_plan(_plan(plan_id, at))
        store.record_qa_decision(QaDecisionRecord(plan_id, "B1", verdict, 0, 2, at, "qa"))
    assert [d.decision for d in store.qa_decisions("B1")] == ["reject", "accept"]
    assert store.qa_decision("B1").plan_id == "p2"  # the latest only, as before
