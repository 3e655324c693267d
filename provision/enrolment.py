"""Station enrolment: the key sets a product needs, from the line's store, wrapped for one station.

The store says which key sets a product needs: the one its current product file names, and the
ones its open batches were made with (a product file may have moved to a new key set while a
batch made with the old one is still being encoded). The keystore wraps exactly those
(keystore.bundle); the station imports them with ``keys import-bundle``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tagsmith import ConfigError
from tagsmith.batches.store import Store
from tagsmith.keystore import Keystore
from tagsmith.keystore.bundle import export_bundle
from tagsmith.keystore.station import parse_station_pub


def product_key_sets(store: Store, product_id: str) -> list[str]:
    """The key sets a station needs to encode ``product``: its current one and its open batches' ones."""
    current = store.product(product_id).keys.key_set
    batches = {store.product(b.product_id, b.product_sha256).keys.key_set for b in store.batches(product_id) if b.is_open}
    return sorted({current} | batches)


def export_for_station(store: Store, keystore: Keystore, product_id: str, station_pub: str,
                       only: Sequence[str] = (), out: Path | None = None) -> dict:
    """Write the bundle of ``product_id``'s key sets (``only`` some of them) for the station of ``station_pub``."""
    station = parse_station_pub(station_pub)
    needed = product_key_sets(store, product_id)
    unused = sorted(set(only) - set(needed))
    if unused:
        raise ConfigError(f"product {product_id} does not use key set {', '.join(unused)} "
                          f"(it uses {', '.join(needed)}); a bundle carries only the key sets its product needs")
    chosen = sorted(set(only)) if only else needed
    _, fields = export_bundle(keystore, product_id, chosen, station, out)
    return {"product": product_id, "key_sets": chosen, "station": station.name,
            "station_fingerprint": station.fingerprint, "out": str(out) if out else None,
            "payload_fingerprint": fields["fingerprint"]}
