"""Key model: policy rules, references, key parsing that never echoes secrets."""

import pytest

from tagsmith import ConfigError
from tagsmith.keyslots import SlotRole, slot_role
from tagsmith.keystore.model import ChipKeys, KeyPolicy, KeyRef, SlotPolicy, parse_key_hex


def test_default_policy_shares_only_the_meta_read_key():
    policy = KeyPolicy.default()
    assert [s.role for s in policy.slots] == [SlotRole.APP_MASTER, SlotRole.SDM_META_READ, SlotRole.SDM_FILE_READ,
                                              SlotRole.PROPRIETARY_WRITE, SlotRole.SPARE]
    assert [s.diversified for s in policy.slots] == [True, False, True, True, True]
    assert policy.resolver_slots() == (1, 2)
    assert KeyPolicy.from_json(policy.to_dict()) == policy


@pytest.mark.parametrize(("old", "new"), [("ndef-write", "proprietary-write"), ("write", "proprietary-write"),
                                          ("change-config", "spare"), ("spare", "spare")])
def test_policy_reads_the_slot_names_older_files_hold(old, new):
    """Key sets and exports said ndef-write/spare, product files write/change-config: one vocabulary now."""
    legacy = [dict(item, role=old) if item["slot"] == (4 if new == "spare" else 3) else item
              for item in KeyPolicy.default().to_dict()]
    assert KeyPolicy.from_json(legacy) == KeyPolicy.default()
    assert [s["role"] for s in KeyPolicy.default().to_dict()][3:] == ["proprietary-write", "spare"]


def test_slot_role_names_the_vocabulary():
    with pytest.raises(ConfigError, match="unknown slot role 'ndef-writ'.*proprietary-write, spare"):
        slot_role("ndef-writ", "keys.slots.3.role")


def test_policy_refuses_a_diversified_meta_read_key():
    slots = list(KeyPolicy.default().slots)
    slots[1] = SlotPolicy(1, SlotRole.SDM_META_READ, True)
    with pytest.raises(ConfigError, match="cannot be diversified"):
        KeyPolicy(tuple(slots))


def test_policy_keeps_app_master_at_slot_0():
    slots = list(KeyPolicy.default().slots)
    slots[0], slots[4] = SlotPolicy(0, SlotRole.SPARE, True), SlotPolicy(4, SlotRole.APP_MASTER, True)
    with pytest.raises(ConfigError, match="slot 0"):
        KeyPolicy(tuple(slots))


@pytest.mark.parametrize("kwargs", [dict(slot=5, version=1), dict(slot=0, version=0), dict(slot=0, version=256),
                                    dict(slot=0, version=1, uid=b"\x04" * 6)])
def test_key_ref_validates(kwargs):
    with pytest.raises(ConfigError):
        KeyRef("p", **kwargs)


def test_key_ref_rejects_odd_key_set_ids():
    with pytest.raises(ConfigError):
        KeyRef("../etc", 0, 1)


def test_chip_keys_repr_hides_keys():
    keys = ChipKeys("p", b"\x04" * 7, (1,) * 5, KeyPolicy.default(), tuple(bytes([i]) * 16 for i in range(5)))
    assert "0101010101" not in repr(keys) and "\\x01" not in repr(keys)


def test_parse_key_hex_accepts_spacing_and_never_echoes():
    assert parse_key_hex(" 00112233 44556677:8899AABBCCDDEEFF\n") == bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    with pytest.raises(ConfigError) as err:
        parse_key_hex("00112233445566778899AABBCCDDEEFZ")
    assert "8899" not in str(err.value)
    with pytest.raises(ConfigError, match="16 bytes"):
        parse_key_hex("00112233445566778899AABBCCDDEE")


def test_a_malformed_recorded_policy_is_a_config_error():
    good = KeyPolicy.default().to_dict()
    assert KeyPolicy.from_json(good) is KeyPolicy.from_json(KeyPolicy.default().to_dict())  # parsed once
    for bad in ([{"slot": 0}], [{"slot": 0, "role": ["app-master"], "diversified": True}], None,
                [{"slot": 0, "role": "no-such-role", "diversified": True}],
                [{"slot": "zero", "role": "app-master", "diversified": True}]):
        with pytest.raises(ConfigError):
            KeyPolicy.from_json(bad)
