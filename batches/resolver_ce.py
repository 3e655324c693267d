"""The GS1 Resolver Community Edition v3 data-entry document for a product (docs/resolver.md).

One entry per product, not per serial: the anchor ``/01/{gtin}`` with the templated qualifier
``{"21": "{serialnumber}"}`` (after ``{"10": "{lotnumber}"}`` when the product's URLs carry the lot),
and the links of the product file's ``[[links]]``, the first one the default. The resolver then
answers for every serial the line makes without an import per serial. Field names and shapes are
those of Resolver CE v3's ``POST /new`` (an array of entries; each link with ``linktype``, ``href``,
``title``, ``type``, ``hreflang`` and optional ``context``).
"""

from __future__ import annotations

from typing import Any

from tagsmith import ConfigError

from .product import Product
from .product_links import SERIAL_PLACEHOLDER

FORMATS = ("gs1-resolver-ce",)
LOT_PLACEHOLDER = "{lotnumber}"


def resolver_ce_entries(product: Product) -> list[dict[str, Any]]:
    """The data-entry array for ``product``; ConfigError when its file names no link."""
    if not product.links:
        raise ConfigError(f"product {product.id} names no [[links]] for the resolver: add at least one "
                          "(linktype, href, title) to its file and `tagsmith product add` it again")
    qualifiers = ([{"10": LOT_PLACEHOLDER}] if product.lot_in_url else []) + [{"21": SERIAL_PLACEHOLDER}]
    links = []
    for link in product.links:
        entry: dict[str, Any] = {"linktype": link.linktype, "href": link.href, "title": link.title, "type": link.type,
                                 "hreflang": list(link.hreflang)}
        if link.context:
            entry["context"] = list(link.context)
        links.append(entry)
    return [{"anchor": f"/01/{product.gtin}", "itemDescription": product.name, "defaultLinktype": links[0]["linktype"],
             "qualifiers": qualifiers, "links": links}]
