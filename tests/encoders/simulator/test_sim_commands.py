"""Factory state, selection, access rights, secure messaging and the errors a real chip returns.

"ref §N" below is docs/reference/ntag424.md §N.
"""

from __future__ import annotations

import pytest

from tagsmith.encoders.simulator import SimulatedNtag424


@pytest.fixture
def chip():
    return SimulatedNtag424(uid=bytes.fromhex("04112233445566"))


@pytest.fixture
def pcd(chip, kit):
    p = kit.Pcd(chip)
    p.select_app()
    return p


def test_factory_file_settings_and_contents(chip, pcd, kit):
    assert pcd.send("90F50000010100") == (kit.h("000000E0200000"), 0x9100)
    assert pcd.send("90F50000010200") == (kit.h("0000E0EE000100"), 0x9100)
    assert pcd.send("90F50000010300") == (kit.h("00033023800000"), 0x9100)
    assert pcd.send("90F50000010400") == (b"", 0x91F0)
    cc, sw = pcd.send("90AD0000070100000000000000")
    assert sw == 0x9100 and cc == kit.h("001720010000FF0406E104010000000506E10500808283") + bytes(9)
    assert pcd.send("90AD0000070200000000000000") == (bytes(256), 0x9100)
    assert pcd.send("90AD0000070300000000000000") == (b"", 0x91AE)  # Read = key 2
    for k in range(5):
        assert pcd.send(f"90640000010{k}00") == (b"\x00", 0x9100)
    assert pcd.send("90640000010500") == (b"", 0x9140)


def test_picc_level_after_activation_and_dfname_selection(chip, kit):
    pcd = kit.Pcd(chip)
    assert chip.view.selected == "picc"
    assert pcd.send("9071000002000000") == (b"", 0x919D)
    assert pcd.send("9051000000") == (b"", 0x91AE)  # GetCardUID: not authenticated (ref §2.2)
    assert pcd.send("9060000000")[1] == 0x91AF  # GetVersion works anywhere
    assert pcd.send("90AF000000")[1] == 0x91AF
    assert pcd.send("90AF000000")[1] == 0x9100
    assert pcd.send("00A4040C07D276000085010000")[1] == 0x9000  # PICC DF name
    assert pcd.send("00A4000C02E10400") == (b"", 0x6A82)  # no files at PICC level
    assert pcd.send("00A4000C02E11000")[1] == 0x9000  # application by FID E110
    assert chip.view.selected == "app"
    assert pcd.send("00A4040C07D276000085019900") == (b"", 0x6A82)
    assert pcd.send("00A4000C02E10600") == (b"", 0x6A82)


def test_framing_errors(pcd):
    assert pcd.send("80600000 00".replace(" ", "")) == (b"", 0x6E00)
    assert pcd.send("9099000000") == (b"", 0x911C)
    assert pcd.send("00CA000000") == (b"", 0x6D00)
    assert pcd.send("90AF000000") == (b"", 0x911C)  # nothing to continue
    assert pcd.send("90F5000005020000") == (b"", 0x917E)  # Lc says 5, 2 bytes follow
    assert pcd.send("00B0000010") == (b"", 0x6985)  # no file selected


def test_wrong_key_is_91AE_and_counts(chip, pcd, kit):
    assert pcd.auth(0, bytes(range(16))) == 0x91AE
    assert chip.view.tot_fail_counters[0] == 1 and chip.view.consecutive_failures[0] == 1
    assert pcd.auth(0) == 0x9100
    assert chip.view.tot_fail_counters[0] == 0 and chip.view.consecutive_failures[0] == 0


def test_auth_errors(pcd, kit):
    assert pcd.send("9071000002050000") == (b"", 0x9140)
    assert pcd.send("9071000002400000") == (b"", 0x919E)
    assert pcd.send("90710000010000") == (b"", 0x917E)
    assert pcd.send("90770000010000") == (b"", 0x919D)  # NonFirst needs a session (DS T33: 9D)
    assert pcd.send("9071000002000000")[1] == 0x91AF
    assert pcd.send("90AF00001000112233445566778899AABBCCDDEEFF00") == (b"", 0x917E)
    assert pcd.send("9071000002000000")[1] == 0x91AF
    assert pcd.send("90F50000010200") == (b"", 0x91CA)  # part 2 awaited
    assert pcd.send("90AF000000") == (b"", 0x911C)


