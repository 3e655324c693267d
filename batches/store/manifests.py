"""Manifests as exported and uploaded, the rows an export streams, and bulk loads for benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from tagsmith import NotFoundError, StateError

from ..records import ManifestRecord
from .common import check_uid
from .refusals import RefusalQueries

_BULK_CHUNK = 10_000
EXPORT_COLUMNS = ("serial", "uid", "key_versions", "encoded_at", "station", "read_counter",
                  "verified_counter", "qa_status")


class ManifestQueries(RefusalQueries):
    def export_summary(self, batch_id: str) -> dict[str, Any]:
        """Counts and time range of the units a manifest lists (call inside :meth:`snapshot`)."""
        row = self._exec(
            "SELECT COUNT(*), MIN(encoded_at), MAX(encoded_at), COUNT(*) FILTER (WHERE state = 'verified'), "
            "COUNT(*) FILTER (WHERE qa_status = 'pass'), COUNT(*) FILTER (WHERE qa_status = 'fail') "
            "FROM units WHERE batch_id = ? AND state IN ('encoded', 'verified')", (batch_id,)).fetchone()
        voided = self._scalar("SELECT COUNT(*) FROM units WHERE batch_id = ? AND state = 'voided'", (batch_id,))
        return {"units": row[0], "verified": row[3], "qa_pass": row[4], "qa_fail": row[5],
                "voided": voided, "first_encoded_at": row[1], "last_encoded_at": row[2]}

    def export_rows(self, batch_id: str) -> Iterator[tuple[Any, ...]]:
        """Encoded and verified units as tuples of EXPORT_COLUMNS, streamed in allocation order."""
        # the engine's no-index prefix keeps the planner on the batch_id index: allocation order without a sort
        return self._stream(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM units WHERE batch_id = ? "
                            f"AND {self.dialect.no_index}state IN ('encoded', 'verified') ORDER BY id", (batch_id,))

    def record_manifest(self, record: ManifestRecord) -> None:
        """Record a manifest as exported: call only once it is complete, synced and renamed.

        Manifests recorded at the same path were replaced on disk by this one: each is marked
        ``superseded_by`` it (kept, with any upload receipt), so no record claims a file it no longer has.
        """
        self.batch(record.batch_id)
        with self._write():
            self._exec("UPDATE manifests SET superseded_by = ? WHERE path = ? AND superseded_by IS NULL",
                       (record.id, record.path))
            self._exec("INSERT INTO manifests (id, batch_id, kind, path, format, sha256, units, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (record.id, record.batch_id, record.kind, record.path,
                                                          record.format, record.sha256, record.units, record.created_at))

    def record_upload(self, manifest_id: str, url: str, receipt: dict[str, Any]) -> None:
        """Keep the platform's receipt for an uploaded manifest."""
        with self._write():
            changed = self._exec("UPDATE manifests SET uploaded_at = ?, upload_url = ?, receipt = ? WHERE id = ?",
                                 (self._now(), url, json.dumps(receipt, sort_keys=True), manifest_id)).rowcount
            if changed != 1:
                raise NotFoundError(f"no manifest {manifest_id} recorded in this workspace")

    def manifest(self, manifest_id: str) -> ManifestRecord | None:
        row = self._one("SELECT * FROM manifests WHERE id = ?", (manifest_id,))
        return _manifest(row) if row else None

    def manifests(self, batch_id: str) -> list[ManifestRecord]:
        return [_manifest(r) for r in self._rows("SELECT * FROM manifests WHERE batch_id = ? ORDER BY created_at",
                                                 (batch_id,))]

    def bulk_encoded(self, batch_id: str, chips: Iterable[tuple[bytes, dict[int, int], int]], station: str) -> int:
        """Allocate and mark encoded many chips (uid, key versions, read counter) in one transaction.

        For benchmarks and tests that need many encoded units fast: it writes no per-unit events.
        """
        with self._write():
            now = self._touch_station(station)
            self._lock_row("batches", batch_id)
            batch = self.batch(batch_id)
            if not batch.is_open:
                raise StateError(f"batch {batch_id} is closed")
            claimed = batch.allocated + self._scalar("SELECT COUNT(*) FROM free_serials WHERE batch_id = ?", (batch_id,))
            serials = self._stream("SELECT serial FROM serials WHERE batch_id = ? AND seq > ? ORDER BY seq",
                                   (batch_id, claimed))
            encoded: dict[tuple[tuple[int, int], ...], str] = {}  # key versions repeat: encode once
            pairs = zip(serials, chips, strict=False)  # as many as both give
            count = 0
            # in chunks, each read before it is written: a million chips in bounded memory, and no
            # statement runs while the serials' cursor is mid-fetch
            while chunk := list(islice(pairs, _BULK_CHUNK)):
                rows = []
                for (serial,), (uid, versions, counter) in chunk:
                    items = tuple(sorted(versions.items()))
                    kv = encoded.get(items) or encoded.setdefault(
                        items, json.dumps({str(k): v for k, v in items}, separators=(",", ":")))
                    rows.append((batch_id, serial, check_uid(uid), station, kv, counter, now, now, now))
                self._many("INSERT INTO units (batch_id, serial, uid, state, station, key_versions, read_counter, "
                           "allocated_at, encoded_at, updated_at) VALUES (?, ?, ?, 'encoded', ?, ?, ?, ?, ?, ?)", rows)
                count += len(rows)
            self._exec("UPDATE batches SET allocated = allocated + ? WHERE id = ?", (count, batch_id))
        return count


def _manifest(row: dict[str, Any]) -> ManifestRecord:
    row = dict(row)
    row["receipt"] = json.loads(row["receipt"]) if row["receipt"] else None
    return ManifestRecord(**row)
