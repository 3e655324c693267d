"""FileSettings / SdmSettings: wire layouts with conditional fields, round trips and chip constraints."""

from __future__ import annotations

import pytest

from tagsmith import ConfigError
from tagsmith.encoders.ntag424 import KEY_FREE, KEY_NEVER, AccessRights, CommMode, FileSettings, SdmOptions, SdmSettings
from tagsmith.encoders.ntag424.errors import ResponseError

OPT = SdmOptions
ENC_ALL = OPT.UID | OPT.READ_CTR | OPT.ENC_FILE_DATA | OPT.ASCII


def h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("wire", [
    "000000E0200000",                                           # factory file 01
    "0000E0EE000100",                                           # factory file 02
    "00033023800000",                                           # factory file 03 (Full)
    "0040EEEE000100D1FE001F00004400004400002000006A0000",       # AN12196 T8 (ENC, MetaRead 0, FileRead 0)
    "004000E0000100C1F121200000430000430000",                   # AN12196 T19 as GetFileSettings
    "004000E0000100C1FFE11900002C0000190000380000",             # plain UID+ctr mirror (ref 9.5)
    "004000E0000100C1FFEF1900002C0000",                         # plain mirrors without MAC (FileRead F)
    "004000E0000100E1FFE1190000FFFFFF190000380000640000",     # counter not mirrored + limit
    "004000E000010081FF2F200000",                               # UID only, encrypted, no MAC
])
def test_get_file_settings_round_trip(wire):
    settings = FileSettings.from_bytes(h(wire))
    assert settings.to_bytes() == h(wire)


def test_conditional_fields_decode_to_names():
    s = FileSettings.from_bytes(h("004000E0000100E1FFE1190000FFFFFF190000380000640000")).sdm
    assert (s.uid_offset, s.read_ctr_offset, s.picc_data_offset) == (0x19, 0xFFFFFF, None)
    assert (s.mac_input_offset, s.enc_offset, s.mac_offset, s.read_ctr_limit) == (0x19, None, 0x38, 100)
    assert s.present_fields() == ("uid_offset", "read_ctr_offset", "mac_input_offset", "mac_offset", "read_ctr_limit")


def test_access_rights_wire_order():
    rights = AccessRights(read=KEY_FREE, write=0, read_write=0, change=0)
    assert rights.to_bytes() == h("00E0") and AccessRights.from_bytes(h("3023")) == AccessRights(2, 3, 3, 0)
    with pytest.raises(ConfigError):
        AccessRights(read=7)


def test_change_bytes_t19_and_comm_mode():
    sdm = SdmSettings(options=OPT.UID | OPT.READ_CTR | OPT.ASCII, meta_read=2, file_read=1, ctr_ret=1,
                      picc_data_offset=0x20, mac_input_offset=0x43, mac_offset=0x43)
    fs = FileSettings(access=AccessRights(KEY_FREE, 0, 0, 0), sdm=sdm)
    assert fs.to_change_bytes() == h("4000E0C1F121200000430000430000")
    assert FileSettings(comm_mode=CommMode.FULL, access=AccessRights(2, 3, 3, 0)).to_change_bytes() == h("033023")


def test_encode_refuses_missing_and_stray_fields():
    with pytest.raises(ConfigError, match="mac_offset is required"):
        SdmSettings(meta_read=2, file_read=1, picc_data_offset=32, mac_input_offset=67).to_bytes()
    with pytest.raises(ConfigError, match="uid_offset is not sent"):
        SdmSettings(meta_read=2, file_read=KEY_NEVER, picc_data_offset=32, uid_offset=5).to_bytes()


def test_truncated_or_trailing_responses_are_response_errors():
    with pytest.raises(ResponseError):
        FileSettings.from_bytes(h("004000E0000100C1F121200000"))
    with pytest.raises(ResponseError):
        FileSettings.from_bytes(h("0000E0EE00010000"))


def _sdm(**kw):
    base = dict(options=OPT.UID | OPT.READ_CTR | OPT.ASCII, meta_read=2, file_read=1, ctr_ret=KEY_NEVER,
                picc_data_offset=32, mac_input_offset=67, mac_offset=67)
    base.update(kw)
    return FileSettings(access=AccessRights(KEY_FREE, 0, 0, 0), sdm=SdmSettings(**base))


@pytest.mark.parametrize("kw, message", [
    (dict(options=OPT.UID | OPT.READ_CTR), "ASCII"),
    (dict(file_read=KEY_FREE), "reserved"),
    (dict(options=OPT.ASCII, meta_read=2), "neither the UID nor the read counter"),
    (dict(meta_read=KEY_NEVER, picc_data_offset=None), "UID mirror needs meta_read"),
    (dict(options=OPT.UID | OPT.ASCII, ctr_ret=1), "ctr_ret"),
    (dict(options=OPT.UID | OPT.ENC_FILE_DATA | OPT.ASCII, enc_offset=67, enc_length=32, mac_offset=99), "both UID and counter"),
    (dict(options=OPT.UID | OPT.READ_CTR_LIMIT | OPT.ASCII, read_ctr_limit=5), "limit needs the read counter"),
    (dict(picc_data_offset=230), "PICC data must fit"),
    (dict(mac_offset=241, mac_input_offset=241), "MAC must fit"),
    (dict(mac_input_offset=68), "MAC input must start before"),
    (dict(picc_data_offset=60), "overlaps"),
    (dict(options=ENC_ALL, enc_offset=67, enc_length=40, mac_offset=120), "multiple of 32"),
    (dict(options=ENC_ALL, enc_offset=67, enc_length=32, mac_offset=90, mac_input_offset=67), "runs into the MAC"),
    (dict(options=ENC_ALL, enc_offset=67, enc_length=32, mac_offset=99, mac_input_offset=70), "not be after enc_offset"),
])
def test_validate_refuses_what_the_chip_refuses(kw, message):
    with pytest.raises(ConfigError, match=message):
        _sdm(**kw).validate()


def test_sdm_only_on_file_02():
    with pytest.raises(ConfigError, match="file 02"):
        _sdm().validate(3)
    _sdm().validate(2)
