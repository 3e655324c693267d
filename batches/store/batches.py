"""Batches and their serials: minted with the batch, in order, unique across every product."""

from __future__ import annotations

import json
from typing import Any

from tagsmith import ConfigError, NotFoundError, StateError

from ..gs1 import validate_lot
from ..product import Product
from ..records import IN_PROGRESS, Batch, BatchProgress
from .api import ConstraintError
from .common import INCOMPLETE_SHOWN, MAX_QUANTITY, check_name
from .products import ProductQueries

_MINT_CHUNK = 100_000


class BatchQueries(ProductQueries):
    def create_batch(self, product_id: str, quantity: int, lot: str | None = None, line: str | None = None,
                     batch_id: str | None = None) -> Batch:
        """Create an open batch of the product's current version and mint its serials, atomically."""
        product = self.product(product_id)
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ConfigError(f"quantity {quantity} must be 1 to {MAX_QUANTITY:,}")
        if lot is not None:
            validate_lot(lot)
        elif product.lot_in_url:
            raise ConfigError(f"product {product_id} puts the lot in its URLs: give --lot")
        for what, name in (("batch id", batch_id), ("line", line)):
            if name is not None:
                check_name(what, name)
        now = self._now()
        with self._write():
            self._lock_writers()
            if batch_id is None:
                day = now[:10].replace("-", "")
                n = self._scalar("SELECT COUNT(*) FROM batches WHERE id LIKE ?", (f"{day}-%",))
                batch_id = f"{day}-{n + 1:03d}"
            if self._scalar("SELECT 1 FROM batches WHERE id = ?", (batch_id,)):
                raise StateError(f"batch {batch_id} already exists")
            self._exec("INSERT INTO batches (id, product_id, product_sha256, lot, line, quantity, state, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                       (batch_id, product_id, product.sha256, lot, line, quantity, now))
            self._mint(batch_id, quantity, product, now)
        return self.batch(batch_id)

    def mint_serials(self, batch_id: str) -> int:
        """Mint any serials the batch still lacks; returns how many (0 when re-run: idempotent)."""
        batch = self.batch(batch_id)
        product = self.product(batch.product_id, batch.product_sha256)
        with self._write():
            self._lock_writers()
            return self._mint(batch_id, batch.quantity, product, self._now())

    def _mint(self, batch_id: str, quantity: int, product: Product, now: str) -> int:
        fmt = product.serial
        have: int = self._scalar("SELECT COUNT(*) FROM serials WHERE batch_id = ?", (batch_id,))
        need = quantity - have
        if need <= 0:
            return 0
        if fmt.kind == "sequential":
            start = (self._scalar("SELECT last_counter FROM serial_series WHERE series = ?", (fmt.series,)) or 0) + 1
            self._exec("INSERT INTO serial_series VALUES (?, ?) ON CONFLICT(series) DO UPDATE SET last_counter = ?",
                       (fmt.series, start + need - 1, start + need - 1))
        for done in range(0, need, _MINT_CHUNK):  # chunks keep a million serials in bounded memory
            size, seq = min(_MINT_CHUNK, need - done), have + done + 1
            if fmt.kind == "sequential":
                self._insert_serials(batch_id, seq, fmt.sequential_range(start + done, size))
            else:
                self._insert_random(batch_id, seq, size, fmt)
        return need

    def _insert_serials(self, batch_id: str, seq: int, serials: list[str]) -> None:
        try:
            self._many("INSERT INTO serials (batch_id, seq, serial) VALUES (?, ?, ?)",
                       [(batch_id, seq + i, s) for i, s in enumerate(serials)])
        except ConstraintError as exc:
            raise StateError(f"serial collision minting batch {batch_id} from #{seq}: {exc}") from None

    def _insert_random(self, batch_id: str, seq: int, size: int, fmt: Any) -> None:
        for _ in range(5):  # a collision (at most 2**-50 per pair) draws the chunk again
            try:
                with self._savepoint():
                    self._insert_serials(batch_id, seq, fmt.random_serials(size))
            except StateError:
                continue
            return
        raise StateError(f"could not mint {size} unique random serials for batch {batch_id}")

    def _claim_seq(self, batch_id: str) -> int | None:
        """The next free sequence number of an open batch for one unit (the caller holds its row); None when none is."""
        seqs = self._claim_seqs(batch_id, 1)
        return seqs[0] if seqs else None

    def _claim_seqs(self, batch_id: str, count: int) -> list[int]:
        """Claim up to ``count`` free sequence numbers of an open batch (the caller holds its row): those a
        lease gave back first, then the counter's next. ``allocated`` counts the serials held, by a unit or
        an active lease: every number up to it plus those given back was claimed once."""
        row = self._one("SELECT quantity, allocated FROM batches WHERE id = ? AND state = 'open'", (batch_id,))
        if row is None:
            return []
        want = min(count, row["quantity"] - row["allocated"])
        returned = [int(r[0]) for r in self._exec("SELECT seq FROM free_serials WHERE batch_id = ? ORDER BY seq "
                                                  "LIMIT ?", (batch_id, max(want, 0))).fetchall()]
        self._many("DELETE FROM free_serials WHERE batch_id = ? AND seq = ?", [(batch_id, seq) for seq in returned])
        top = row["allocated"] + len(returned)  # with every given-back one taken, the counter's next is top + 1
        seqs = returned + list(range(top + 1, top + 1 + want - len(returned)))
        self._exec("UPDATE batches SET allocated = allocated + ? WHERE id = ?", (len(seqs), batch_id))
        return seqs

    def batch(self, batch_id: str) -> Batch:
        row = self._one("SELECT * FROM batches WHERE id = ?", (batch_id,))
        if row is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        return Batch(**row)

    def batches(self, product_id: str | None = None) -> list[Batch]:
        where, params = ("WHERE product_id = ?", (product_id,)) if product_id else ("", ())
        return [Batch(**row) for row in self._rows(f"SELECT * FROM batches {where} ORDER BY created_at, id", params)]

    def batch_product(self, batch_id: str) -> Product:
        """The exact product version the batch was created with."""
        batch = self.batch(batch_id)
        return self.product(batch.product_id, batch.product_sha256)

    def close_batch(self, batch_id: str, *, incomplete_reason: str | None = None, by: str | None = None) -> Batch:
        """Close a batch: no more allocations or encoding; verification, QA and labels still work.

        Units still being encoded are named and refused (StateError) unless ``incomplete_reason``
        says why closing anyway is right; that decision is recorded with ``by``.
        """
        with self._write():
            self._lock_row("batches", batch_id)
            batch = self.batch(batch_id)
            self._require_complete(batch_id, "batch close", incomplete_reason, by)
            if batch.is_open:
                self._exec("UPDATE batches SET state = 'closed', closed_at = ? WHERE id = ?", (self._now(), batch_id))
                for (lease_id,) in self._exec("SELECT id FROM serial_leases WHERE batch_id = ? AND state = 'active'",
                                              (batch_id,)).fetchall():  # closed over them with --allow-incomplete
                    self._end_lease_rows(int(lease_id), batch_id, "revoked", f"batch closed: {incomplete_reason}", by)
        return self.batch(batch_id)

    def _end_lease_rows(self, lease_id: int, batch_id: str, state: str, reason: str | None, by: str | None) -> None:
        """End an active lease inside the caller's transaction (it holds the batch's row): its serials without
        a unit here go back to the batch, claimed again before the counter (store/leases.py)."""
        unused = [int(r[0]) for r in self._exec(
            "SELECT ls.seq FROM leased_serials ls JOIN serials s ON s.batch_id = ls.batch_id AND s.seq = ls.seq "
            "WHERE ls.lease_id = ? AND NOT EXISTS (SELECT 1 FROM units u WHERE u.serial = s.serial)",
            (lease_id,)).fetchall()]
        self._many("INSERT INTO free_serials (batch_id, seq) VALUES (?, ?)", [(batch_id, seq) for seq in unused])
        self._exec("UPDATE batches SET allocated = allocated - ? WHERE id = ?", (len(unused), batch_id))
        self._exec('UPDATE serial_leases SET state = ?, closed_at = ?, reason = ?, "by" = ? WHERE id = ?',
                   (state, self._now(), reason, by, lease_id))

    def stranded_serials(self, batch_id: str) -> list[str]:
        """Serials of the batch's units still being encoded (allocated or encoding), in allocation order."""
        return [r[0] for r in self._exec(
            f"SELECT serial FROM units WHERE batch_id = ? AND state IN {IN_PROGRESS} ORDER BY id", (batch_id,)).fetchall()]

    def require_complete(self, batch_id: str, action: str, incomplete_reason: str | None = None,
                         by: str | None = None) -> list[str]:
        """Refuse ``action`` while units of the batch are still being encoded, naming them (StateError).

        With ``incomplete_reason`` the action goes ahead and the decision (action, serials, reason,
        ``by``) is recorded. Returns the serials let through ([] when none were mid-encoding).
        """
        self.batch(batch_id)
        with self._write():
            self._lock_row("batches", batch_id)
            return self._require_complete(batch_id, action, incomplete_reason, by)

    def _require_complete(self, batch_id: str, action: str, reason: str | None, by: str | None) -> list[str]:
        serials = self.stranded_serials(batch_id)
        leased = self._leased_unused(batch_id)  # a station may have encoded them offline: not synced yet
        if not serials and not leased:
            return []
        if reason is None or not reason.strip():
            found, fixes = [], []
            if serials:
                shown = ", ".join(serials[:INCOMPLETE_SHOWN]) + (
                    f" +{len(serials) - INCOMPLETE_SHOWN} more" if len(serials) > INCOMPLETE_SHOWN else "")
                found.append(f"{len(serials)} unit(s) still being encoded ({shown})")
                fixes.append("resume them at a station or void them (tagsmith unit void SERIAL)")
            if leased:
                stations = ", ".join(sorted({station for station, _serial in leased}))
                found.append(f"an active serial lease at station {stations} ({len(leased)} serial(s) not synced "
                             "or returned)")
                fixes.append("let the station end its run or sync (tagsmith station sync), or revoke the lease "
                             "(tagsmith station revoke-lease STATION --reason TEXT)")
            raise StateError(f"{action}: batch {batch_id} has {' and '.join(found)}: {'; '.join(fixes)}, "
                             "or go ahead with --allow-incomplete --reason TEXT")
        serials += [serial for _station, serial in leased]
        self._exec('INSERT INTO incomplete_overrides (batch_id, action, serials, reason, "by", at) '
                   "VALUES (?, ?, ?, ?, ?, ?)", (batch_id, action, json.dumps(serials), reason.strip(),
                                                 by or "unknown", self._now()))
        return serials

    def _leased_unused(self, batch_id: str) -> list[tuple[str, str]]:
        """(station, serial) of each serial an active lease holds without a unit in this database, in order."""
        return [(r[0], r[1]) for r in self._exec(
            "SELECT l.station, s.serial FROM serial_leases l JOIN leased_serials ls ON ls.lease_id = l.id "
            "JOIN serials s ON s.batch_id = ls.batch_id AND s.seq = ls.seq WHERE l.batch_id = ? AND l.state = 'active' "
            "AND NOT EXISTS (SELECT 1 FROM units u WHERE u.serial = s.serial) ORDER BY ls.seq", (batch_id,)).fetchall()]

    def incomplete_overrides(self, batch_id: str) -> list[dict[str, Any]]:
        """Each time an action went ahead with units mid-encoding: action, serials, reason, by, at."""
        return [{**r, "serials": json.loads(r["serials"])} for r in self._rows(
            'SELECT action, serials, reason, "by", at FROM incomplete_overrides WHERE batch_id = ? ORDER BY id',
            (batch_id,))]

    def batch_progress(self, batch_id: str) -> BatchProgress:
        batch = self.batch(batch_id)
        minted = self._scalar("SELECT COUNT(*) FROM serials WHERE batch_id = ?", (batch_id,))
        return BatchProgress(batch_id, batch.quantity, minted, batch.allocated, self.unit_counts(batch_id))

    def unit_counts(self, batch_id: str) -> dict[str, int]:
        """Units per state (an index-only count: cheap enough for a live view after every tag)."""
        return dict(self._exec("SELECT state, COUNT(*) FROM units WHERE batch_id = ? GROUP BY state",
                               (batch_id,)).fetchall())
