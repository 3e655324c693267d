"""Which AN10922 system id a key set diversifies with: one source of truth, the product files that name it.

A product's ``[keys]`` table names its key set and system id; the keystore holds the key set with
the system id it was created with. These checks keep the two from disagreeing.
"""

from __future__ import annotations

from collections.abc import Callable

from tagsmith import ConfigError, NotFoundError
from tagsmith.batches.product import Product
from tagsmith.batches.store import Store
from tagsmith.keystore import Keystore
from tagsmith.keystore.model import check_same_system_id
from tagsmith.workspace import Workspace


def key_set_system_id(store: Store, key_set: str, given: bytes | None) -> bytes | None:
    """The system id for a new key set: the one its products' [keys] name.

    A product added to the workspace that names ``key_set`` fixes the system id; ``--system-id`` may
    repeat it but not contradict it. With no such product, ``given`` (or the keystore's default).
    """
    named = {record.id: store.product(record.id).keys for record in store.products()}
    ids = {keys.system_id for keys in named.values() if keys.key_set == key_set}
    users = ", ".join(sorted(pid for pid, keys in named.items() if keys.key_set == key_set))
    if len(ids) > 1:
        raise ConfigError(f"products {users} use key set {key_set} with different system ids "
                          f"({', '.join(sorted(i.hex().upper() for i in ids))}): make them agree first")
    if not ids:
        return given
    (theirs,) = ids
    if given is not None and given != theirs:
        raise ConfigError(f"--system-id {given.hex().upper()} differs from [keys] system_id "
                          f"{theirs.hex().upper()} of {users}, which use key set {key_set}: leave --system-id out")
    return theirs


def key_set_modes(store: Store, key_set: str) -> dict[str, str]:
    """The secure messaging (aes, lrp) of each product whose current version uses ``key_set``.

    A resolver verifies a tap with the SUN cryptography of its chip's mode (docs/resolver.md).
    """
    products = (store.product(record.id) for record in store.products())
    return {p.id: p.secure_messaging for p in products if p.keys.key_set == key_set}


def chips_system_id(keystore: Keystore, product: Product) -> bytes | None:
    """The system id the product's key set diversified its chips with (None: the key set is not here)."""
    try:
        return keystore.info(product.keys.key_set).system_id
    except NotFoundError:
        return None


def check_key_set_of(workspace: Workspace, product: Product, open_keys: Callable[[], Keystore]) -> None:
    """Refuse a product whose key set, if the workspace keystore holds it, has another system id."""
    if not workspace.keystore.exists():
        return  # no keystore yet: keys create will take the system id from this product
    keystore = open_keys()
    try:
        info = keystore.info(product.keys.key_set)
    except NotFoundError:
        return  # the key set is made later, from this product
    check_same_system_id(product.id, product.keys.system_id, info.key_set, info.system_id)
