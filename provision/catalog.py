"""Product registration and batch creation: the database's records, checked against the chip first.

A product file is data (``batches/product.py``); whether its URL template fits the NTAG 424 DNA
(a SUN MAC to verify a tap, an NDEF file no longer than the chip's) is a protocol question, so it
is asked here, where both layers meet, and a product or batch the station could not encode is
refused before it is recorded, not at the first tag.
"""

from __future__ import annotations

from tagsmith import ConfigError
from tagsmith.batches.gs1 import validate_lot
from tagsmith.batches.product import Product
from tagsmith.batches.records import Batch, ProductRecord
from tagsmith.batches.store import Store
from tagsmith.encoders.ntag424.channel import SecureMessaging
from tagsmith.encoders.ntag424.sun import SUN_SCHEMES
from tagsmith.encoders.ntag424.sunscheme import SunScheme
from tagsmith.encoders.ntag424.template import SunTemplate, compile_template


def sun_scheme(product: Product) -> SunScheme:
    """The SUN cryptography of the product's chips: its secure messaging's (docs/reference/lrp.md §6)."""
    return SUN_SCHEMES[SecureMessaging(product.secure_messaging)]


def product_template(product: Product) -> SunTemplate:
    """The product's URL template compiled for its chips' mode (an LRP chip's PICC data is 48 characters)."""
    return compile_template(product.url_template, sun_scheme(product))


def check_fits_chip(product: Product, lot: str | None = None) -> SunTemplate:
    """Refuse a URL template the station could not encode: no SUN MAC, or too long for the NDEF file.

    Checked with a serial of the product's (fixed) length and ``lot`` (a 1-character lot when the
    batch is not known yet). Returns the compiled template.
    """
    template = product_template(product)
    if "cmac" not in template.slot_names:
        raise ConfigError(f"product {product.id}: url.template has no {{cmac}}: a tap could not be verified "
                          "(add {picc} and {cmac}, or {uid}, {ctr} and {cmac})")
    serial = product.serial.sequential(1) if product.serial.kind == "sequential" else product.serial.random_serials(1)[0]
    sample_lot = (lot or "1") if product.lot_in_url else None
    try:
        template.render(gtin=product.gtin, serial=serial, lot=sample_lot)
    except ConfigError as exc:
        where = f"with lot {lot!r}" if lot and product.lot_in_url else f"with {len(serial)}-character serials"
        raise ConfigError(f"product {product.id}: url.template does not fit the chip {where}: {exc}") from None
    return template


def register_product(store: Store, product: Product, confirmed_by: str | None = None) -> tuple[ProductRecord, bool]:
    """Record a product file version once it fits the chip; returns (record, newly added).

    An LRP product makes every station switch its chips to LRP for good (docs/reference/lrp.md §7):
    it is recorded only with ``confirmed_by``, the person who confirmed that, kept with the version.
    """
    check_fits_chip(product)
    if product.lrp and not confirmed_by:
        raise ConfigError(f"product {product.id}: secure_messaging = \"lrp\" switches every chip to LRP for good "
                          "(an LRP chip cannot go back to AES): add --confirm-irreversible")
    return store.add_product(product, confirmed_by if product.lrp else None)


def create_batch(store: Store, product_id: str, quantity: int, *, lot: str | None = None,
                 line: str | None = None, batch_id: str | None = None) -> Batch:
    """Create a batch of the product's current version, refused when its lot makes the URL too long.

    The product itself was checked when it was registered; only a lot inside the URL is new here.
    """
    product = store.product(product_id)
    if lot is not None and product.lot_in_url:
        check_fits_chip(product, validate_lot(lot))
    return store.create_batch(product_id, quantity, lot=lot, line=line, batch_id=batch_id)
