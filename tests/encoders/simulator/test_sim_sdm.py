"""SDM / SUN mirroring of the simulated chip against published vectors (docs/reference/ntag424.md §10).

"ref §N" below is that file's §N.
"""

from __future__ import annotations

import pytest

from tagsmith.encoders.simulator import SimulatedNtag424

READ_ALL = "90AD0000070200000000000000"


def _t3_chip(kit, *, ctr: int = 60, extra_options: int = 0, limit: int | None = None, random=None):
    """AN12196 T3/T5: https://ntag.nxp.com/424?e=<PICC 32>&c=<MAC 16>, zero keys, empty MAC input."""
    ndef = kit.ndef_uri("ntag.nxp.com/424?e=" + "0" * 32 + "&c=" + "0" * 16)
    picc, mac = kit.offsets(ndef, "e=", "c=")
    options = 0xC1 | extra_options
    settings = bytes([0x40]) + kit.h("E0EE") + bytes([options]) + kit.h("FF00") + \
        kit.le3(picc) + kit.le3(mac) + kit.le3(mac) + (kit.le3(limit) if limit is not None else b"")
    chip = SimulatedNtag424(uid=kit.h("04DE5F1EACC040"), files={2: ndef}, file_settings={2: settings},
                            sdm_read_ctr=ctr, random=random or kit.feed("DA5CF60941"))
    return chip, ndef


def _url(data: bytes) -> str:
    return data[7:data[0] * 256 + data[1] + 2].decode("ascii")


def test_t3_t5_encrypted_picc_data_and_mac_via_readdata(ntag_vectors, kit):
    vec = ntag_vectors["an12196-t3-t5-sun-encrypted-piccdata-empty-mac-input"]
    chip, _ = _t3_chip(kit)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    data, sw = pcd.send(READ_ALL)
    assert sw == 0x9100
    assert "https://" + _url(data) == vec["inputs"]["url"]
    assert chip.view.read_counter == 61


def test_t3_t5_via_iso_read_binary_like_a_phone(ntag_vectors, kit):
    vec = ntag_vectors["an12196-t3-t5-sun-encrypted-piccdata-empty-mac-input"]
    chip, ndef = _t3_chip(kit)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.send("00A4000C02E10300") == (b"", 0x9000)
    cc, sw = pcd.send("00B000000F")
    assert sw == 0x9000 and cc == kit.h("001720010000FF0406E10401000000")
    assert pcd.send("00A4000C02E10400") == (b"", 0x9000)
    nlen, sw = pcd.send("00B0000002")
    assert sw == 0x9000 and nlen == ndef[:2]
    assert chip.view.read_counter == 61  # the first read moved it
    body, sw = pcd.send("00B00002" + f"{len(ndef) - 2:02X}")
    assert sw == 0x9000
    assert chip.view.read_counter == 61  # same command type: same counter, same padding
    assert "https://" + body[5:].decode() == vec["inputs"]["url"]


def test_t6_encrypted_file_data_and_mac_window(ntag_vectors, kit):
    vec = ntag_vectors["an12196-t6-sun-mac-with-input"]
    ndef = kit.ndef_uri("my424dna.com/?picc_data=" + "0" * 32 + "&enc=" + "x" * 32 + "&cmac=" + "0" * 16, 0x02)
    settings = kit.h("40EEEE" "D1FE00" "1F0000" "440000" "440000" "200000" "6A0000")
    chip = SimulatedNtag424(uid=kit.h("04958CAA5C5E80"), files={2: ndef}, file_settings={2: settings},
                            sdm_read_ctr=7, random=kit.feed("A243C86DFC"))
    pcd = kit.Pcd(chip)
    pcd.select_app()
    data, sw = pcd.send(READ_ALL)
    assert sw == 0x9100
    assert "https://www." + _url(data) == vec["inputs"]["url"]
    # GetFileCounters is free (CtrRet E): counter 8, LSB first, then 0000
    assert pcd.send("90F600000102 00".replace(" ", "")) == (kit.h("0800000000"), 0x9100)


def test_plain_uid_and_counter_mirror(ntag_vectors, kit):
    vec = ntag_vectors["sdm-backend-plain-uid-ctr-mirror"]
    ndef = kit.ndef_uri("example.com/u?uid=" + "0" * 14 + "&ctr=" + "0" * 6 + "&cmac=" + "0" * 16)
    uid_off, ctr_off, mac_off = kit.offsets(ndef, "uid=", "ctr=", "cmac=")
    settings = kit.h("40E0EE" "C1" "FFE0") + kit.le3(uid_off) + kit.le3(ctr_off) + kit.le3(mac_off) * 2
    chip = SimulatedNtag424(uid=kit.h(vec["inputs"]["uid_ascii"]), files={2: ndef},
                            file_settings={2: settings}, sdm_read_ctr=5)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    data, sw = pcd.send(READ_ALL)
    url = _url(data)
    assert f"uid={vec['inputs']['uid_ascii']}&ctr=000006&cmac={vec['expected']['sdmmac_truncated']}" in url


