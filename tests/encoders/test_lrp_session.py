"""LRP through Ntag424Session: authentication registered in the seam, the switch to LRP, and an LRP chip's refusal of AES.

The exchanges are published ones (see test_lrp_messaging.py for their sources): AN12321 §4 Table 2's
AuthenticateLRPFirst with the all-zero key, and a real chip's First/NonFirst pair. The switch's data
layout is NT4H2421Gx §10.5.1 Table 50, checked by decrypting what the session sends with
pycryptodome and AN12196 Table 28's session keys.
"""

from __future__ import annotations

import pytest
from Crypto.Cipher import AES

from tagsmith import ConfigError
from tagsmith.encoders.ntag424 import (
    Ev2Channel,
    LrpModeError,
    NotAuthenticatedError,
    Ntag424Session,
    ResponseError,
    SecureMessaging,
    auth,
    errors,
)
from tagsmith.encoders.ntag424.lrp import Lrp
from tagsmith.encoders.ntag424.lrp_messaging import LrpChannel


def h(value: str) -> bytes:
    return bytes.fromhex(value)


class Scripted:
    """A Connection that checks each C-APDU (hex; None: any) and gives the scripted R-APDU."""

    def __init__(self, *exchanges: tuple[str | None, str]) -> None:
        self.script = list(exchanges)
        self.sent: list[str] = []

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu.hex().upper())
        expected, response = self.script.pop(0)
        if expected is not None:
            assert self.sent[-1] == expected
        raw = h(response)
        return raw[:-2], int.from_bytes(raw[-2:], "big")


def randoms(*values: str):
    queue = [h(v) for v in values]
    return lambda n: queue.pop(0)


ZERO_KEY = bytes(16)
AN12321_RND_A = "74D7DF6A2CEC0B72B412DE0D2B1117E6"


def test_lrp_is_registered_beside_aes():
    assert auth.HANDSHAKES[SecureMessaging.LRP].FIRST_COMMAND == "AuthenticateLRPFirst"
    assert set(auth.HANDSHAKES) == set(SecureMessaging)


def test_authenticate_lrp_first_replays_an12321_table2():
    conn = Scripted(("9071000008000602000000000000", "0156109A31977C855319CD4618C9D2AED291AF"),
                    ("90AF000020" + AN12321_RND_A + "189B59DCEDC31A3D3F38EF8D4810B3B4" + "00",
                     "F4FC209D9D60623588B299FA5D6B2D710125F8547D9FB8D572C90D2C2A14E2359100"))
    session = Ntag424Session(conn, random=randoms(AN12321_RND_A))
    session.authenticate_lrp_first(0, ZERO_KEY)
    assert session.authenticated and (session.key_no, session.command_counter) == (0, 0)
    assert session._channel is not None and session._channel.mode is SecureMessaging.LRP
    assert session._channel.ti == h("58EE9424")


def test_hardware_lrp_first_then_nonfirst_through_the_session():
    conn = Scripted((None, "01B40643A537D6B0ACD8E7816168CD85C191AF"),
                    (None, "1C8EE9654067C50B188BD7652CEA8ABF4DCAF2776C80ABACEC992D6DF2D6E4EE9100"),
                    ("9077000001" + "00" + "00", "016819838A1BFA254A00E1F43DEC0BC0C791AF"),
                    ("90AF000020" + "24F37E0C719E5CA42A3CBFAC3F7C0106FB57806564FCD46D58685C08419825E2" + "00",
                     "3C157B2F2A8CC0C9431E64CCF71DD8B49100"))
    session = Ntag424Session(conn, random=randoms("D1D85ACB0A57299BFEED443D832DAD0C", "24F37E0C719E5CA42A3CBFAC3F7C0106"))
    session.authenticate_lrp_first(0, ZERO_KEY)
    with pytest.raises(NotAuthenticatedError, match="AES transaction"):
        session.authenticate_ev2_nonfirst(0, ZERO_KEY)
    assert len(conn.sent) == 2  # refused before anything reached the chip
    session.authenticate_lrp_nonfirst(0, ZERO_KEY)
    assert session._channel is not None and session._channel.ti == h("9D96C13C")
    assert session._channel.mode is SecureMessaging.LRP


def test_an_lrp_chip_refuses_aes_authentication_as_lrp_mode_error():
    session = Ntag424Session(Scripted(("9071000002000000", "919D")))
    with pytest.raises(LrpModeError, match="LRP") as refused:
        session.authenticate_ev2_first(0, ZERO_KEY)
    assert isinstance(refused.value, errors.PermissionDeniedError) and refused.value.sw == 0x919D
    # the same status to an LRP request is not a mode question
    session = Ntag424Session(Scripted((None, "919D")))
    with pytest.raises(errors.PermissionDeniedError) as denied:
        session.authenticate_lrp_first(0, ZERO_KEY)
    assert not isinstance(denied.value, LrpModeError)


