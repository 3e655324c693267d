"""The keystore: master keys encrypted at rest or in a PKCS#11 token, chip keys by reference.

Open it with :func:`open_keystore`; a station asks for ``chip_keys(key_set, uid)``. Only the
backend modules (``file``, ``pkcs11``) ever hold a master key.
"""

from .access import init_keystore, keystore_backend, open_keystore
from .base import KeyProvider, Keystore
from .model import DIVERSIFICATION_SCHEME, ChipKeys, KeyPolicy, KeyRef, KeySetInfo

__all__ = ["DIVERSIFICATION_SCHEME", "ChipKeys", "KeyPolicy", "KeyProvider", "KeyRef", "KeySetInfo", "Keystore",
           "init_keystore", "keystore_backend", "open_keystore"]
