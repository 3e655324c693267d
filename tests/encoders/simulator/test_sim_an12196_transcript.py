"""Replay AN12196's walk-through (docs/reference/ntag424.md §16) against the simulated chip, byte for byte.

T14 EV2First key 0 -> T18 WriteData NDEF (Full) -> T19 ChangeFileSettings -> T20 EV2First key 3
-> T21 ISOSelect E105 -> T22 WriteData file 03 -> T23 ISOSelect DF -> T24 EV2NonFirst key 0
-> T25 WriteData CC (plain, counts) -> T26 ChangeKey 2 -> T27 ChangeKey 0 (bare 9100).

The chip is fed the published RndB and TI values through ``random=``. T18 writes file 02 in
CommMode.Full with key 0, which the factory settings (Plain, Write = E) cannot give: under
E-only access the chip uses CommMode.Plain (ref §4.1), so the AN's tag evidently had file 02
in Full mode with Write = key 0 beforehand. The chip starts in that state (``0300E0``).
"""

from __future__ import annotations

from tagsmith.encoders.simulator import SimulatedNtag424


def _hx(data: bytes, sw: int) -> str:
    return data.hex().upper() + f"{sw:04X}"


def test_an12196_personalisation_transcript(ntag_vectors, kit):
    v = ntag_vectors
    t14, t18, t19 = v["an12196-t14-authenticate-ev2-first-key0"], v["an12196-t18-writedata-full-ndef"], \
        v["an12196-t19-changefilesettings-sdm"]
    t20, t22, t24 = v["an12196-t20-authenticate-ev2-first-key3"], v["an12196-t22-writedata-full-file03"], \
        v["an12196-t24-authenticate-ev2-nonfirst-key0"]
    t25, t26, t27 = v["an12196-t25-writedata-cc-plain"], v["an12196-t26-changekey-key2"], \
        v["an12196-t27-changekey-key0"]
    ndef = v["an12196-t15-t17-ndef-template-and-offsets"]["expected"]["ndef_file_bytes"]

    chip = SimulatedNtag424(
        uid=kit.h("04958CAA5C5E80"),
        file_settings={2: kit.h("0300E0")},
        random=kit.feed(t14["expected"]["rnd_b"], t14["expected"]["ti"],
                        t20["expected"]["rnd_b"], t20["expected"]["ti"],
                        t24["expected"]["rnd_b"]),
    )
    pcd = kit.Pcd(chip)

    def step(c_apdu: str, r_apdu: str) -> None:
        assert _hx(*pcd.send(c_apdu)) == r_apdu.upper()

    pcd.select_app()
    # T14 AuthenticateEV2First key 0
    step(t14["inputs"]["c_apdu_part1"], t14["inputs"]["r_apdu_part1"])
    step(t14["expected"]["c_apdu_part2"], t14["expected"]["r_apdu_part2"])
    assert chip.view.authenticated_key == 0 and chip.view.cmd_ctr == 0
    # T18 WriteData file 02, Full, CmdCtr 0
    t18_apdu = "908D00009F" + t18["inputs"]["cmd_header"] + t18["expected"]["ciphertext"] + \
        t18["expected"]["mact"] + "00"
    step(t18_apdu, t18["expected"]["response_mact"] + "9100")
    assert chip.view.file_contents(2)[:83] == kit.h(ndef) and chip.view.file_contents(2)[83:128] == bytes(45)
    # T19 ChangeFileSettings, CmdCtr 1
    step(t19["expected"]["c_apdu"], t19["expected"]["r_apdu"])
    assert chip.view.file_settings_bytes(2) == kit.h("0040" "00E0" "000100" "C1F121200000430000430000")
    assert chip.view.read_counter == 0
    # T20 AuthenticateEV2First key 3
    step(t20["inputs"]["c_apdu_part1"], t20["inputs"]["r_apdu_part1"])
    step(t20["expected"]["c_apdu_part2"], t20["expected"]["r_apdu_part2"])
    # T21 ISOSelect E105: ISO commands do not move CmdCtr and keep the session
    step("00A4000C02E10500", "9000")
    assert chip.view.authenticated_key == 3 and chip.view.cmd_ctr == 0
    # T22 WriteData file 03, Full, CmdCtr 0
    step(t22["expected"]["c_apdu"], t22["expected"]["r_apdu"])
    assert chip.view.file_contents(3)[:10] == kit.h("0102030405060708090A")
    # T23 ISOSelect the application again; the authentication survives
    step("00A4040C07D276000085010100", "9000")
    # T24 AuthenticateEV2NonFirst key 0: TI and CmdCtr kept
    step(t24["inputs"]["c_apdu_part1"], t24["inputs"]["r_apdu_part1"])
    step(t24["expected"]["c_apdu_part2"], t24["expected"]["r_apdu_part2"])
    assert chip.view.authenticated_key == 0 and chip.view.cmd_ctr == 1
    # T25 WriteData CC file in plain: still counts (1 -> 2)
    step(t25["expected"]["c_apdu"], t25["expected"]["r_apdu"])
    assert chip.view.cmd_ctr == 2 and chip.view.file_contents(1)[0x0E] == 0xFF
    # T26 ChangeKey 2 (CmdCtr 2)
    step(t26["expected"]["c_apdu"], t26["expected"]["r_apdu"])
    # T27 ChangeKey 0 (CmdCtr 3): bare 9100 and the session is over
    step(t27["expected"]["c_apdu"], t27["expected"]["r_apdu"])
    assert chip.view.authenticated_key is None
    assert chip.view.key_versions == (1, 0, 1, 0, 0)
    assert chip.view.key(2) == kit.h(t26["inputs"]["new_key"])
    assert chip.view.key(0) == kit.h(t27["inputs"]["new_key"])
    # the new key 0 authenticates, the old one does not
    assert pcd.auth(0, kit.ZERO) == 0x91AE
    assert pcd.auth(0, kit.h(t27["inputs"]["new_key"])) == 0x9100


def test_an12196_t8_getfilesettings_mac_response_from_the_chip(ntag_vectors, kit):
    """The T8 settings (file 02 with encrypted PICCData + ENC + MAC) encode byte for byte."""
    t8 = ntag_vectors["an12196-t8-getfilesettings-commmode-mac"]
    body = kit.h("40EEEE" "D1FE00" "1F0000" "440000" "440000" "200000" "6A0000")
    chip = SimulatedNtag424(file_settings={2: body})
    expected = t8["expected"]["r_apdu"][: -len("2A474282E7A47986") - 4]
    assert chip.view.file_settings_bytes(2).hex().upper() == expected


def test_an12196_t13_getversion_structure(ntag_vectors, kit):
    chip = SimulatedNtag424(uid=kit.h("04968CAA5C5E80"))
    pcd = kit.Pcd(chip)
    part1, sw1 = pcd.send("9060000000")
    part2, sw2 = pcd.send("90AF000000")
    part3, sw3 = pcd.send("90AF000000")
    assert (sw1, sw2, sw3) == (0x91AF, 0x91AF, 0x9100)
    assert len(part1) == 7 and len(part2) == 7 and len(part3) == 14
    assert part1[0] == 0x04 and part1[1] == 0x04 and part1[3] == 0x30 and part1[5] == 0x11 and part1[6] == 0x05
    assert part1[2] == 0x02  # standard NTAG 424 DNA
    assert part2[:4] == kit.h("04040201") and part2[5:] == kit.h("1105")
    assert part3[:7] == chip.uid
    tt = SimulatedNtag424(tag_tamper=True)
    assert tt.transceive(kit.h("9060000000"))[0][2] == 0x08
