"""The SQLite schema, as versioned migrations (sqlite-utils builds most tables).

Applied in order by the SQLite engine; a release only appends. Never edit a migration that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database


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


def _m_epcis_captures(db: Database) -> None:
    """What an EPCIS repository answered to each capture of a batch's events (its capture jobs and their errors)."""
    db.table("epcis_captures").create(
        {"id": int, "batch_id": str, "document_sha256": str, "url": str, "events": int, "accepted": int,
         "rejected": int, "receipt": str, "captured_at": str}, pk="id",
        not_null={"document_sha256", "url", "events", "accepted", "rejected", "receipt", "captured_at"})
    db.table("epcis_captures").create_index(["batch_id"])


def _m_irreversible_confirmations(db: Database) -> None:
    """Who confirmed, and when, a product version whose chips are switched for good (LRP secure messaging)."""
    db.execute("ALTER TABLE product_versions ADD COLUMN irreversible_confirmed_by TEXT")
    db.execute("ALTER TABLE product_versions ADD COLUMN irreversible_confirmed_at TEXT")


def _m_serial_leases(db: Database) -> None:
    """Blocks of a batch's serials leased to a station, so it encodes through an outage (docs/deployment.md).

    ``leased_serials`` names each lease's serials by sequence number; ``free_serials`` holds those
    given back (a lease returned or revoked with serials unused), claimed again before the counter;
    ``lease_conflicts`` keeps every pushed unit the database refused. A pushed event carries its
    ``origin`` (lease and the station's own event id), so a push repeated after a crash adds nothing.
    """
    db.execute("CREATE TABLE serial_leases (id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id), "
               "station TEXT NOT NULL REFERENCES stations(name), size INTEGER NOT NULL, leased_at TEXT NOT NULL, "
               'expires_at TEXT NOT NULL, state TEXT NOT NULL, closed_at TEXT, reason TEXT, "by" TEXT, '
               "used INTEGER NOT NULL DEFAULT 0, synced_event INTEGER NOT NULL DEFAULT 0, synced_at TEXT)")
    db.execute("CREATE INDEX idx_serial_leases_batch_id_state ON serial_leases (batch_id, state)")
    db.execute("CREATE TABLE leased_serials (lease_id INTEGER NOT NULL REFERENCES serial_leases(id), "
               "batch_id TEXT NOT NULL REFERENCES batches(id), seq INTEGER NOT NULL, PRIMARY KEY (lease_id, seq))")
    db.execute("CREATE INDEX idx_leased_serials_batch_id_seq ON leased_serials (batch_id, seq)")
    db.execute("CREATE TABLE free_serials (batch_id TEXT NOT NULL REFERENCES batches(id), seq INTEGER NOT NULL, "
               "PRIMARY KEY (batch_id, seq))")
    db.execute("CREATE TABLE lease_conflicts (id INTEGER PRIMARY KEY, lease_id INTEGER NOT NULL "
               "REFERENCES serial_leases(id), batch_id TEXT NOT NULL REFERENCES batches(id), station TEXT NOT NULL, "
               "serial TEXT NOT NULL, uid BLOB NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, "
               "UNIQUE (lease_id, serial, uid))")
    db.execute("ALTER TABLE unit_events ADD COLUMN origin TEXT")
    db.execute("CREATE UNIQUE INDEX idx_unit_events_origin ON unit_events (origin) WHERE origin IS NOT NULL")


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
    ("EPCIS capture receipts", _m_epcis_captures),
    ("irreversible product versions (LRP) record who confirmed them", _m_irreversible_confirmations),
    ("serial leases: blocks of serials a station encodes from through an outage", _m_serial_leases),
]
