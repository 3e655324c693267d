"""The chip's five application key slots and the one vocabulary of their roles.

Product files (``batches``) and key sets (``keystore``) both name what each slot is for, so the
vocabulary lives here, below both, instead of one layer importing the other. Slot numbers and the
AN10922 input bound are the chip's (docs/reference/ntag424.md): the same facts for both.
"""

from __future__ import annotations

import contextlib
import enum

from tagsmith import ConfigError

SLOTS = range(5)  # NTAG 424 DNA application keys 0..4
MAX_SYSTEM_ID = 23  # AN10922 allows M up to 31 bytes; UID(7) and slot(1) take 8


class SlotRole(enum.StrEnum):
    """What a chip key slot is used for: one vocabulary for key sets, product files, manifests, exports.

    Names say what the chip's access rights bind the key to. A station leaves the NDEF file's Write,
    ReadWrite and Change rights on key 0, so key 3 guards only the proprietary file 03 (factory rights
    Read 2 / Write 3 / ReadWrite 3, never changed) and key 4 guards nothing (SetConfiguration is key 0 only).
    """

    APP_MASTER = "app-master"
    SDM_META_READ = "sdm-meta-read"
    SDM_FILE_READ = "sdm-file-read"
    PROPRIETARY_WRITE = "proprietary-write"
    SPARE = "spare"

    @classmethod
    def _missing_(cls, value: object) -> SlotRole | None:
        """Read the names older key sets, exports and product files hold."""
        return LEGACY_ROLE_NAMES.get(value) if isinstance(value, str) else None


#: Names slots 3 and 4 had before one vocabulary: key sets and exports said ``ndef-write`` / ``spare``,
#: product files and manifests ``write`` / ``change-config``: key 3 writes neither the NDEF file nor
#: anything but file 03, and key 4 changes no configuration.
LEGACY_ROLE_NAMES = {"ndef-write": SlotRole.PROPRIETARY_WRITE, "write": SlotRole.PROPRIETARY_WRITE,
                     "change-config": SlotRole.SPARE}


def slot_role(name: object, where: str = "role") -> SlotRole:
    """The role a name (current or legacy) means; a ConfigError naming the vocabulary otherwise."""
    if isinstance(name, str):
        with contextlib.suppress(ValueError):
            return SlotRole(name)
    names = ", ".join(r.value for r in SlotRole)
    raise ConfigError(f"{where}: unknown slot role {name!r} (one of: {names})")
