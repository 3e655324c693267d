"""The batch database: the only module that writes SQL (SQLite through sqlite-utils).

One SQLite file per workspace, in WAL mode with foreign keys on and a busy timeout, so a station
and a CLI in another process can share it. Every state change is one ``BEGIN IMMEDIATE``
transaction: two processes allocating at once are serialised by SQLite, never by luck. Unique
indexes, not code, keep serials and UIDs unique. The public surface is :class:`BatchStore`; its
methods take and return plain values and records.py dataclasses, so a shared PostgreSQL store
can implement the same methods later.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from tagsmith import ConfigError, NotFoundError, StateError

from .gs1 import validate_lot
from .product import Product, parse_product
from .qarecords import QaDecisionRecord, QaOverrideRecord, QaPlanRecord, QaResultRecord
from .records import IN_PROGRESS, AuthFailure, Batch, BatchProgress, ManifestRecord, ProductRecord, Unit, UnitEvent
from .walsync import WalSync

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_QUANTITY = 10_000_000
_MINT_CHUNK = 100_000
INCOMPLETE_SHOWN = 5  # serials named in a refusal before "+N more"
STATION_TOUCH_SECONDS = 60.0


_second_text: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """Now in UTC, ISO 8601 with milliseconds and a Z (the date and time formatted once a second:
    a station stamps about ten rows per tag)."""
    global _second_text
    now = time.time()
    second, text = _second_text
    if int(now) != second:
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{min(int((now - second) * 1000), 999):03d}Z"


@lru_cache(maxsize=64)
def _step_detail(step: str, found: bool) -> str:
    """A step event's JSON detail; a station writes the same seven about ten thousand times a shift."""
    return json.dumps({"step": step, "found": True} if found else {"step": step})


def _m1_initial(db: Database) -> None:
    """Products and versions, key policies, batches, serials, stations, units, events, prints, manifests."""
    t = db.table
    t("products").create({"id": str, "current_sha256": str, "name": str, "model": str, "gtin": str,
                          "created_at": str, "updated_at": str}, pk="id", not_null={"current_sha256"})
    t("key_policies").create({"id": int, "key_set": str, "system_id": str, "slots": str}, pk="id",
                             not_null={"key_set", "system_id", "slots"})
    t("key_policies").create_index(["key_set", "system_id", "slots"], unique=True)
    t("product_versions").create(
        {"sha256": str, "product_id": str, "key_policy_id": int, "toml": str, "added_at": str},
        pk="sha256", not_null={"product_id", "key_policy_id", "toml", "added_at"},
        foreign_keys=[("product_id", "products", "id"), ("key_policy_id", "key_policies", "id")])
    t("batches").create(
        {"id": str, "product_id": str, "product_sha256": str, "lot": str, "line": str, "quantity": int,
         "allocated": int, "state": str, "created_at": str, "closed_at": str}, pk="id",
        not_null={"product_id", "product_sha256", "quantity", "allocated", "state", "created_at"},
        defaults={"allocated": 0, "state": "open"},
        foreign_keys=[("product_id", "products", "id"), ("product_sha256", "product_versions", "sha256")])
    # WITHOUT ROWID keyed by (batch, seq): minting a million serials stays a few seconds
    db.execute("CREATE TABLE serials (batch_id TEXT NOT NULL REFERENCES batches(id), seq INTEGER NOT NULL, "
               "serial TEXT NOT NULL, PRIMARY KEY (batch_id, seq)) WITHOUT ROWID")
    t("serials").create_index(["serial"], unique=True)  # unique across all batches and products
    t("serial_series").create({"series": str, "last_counter": int}, pk="series", not_null={"last_counter"})
    t("stations").create({"name": str, "first_seen": str, "last_seen": str}, pk="name")
    t("units").create(
        {"id": int, "batch_id": str, "serial": str, "uid": bytes, "state": str, "station": str,
         "key_versions": str, "read_counter": int, "verified_counter": int, "qa_status": str,
         "allocated_at": str, "encoding_at": str, "encoded_at": str, "verified_at": str,
         "voided_at": str, "void_reason": str, "qa_at": str, "updated_at": str}, pk="id",
        not_null={"batch_id", "serial", "uid", "state", "allocated_at", "updated_at"},
        foreign_keys=[("batch_id", "batches", "id"), ("serial", "serials", "serial"),
                      ("station", "stations", "name")])
    t("units").create_index(["serial"], unique=True)
    t("units").create_index(["uid"], unique=True)
    t("units").create_index(["batch_id", "state"])  # progress counts
    t("units").create_index(["batch_id"])  # (batch_id, rowid): streams a batch in allocation order
    for name, extra, required in (("unit_events", {"event": str, "detail": str}, {"event"}),
                                  ("label_prints", {"layout": str, "format": str}, {"layout", "format"})):
        t(name).create({"id": int, "unit_id": int, **extra, "station": str, "at": str}, pk="id",
                       not_null={"unit_id", "at", *required},
                       foreign_keys=[("unit_id", "units", "id"), ("station", "stations", "name")])
        t(name).create_index(["unit_id"])
    t("manifests").create(
        {"id": str, "batch_id": str, "kind": str, "path": str, "format": str, "sha256": str, "units": int,
         "created_at": str, "uploaded_at": str, "upload_url": str, "receipt": str}, pk="id",
        not_null={"batch_id", "kind", "path", "format", "sha256", "units", "created_at"},
        foreign_keys=[("batch_id", "batches", "id")])
    t("manifests").create_index(["batch_id"])


def _m_qa(db: Database) -> None:
    """QA: sampling plans, per-unit scan results, decisions, release overrides, switching state."""
    t = db.table
    t("qa_plans").create(
        {"id": str, "batch_id": str, "product_id": str, "lot_size": int, "level": str, "aql": str,
         "inspection": str, "switching_state": str, "code_letter": str, "plan_letter": str,
         "table_sample_size": int, "sample_size": int, "accept": int, "reject": int, "via_arrow": str,
         "seed": str, "serials": str, "resubmission": int, "created_at": str, "created_by": str}, pk="id",
        not_null={"batch_id", "product_id", "lot_size", "level", "aql", "inspection", "code_letter", "sample_size",
                  "accept", "reject", "seed", "serials", "created_at", "created_by"},
        foreign_keys=[("batch_id", "batches", "id"), ("product_id", "products", "id")])
    t("qa_plans").create_index(["batch_id", "created_at"])
    t("qa_results").create(
        {"id": int, "plan_id": str, "batch_id": str, "unit_id": int, "serial": str, "uid": bytes, "passed": int,
         "counted": int, "reason": str, "checks": str, "chip_url": str, "label_url": str, "read_counter": int,
         "station": str, "inspector": str, "at": str}, pk="id",
        not_null={"plan_id", "batch_id", "passed", "counted", "reason", "checks", "inspector", "at"},
        foreign_keys=[("plan_id", "qa_plans", "id"), ("batch_id", "batches", "id"), ("unit_id", "units", "id")])
    t("qa_results").create_index(["plan_id"])
    t("qa_results").create_index(["unit_id"])
    t("qa_decisions").create(
        {"plan_id": str, "batch_id": str, "decision": str, "defects": int, "inspected": int, "decided_at": str,
         "decided_by": str}, pk="plan_id", not_null={"batch_id", "decision", "defects", "inspected", "decided_at"},
        foreign_keys=[("plan_id", "qa_plans", "id"), ("batch_id", "batches", "id")])
    t("qa_overrides").create(
        {"id": int, "batch_id": str, "reason": str, "manifest_id": str, "by": str, "at": str}, pk="id",
        not_null={"batch_id", "reason", "by", "at"}, foreign_keys=[("batch_id", "batches", "id")])
    t("qa_switching").create({"product_id": str, "state": str, "lots": int, "updated_at": str}, pk="product_id",
                             not_null={"state", "lots", "updated_at"}, foreign_keys=[("product_id", "products", "id")])


