"""Replay NXP's AN12196 worked examples byte for byte through Ntag424Session and a scripted connection."""

from __future__ import annotations

import pytest

from tagsmith import ConfigError
from tagsmith.encoders.ntag424 import CommMode, Ev2Channel, Ntag424Session, compile_template, errors, verify_originality
from tagsmith.encoders.ntag424.originality import Signer


class Scripted:
    """A Connection that asserts each expected C-APDU and answers with the published R-APDU."""

    def __init__(self, *exchanges: tuple[str, str]) -> None:
        self.script = [(c.replace(" ", "").upper(), r.replace(" ", "").upper()) for c, r in exchanges]
        self.sent: list[bytes] = []

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        assert self.script, f"unexpected extra APDU {apdu.hex().upper()}"
        expected, response = self.script.pop(0)
        assert apdu.hex().upper() == expected
        raw = bytes.fromhex(response)
        return raw[:-2], int.from_bytes(raw[-2:], "big")

    def done(self) -> bool:
        return not self.script


class AlwaysOk:
    """A Connection that records APDUs and answers every one with 9100."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        return b"", 0x9100


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def fixed(rnd: str):
    return lambda n: h(rnd)


def open_channel(session: Ntag424Session, v: dict, key_no: int = 0) -> None:
    """Put a published session (TI, keys, CmdCtr) into a session, as if it had authenticated."""
    i = v["inputs"]
    session._channel = Ev2Channel(ti=h(i["ti"]), enc_key=h(i.get("k_ses_auth_enc", "00" * 16)),
                                     mac_key=h(i["k_ses_auth_mac"]), cmd_ctr=i["cmd_ctr"])
    session._key_no = key_no


def auth_exchanges(v: dict) -> list[tuple[str, str]]:
    return [(v["inputs"]["c_apdu_part1"], v["inputs"]["r_apdu_part1"]),
            (v["expected"]["c_apdu_part2"], v["expected"]["r_apdu_part2"])]


def test_authenticate_ev2_first_key0_t14(ntag_vectors):
    v = ntag_vectors["an12196-t14-authenticate-ev2-first-key0"]
    conn = Scripted(*auth_exchanges(v))
    session = Ntag424Session(conn, random=fixed(v["inputs"]["rnd_a"]))
    session.authenticate_ev2_first(0, bytes(16))
    assert conn.done() and session.authenticated and session.key_no == 0
    channel = session._channel
    assert channel.ti == h(v["expected"]["ti"]) and channel.cmd_ctr == 0
    assert channel.enc_key == h(v["expected"]["k_ses_auth_enc"])
    assert channel.mac_key == h(v["expected"]["k_ses_auth_mac"])


def test_personalisation_chain_t14_t18_t19(ntag_vectors):
    """EV2First key 0, WriteData NDEF in Full mode (CmdCtr 0), ChangeFileSettings with SDM (CmdCtr 1)."""
    auth, t18, t19 = (ntag_vectors[k] for k in ("an12196-t14-authenticate-ev2-first-key0",
                                                 "an12196-t18-writedata-full-ndef", "an12196-t19-changefilesettings-sdm"))
    ndef_file = h(ntag_vectors["an12196-t15-t17-ndef-template-and-offsets"]["expected"]["ndef_file_bytes"])
    e18 = t18["expected"]
    conn = Scripted(*auth_exchanges(auth),
                    ("908D00009F" + "02000000800000" + e18["ciphertext"] + e18["mact"] + "00",
                     e18["response_mact"] + "9100"),
                    (t19["expected"]["c_apdu"], t19["expected"]["r_apdu"]))
    session = Ntag424Session(conn, random=fixed(auth["inputs"]["rnd_a"]))
    session.authenticate_ev2_first(0, bytes(16))
    session.write_data(2, 0, ndef_file + bytes(45), CommMode.FULL, tear_safe=False)
    rendered = compile_template("https://choose.url.com/ntag424?e={picc}&c={cmac}").render()
    assert rendered.ndef_file == ndef_file
    session.change_file_settings(2, rendered.file_settings(meta_read=2, file_read=1, ctr_ret=1))
    assert conn.done() and session.command_counter == 2


def test_key3_session_nonfirst_changekeys_t20_to_t27(ntag_vectors):
    """EV2First key 3, ISO selects (no CmdCtr), Full write to file 03, NonFirst key 0, plain CC write, ChangeKey 2 and 0."""
    v = {k: ntag_vectors[k] for k in ntag_vectors}
    t20, t22, t24 = (v["an12196-t20-authenticate-ev2-first-key3"], v["an12196-t22-writedata-full-file03"],
                     v["an12196-t24-authenticate-ev2-nonfirst-key0"])
    t25, t26, t27 = v["an12196-t25-writedata-cc-plain"], v["an12196-t26-changekey-key2"], v["an12196-t27-changekey-key0"]
    randoms = iter([t20["inputs"]["rnd_a"], t24["inputs"]["rnd_a"]])
    conn = Scripted(*auth_exchanges(t20),
                    ("00A4000C02E10500", "9000"),
                    (t22["expected"]["c_apdu"], t22["expected"]["r_apdu"]),
                    ("00A4040C07D276000085010100", "9000"),
                    *auth_exchanges(t24),
                    (t25["expected"]["c_apdu"] + "00", t25["expected"]["r_apdu"]),
                    (t26["expected"]["c_apdu"], t26["expected"]["r_apdu"]),
                    (t27["expected"]["c_apdu"], t27["expected"]["r_apdu"]))
    session = Ntag424Session(conn, random=lambda n: h(next(randoms)))
    session.authenticate_ev2_first(3, bytes(16))
    session.select_file(0xE105)
    session.write_data(3, 0, h(t22["inputs"]["cmd_data"]), CommMode.FULL)
    session.select_application()
    session.authenticate_ev2_nonfirst(0, bytes(16))
    assert session._channel.ti == h("7614281A") and session.command_counter == 1
    assert session._channel.mac_key == h(t24["expected"]["k_ses_auth_mac"])
    cc_tail = h(t25["expected"]["c_apdu"])[12:]  # 18 bytes as on the wire (inputs.data drops one zero)
    assert len(cc_tail) == 0x12
    session.write_data(1, 0x0E, cc_tail)  # file 01 is Plain: the command still counts
    assert session.command_counter == 2
    session.change_key(2, h(t26["inputs"]["new_key"]), 1, old_key=bytes(16))
    session.change_key(0, h(t27["inputs"]["new_key"]), 1)
    assert conn.done() and not session.authenticated and session.key_no is None


def test_getfilesettings_mac_mode_t8(ntag_vectors):
    v = ntag_vectors["an12196-t8-getfilesettings-commmode-mac"]
    session = Ntag424Session(Scripted((v["expected"]["c_apdu"], v["expected"]["r_apdu"])))
    open_channel(session, v)
    settings = session.get_file_settings(2)
    sdm = settings.sdm
    assert settings.file_size == 256 and settings.comm_mode is CommMode.PLAIN
    assert (sdm.meta_read, sdm.file_read, sdm.ctr_ret) == (0, 0, 0xE)
    assert (sdm.picc_data_offset, sdm.mac_input_offset, sdm.enc_offset, sdm.enc_length, sdm.mac_offset) == (
        31, 68, 68, 32, 106)
    assert session.command_counter == 1


def test_writedata_full_128_bytes_t9(ntag_vectors):
    v = ntag_vectors["an12196-t9-writedata-full-128-bytes"]
    e = v["expected"]
    session = Ntag424Session(Scripted(("908D00009F02000000800000" + e["ciphertext"] + e["cmd_mact"] + "00",
                                       e["response_mact"] + "9100")))
    open_channel(session, v)
    session.write_data(2, 0, h(v["inputs"]["plaintext"]), CommMode.FULL, tear_safe=False)


def test_get_card_uid_t29(ntag_vectors):
    v = ntag_vectors["an12196-t29-getcarduid"]
    session = Ntag424Session(Scripted((v["expected"]["c_apdu"], v["expected"]["r_apdu"])))
    open_channel(session, v)
    assert session.get_card_uid() == h(v["expected"]["uid"])


def test_set_configuration_needs_confirmation_t28(ntag_vectors):
    v = ntag_vectors["an12196-t28-setconfiguration-random-id"]
    conn = Scripted((v["expected"]["c_apdu"], v["expected"]["r_apdu"]))
    session = Ntag424Session(conn)
    open_channel(session, v)
    with pytest.raises(errors.IrreversibleOperationError, match="Random ID"):
        session.set_configuration(0x00, b"\x02")
    assert conn.sent == []
    session.set_configuration(0x00, b"\x02", confirm_irreversible=True)
    assert conn.done()


def test_get_version_t13(ntag_vectors):
    e = ntag_vectors["an12196-t13-getversion"]["expected"]
    conn = Scripted(("9060000000", e["r_apdu_1"]), ("90AF000000", e["r_apdu_2"]), ("90AF000000", e["r_apdu_3"]))
    info = Ntag424Session(conn).get_version()
    assert info.uid == h("04968CAA5C5E80") and info.batch_no == h("CD65935D")
    assert (info.hw_subtype, info.sw_major, info.production_week, info.production_year) == (8, 1, 21, 2018)
    assert info.product == "NTAG 424 DNA TagTamper" and not info.random_id


def test_get_version_refuses_other_chips():
    conn = Scripted(("9060000000", "0401010100160591AF"), ("90AF000000", "0401010100160591AF"),
                    ("90AF000000", "04968CAA5C5E80CD65935D402118" + "9100"))
    with pytest.raises(errors.NotNtag424Error, match="Not an NTAG 424 DNA"):
        Ntag424Session(conn).get_version()


def test_read_sig_accepts_9190_and_verifies_t30(ntag_vectors):
    v = ntag_vectors["an12196-t30-originality-signature"]
    session = Ntag424Session(Scripted((v["inputs"]["c_apdu"], v["expected"]["r_apdu_as_printed"])))
    signature = session.read_sig()
    result = verify_originality(h(v["inputs"]["uid"]), signature)
    assert result.signer is Signer.NXP and result.valid
    assert verify_originality(h("04518DFAA96181"), signature).signer is Signer.NONE


def test_originality_accepts_the_simulator_only_when_told_and_rejects_out_of_range_scalars():
    from tagsmith.encoders.simulator import sign_uid

    uid = h("04A1B2C3D4E5F6")
    signature = sign_uid(uid)  # the simulator's own ECDSA (RFC 6979 nonce), independent of the verifier
    assert verify_originality(uid, signature).signer is Signer.NONE
    assert verify_originality(uid, signature, allow_simulator=True).signer is Signer.SIMULATOR
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D
    r, s = int.from_bytes(signature[:28], "big"), int.from_bytes(signature[28:], "big")
    for bad_r, bad_s in ((0, s), (r, 0), (n, s), (r, n)):  # each outside [1, n-1]
        forged = bad_r.to_bytes(28, "big") + bad_s.to_bytes(28, "big")
        assert verify_originality(uid, forged, allow_simulator=True).signer is Signer.NONE
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_originality(uid, flipped, allow_simulator=True).valid
    with pytest.raises(ConfigError, match="56 bytes"):
        verify_originality(uid, signature[:-1])
    with pytest.raises(ConfigError, match="7 bytes"):
        verify_originality(uid[:4], signature)


def test_status_words_raise_one_class_each_and_drop_the_session(ntag_vectors):
    v = ntag_vectors["an12196-t29-getcarduid"]
    session = Ntag424Session(Scripted((v["expected"]["c_apdu"], "91AE")))
    open_channel(session, v)
    with pytest.raises(errors.AuthenticationError, match=r"GetCardUID failed: status 91AE") as exc:
        session.get_card_uid()
    assert exc.value.sw == 0x91AE and exc.value.exit_code == 3
    assert not session.authenticated
    unknown = errors.error_for("ReadData", 0x91FF)
    assert type(unknown) is errors.ChipStatusError and unknown.sw == 0x91FF
    assert isinstance(errors.error_for("ISOReadBinary", 0x6982), errors.SecurityStatusError)


def test_bad_response_mac_drops_the_session(ntag_vectors):
    v = ntag_vectors["an12196-t8-getfilesettings-commmode-mac"]
    tampered = v["expected"]["r_apdu"][:-6] + "009100"
    session = Ntag424Session(Scripted((v["expected"]["c_apdu"], tampered)))
    open_channel(session, v)
    with pytest.raises(errors.ResponseError, match="MAC"):
        session.get_file_settings(2)
    assert not session.authenticated


def test_wrong_key_in_auth_part2_is_authentication_error(ntag_vectors):
    v = ntag_vectors["an12196-t14-authenticate-ev2-first-key0"]
    conn = Scripted((v["inputs"]["c_apdu_part1"], v["inputs"]["r_apdu_part1"]), (v["expected"]["c_apdu_part2"], "91AE"))
    session = Ntag424Session(conn, random=fixed(v["inputs"]["rnd_a"]))
    with pytest.raises(errors.AuthenticationError):
        session.authenticate_ev2_first(0, bytes(16))
    assert not session.authenticated


def test_change_key_rules():
    session = Ntag424Session(AlwaysOk())
    with pytest.raises(errors.NotAuthenticatedError):
        session.change_key(1, bytes(16), 1, old_key=bytes(16))
    session._channel, session._key_no = Ev2Channel(ti=bytes(4), enc_key=bytes(16), mac_key=bytes(16)), 3
    with pytest.raises(errors.NotAuthenticatedError, match="key 0"):
        session.change_key(1, bytes(16), 1, old_key=bytes(16))
    session._key_no = 0
    with pytest.raises(ConfigError, match="old"):
        session.change_key(1, bytes(16), 1)


def test_tear_safe_writes_fit_one_frame_and_count_commands():
    conn = AlwaysOk()
    session = Ntag424Session(conn)
    session.write_data(2, 0, bytes(range(256)))
    assert all(len(apdu) <= 124 for apdu in conn.sent) and len(conn.sent) == 3
    offsets = [int.from_bytes(a[6:9], "little") for a in conn.sent]
    assert offsets == [0, 111, 222]
    conn.sent.clear()
    session._channel = Ev2Channel(ti=bytes(4), enc_key=bytes(16), mac_key=bytes(16))
    with pytest.raises(errors.ResponseError):  # AlwaysOk returns no MAC: the session notices and drops
        session.write_data(3, 0, bytes(100), CommMode.FULL)
    assert len(conn.sent[0]) <= 124 and not session.authenticated


def test_read_ndef_unauthenticated_and_as_phone(ntag_vectors):
    ndef_file = h(ntag_vectors["an12196-t15-t17-ndef-template-and-offsets"]["expected"]["ndef_file_bytes"])
    cc = h(ntag_vectors["ds-default-cc-file"]["expected"]["cc_file_32_bytes"])
    session = Ntag424Session(Scripted(("90AD0000070200000000000000", (ndef_file + bytes(173)).hex() + "9100")))
    assert session.read_ndef_unauthenticated()[:len(ndef_file)] == ndef_file
    url = "https://choose.url.com/ntag424?e=" + "0" * 32 + "&c=" + "0" * 16
    phone = Ntag424Session(Scripted(
        ("00A4040007D276000085010100", "9000"), ("00A4000C02E10300", "9000"),
        ("00B000000F", cc[:15].hex() + "9000"), ("00A4000C02E10400", "9000"),
        ("00B0000002", "00519000"), ("00B0000251", ndef_file[2:].hex() + "9000")))
    assert phone.read_ndef_as_phone() == url


def test_iso_update_binary_is_split_per_frame():
    conn = AlwaysOk()
    conn.transceive = lambda apdu: (conn.sent.append(apdu), (b"", 0x9000))[1]
    Ntag424Session(conn).iso_update_binary(0, bytes(200))
    assert [len(a) for a in conn.sent] == [124, 5 + 81]
    assert conn.sent[1][2:4] == (119).to_bytes(2, "big")


def test_read_data_full_mode_round_trips_through_the_simulated_chip():
    from tagsmith.encoders.simulator import SimulatedNtag424

    chip = SimulatedNtag424()
    session = Ntag424Session(chip)
    session.select_application()
    session.authenticate_ev2_first(3, bytes(16))  # file 03: Full mode, read-write key 3 from the factory
    data = bytes(range(7, 135))
    session.write_data(3, 0, data, CommMode.FULL)
    assert session.read_data(3, comm_mode=CommMode.FULL) == data  # length 0: to the end of the file
    assert session.read_data(3, 100, 28, CommMode.FULL) == data[100:]
    assert session.authenticated  # every response MAC checked, the counter kept in step
