"""Products: each product file version kept by its SHA-256, the current one named per product."""

from __future__ import annotations

import json

from tagsmith import NotFoundError

from ..product import Product, parse_product
from ..records import ProductRecord
from .core import StoreCore

_WITH_VERSIONS = "SELECT p.*, (SELECT COUNT(*) FROM product_versions v WHERE v.product_id = p.id) AS versions FROM products p"


class ProductQueries(StoreCore):
    def add_product(self, product: Product, confirmed_by: str | None = None) -> tuple[ProductRecord, bool]:
        """Record a product file version and make it current; returns (record, newly added).

        Whether its URL template fits the chip is asked first by provision/catalog.py (register_product),
        and whether an irreversible one (LRP) was confirmed: ``confirmed_by`` is recorded with the time.
        """
        now = self._now()
        slots = json.dumps({str(s.slot): {"role": s.role, "version": s.version} for s in product.keys.slots},
                           sort_keys=True)
        policy_key = (product.keys.key_set, product.keys.system_id.hex(), slots)
        with self._write():
            self._lock_writers()
            known = self._scalar("SELECT product_id FROM product_versions WHERE sha256 = ?", (product.sha256,))
            self._exec("INSERT INTO products (id, current_sha256, name, model, gtin, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET current_sha256 = excluded.current_sha256, "
                       "name = excluded.name, model = excluded.model, gtin = excluded.gtin, updated_at = excluded.updated_at",
                       (product.id, product.sha256, product.name, product.model, product.gtin, now, now))
            if not known:
                self._exec("INSERT INTO key_policies (key_set, system_id, slots) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                           policy_key)
                policy = self._scalar("SELECT id FROM key_policies WHERE key_set = ? AND system_id = ? AND slots = ?",
                                      policy_key)
                self._exec("INSERT INTO product_versions (sha256, product_id, key_policy_id, toml, added_at) "
                           "VALUES (?, ?, ?, ?, ?)", (product.sha256, product.id, policy, product.text, now))
                if confirmed_by:
                    self._exec("UPDATE product_versions SET irreversible_confirmed_by = ?, irreversible_confirmed_at = ? "
                               "WHERE sha256 = ?", (confirmed_by, now, product.sha256))
        return self.product_record(product.id), not known

    def irreversible_confirmation(self, sha256: str) -> tuple[str, str] | None:
        """Who confirmed a product version's irreversible chip switch, and when (None: nothing confirmed)."""
        row = self._one("SELECT irreversible_confirmed_by AS who, irreversible_confirmed_at AS at FROM product_versions "
                        "WHERE sha256 = ?", (sha256,))
        return (row["who"], row["at"]) if row is not None and row["who"] is not None else None

    def product_record(self, product_id: str) -> ProductRecord:
        row = self._one(f"{_WITH_VERSIONS} WHERE p.id = ?", (product_id,))
        if row is None:
            raise NotFoundError(f"no product {product_id!r} (add it with: tagsmith product add FILE)")
        return ProductRecord(**row)

    def products(self) -> list[ProductRecord]:
        return [ProductRecord(**row) for row in self._rows(f"{_WITH_VERSIONS} ORDER BY p.id")]

    def product(self, product_id: str, sha256: str | None = None) -> Product:
        """A product as recorded: its current version, or the exact version ``sha256``."""
        sha256 = sha256 or self.product_record(product_id).current_sha256
        toml = self._scalar("SELECT toml FROM product_versions WHERE sha256 = ? AND product_id = ?", (sha256, product_id))
        if toml is None:
            raise NotFoundError(f"no version {sha256[:12]} of product {product_id!r}")
        return parse_product(toml.encode("utf-8"), f"product {product_id}")

    def product_versions_with_gtin(self, gtin: str) -> list[Product]:
        """Every version of the products with this GTIN that a batch was made with, newest first.

        What a resolver tries a tap's PICC data with before it knows the chip.
        """
        rows = self._exec(
            "SELECT DISTINCT b.product_id, b.product_sha256, v.added_at FROM batches b JOIN products p ON "
            "p.id = b.product_id JOIN product_versions v ON v.sha256 = b.product_sha256 WHERE p.gtin = ? "
            "ORDER BY v.added_at DESC", (gtin,)).fetchall()
        return [self.product(product_id, sha256) for product_id, sha256, _ in rows]