def _m_reusable_uid(db: Database) -> None:
    """A chip reset for rework may be encoded again: a UID is unique among units that are not voided."""
    db.execute("DROP INDEX IF EXISTS idx_units_uid")
    db.execute("CREATE UNIQUE INDEX idx_units_live_uid ON units (uid) WHERE state != 'voided'")
    db.execute("CREATE INDEX idx_units_uid_all ON units (uid)")


def _m_auth_failures(db: Database) -> None:
    """Chips that failed an authentication here: failed attempts count on the chip, so none is retried."""
    db.table("auth_failures").create({"uid": bytes, "key_no": int, "status": str, "station": str, "at": str},
                                     pk="uid", not_null={"key_no", "status", "at"})


def _m_auth_failure_clearing(db: Database) -> None:
    """An engineer may clear a chip's recorded refusal (with a reason); the record stays, marked cleared."""
    db.execute("ALTER TABLE auth_failures ADD COLUMN cleared_at TEXT")
    db.execute("ALTER TABLE auth_failures ADD COLUMN clear_reason TEXT")


def _m_label_proofs(db: Database) -> None:
    """A proof (a PDF to look at) is recorded but does not make a unit "printed": a later print run includes it."""
    db.execute("ALTER TABLE label_prints ADD COLUMN proof INTEGER NOT NULL DEFAULT 0")


def _m_manifest_superseded(db: Database) -> None:
    """A manifest whose file a later export or merge replaced names its successor: records stay true to the disk."""
    db.execute("ALTER TABLE manifests ADD COLUMN superseded_by TEXT")
    db.execute("CREATE INDEX idx_manifests_path ON manifests (path)")


def _m_floors_voids_incomplete(db: Database) -> None:
    """A unit's replay floor counts QA's taps too; a void names who; going ahead with units mid-encoding is recorded.

    ``verified_counter`` becomes the highest read counter seen in a verified SUN (station,
    ``tag verify``, QA), raised from the counters QA already recorded (such a unit is verified).
    """
    qa_max = "(SELECT MAX(q.read_counter) FROM qa_results q WHERE q.unit_id = units.id)"
    db.execute(f"UPDATE units SET verified_counter = {qa_max}, state = 'verified', verified_at = COALESCE(verified_at, "
               "(SELECT MAX(q.at) FROM qa_results q WHERE q.unit_id = units.id)) WHERE state IN ('encoded', 'verified') "
               f"AND {qa_max} > MAX(COALESCE(read_counter, -1), COALESCE(verified_counter, -1))")
    db.execute("ALTER TABLE units ADD COLUMN voided_by TEXT")
    db.table("incomplete_overrides").create(
        {"id": int, "batch_id": str, "action": str, "serials": str, "reason": str, "by": str, "at": str}, pk="id",
        not_null={"batch_id", "action", "serials", "reason", "by", "at"}, foreign_keys=[("batch_id", "batches", "id")])


# Applied in order; a release only appends. Never edit a migration that has shipped.
MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = [
    ("initial schema", _m1_initial),
    ("qa plans, results, decisions, overrides, switching", _m_qa),
    ("a voided unit's chip can be encoded again", _m_reusable_uid),
    ("chips that failed an authentication are never tried again", _m_auth_failures),
    ("a chip's recorded refusal can be cleared by an engineer", _m_auth_failure_clearing),
    ("label proofs are recorded apart from prints", _m_label_proofs),
    ("a manifest replaced on disk names the one that replaced it", _m_manifest_superseded),
    ("replay floors include QA taps; voids name who; incomplete batches let through are recorded",
     _m_floors_voids_incomplete),
]


class ReplayError(StateError):
    """A SUN whose read counter is not above the unit's floor: a tap seen before, or older than one seen."""


def check_station_name(station: str) -> str:
    """A station name as the database records it: 1-64 of A-Z a-z 0-9 . _ : - (ConfigError otherwise)."""
    if not _NAME.fullmatch(station):
        raise ConfigError(f"station name {station!r} must be 1-64 of A-Z a-z 0-9 . _ : -")
    return station


def _private_files(database: Path) -> None:
    """Make the database and its WAL/SHM files 0600 whatever the umask or the folder's mode."""
    if str(database) == ":memory:":
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)


