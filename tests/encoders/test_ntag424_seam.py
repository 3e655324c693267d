"""The secure-messaging seam: authentication and SUN verification take their mode from one place.

A second mode (LRP) must be an added module: the session asks :data:`auth.HANDSHAKES` for the
handshake and keeps the channel it opens; the SUN verifier and the URL templates take the PICC
data's length and cryptography from a scheme. Toy modes stand in for the second one here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from tagsmith import VerificationError, fastaes
from tagsmith.encoders.ntag424 import CommMode, Ntag424Session, SecureMessaging, SunVerifier, auth, compile_template, crypto
from tagsmith.encoders.ntag424.sun import decrypt_picc_data
from tagsmith.encoders.ntag424.sunscheme import AES_SUN, AesSdmFileKey

META, FILE = bytes(range(16)), bytes(range(16, 32))
UID, CTR = bytes.fromhex("04C767F2066180"), 0x2A


class PrefixedSun:
    """A toy scheme with 24-byte PICC data (an 8-byte prefix before AES's block), AES SDM keys otherwise."""

    mode = SecureMessaging.AES
    picc_data_chars = 48

    def picc_decryptor(self, meta_key: bytes):
        decrypt = fastaes.block_key(meta_key).decrypt
        return lambda data: decrypt(data[8:])

    def file_key(self, key: bytes) -> AesSdmFileKey:
        return AES_SUN.file_key(key)

    def one_tap_file_key(self, key: bytes):
        return AES_SUN.one_tap_file_key(key)


def _toy_tap() -> str:
    plain = b"\xc7" + UID + CTR.to_bytes(3, "little") + bytes(5)
    picc = os.urandom(8) + fastaes.block_key(META).encrypt(plain)
    _, mac_key = crypto.sdm_session_keys(FILE, UID, CTR)
    return f"https://id.example.com/t?p={picc.hex().upper()}&c={crypto.mac_t(mac_key, b'').hex().upper()}"


@pytest.mark.parametrize("file_key", [FILE, lambda uid: FILE], ids=["fixed key", "per-UID key"])
def test_the_verifier_reads_picc_data_as_its_scheme_says(file_key):
    verifier = SunVerifier(meta_key=META, file_key=file_key, picc_param="p", mac_param="c", scheme=PrefixedSun())
    result = verifier.verify(_toy_tap())
    assert (result.uid, result.read_counter, result.cmac_valid) == (UID, CTR, True)
    aes_tap = "https://id.example.com/t?p=" + "0" * 32 + "&c=" + "0" * 16
    with pytest.raises(VerificationError, match="48 hex characters"):
        verifier.verify(aes_tap)


def test_decrypting_picc_data_follows_the_scheme():
    picc = _toy_tap().split("p=")[1].split("&")[0]
    assert decrypt_picc_data(picc, META, PrefixedSun()) == (UID, CTR)
    with pytest.raises(VerificationError, match="32 hex characters"):
        decrypt_picc_data(picc, META)


def test_the_template_mirrors_picc_data_at_the_schemes_length():
    rendered = compile_template("https://id.example.com/t?p={picc}&c={cmac}", PrefixedSun()).render()
    picc, mac = rendered.mirror("picc"), rendered.mirror("cmac")
    assert picc is not None and mac is not None
    assert (picc.length, mac.offset - picc.offset) == (48, 48 + len("&c="))
    assert rendered.file_settings().sdm is not None  # validated with the 48-character mirror
    assert compile_template("https://id.example.com/t?p={picc}&c={cmac}").render().mirror("picc").length == 32


def test_a_per_uid_key_decrypts_file_data_as_a_fixed_one(ntag_vectors):
    url = ntag_vectors["an12196-t4-sdmencfiledata"]["inputs"]["url"]
    fixed = SunVerifier(meta_key=bytes(16), file_key=bytes(16), mac_input_from="enc").verify(url)
    per_uid = SunVerifier(meta_key=bytes(16), file_key=lambda uid: bytes(16), mac_input_from="enc").verify(url)
    assert per_uid == fixed and fixed.file_data is not None


@dataclass(frozen=True)
class ToyChannel:
    """A channel of the toy mode: Plain only, counting commands."""

    ti: bytes
    cmd_ctr: int
    mode = SecureMessaging.AES

    def advanced(self) -> ToyChannel:
        return ToyChannel(self.ti, self.cmd_ctr + 1)

    def protect(self, ins: int, header: bytes, data: bytes, mode: CommMode) -> bytes:
        return header + data

    def unprotect(self, payload: bytes, mode: CommMode, command: str, rc: int = 0x00) -> bytes:
        return payload


class ToyPending:
    cryptogram = b"\x11" * 32

    def finish_first(self, response: bytes) -> ToyChannel:
        return ToyChannel(response[:4], 0)

    def finish_nonfirst(self, response: bytes, previous) -> ToyChannel:
        return ToyChannel(previous.ti, previous.cmd_ctr)


class Recorder:
    def __init__(self, *answers: str) -> None:
        self.answers, self.sent = [bytes.fromhex(a) for a in answers], []

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu.hex().upper())
        raw = self.answers.pop(0)
        return raw[:-2], int.from_bytes(raw[-2:], "big")


def test_authentication_opens_the_channel_of_the_registered_handshake(monkeypatch):
    toy = SimpleNamespace(PCD_CAPS=bytes.fromhex("020000000000"), FIRST_COMMAND="ToyFirst", NONFIRST_COMMAND="ToyNonFirst",
                          answer_challenge=lambda key, challenge, rnd_a: ToyPending())
    monkeypatch.setitem(auth.HANDSHAKES, SecureMessaging.AES, toy)
    conn = Recorder("01" + "00" * 16 + "91AF", "CAFEBABE" + "00" * 28 + "9100", "9100",
                    "00" * 16 + "91AF", "9100")
    session = Ntag424Session(conn, random=bytes)
    session.authenticate_ev2_first(3, bytes(16))
    assert conn.sent[:2] == ["9071000008030602000000000000", "90AF000020" + "11" * 32 + "00"]
    session.write_data(2, 0, b"x")  # one command: CmdCtr 0 -> 1
    session.authenticate_ev2_nonfirst(0, bytes(16))
    assert conn.sent[3] == "9077000001" + "00" + "00"
    assert (session.key_no, session.command_counter, session._channel.ti) == (0, 1, bytes.fromhex("CAFEBABE"))
