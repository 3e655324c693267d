"""Return a tag of ours to factory keys, settings and CC (rework and test tags); its serial is voided.

Never guesses a key: the tag must be a unit in the database, and key 0's version (readable
without authentication) names the one key tried: the unit's diversified key 0 at the version
the record holds, or the factory key when a previous reset tore after key 0 was already zeroed.
The unit is voided before the first change, so its serial stays burnt however the reset ends;
a torn reset is finished by running it again. Key 0 is changed last. An LRP product's chip is
refused: the switch to LRP is for good, so no reset could make it a factory chip again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagsmith import ConfigError
from tagsmith.batches.records import UnitState
from tagsmith.batches.store import Store
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424 import CommMode
from tagsmith.encoders.ntag424.files import KEY_FREE, NDEF_FILE_NO, NDEF_FILE_SIZE, AccessRights, FileSettings
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.keystore.base import KeyProvider

from .counting import CountingConnection
from .encode import FACTORY_KEY, identify_tag, write_cc_ndef_access
from .factory_session import TagRefused, authenticate_once
from .plan import FACTORY_VERSION

#: File 02 as delivered ("00 E0EE"): CommMode plain, read/write/read-write free, change key 0, no SDM.
FACTORY_NDEF_SETTINGS = FileSettings(comm_mode=CommMode.PLAIN,
                                     access=AccessRights(read=KEY_FREE, write=KEY_FREE, read_write=KEY_FREE, change=0))


@dataclass(frozen=True)
class ResetResult:
    uid: str
    serial: str
    batch_id: str
    apdus: int
    commands: tuple[str, ...]


def reset_tag(store: Store, keys: KeyProvider, connection: Connection, *, station: str = "rework",
              reason: str = "reset to factory for rework", allow_simulator_signature: bool = False) -> ResetResult:
    """Reset the tag on ``connection`` to factory state and void its unit; TagRefused for anything not ours.

    Raises TagRemovedError when the tag leaves mid-way (run again to finish), ChipError on a
    chip refusal. Never authenticates a tag that is not in the database.
    """
    counting = CountingConnection(connection)
    s = Ntag424Session(counting)
    uid = identify_tag(s, allow_simulator_signature=allow_simulator_signature)
    unit = store.unit_by_uid(uid)
    if unit is None:
        raise TagRefused(f"tag {uid.hex().upper()} is not in this database: refusing to touch it")
    failure = store.auth_failure(uid)
    if failure is not None:
        raise TagRefused(f"{unit.serial}: {failure.describe()}")
    product = store.batch_product(unit.batch_id)
    if product.lrp:  # the database's record: AES authentication would only be answered 919D
        raise TagRefused(f"{unit.serial}: an LRP chip cannot go back to AES (the switch is for good): "
                         "refusing to reset it")
    versions = unit.key_versions or product.keys.versions()
    if any(versions[slot] == FACTORY_VERSION for slot in range(5)):
        raise ConfigError(f"{unit.serial}: a slot of this product uses version 00, indistinguishable from factory")
    chip_keys = keys.chip_keys(product.keys.key_set, uid, versions)
    key0_version = s.get_key_version(0)
    if key0_version == versions[0]:
        key0 = chip_keys.key(0)
    elif key0_version == FACTORY_VERSION:
        key0 = FACTORY_KEY  # an earlier reset (or encode) stopped before key 0 changed
    else:
        raise TagRefused(f"{unit.serial}: key 0 version {key0_version:02X} is not the recorded {versions[0]:02X}")
    if unit.state != UnitState.VOIDED:
        store.void_unit(unit.id, reason, station)  # journal first: the serial is burnt from here on
    authenticate_once(store, s, uid, key0, station, f"{unit.serial}: the chip refused key 0")
    s.change_file_settings(NDEF_FILE_NO, FACTORY_NDEF_SETTINGS)
    write_cc_ndef_access(s, FACTORY_NDEF_SETTINGS.access)  # the CC says "write granted" again, as delivered
    s.write_data(NDEF_FILE_NO, 0, bytes(NDEF_FILE_SIZE))
    for slot in range(1, 5):
        version = s.get_key_version(slot)
        if version == FACTORY_VERSION:
            continue  # already reset by an earlier, torn run
        if version != chip_keys.version(slot):
            raise TagRefused(f"{unit.serial}: key {slot} holds unknown version {version:02X}: not resetting it")
        s.change_key(slot, FACTORY_KEY, FACTORY_VERSION, old_key=chip_keys.key(slot))
    if key0_version != FACTORY_VERSION:
        s.change_key(0, FACTORY_KEY, FACTORY_VERSION)
    return ResetResult(uid.hex().upper(), unit.serial, unit.batch_id, counting.count, tuple(counting.commands))