class BatchStore:
    """Products, batches, serials, units and manifests in one SQLite file."""

    def __init__(self, path: str | Path, *, clock: Callable[[], str] = utc_now, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private_files(self.path)  # before SQLite creates it: its -wal and -shm then get the same mode
        # isolation_level=None: no implicit transactions; this class opens each one explicitly
        self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self.db = Database(self.conn, execute_plugins=False)
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.db.enable_wal()
        _private_files(self.path)  # -wal/-shm left by an older version or a wider umask
        self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
        self._walsync = WalSync(self.path)  # the extra fsync that makes one commit survive a power cut
        self._now = clock
        self._stations_touched: dict[str, float] = {}  # station -> monotonic time of its last committed touch
        self._stations_pending: set[str] = set()
        self._migrate()

    def close(self) -> None:
        try:
            self._walsync.close()
        finally:
            self.conn.close()

    def wait_synced(self) -> None:
        """Return once every durable commit is on disk (the barrier before a chip's first key change)."""
        self._syncing(self._walsync.wait)

    def _syncing(self, action: Callable[[], None]) -> None:
        """Run a WalSync call; a failed fsync is a one-line StateError naming the database."""
        try:
            action()
        except OSError as exc:
            raise StateError(f"could not sync the database {self.path} to disk: {exc.strerror or exc}") from None

    def __enter__(self) -> BatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transactions and schema
    @contextmanager
    def _write(self, durable: bool = False, overlap_sync: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (BEGIN IMMEDIATE).

        WAL with synchronous=NORMAL survives any crash of the process; ``durable`` also fsyncs the
        WAL after the commit (what synchronous=FULL does), so it survives a power cut. With
        ``overlap_sync`` that fsync runs in a helper process and :meth:`wait_synced` is the barrier.
        """
        if durable:
            self.wait_synced()  # an earlier fsync's failure stops this commit; a later fsync must not hide it
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:  # a failed COMMIT (disk full, I/O) rolls back too
            self._stations_pending.clear()
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        if durable:
            self._syncing(self._walsync.start if overlap_sync else self._walsync.sync)
        if self._stations_pending:
            touched = time.monotonic()
            self._stations_touched.update(dict.fromkeys(self._stations_pending, touched))
            self._stations_pending.clear()

    @contextmanager
    def snapshot(self) -> Iterator[BatchStore]:
        """A read transaction: every query inside sees the same committed state (WAL snapshot)."""
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write():
            self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                              "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
            current = self.schema_version
            if current > len(MIGRATIONS):
                raise StateError(f"database {self.path} has schema version {current}, newer than this "
                                 f"tagsmith knows ({len(MIGRATIONS)}): upgrade tagsmith")
            for number, (description, migrate) in enumerate(MIGRATIONS[current:], start=current + 1):
                migrate(self.db)
                self.conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (number, description, self._now()))

    @property
    def schema_version(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        """One row as a dict (plain sqlite3: the station calls this many times per tag).

        Also for ``... RETURNING *``: the row is read and the statement finished here.
        """
        cursor = self.conn.execute(sql, tuple(params))
        row = cursor.fetchone()
        found = None if row is None else dict(zip((d[0] for d in cursor.description), row))
        cursor.close()
        return found

    # ---------------------------------------------------------------- products
    def add_product(self, product: Product) -> tuple[ProductRecord, bool]:
        """Record a product file version and make it current; returns (record, newly added).

        A product whose URL template the station could not encode is refused here, not at the first tag.
        """
        product.check_fits_chip()
        now = self._now()
        slots = json.dumps({str(s.slot): {"role": s.role, "version": s.version} for s in product.keys.slots},
                           sort_keys=True)
        with self._write() as c:
            known = c.execute("SELECT product_id FROM product_versions WHERE sha256 = ?", (product.sha256,)).fetchone()
            c.execute("INSERT INTO products (id, current_sha256, name, model, gtin, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET current_sha256 = excluded.current_sha256, "
                      "name = excluded.name, model = excluded.model, gtin = excluded.gtin, updated_at = excluded.updated_at",
                      (product.id, product.sha256, product.name, product.model, product.gtin, now, now))
            if not known:
                c.execute("INSERT OR IGNORE INTO key_policies (key_set, system_id, slots) VALUES (?, ?, ?)",
                          (product.keys.key_set, product.keys.system_id.hex(), slots))
                policy = c.execute("SELECT id FROM key_policies WHERE key_set = ? AND system_id = ? AND slots = ?",
                                   (product.keys.key_set, product.keys.system_id.hex(), slots)).fetchone()[0]
                c.execute("INSERT INTO product_versions VALUES (?, ?, ?, ?, ?)",
                          (product.sha256, product.id, policy, product.text, now))
        return self.product_record(product.id), not known

    def product_record(self, product_id: str) -> ProductRecord:
        row = self._one("SELECT p.*, (SELECT COUNT(*) FROM product_versions v WHERE v.product_id = p.id) AS versions "
                        "FROM products p WHERE p.id = ?", (product_id,))
        if row is None:
            raise NotFoundError(f"no product {product_id!r} (add it with: tagsmith product add FILE)")
        return ProductRecord(**row)

    def products(self) -> list[ProductRecord]:
        rows = self.db.query("SELECT p.*, (SELECT COUNT(*) FROM product_versions v WHERE v.product_id = p.id) "
                             "AS versions FROM products p ORDER BY p.id")
        return [ProductRecord(**row) for row in rows]

    def product(self, product_id: str, sha256: str | None = None) -> Product:
        """A product as recorded: its current version, or the exact version ``sha256``."""
        sha256 = sha256 or self.product_record(product_id).current_sha256
        row = self._one("SELECT toml FROM product_versions WHERE sha256 = ? AND product_id = ?", (sha256, product_id))
        if row is None:
            raise NotFoundError(f"no version {sha256[:12]} of product {product_id!r}")
        return parse_product(row["toml"].encode("utf-8"), f"product {product_id}")

    def product_versions_with_gtin(self, gtin: str) -> list[Product]:
        """Every version of the products with this GTIN that a batch was made with, newest first.

        What a resolver tries a tap's PICC data with before it knows the chip.
        """
        rows = self.conn.execute(
            "SELECT DISTINCT b.product_id, b.product_sha256, v.added_at FROM batches b JOIN products p ON "
            "p.id = b.product_id JOIN product_versions v ON v.sha256 = b.product_sha256 WHERE p.gtin = ? "
            "ORDER BY v.added_at DESC", (gtin,)).fetchall()
        return [self.product(product_id, sha256) for product_id, sha256, _ in rows]

    # ---------------------------------------------------------------- batches and serials
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
        product.check_fits_chip(lot)
        for what, name in (("batch id", batch_id), ("line", line)):
            if name is not None and not _NAME.fullmatch(name):
                raise ConfigError(f"{what} {name!r} must be 1-64 of A-Z a-z 0-9 . _ : -")
        now = self._now()
        with self._write() as c:
            if batch_id is None:
                day = now[:10].replace("-", "")
                n = c.execute("SELECT COUNT(*) FROM batches WHERE id LIKE ?", (f"{day}-%",)).fetchone()[0]
                batch_id = f"{day}-{n + 1:03d}"
            if c.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone():
                raise StateError(f"batch {batch_id} already exists")
            c.execute("INSERT INTO batches (id, product_id, product_sha256, lot, line, quantity, state, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, 'open', ?)", (batch_id, product_id, product.sha256, lot, line, quantity, now))
            self._mint(batch_id, quantity, product, now)
        return self.batch(batch_id)

    def mint_serials(self, batch_id: str) -> int:
        """Mint any serials the batch still lacks; returns how many (0 when re-run: idempotent)."""
        batch = self.batch(batch_id)
        product = self.product(batch.product_id, batch.product_sha256)
        with self._write():
            return self._mint(batch_id, batch.quantity, product, self._now())

    def _mint(self, batch_id: str, quantity: int, product: Product, now: str) -> int:
        c, fmt = self.conn, product.serial
        have = c.execute("SELECT COUNT(*) FROM serials WHERE batch_id = ?", (batch_id,)).fetchone()[0]
        need = quantity - have
        if need <= 0:
            return 0
        if fmt.kind == "sequential":
            row = c.execute("SELECT last_counter FROM serial_series WHERE series = ?", (fmt.series,)).fetchone()
            start = (row[0] if row else 0) + 1
            c.execute("INSERT INTO serial_series VALUES (?, ?) ON CONFLICT(series) DO UPDATE SET last_counter = ?",
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
            self.conn.executemany("INSERT INTO serials (batch_id, seq, serial) VALUES (?, ?, ?)",
                                  ((batch_id, seq + i, s) for i, s in enumerate(serials)))
        except sqlite3.IntegrityError as exc:
            raise StateError(f"serial collision minting batch {batch_id} from #{seq}: {exc}") from None

    def _insert_random(self, batch_id: str, seq: int, size: int, fmt: Any) -> None:
        for _ in range(5):  # a collision (at most 2**-50 per pair) draws the chunk again
            self.conn.execute("SAVEPOINT mint")
            try:
                self._insert_serials(batch_id, seq, fmt.random_serials(size))
            except StateError:
                self.conn.execute("ROLLBACK TO mint")
                continue
            finally:
                self.conn.execute("RELEASE mint")
            return
        raise StateError(f"could not mint {size} unique random serials for batch {batch_id}")

    def batch(self, batch_id: str) -> Batch:
        row = self._one("SELECT * FROM batches WHERE id = ?", (batch_id,))
        if row is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        return Batch(**row)

    def batches(self, product_id: str | None = None) -> list[Batch]:
        where, params = ("WHERE product_id = ?", (product_id,)) if product_id else ("", ())
        return [Batch(**row) for row in self.db.query(f"SELECT * FROM batches {where} ORDER BY created_at, id", params)]

    def batch_product(self, batch_id: str) -> Product:
        """The exact product version the batch was created with."""
        batch = self.batch(batch_id)
        return self.product(batch.product_id, batch.product_sha256)

    def close_batch(self, batch_id: str, *, incomplete_reason: str | None = None, by: str | None = None) -> Batch:
        """Close a batch: no more allocations or encoding; verification, QA and labels still work.

        Units still being encoded are named and refused (StateError) unless ``incomplete_reason``
        says why closing anyway is right; that decision is recorded with ``by``.
        """
        with self._write() as c:
            batch = self.batch(batch_id)
            self._require_complete(batch_id, "batch close", incomplete_reason, by)
            if batch.is_open:
                c.execute("UPDATE batches SET state = 'closed', closed_at = ? WHERE id = ?", (self._now(), batch_id))
        return self.batch(batch_id)

    def stranded_serials(self, batch_id: str) -> list[str]:
        """Serials of the batch's units still being encoded (allocated or encoding), in allocation order."""
        return [r[0] for r in self.conn.execute(
            f"SELECT serial FROM units WHERE batch_id = ? AND state IN {IN_PROGRESS} ORDER BY id", (batch_id,))]

    def require_complete(self, batch_id: str, action: str, incomplete_reason: str | None = None,
                         by: str | None = None) -> list[str]:
        """Refuse ``action`` while units of the batch are still being encoded, naming them (StateError).

        With ``incomplete_reason`` the action goes ahead and the decision (action, serials, reason,
        ``by``) is recorded. Returns the serials let through ([] when none were mid-encoding).
        """
        self.batch(batch_id)
        with self._write():
            return self._require_complete(batch_id, action, incomplete_reason, by)

    def _require_complete(self, batch_id: str, action: str, reason: str | None, by: str | None) -> list[str]:
        serials = self.stranded_serials(batch_id)
        if not serials:
            return []
        if reason is None or not reason.strip():
            shown = ", ".join(serials[:INCOMPLETE_SHOWN]) + (
                f" +{len(serials) - INCOMPLETE_SHOWN} more" if len(serials) > INCOMPLETE_SHOWN else "")
            raise StateError(f"{action}: batch {batch_id} has {len(serials)} unit(s) still being encoded ({shown}): "
                             "resume them at a station or void them (tagsmith unit void SERIAL), "
                             "or go ahead with --allow-incomplete --reason TEXT")
        self.conn.execute("INSERT INTO incomplete_overrides (batch_id, action, serials, reason, by, at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (batch_id, action, json.dumps(serials), reason.strip(),
                                                        by or "unknown", self._now()))
        return serials

    def incomplete_overrides(self, batch_id: str) -> list[dict[str, Any]]:
        """Each time an action went ahead with units mid-encoding: action, serials, reason, by, at."""
        return [{**r, "serials": json.loads(r["serials"])} for r in self.db.query(
            "SELECT action, serials, reason, by, at FROM incomplete_overrides WHERE batch_id = ? ORDER BY id",
            (batch_id,))]

    def batch_progress(self, batch_id: str) -> BatchProgress:
        batch = self.batch(batch_id)
        minted = self.conn.execute("SELECT COUNT(*) FROM serials WHERE batch_id = ?", (batch_id,)).fetchone()[0]
        return BatchProgress(batch_id, batch.quantity, minted, batch.allocated, self.unit_counts(batch_id))

    def unit_counts(self, batch_id: str) -> dict[str, int]:
        """Units per state (an index-only count: cheap enough for a live view after every tag)."""
        return dict(self.conn.execute("SELECT state, COUNT(*) FROM units WHERE batch_id = ? GROUP BY state",
                                      (batch_id,)).fetchall())

    # ---------------------------------------------------------------- units (the station's calls)
    def allocate_unit(self, batch_id: str, uid: bytes, station: str, *, after_reset: bool = False,
                      start_encoding: bool = False, overlap_sync: bool = False) -> Unit:
        """The unit for this chip: the batch's next serial in order, or the unit it already has.

        One transaction under the write lock, synced to disk before the chip's keys change. A UID of
        another batch, a voided UID, a closed batch or a full batch is a StateError. ``after_reset``
        allocates a new serial for a chip whose only units are voided (it was reset for rework).
        ``start_encoding`` journals a new unit as encoding in the same transaction (the station
        writes the chip next), saving a second commit per tag. ``overlap_sync`` returns before the
        commit is on disk: the caller must call :meth:`wait_synced` before it changes a key.
        """
        uid = _check_uid(uid)
        with self._write(durable=True, overlap_sync=overlap_sync) as c:
            unit = self.unit_by_uid(uid)
            if unit is not None and not (after_reset and unit.state == "voided"):
                if unit.batch_id != batch_id:
                    raise StateError(f"tag {uid.hex().upper()} already belongs to batch {unit.batch_id} (serial {unit.serial})")
                if unit.state == "voided":
                    raise StateError(f"tag {uid.hex().upper()} was voided ({unit.void_reason}); set it aside")
                return unit
            # the next sequence number, claimed only from an open batch with serials left
            claimed = c.execute("UPDATE batches SET allocated = allocated + 1 WHERE id = ? AND state = 'open' "
                                "AND allocated < quantity RETURNING allocated", (batch_id,)).fetchone()
            if claimed is None:
                batch = self.batch(batch_id)  # NotFoundError for no such batch
                if not batch.is_open:
                    raise StateError(f"batch {batch_id} is closed")
                raise StateError(f"batch {batch_id} is full: all {batch.quantity} serials are allocated")
            seq = claimed[0]
            found = c.execute("SELECT serial FROM serials WHERE batch_id = ? AND seq = ?", (batch_id, seq)).fetchone()
            if found is None:
                raise StateError(f"batch {batch_id} has no serial #{seq} minted (run mint_serials)")
            now = self._touch_station(station)
            state, encoding_at = ("encoding", now) if start_encoding else ("allocated", None)
            unit = Unit.from_row(self._one(
                "INSERT INTO units (batch_id, serial, uid, state, station, allocated_at, encoding_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *", (batch_id, found[0], uid, state, station, now,
                                                                encoding_at, now)))
            events = [("allocated", {"serial": found[0], "uid": uid.hex().upper()})]
            if start_encoding:
                events.append(("encoding_started", None))
            self._events(unit.id, events, station, now)
            return unit

    def unit(self, unit_id: int) -> Unit:
        row = self._one("SELECT * FROM units WHERE id = ?", (unit_id,))
        if row is None:
            raise NotFoundError(f"no unit #{unit_id}")
        return Unit.from_row(row)

    def unit_by_uid(self, uid: bytes) -> Unit | None:
        """The chip's live unit, else its most recent voided one (a chip reset for rework)."""
        row = self._one("SELECT * FROM units WHERE uid = ? ORDER BY state = 'voided', id DESC LIMIT 1",
                        (_check_uid(uid),))
        return Unit.from_row(row) if row else None

    def unit_by_serial(self, serial: str) -> Unit | None:
        row = self._one("SELECT * FROM units WHERE serial = ?", (serial,))
        return Unit.from_row(row) if row else None

    def find_unit(self, ref: str) -> Unit:
        """A unit by its serial, else by its chip's UID in hex (NotFoundError naming what was tried)."""
        unit = self.unit_by_serial(ref)
        if unit is None and re.fullmatch(r"[0-9A-Fa-f]{14}", ref):
            unit = self.unit_by_uid(bytes.fromhex(ref))
        if unit is None:
            raise NotFoundError(f"no unit with serial or UID {ref!r}")
        return unit

    def record_auth_failure(self, uid: bytes, key_no: int, status: str, station: str | None) -> AuthFailure:
        """Remember that this chip refused an authentication, so no station ever tries it again.

        Real chips count failed authentications (key 0 blocks for good at the limit); the first
        record for a UID is kept while it stands, and a refusal after a clearing is recorded
        afresh. ``status`` names the chip's answer, never a key.
        """
        uid = _check_uid(uid)
        with self._write():
            self.conn.execute(
                "INSERT INTO auth_failures (uid, key_no, status, station, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(uid) DO UPDATE SET key_no = excluded.key_no, status = excluded.status, "
                "station = excluded.station, at = excluded.at, cleared_at = NULL, clear_reason = NULL "
                "WHERE auth_failures.cleared_at IS NOT NULL", (uid, int(key_no), status, station, self._now()))
        found = self.auth_failure(uid)
        assert found is not None
        return found

    def auth_failure(self, uid: bytes) -> AuthFailure | None:
        """The standing (not cleared) record of this chip refusing an authentication here, if any."""
        row = self._one("SELECT uid, key_no, status, station, at FROM auth_failures WHERE uid = ? AND cleared_at IS NULL",
                        (_check_uid(uid),))
        return AuthFailure(**row) if row else None

    def auth_failures(self, include_cleared: bool = False) -> list[AuthFailure]:
        """Every chip that refused an authentication here, newest first, with the serial its UID has (if any)."""
        where = "" if include_cleared else "WHERE f.cleared_at IS NULL"
        rows = self.conn.execute(
            "SELECT f.uid, f.key_no, f.status, f.station, f.at, f.cleared_at, f.clear_reason, "
            "(SELECT u.serial FROM units u WHERE u.uid = f.uid ORDER BY u.state = 'voided', u.id DESC LIMIT 1) "
            f"FROM auth_failures f {where} ORDER BY f.at DESC, f.uid").fetchall()
        return [AuthFailure(bytes(r[0]), r[1], r[2], r[3], r[4], cleared_at=r[5], clear_reason=r[6], serial=r[7])
                for r in rows]

    def clear_auth_failure(self, uid: bytes, reason: str) -> AuthFailure:
        """Let stations authenticate this chip once more; the record is kept, marked cleared with ``reason``.

        For an engineer who knows why the chip refused (a tag of another line, a key changed by
        another workspace) and that trying again is safe: each refusal counts on the chip.
        """
        uid = _check_uid(uid)
        if not reason or not reason.strip():
            raise ConfigError("clearing a refusal needs a reason, for the record")
        with self._write():
            cursor = self.conn.execute("UPDATE auth_failures SET cleared_at = ?, clear_reason = ? "
                                       "WHERE uid = ? AND cleared_at IS NULL", (self._now(), reason.strip(), uid))
            if cursor.rowcount != 1:
                raise NotFoundError(f"no standing refusal recorded for tag {uid.hex().upper()}")
        return next(f for f in self.auth_failures(include_cleared=True) if f.uid == uid)

    def start_encoding(self, unit_id: int, station: str) -> Unit:
        """Journal that the station starts writing the chip (allocated -> encoding)."""
        return self._change(unit_id, station, ("allocated", "encoding"), "encoding", "encoding_started", None,
                            {"encoding_at": None}, encoding=True)

    def step_journal(self, unit_id: int, station: str) -> StepJournal:
        """A journal of one unit's personalisation steps, committed with the placement's outcome."""
        return StepJournal(self, unit_id, station)

    def _insert_steps(self, unit_id: int, steps: list[tuple[str, bool, str]], station: str, guarded: bool) -> None:
        """Insert journaled steps inside the caller's transaction.

        ``guarded``: the INSERT itself requires the unit to be encoding in an open batch (without
        re-reading it). Unguarded only inside a state change whose own guarded UPDATE, refused,
        rolls the steps back with it.
        """
        if station not in self._stations_touched:  # a station first seen here needs its row (foreign key)
            self._touch_station(station)
        rows = [(_step_detail(step, found), station, at, unit_id) for step, found, at in steps]
        if not guarded:
            self.conn.executemany("INSERT INTO unit_events (detail, station, at, unit_id, event) "
                                  "VALUES (?, ?, ?, ?, 'step')", rows)
            return
        cursor = self.conn.executemany(
            "INSERT INTO unit_events (detail, station, at, unit_id, event) "
            "SELECT ?, ?, ?, u.id, 'step' FROM units u JOIN batches b ON b.id = u.batch_id "
            "WHERE u.id = ? AND u.state = 'encoding' AND b.state = 'open'", rows)  # the same rows: unit_id last
        if cursor.rowcount != len(steps):
            raise self._refusal(unit_id, ("encoding",), f"step {steps[0][0]}")

    def mark_encoded(self, unit_id: int, key_versions: dict[int, int], read_counter: int, station: str,
                     journal: StepJournal | None = None) -> Unit:
        """The chip is personalised: record its key versions and SDM read counter.

        The ``journal``'s pending steps are committed in the same transaction, before the change.
        The commit is synced to disk by the helper process, overlapping the next tag's identification:
        the record survives a power cut by the time the next allocation commits, and that
        allocation's fsync (which the first ChangeKey waits for) has only its own pages to write.
        """
        versions = {str(int(k)): int(v) for k, v in sorted(key_versions.items())}  # compact JSON below
        detail = {"key_versions": versions, "read_counter": read_counter}
        return self._change(unit_id, station, ("allocated", "encoding"), "encoded", "encoded", detail,
                            {"key_versions": json.dumps(versions, separators=(",", ":")), "read_counter": int(read_counter),
                             "encoded_at": None}, encoding=True, journal=journal, sync=True)

    def mark_verified(self, unit_id: int, read_counter: int, station: str) -> Unit:
        """Read back as a phone would and the SUN checked out; keeps the last verified counter."""
        return self._change(unit_id, station, ("encoded", "verified"), "verified", "verified",
                            {"read_counter": read_counter}, {"verified_counter": int(read_counter), "verified_at": None})

    def record_qa(self, unit_id: int, passed: bool, detail: str | None = None, station: str | None = None) -> Unit:
        """Record a QA inspection result (pass or fail) of an encoded unit."""
        status = "pass" if passed else "fail"
        return self._change(unit_id, station, ("encoded", "verified"), None, "qa", {"result": status, "detail": detail},
                            {"qa_status": status, "qa_at": None})

    def void_unit(self, unit_id: int, reason: str, station: str | None = None, *, by: str | None = None,
                  states: tuple[str, ...] = ("allocated", "encoding", "encoded", "verified")) -> Unit:
        """Take a unit out of the batch for good; its serial and UID stay burnt.

        ``states``: the states the caller may void from (an engineer voiding a lost chip narrows it).
        """
        if not reason or not reason.strip():
            raise ConfigError("a void needs a reason")
        detail = {"reason": reason, **({"by": by} if by else {})}
        return self._change(unit_id, station, states, "voided", "voided", detail,
                            {"voided_at": None, "void_reason": reason, **({"voided_by": by} if by else {})})

    def record_counter(self, unit_id: int, counter: int, *, source: str, station: str | None = None,
                       refuse_replay: bool = False) -> Unit:
        """Raise the unit's replay floor to a read counter seen in a verified SUN, and journal the tap (the unit is verified).

        Every counter the factory sees (station read-back, ``tag verify``, QA) goes through here, so
        the manifest's floor is the highest one. A counter at or below the floor changes nothing;
        with ``refuse_replay`` (a tap checked as a resolver would) it is a ReplayError. The
        comparison is the UPDATE's own condition: two processes cannot both accept one counter.
        """
        with self._write():
            now = self._touch_station(station)
            row = self._one("UPDATE units SET verified_counter = ?, state = 'verified', verified_at = ?, updated_at = ? "
                            "WHERE id = ? AND state IN ('encoded', 'verified') AND ? > MAX(COALESCE(read_counter, -1), "
                            "COALESCE(verified_counter, -1)) RETURNING *", (int(counter), now, now, unit_id, int(counter)))
            if row is not None:
                self._event(unit_id, "tap", {"read_counter": int(counter), "source": source}, station, now)
                return Unit.from_row(row)
        unit = self.unit(unit_id)
        if unit.state not in ("encoded", "verified"):
            raise StateError(f"unit {unit.serial} is {unit.state}; cannot record a read counter")
        if refuse_replay:
            raise ReplayError(f"replay: read counter {counter} of unit {unit.serial} is not above its floor "
                              f"{unit.last_counter} (a counter already seen)")
        return unit

    def record_label_print(self, unit_id: int, layout: str, fmt: str, station: str | None = None, *,
                           proof: bool = False) -> Unit:
        """Record that a label of this unit was printed, or only proofed (layout name, format such as pdf or zpl)."""
        with self._write() as c:
            unit = self.unit(unit_id)
            now = self._touch_station(station)
            c.execute("INSERT INTO label_prints (unit_id, layout, format, station, at, proof) VALUES (?, ?, ?, ?, ?, ?)",
                      (unit_id, layout, fmt, station, now, int(proof)))
            self._event(unit_id, "label_proofed" if proof else "label_printed", {"layout": layout, "format": fmt},
                        station, now)
            return unit

    def label_prints(self, unit_id: int) -> list[dict[str, Any]]:
        """Every print and proof of this unit's label, oldest first (``proof`` True for a proof)."""
        return [{**row, "proof": bool(row["proof"])} for row in self.db.query(
            "SELECT layout, format, station, at, proof FROM label_prints WHERE unit_id = ? ORDER BY id", (unit_id,))]

    def label_printed(self, unit_id: int) -> bool:
        """Whether a label of this unit was printed (proofs do not count)."""
        return self.conn.execute("SELECT 1 FROM label_prints WHERE unit_id = ? AND NOT proof LIMIT 1",
                                 (unit_id,)).fetchone() is not None

    def unit_events(self, unit_id: int) -> list[UnitEvent]:
        rows = self.db.query("SELECT * FROM unit_events WHERE unit_id = ? ORDER BY id", (unit_id,))
        return [UnitEvent(r["unit_id"], r["event"], json.loads(r["detail"]) if r["detail"] else None,
                          r["station"], r["at"]) for r in rows]

    def units(self, batch_id: str, states: Iterable[str] | None = None) -> Iterator[Unit]:
        """Stream the batch's units in allocation order (a cursor, not a list)."""
        wanted = tuple(states or ())
        where = f" AND state IN ({', '.join('?' * len(wanted))})" if wanted else ""
        for row in self.db.query(f"SELECT * FROM units WHERE batch_id = ?{where} ORDER BY id", (batch_id, *wanted)):
            yield Unit.from_row(row)

    def _change(self, unit_id: int, station: str | None, allowed: tuple[str, ...], new_state: str | None,
                event: str, detail: dict[str, Any] | None, columns: dict[str, Any], encoding: bool = False,
                journal: StepJournal | None = None, sync: bool = False) -> Unit:
        """One unit state change, its event and its columns in one transaction (None = now).

        The allowed states and the open batch are conditions of the UPDATE itself, which returns
        the changed row; only a refused change reads more, to say why. A ``journal`` of the same
        unit commits its pending steps first, in the same transaction. ``sync`` starts the WAL
        fsync in the helper process after the commit; the next durable commit waits for it.
        """
        journaled = 0
        with self._write(durable=sync, overlap_sync=True):
            if journal is not None:
                journaled = journal._insert_within(unit_id, guarded=False)  # the UPDATE below guards them
            now = self._touch_station(station)
            values = {k: (now if v is None else v) for k, v in columns.items()}
            values.update(updated_at=now, **({"state": new_state} if new_state else {}))
            if station:
                values["station"] = station
            assignments = ", ".join(f"{k} = ?" for k in values)
            open_batch = " AND batch_id IN (SELECT id FROM batches WHERE state = 'open')" if encoding else ""
            row = self._one(f"UPDATE units SET {assignments} WHERE id = ? AND state IN "
                            f"({', '.join('?' * len(allowed))}){open_batch} RETURNING *",
                            (*values.values(), unit_id, *allowed))
            if row is None:
                raise self._refusal(unit_id, allowed, event)
            unit = Unit.from_row(row)
            self._event(unit_id, event, detail, station, now)
        if journal is not None:
            journal._committed(journaled)
        return unit

    def _refusal(self, unit_id: int, allowed: tuple[str, ...], what: str) -> StateError:
        """Why a guarded change matched no row: the unit's state, or its closed batch (or no such unit)."""
        unit = self.unit(unit_id)
        if unit.state not in allowed:
            return StateError(f"unit {unit.serial} is {unit.state}; cannot record {what}")
        return StateError(f"batch {unit.batch_id} is closed; unit {unit.serial} cannot be encoded")

    def _touch_station(self, station: str | None) -> str:
        """Now; and the station's row: made on first use, its last_seen refreshed at most once a minute.

        A station journals about ten changes per tag; rewriting its row each time was a third of
        the station's SQL. What this process touched counts only once its transaction commits.
        """
        now = self._now()
        if station is not None and \
                time.monotonic() - self._stations_touched.get(station, -STATION_TOUCH_SECONDS) >= STATION_TOUCH_SECONDS:
            check_station_name(station)
            self.conn.execute("INSERT INTO stations VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET last_seen = ?",
                              (station, now, now, now))
            self._stations_pending.add(station)
        return now

    def _event(self, unit_id: int, event: str, detail: dict[str, Any] | None, station: str | None, now: str) -> None:
        self._events(unit_id, [(event, detail)], station, now)

    def _events(self, unit_id: int, events: list[tuple[str, dict[str, Any] | None]], station: str | None,
                now: str) -> None:
        """Insert a unit's events, in order, in one statement."""
        self.conn.executemany("INSERT INTO unit_events (unit_id, event, detail, station, at) VALUES (?, ?, ?, ?, ?)",
                              [(unit_id, event, json.dumps(detail) if detail is not None else None, station, now)
                               for event, detail in events])

    # ---------------------------------------------------------------- manifests
    EXPORT_COLUMNS = ("serial", "uid", "key_versions", "encoded_at", "station", "read_counter",
                      "verified_counter", "qa_status")

    def export_summary(self, batch_id: str) -> dict[str, Any]:
        """Counts and time range of the units a manifest lists (call inside :meth:`snapshot`)."""
        row = self.conn.execute(
            "SELECT COUNT(*), MIN(encoded_at), MAX(encoded_at), SUM(state = 'verified'), SUM(qa_status = 'pass'), "
            "SUM(qa_status = 'fail') FROM units WHERE batch_id = ? AND state IN ('encoded', 'verified')",
            (batch_id,)).fetchone()
        voided = self.conn.execute("SELECT COUNT(*) FROM units WHERE batch_id = ? AND state = 'voided'",
                                   (batch_id,)).fetchone()[0]
        return {"units": row[0], "verified": row[3] or 0, "qa_pass": row[4] or 0, "qa_fail": row[5] or 0,
                "voided": voided, "first_encoded_at": row[1], "last_encoded_at": row[2]}

    def export_rows(self, batch_id: str) -> Iterator[tuple[Any, ...]]:
        """Encoded and verified units as tuples of EXPORT_COLUMNS, streamed in allocation order."""
        return self.conn.execute(
            f"SELECT {', '.join(self.EXPORT_COLUMNS)} FROM units WHERE batch_id = ? "
            # unary + keeps the planner on idx_units_batch_id: allocation order without a sort
            "AND +state IN ('encoded', 'verified') ORDER BY id", (batch_id,))

    def record_manifest(self, record: ManifestRecord) -> None:
        """Record a manifest as exported: call only once it is complete, synced and renamed.

        Manifests recorded at the same path were replaced on disk by this one: each is marked
        ``superseded_by`` it (kept, with any upload receipt), so no record claims a file it no longer has.
        """
        self.batch(record.batch_id)
        with self._write() as c:
            c.execute("UPDATE manifests SET superseded_by = ? WHERE path = ? AND superseded_by IS NULL",
                      (record.id, record.path))
            c.execute("INSERT INTO manifests (id, batch_id, kind, path, format, sha256, units, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (record.id, record.batch_id, record.kind, record.path,
                                                         record.format, record.sha256, record.units, record.created_at))

    def record_upload(self, manifest_id: str, url: str, receipt: dict[str, Any]) -> None:
        """Keep the platform's receipt for an uploaded manifest."""
        with self._write() as c:
            cur = c.execute("UPDATE manifests SET uploaded_at = ?, upload_url = ?, receipt = ? WHERE id = ?",
                            (self._now(), url, json.dumps(receipt, sort_keys=True), manifest_id))
            if cur.rowcount != 1:
                raise NotFoundError(f"no manifest {manifest_id} recorded in this workspace")

    def manifest(self, manifest_id: str) -> ManifestRecord | None:
        row = self._one("SELECT * FROM manifests WHERE id = ?", (manifest_id,))
        return _manifest(row) if row else None

    def manifests(self, batch_id: str) -> list[ManifestRecord]:
        return [_manifest(r) for r in self.db.query("SELECT * FROM manifests WHERE batch_id = ? ORDER BY created_at",
                                                    (batch_id,))]

    # ---------------------------------------------------------------- bulk (benchmarks, imports)
    def bulk_encoded(self, batch_id: str, chips: Iterable[tuple[bytes, dict[int, int], int]], station: str) -> int:
        """Allocate and mark encoded many chips (uid, key versions, read counter) in one transaction.

        For benchmarks and tests that need many encoded units fast: it writes no per-unit events.
        """
        with self._write() as c:
            now = self._touch_station(station)
            batch = self.batch(batch_id)
            if not batch.is_open:
                raise StateError(f"batch {batch_id} is closed")
            serials = c.execute("SELECT serial FROM serials WHERE batch_id = ? AND seq > ? ORDER BY seq",
                                (batch_id, batch.allocated))
            count = 0

            def rows() -> Iterator[tuple[Any, ...]]:  # streamed: a million chips in bounded memory
                nonlocal count
                encoded: dict[tuple[tuple[int, int], ...], str] = {}  # key versions repeat: encode once
                for (serial,), (uid, versions, counter) in zip(serials, chips):
                    count += 1
                    items = tuple(sorted(versions.items()))
                    kv = encoded.get(items) or encoded.setdefault(
                        items, json.dumps({str(k): v for k, v in items}, separators=(",", ":")))
                    yield batch_id, serial, _check_uid(uid), station, kv, counter, now, now, now
            c.executemany("INSERT INTO units (batch_id, serial, uid, state, station, key_versions, read_counter, "
                          "allocated_at, encoded_at, updated_at) VALUES (?, ?, ?, 'encoded', ?, ?, ?, ?, ?, ?)", rows())
            c.execute("UPDATE batches SET allocated = allocated + ? WHERE id = ?", (count, batch_id))
        return count

    # ---------------------------------------------------------------- QA (used by provision/qa.py)
    def record_qa_plan(self, plan: QaPlanRecord) -> None:
        """Record a drawn sampling plan (its seed and serials make the draw auditable)."""
        values = {**vars(plan), "seed": str(plan.seed), "serials": json.dumps(list(plan.serials)),
                  "resubmission": int(plan.resubmission)}
        with self._write() as c:
            self.batch(plan.batch_id)
            c.execute(f"INSERT INTO qa_plans ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                      tuple(values.values()))

    def qa_plan(self, batch_id: str) -> QaPlanRecord | None:
        """The batch's current (latest) QA plan."""
        row = self._one("SELECT * FROM qa_plans WHERE batch_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
                        (batch_id,))
        return _qa_plan(row) if row else None

    def qa_plans(self, batch_id: str) -> list[QaPlanRecord]:
        return [_qa_plan(r) for r in self.db.query("SELECT * FROM qa_plans WHERE batch_id = ? ORDER BY created_at, "
                                                   "rowid", (batch_id,))]

    def record_qa_result(self, *, plan_id: str, batch_id: str, unit_id: int | None, serial: str | None,
                         uid: bytes | None, passed: bool, counted: bool, reason: str, checks: list[dict[str, Any]],
                         chip_url: str | None, label_url: str | None, read_counter: int | None,
                         station: str | None, inspector: str) -> QaResultRecord:
        """One scan's result; a counted one also sets the unit's qa_status, in the same transaction."""
        with self._write() as c:
            now = self._touch_station(station)
            cur = c.execute(
                "INSERT INTO qa_results (plan_id, batch_id, unit_id, serial, uid, passed, counted, reason, checks, "
                "chip_url, label_url, read_counter, station, inspector, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)", (plan_id, batch_id, unit_id, serial, uid, int(passed), int(counted), reason,
                             json.dumps(checks), chip_url, label_url, read_counter, station, inspector, now))
            if counted and unit_id is not None:
                status = "pass" if passed else "fail"
                done = c.execute("UPDATE units SET qa_status = ?, qa_at = ?, updated_at = ? WHERE id = ? AND state IN "
                                 "('encoded', 'verified')", (status, now, now, unit_id)).rowcount
                if done:
                    self._event(unit_id, "qa", {"result": status, "detail": reason, "plan": plan_id}, station, now)
            row = self._one("SELECT * FROM qa_results WHERE id = ?", (cur.lastrowid,))
        return _qa_result(row)

    def qa_results(self, plan_id: str) -> list[QaResultRecord]:
        return [_qa_result(r) for r in self.db.query("SELECT * FROM qa_results WHERE plan_id = ? ORDER BY id",
                                                     (plan_id,))]

    def qa_last_counter(self, unit_id: int) -> int | None:
        """The highest SUN read counter QA has verified for this unit (replay detection)."""
        return self.conn.execute("SELECT MAX(read_counter) FROM qa_results WHERE unit_id = ?",
                                 (unit_id,)).fetchone()[0]

    def record_qa_decision(self, decision: QaDecisionRecord, switching: dict[str, Any] | None = None,
                           expected_lots: int | None = None) -> None:
        """Record a plan's decision and, for an original inspection, the product's new switching state.

        ``expected_lots`` is the lot count the new state was computed from: if another decision
        moved the product's state meanwhile, nothing is written (StateError) and QA decides again.
        """
        with self._write() as c:
            product_id = c.execute("SELECT product_id FROM qa_plans WHERE id = ?", (decision.plan_id,)).fetchone()
            if product_id is None:
                raise NotFoundError(f"no QA plan {decision.plan_id}")
            if c.execute("SELECT 1 FROM qa_decisions WHERE plan_id = ?", (decision.plan_id,)).fetchone():
                raise StateError(f"QA plan {decision.plan_id} already has a decision")
            c.execute("INSERT INTO qa_decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (decision.plan_id, decision.batch_id, decision.decision, decision.defects, decision.inspected,
                       decision.decided_at, decision.decided_by))
            if switching is not None:
                self._set_qa_switching(product_id[0], switching, expected_lots)

    def qa_decision(self, batch_id: str) -> QaDecisionRecord | None:
        """The decision on the batch's latest plan (None while undecided or with a newer plan)."""
        row = self._one("SELECT d.* FROM qa_decisions d WHERE d.plan_id = (SELECT id FROM qa_plans WHERE batch_id = ? "
                        "ORDER BY created_at DESC, rowid DESC LIMIT 1)", (batch_id,))
        return QaDecisionRecord(**row) if row else None

    def qa_switching(self, product_id: str) -> dict[str, Any] | None:
        """The product's QA switching state as stored (provision/sampling.py SwitchingState JSON)."""
        row = self._one("SELECT state FROM qa_switching WHERE product_id = ?", (product_id,))
        return json.loads(row["state"]) if row else None

    def set_qa_switching(self, product_id: str, state: dict[str, Any], expected_lots: int | None = None) -> None:
        """Store a switching state decided outside a lot (corrective action after discontinuation)."""
        with self._write():
            self._set_qa_switching(product_id, state, expected_lots)

    def _set_qa_switching(self, product_id: str, state: dict[str, Any], expected_lots: int | None) -> None:
        row = self.conn.execute("SELECT lots FROM qa_switching WHERE product_id = ?", (product_id,)).fetchone()
        if expected_lots is not None and (row[0] if row else 0) != expected_lots:
            raise StateError(f"product {product_id}'s QA switching state changed meanwhile; decide again")
        self.conn.execute("INSERT INTO qa_switching VALUES (?, ?, ?, ?) ON CONFLICT(product_id) DO UPDATE SET "
                          "state = excluded.state, lots = excluded.lots, updated_at = excluded.updated_at",
                          (product_id, json.dumps(state, sort_keys=True), int(state.get("lots", 0)), self._now()))

    def record_qa_override(self, batch_id: str, reason: str, by: str, manifest_id: str | None = None) -> QaOverrideRecord:
        """A batch released without an accepted QA decision, with the reason given."""
        if not reason:
            raise ConfigError("a QA override needs a reason")
        with self._write() as c:
            self.batch(batch_id)
            now = self._now()
            cur = c.execute("INSERT INTO qa_overrides (batch_id, reason, manifest_id, by, at) VALUES (?, ?, ?, ?, ?)",
                            (batch_id, reason, manifest_id, by, now))
        return QaOverrideRecord(cur.lastrowid, batch_id, reason, manifest_id, by, now)

    def qa_overrides(self, batch_id: str) -> list[QaOverrideRecord]:
        return [QaOverrideRecord(**r) for r in self.db.query(
            "SELECT id, batch_id, reason, manifest_id, by, at FROM qa_overrides WHERE batch_id = ? ORDER BY id",
            (batch_id,))]