def test_lcap_pcdcap2_is_echoed(chip, pcd, kit):
    from Crypto.Cipher import AES
    data, sw = pcd.send("9071000005000300000000")  # LenCap 3 as the Bolt Card app sends
    rnd_b = AES.new(bytes(16), AES.MODE_CBC, iv=bytes(16)).decrypt(data)
    rnd_a = bytes(range(16))
    part2 = AES.new(bytes(16), AES.MODE_CBC, iv=bytes(16)).encrypt(rnd_a + rnd_b[1:] + rnd_b[:1])
    data, sw = pcd.send(kit.native(0xAF, part2))
    plain = AES.new(bytes(16), AES.MODE_CBC, iv=bytes(16)).decrypt(data)
    assert sw == 0x9100 and plain[4:20] == rnd_a[1:] + rnd_a[:1] and plain[20:32] == bytes(12)


def test_mac_mode_and_counter(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0xF5, b"\x02", mode="mac") == (kit.h("0000E0EE000100"), 0x9100)
    assert pcd.cmd(0x64, b"\x00", mode="mac") == (b"\x00", 0x9100)
    assert chip.view.cmd_ctr == 2
    assert pcd.send("00A4000C02E10400")[1] == 0x9000  # ISO: no count
    assert chip.view.cmd_ctr == 2
    # plain WriteData to the CC file (Plain, Write = 0) counts too
    assert pcd.cmd(0x8D, kit.h("010E0000010000"), b"\x00", mode="plain") == (b"", 0x9100)
    assert chip.view.cmd_ctr == 3
    uid, sw = pcd.cmd(0x51)
    assert sw == 0x9100 and uid == chip.uid
    # GetVersion in MAC mode: MAC over the three parts, returned with the last
    assert pcd.send(pcd.build(0x60, mode="mac"))[1] == 0x91AF
    p2, _ = pcd.send("90AF000000")
    p3, sw = pcd.send("90AF000000")
    assert sw == 0x9100 and len(p3) == 14 + 8 and chip.view.cmd_ctr == 5


