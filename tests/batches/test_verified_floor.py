"""A verified read-back never lowers a unit's replay floor (a counter lower than one already seen is old)."""

from __future__ import annotations

UID = bytes.fromhex("04A1B2C3D4E5F6")


def test_mark_verified_keeps_the_higher_counter(store, product):
    batch = store.create_batch(product.id, 1)
    unit = store.allocate_unit(batch.id, UID, "st-1")
    store.start_encoding(unit.id, "st-1")
    store.mark_encoded(unit.id, {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, 3, "st-1")
    assert store.mark_verified(unit.id, 9, "st-1").verified_counter == 9
    unit = store.mark_verified(unit.id, 5, "st-2")
    assert unit.state == "verified" and unit.verified_counter == 9 and unit.station == "st-2"
    assert store.unit(unit.id).verified_counter == 9
    assert store.mark_verified(unit.id, 12, "st-2").verified_counter == 12