def _manifest(row: dict[str, Any]) -> ManifestRecord:
    row = dict(row)
    row["receipt"] = json.loads(row["receipt"]) if row["receipt"] else None
    return ManifestRecord(**row)


def _check_uid(uid: bytes) -> bytes:
    if not isinstance(uid, (bytes, bytearray)) or len(uid) not in (4, 7, 10):
        raise ConfigError(f"a tag UID is 4, 7 or 10 bytes, got {uid!r}")
    return bytes(uid)


def _qa_plan(row: dict[str, Any]) -> QaPlanRecord:
    row = dict(row)
    row.update(seed=int(row["seed"]), serials=tuple(json.loads(row["serials"])), resubmission=bool(row["resubmission"]))
    return QaPlanRecord(**row)


def _qa_result(row: dict[str, Any]) -> QaResultRecord:
    row = dict(row)
    row.update(uid=bytes(row["uid"]) if row["uid"] is not None else None, passed=bool(row["passed"]),
               counted=bool(row["counted"]), checks=tuple(json.loads(row["checks"])))
    return QaResultRecord(**row)


class StepJournal:
    """One unit's personalisation steps, held in memory and committed with the placement's outcome.

    A commit per APDU was most of the station's SQL time, and a step journaled is an audit fact,
    not what resume relies on: resume reads the chip (key 0's version, then each slot's). So the
    steps ride on the transaction that ends the placement (:meth:`BatchStore.mark_encoded`), or
    :meth:`flush` commits them when it ends otherwise (a tear, a failure, Ctrl-C). A station
    killed outright loses only the steps of the tag in its field; that unit stays recorded as
    encoding, and its resume journals each key it finds already changed (``found``).
    """

    def __init__(self, store: BatchStore, unit_id: int, station: str) -> None:
        self.store, self.unit_id, self.station = store, unit_id, station
        self._pending: list[tuple[str, bool, str]] = []

    def add(self, step: str, *, found: bool = False) -> None:
        """A step the chip confirmed (``found``: seen done on the chip, by an earlier placement)."""
        if not step or len(step) > 64:
            raise ConfigError("step name must be 1-64 characters")
        self._pending.append((step, found, self.store._now()))

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the steps not committed yet."""
        return tuple(step for step, _found, _at in self._pending)

    def flush(self) -> None:
        """Commit the pending steps now, in one transaction (a StateError if the unit is not encoding)."""
        if self._pending:
            with self.store._write():
                inserted = self._insert_within(self.unit_id, guarded=True)
            self._committed(inserted)

    def _insert_within(self, unit_id: int, guarded: bool) -> int:
        """Insert the pending steps in the store's open transaction; how many (see :meth:`_committed`)."""
        if unit_id != self.unit_id:
            raise ValueError("a step journal commits only with its own unit")
        if self._pending:
            self.store._insert_steps(unit_id, self._pending, self.station, guarded)
        return len(self._pending)

    def _committed(self, count: int) -> None:
        """The transaction holding the first ``count`` pending steps committed: forget them."""
        del self._pending[:count]