def test_bad_mac_ends_session(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    apdu = bytearray(pcd.build(0xF5, b"\x02", mode="mac"))
    apdu[-2] ^= 1
    assert pcd.send(bytes(apdu)) == (b"", 0x911E)
    assert chip.view.authenticated_key is None
    assert pcd.cmd(0xF5, b"\x02", mode="mac") == (b"", 0x917E)  # unauthenticated: plain expected


def test_padding_error_is_911E(chip, pcd, kit):
    from Crypto.Cipher import AES
    assert pcd.auth(0) == 0x9100
    iv = pcd._iv("A55A", pcd.ctr)
    crypt = AES.new(pcd.k_enc, AES.MODE_CBC, iv=iv).encrypt(bytes(16))  # no 80 marker
    from Crypto.Hash import CMAC
    mac = CMAC.new(pcd.k_mac, msg=b"\x5F" + pcd.ctr.to_bytes(2, "little") + pcd.ti + b"\x02" + crypt,
                   ciphermod=AES).digest()[1::2]
    assert pcd.send(kit.native(0x5F, b"\x02" + crypt + mac)) == (b"", 0x911E)


def test_any_error_ends_authentication(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x8D, kit.h("01F00000010000"), b"\x00", mode="plain") == (b"", 0x91BE)
    assert chip.view.authenticated_key is None


def test_iso_read_and_update_refused_when_authenticated(chip, pcd, kit):
    assert pcd.send("00A4000C02E10400")[1] == 0x9000
    assert pcd.send("00D6000003D00000")[1] == 0x9000
    assert pcd.auth(0) == 0x9100
    assert pcd.send("00B0000002") == (b"", 0x6982)
    assert chip.view.authenticated_key is None  # an error ends the authentication
    assert pcd.auth(0) == 0x9100
    assert pcd.send("00D60000020000") == (b"", 0x6982)


def test_iso_access_rules(chip, pcd, kit):
    assert pcd.send("00B0830008") == (b"", 0x6982)  # short FID 03: Read = key 2
    data, sw = pcd.send("00B0810002")  # short FID 01 (CC), free read
    assert (data, sw) == (kit.h("0017"), 0x9000) and chip.view.selected_file == 1
    assert pcd.send("00D6000002AABB") == (b"", 0x6982)  # CC: Write = key 0
    assert pcd.send("00B0A10002") == (b"", 0x6A86)  # P1 bits 6..5 must be 0 in the short-FID form
    assert pcd.send("00A4000C02E10400")[1] == 0x9000
    assert pcd.send("00D600FF02AABB") == (b"", 0x6A87)  # past the end
    assert pcd.send("00B0010000") == (b"", 0x6A86)  # offset 256
    data, sw = pcd.send("00B000F020")  # Le past the end: the rest of the file (DS T87)
    assert sw == 0x9000 and len(data) == 16
    data, sw = pcd.send("00B000F000")
    assert sw == 0x9000 and len(data) == 16
    assert pcd.send("00B0800002") == (b"\x00\x00", 0x9000)  # short FID 00: the selected file
    assert pcd.send("00B09F0002") == (b"", 0x6A86)  # short FID 1F is RFU
    assert pcd.send("00D6000002AABB") == (b"", 0x9000)
    assert chip.view.file_contents(2)[:2] == kit.h("AABB")


def test_write_past_end_and_lengths(chip, pcd, kit):
    assert pcd.send("908D00000902FF000002000011 22 00".replace(" ", "")) == (b"", 0x91BE)
    assert pcd.send("908D000009020000000300001122 00".replace(" ", "")) == (b"", 0x917E)
    assert pcd.send("908D0000090200000002000011 22 00".replace(" ", "")) == (b"", 0x9100)
    assert chip.view.file_contents(2)[:2] == b"\x11\x22"
    assert pcd.send("90AD0000070200010000000000") == (b"", 0x91BE)
    assert pcd.send("90AD00000702F000002000 00".replace(" ", "")) == (b"", 0x91BE)
    assert pcd.send("90AD0000070100000000000000")[1] == 0x9100
    assert pcd.send("908D000008010000000100000000") == (b"", 0x91AE)  # CC Write = key 0


def test_full_mode_file_03_with_its_keys(chip, pcd, kit):
    assert pcd.auth(3) == 0x9100
    assert pcd.cmd(0x8D, kit.h("03000000100000"), bytes(range(16))) == (b"", 0x9100)
    assert pcd.cmd(0xAD, kit.h("03000000100000")) == (bytes(range(16)), 0x9100)  # RW = 3 grants read
    assert pcd.auth(1) == 0x9100
    assert pcd.cmd(0xAD, kit.h("03000000100000")) == (b"", 0x91AE)
    assert pcd.auth(2) == 0x9100
    assert pcd.cmd(0xAD, kit.h("03000000100000")) == (bytes(range(16)), 0x9100)
    assert pcd.cmd(0xAD, kit.h("03000000000000"))[0][:16] == bytes(range(16))


def test_changekey_rules(chip, pcd, kit):
    new = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    assert pcd.send(kit.native(0xC4, b"\x01" + bytes(40))) == (b"", 0x91AE)  # unauthenticated
    assert pcd.auth(1) == 0x9100
    assert pcd.change_key(1, new, 1) == (b"", 0x91AE)  # only key 0 may change keys
    assert pcd.auth(3) == 0x9100
    assert pcd.change_key(1, new, 1) == (b"", 0x91AE)
    assert pcd.auth(0) == 0x9100
    assert pcd.change_key(1, new, 1, old=bytes([1]) * 16) == (b"", 0x911E)  # wrong old key: CRC
    assert pcd.auth(0) == 0x9100
    assert pcd.change_key(1, new, 7) == (b"", 0x9100)
    assert chip.view.key_versions == (0, 7, 0, 0, 0) and chip.view.key(1) == new
    assert pcd.cmd(0x64, b"\x01", mode="mac") == (b"\x07", 0x9100)
    assert pcd.change_key(0, new, 2) == (b"", 0x9100)
    assert chip.view.authenticated_key is None
    assert pcd.auth(0, new) == 0x9100
    assert pcd.send(pcd.build(0xC4, b"\x05", bytes(17))) == (b"", 0x9140)
    assert pcd.send(kit.native(0x64, b"\x01")) == (b"\x07", 0x9100)  # unauthenticated: plain


def test_change_file_settings_checks(chip, pcd, kit):
    le3 = kit.le3
    assert pcd.send(kit.native(0x5F, kit.h("0200E0EE"))) == (b"", 0x91AE)  # Change = key 0
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x01", kit.h("4000E0C1FF00") + le3(0) + le3(32) + le3(32)) == (b"", 0x919D)
    cases = [
        kit.h("40E0EEC1FF00") + le3(0) + le3(20) + le3(20),        # MAC overlaps PICCData
        kit.h("40E0EEC1FF00") + le3(240) + le3(0) + le3(0),        # PICCData past the end
        kit.h("40E0EE91FF00") + le3(0) + le3(40) + le3(40) + le3(32) + le3(80),  # ENC without ctr
        kit.h("40E0EEC1F100") + le3(0) + le3(40) + le3(300),       # MAC offset past the end
        kit.h("40E0EEA1FF0F") + le3(0) + le3(5),                   # limit without the counter
        kit.h("40E0EEC0FF00") + le3(0) + le3(40) + le3(40),        # ASCII bit missing
        kit.h("40E0EEC1FFF0") + le3(0) + le3(40),                  # MetaRead F while UID on
        kit.h("40E0EEC1FF0E") + le3(0) + le3(40) + le3(40),        # FileRead E is RFU
        kit.h("40E0EE41F1FF"),                                     # counter on, not mirrored: fine
        kit.h("40E0EE81F1E0") + le3(0) + le3(20) + le3(20),        # CtrRet set but counter off
    ]
    expected = [0x919E, 0x919E, 0x919E, 0x919E, 0x919E, 0x919E, 0x919E, 0x919E, 0x9100, 0x919E]
    for body, sw in zip(cases, expected, strict=True):
        assert pcd.auth(0) == 0x9100
        assert pcd.cmd(0x5F, b"\x02", body)[1] == sw, body.hex()
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x02", kit.h("00E0EE00"))[1] == 0x917E  # trailing byte
    assert pcd.auth(0) == 0x9100
    # Change right F locks the settings for good
    assert pcd.cmd(0x5F, b"\x03", kit.h("033F23"))[1] == 0x9100
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x03", kit.h("033023"))[1] == 0x919D


def test_change_file_settings_plain_when_change_is_free(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x03", kit.h("033E23"))[1] == 0x9100  # Change := E
    assert pcd.cmd(0x5F, b"\x03", kit.h("013E23"), mode="plain") == (b"", 0x9100)  # plain, counts
    assert chip.view.cmd_ctr == 2
    chip.place()
    pcd.select_app()
    assert pcd.send(kit.native(0x5F, kit.h("03" "003EEE"))) == (b"", 0x9100)  # unauthenticated
    assert chip.view.file_settings_bytes(3) == kit.h("00003EEE800000")


def test_set_configuration(chip, pcd, kit):
    assert pcd.send(kit.native(0x5C, bytes(17))) == (b"", 0x91AE)
    assert pcd.auth(1) == 0x9100
    assert pcd.cmd(0x5C, b"\x00", b"\x02") == (b"", 0x91AE)  # key 0 only
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x00", b"\x02\x00") == (b"", 0x917E)
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x07", b"\x00") == (b"", 0x919E)
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x0A", kit.h("01000000 00".replace(" ", ""))) == (b"", 0x919E)  # limit 0
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x00", b"\x02") == (b"", 0x9100)  # Random ID
    # ISO 14443 parameters change at the next power-up, not within this activation (ref §12)
    assert chip.view.random_id and chip.view.atqa == bytes.fromhex("0344") and chip.view.anticollision_uid == chip.uid
    assert pcd.cmd(0x51) == (chip.uid, 0x9100)  # GetCardUID still gives the real UID
    chip.place()
    assert chip.view.atqa == bytes.fromhex("0304") and len(chip.view.anticollision_uid) == 4
    pcd.select_app()
    pcd.send("9060000000")
    pcd.send("90AF000000")
    part3, _ = pcd.send("90AF000000")
    assert part3[:7] == bytes(7)
    assert pcd.send("903C0000010000") == (b"", 0x91AE)  # Read_Sig needs auth with Random ID
    assert pcd.auth(0) == 0x9100
    sig, sw = pcd.cmd(0x3C, b"\x00")
    assert sw == 0x9190 and len(sig) == 56


def test_lrp_switch_refuses_aes_auth_and_switches_sdm_off(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    sdm = kit.h("40 E0EE C1 FFE1 100000 300000 400000 400000".replace(" ", ""))  # plain UID + counter, MAC
    assert pcd.cmd(0x5F, b"\x02", sdm)[1] == 0x9100
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x05", kit.h("00000000020000000000")) == (b"", 0x9100)
    assert chip.view.lrp
    assert chip.view.file_settings(2).sdm is None  # SDM/mirroring is disabled with LRP (ref §5.4)
    chip.place()
    pcd.select_app()
    assert pcd.send("9071000002000000") == (b"", 0x919D)


def test_read_data_response_must_fit(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x02", kit.h("03E0EE"))[1] == 0x9100  # Full mode, RW = E
    assert pcd.cmd(0x5F, b"\x02", kit.h("0300E0"))[1] == 0x9100  # Full mode, RW = 0
    assert pcd.cmd(0xAD, kit.h("02000000000000")) == (b"", 0x917E)  # 256 bytes + SM > 256
    assert pcd.auth(0) == 0x9100
    data, sw = pcd.cmd(0xAD, kit.h("02000000E00000"))
    assert sw == 0x9100 and len(data) == 224


def test_iso_command_during_a_multi_pass_native_exchange_is_6985(pcd):
    assert pcd.send("9071000002000000")[1] == 0x91AF  # auth part 1: part 2 awaited
    assert pcd.send("00A4000C02E10400") == (b"", 0x6985)  # ref §2.2: multi-pass command ongoing
    assert pcd.send("90AF" + "00" * 2 + "20" + "00" * 33) == (b"", 0x911C)  # the exchange is gone
    assert pcd.send("9060000000")[1] == 0x91AF  # GetVersion part 1
    assert pcd.send("00B0810002") == (b"", 0x6985)
    assert pcd.send("90AF000000") == (b"", 0x911C)


def test_iso_select_mf_and_child_df_forms(chip, kit):
    pcd = kit.Pcd(chip)
    assert pcd.send("00A4010C02E11000")[1] == 0x9000  # child DF E110 of the MF
    assert chip.view.selected == "app"
    assert pcd.send("00A4030C") == (b"", 0x9000)  # parent DF: back to the PICC level
    assert chip.view.selected == "picc"
    pcd.select_app()
    assert pcd.send("00A4000C") == (b"", 0x9000)  # MF by empty data
    assert chip.view.selected == "picc"
    assert pcd.send("00A4010C02E10400") == (b"", 0x6A82)  # E104 is not a DF


def test_files_nobody_may_read_or_write_are_9D(chip, pcd, kit):
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x03", kit.h("00FFFF"))[1] == 0x9100  # file 03: every right F, Change F
    assert pcd.send("90AD0000070300000000000000") == (b"", 0x919D)  # DS T80
    assert pcd.send("908D0000080300000001000011 00".replace(" ", "")) == (b"", 0x919D)  # DS T83
    assert pcd.send("90AD0000070100000000000000")[1] == 0x9100  # CC still readable
    assert pcd.send("908D0000080100000001000011 00".replace(" ", "")) == (b"", 0x91AE)  # key 0 could


def test_back_modulation_shows_in_getversion_after_power_up(chip, pcd, kit):
    assert pcd.send("9060000000") == (kit.h("04040230001105"), 0x91AF)  # default: strong (high nibble 0)
    pcd.send("90AF000000")
    pcd.send("90AF000000")
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x0B", b"\x00") == (b"", 0x9100)  # standard back modulation
    assert pcd.send("9099000000")[1] == 0x911C  # an error ends the session: GetVersion goes plain again
    assert pcd.send("9060000000")[0][2] == 0x02  # not before the next power-up
    chip.place()
    assert pcd.send("9060000000") == (kit.h("04048230001105"), 0x91AF)  # DS T54: 8X standard