def test_an_aes_chip_answers_lrp_authentication_with_a_response_error():
    session = Ntag424Session(Scripted((None, "A04C124213C186F22399D33AC2A3021591AF")))
    with pytest.raises(ResponseError, match="not in LRP mode"):
        session.authenticate_lrp_first(0, ZERO_KEY)
    assert not session.authenticated


# AN12196 Table 28: an AES session with key 0 (TI D779B1D0, CmdCtr 0)
T28_ENC, T28_MAC, T28_TI = h("7951A705F47F3C29B596454DC1490383"), h("FE4EDBF46536557E304682F33E63A84F"), h("D779B1D0")


def _aes_session(conn: Scripted, cmd_ctr: int = 0) -> Ntag424Session:
    session = Ntag424Session(conn)
    session._channel = Ev2Channel(ti=T28_TI, enc_key=T28_ENC, mac_key=T28_MAC, cmd_ctr=cmd_ctr)
    session._key_no = 0
    return session


def _sent_plaintext(apdu: str, cmd_ctr: int = 0) -> bytes:
    """Decrypt the Full-mode data of a SetConfiguration APDU with pycryptodome: IVc = E(K, A55A || TI || CmdCtr || 0^8)."""
    iv = AES.new(T28_ENC, AES.MODE_ECB).encrypt(h("A55A") + T28_TI + cmd_ctr.to_bytes(2, "little") + bytes(8))
    return AES.new(T28_ENC, AES.MODE_CBC, iv=iv).decrypt(h(apdu)[6:22])


def _macted_answer() -> str:
    """T28's session answering with its MACt over RC || CmdCtr+1 || TI, as a chip that still MACs would."""
    return Ev2Channel(ti=T28_TI, enc_key=T28_ENC, mac_key=T28_MAC).response_mac(0x00, b"").hex().upper() + "9100"


@pytest.mark.parametrize("answer", ["9100", _macted_answer()], ids=["bare 9100", "with its MACt"])
def test_enable_lrp_sends_option_05_with_pdcap2_1_bit_1_and_ends_the_session(answer):
    session = _aes_session(conn := Scripted((None, answer)))
    session.enable_lrp(confirm_irreversible=True)
    apdu = conn.sent[0]
    assert apdu.startswith("905C000019" + "05") and apdu.endswith("00") and len(apdu) == 2 * (5 + 25 + 1)
    assert _sent_plaintext(apdu) == h("00000000" "02" "000000" "0000") + h("80") + bytes(5)
    assert not session.authenticated


def test_enable_lrp_refusals():
    session = _aes_session(conn := Scripted())
    with pytest.raises(errors.IrreversibleOperationError, match="LRP"):
        session.enable_lrp()
    with pytest.raises(ConfigError, match="enable_lrp"):
        session.set_configuration(0x05, h("00000000020000000000"), confirm_irreversible=True)
    session._key_no = 3
    with pytest.raises(NotAuthenticatedError, match="key 0"):
        session.enable_lrp(confirm_irreversible=True)
    assert conn.sent == []


def test_enable_lrp_checks_a_macted_answer():
    session = _aes_session(Scripted((None, "0102030405060708" + "9100")))
    with pytest.raises(ResponseError, match="MAC does not verify"):
        session.enable_lrp(confirm_irreversible=True)
    assert not session.authenticated


def test_an_lrp_session_runs_getcarduid_three_times_as_published():
    """icedevml/nfc-ev2-crypto's GetCardUID sequence: EncCtr moves by the response blocks, CmdCtr by the commands."""
    mac, enc = Lrp.pair(Lrp.from_key(ZERO_KEY, 0).cmac(h("00010080993C4EED466BFC0E7EE1D30C1EBD0DEA6F6481E0D70E9A174E789669")))
    conn = Scripted(("9051000008C37D6270F674CC6D00", "5EC351196B8E2943DB04FCD4A952F53DA2830DC2258E45399100"),
                    ("9051000008D65CCB81E559140000", "D80B735F7B4C8E7E8A3CDAAA4410F35F752769C8EBC48E1A9100"),
                    ("90510000088C677D7DCC34937100", "9CCD031474A50199C696D8EF272E231A10173FAF41B614E49100"))
    session = Ntag424Session(conn)
    session._channel = LrpChannel(ti=h("4F5E8407"), mac=mac, enc=enc, enc_ctr=1)
    session._key_no = 0
    assert [session.get_card_uid() for _ in range(3)] == [h("04940D2A2F7080")] * 3
    assert session.command_counter == 3