def test_counter_moves_once_per_first_read_and_not_when_authenticated(kit):
    chip, _ = _t3_chip(kit, ctr=0, random=kit.feed())
    pcd = kit.Pcd(chip)
    pcd.select_app()
    first, _ = pcd.send(READ_ALL)
    assert chip.view.read_counter == 1
    again, _ = pcd.send(READ_ALL)
    assert chip.view.read_counter == 1 and again == first  # same command type: reused, same padding
    assert pcd.send("90F50000010200")[1] == 0x9100  # any other command ends the "first read"
    third, _ = pcd.send(READ_ALL)
    assert chip.view.read_counter == 2 and third != first
    assert pcd.send("00A4000C02E10400")[1] == 0x9000
    pcd.send("00B0000002")
    assert chip.view.read_counter == 3  # switching command type is a new first read
    pcd.send("00B0000210")
    assert chip.view.read_counter == 3
    # authenticated: static file, no counter movement
    assert pcd.auth(0) == 0x9100
    data, sw = pcd.cmd(0xAD, kit.h("02000000000000"), mode="plain")
    assert sw == 0x9100 and chip.view.read_counter == 3
    assert data[:chip.view.file_contents(2)[1] + 2] == chip.view.file_contents(2)[: chip.view.file_contents(2)[1] + 2]
    assert b"0" * 32 in data


def test_read_counter_limit(kit):
    chip, _ = _t3_chip(kit, ctr=0, extra_options=0x20, limit=2, random=kit.feed())
    pcd = kit.Pcd(chip)
    pcd.select_app()
    for expected in (1, 2):
        assert pcd.send(READ_ALL)[1] == 0x9100
        pcd.send("90F50000010200")
        assert chip.view.read_counter == expected
    assert pcd.send(READ_ALL) == (b"", 0x919D)
    pcd.send("00A4000C02E10400")
    assert pcd.send("00B0000002") == (b"", 0x6982)
    assert chip.view.read_counter == 2
    # an authenticated read still works
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0xAD, kit.h("02000000100000"), mode="plain")[1] == 0x9100


def test_enabling_sdm_resets_the_counter_and_limit_must_exceed_it(kit):
    chip, _ = _t3_chip(kit, ctr=40, random=kit.feed())
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.auth(0) == 0x9100
    body = chip.view.file_settings(2).change_body()
    assert pcd.cmd(0x5F, b"\x02", body)[1] == 0x9100
    assert chip.view.read_counter == 0
    assert pcd.auth(0) == 0x9100
    limited = bytearray(body)
    limited[3] |= 0x20
    assert pcd.cmd(0x5F, b"\x02", bytes(limited) + kit.le3(0))[1] == 0x919E
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x02", bytes(limited) + kit.le3(1))[1] == 0x9100


def test_get_file_counters_rights(kit):
    chip, _ = _t3_chip(kit, ctr=3, random=kit.feed())  # CtrRet F
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.send("90F60000010200")[1] == 0x919D  # CtrRet F: never returned (ref §7)
    assert pcd.send("90F60000010100")[1] == 0x919D  # no SDM on file 01
    assert pcd.send("90F60000010900")[1] == 0x91F0
    body = bytearray(chip.view.file_settings(2).change_body())
    body[4] = 0xF1  # CtrRet key 1
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x02", bytes(body))[1] == 0x9100
    assert pcd.auth(1) == 0x9100
    assert pcd.cmd(0xF6, b"\x02") == (kit.h("0000000000"), 0x9100)


@pytest.mark.parametrize("ctr", [0, 0xFFFFFE])
def test_counter_saturates(kit, ctr):
    chip, _ = _t3_chip(kit, ctr=ctr, random=kit.feed())
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.send(READ_ALL)[1] == 0x9100
    pcd.send("90F50000010200")
    expected = 0x9100 if ctr == 0 else 0x919D
    assert pcd.send(READ_ALL)[1] == expected


def test_mac_session_key_takes_only_what_is_mirrored(kit):
    """SV2 carries the UID and counter only when they are mirrored (ref §10.3): a counter that is
    enabled but not mirrored (offset FFFFFF) stays out, or no verifier could rebuild the key."""
    from Crypto.Cipher import AES
    from Crypto.Hash import CMAC

    uid = kit.h("04A1B2C3D4E5F6")
    ndef = kit.ndef_uri("example.com/u?uid=" + "0" * 14 + "&cmac=" + "0" * 16)
    uid_off, mac_off = kit.offsets(ndef, "uid=", "cmac=")
    settings = kit.h("40E0EE" "C1" "FFE0") + kit.le3(uid_off) + kit.h("FFFFFF") + kit.le3(mac_off) * 2
    chip = SimulatedNtag424(uid=uid, files={2: ndef}, file_settings={2: settings}, sdm_read_ctr=41)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    url = _url(pcd.send(READ_ALL)[0])
    sv2 = kit.h("3CC300010080") + uid + bytes(3)  # UID only, zero-padded to 16
    session_mac_key = CMAC.new(bytes(16), msg=sv2, ciphermod=AES).digest()
    mact = CMAC.new(session_mac_key, msg=b"", ciphermod=AES).digest()[1::2]
    assert url.endswith(f"uid={uid.hex().upper()}&cmac={mact.hex().upper()}")
