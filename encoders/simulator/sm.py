"""PICC-side cryptography and EV2 secure messaging of the simulated NTAG 424 DNA.

Written from the data-sheet facts restated in ``shared/reference/ntag424.md``:
EV2 session keys (§5.3), command counter (§6.1), MAC (§6.2), Full-mode encryption (§6.3),
ChangeKey CRC32NK (§8). AES-128 only; LRP is not modelled.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from tagsmith.encoders.apdu import SW

from .status import ChipStatus

ZERO_IV = bytes(16)


def aes_ecb(key: bytes, block: bytes) -> bytes:
    """One AES-128 block encryption."""
    return AES.new(key, AES.MODE_ECB).encrypt(block)


def cbc_encrypt(key: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    """AES-128-CBC without padding (``data`` is block aligned)."""
    return AES.new(key, AES.MODE_CBC, iv=iv).encrypt(data)


def cbc_decrypt(key: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    """AES-128-CBC decryption without padding removal."""
    return AES.new(key, AES.MODE_CBC, iv=iv).decrypt(data)


def cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), 16 bytes."""
    return CMAC.new(key, msg=data, ciphermod=AES).digest()


def mact(key: bytes, data: bytes) -> bytes:
    """The 8-byte truncated MAC: CMAC bytes at zero-based indices 1, 3, ..., 15 (ref §1)."""
    return cmac(key, data)[1::2]


def pad_m2(data: bytes) -> bytes:
    """ISO 9797-1 padding method 2: always append 80, then zeros to a block boundary (ref §6.3)."""
    data = data + b"\x80"
    return data + bytes(-len(data) % 16)


def unpad_m2(data: bytes) -> bytes:
    """Strip padding method 2; a malformed padding is an integrity error (911E, ref §6.3)."""
    stripped = data.rstrip(b"\x00")
    if not data or len(data) % 16 or not stripped.endswith(b"\x80") or len(data) - len(stripped) > 15:
        raise ChipStatus(SW.INTEGRITY_ERROR)
    return stripped[:-1]


def rotl1(data: bytes) -> bytes:
    """Rotate left by one byte (RndA' / RndB')."""
    return data[1:] + data[:1]


def crc32nk(data: bytes) -> bytes:
    """JAMCRC: IEEE CRC-32 without the final inversion, LSB first (ref §8)."""
    return (zlib.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")


def ev2_session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """(SesAuthENCKey, SesAuthMACKey) from the AuthenticateEV2 randoms (ref §5.3)."""
    mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6]))
    ctx = rnd_a[0:2] + mixed + rnd_b[6:16] + rnd_a[8:16]
    k_enc = cmac(key, b"\xA5\x5A\x00\x01\x00\x80" + ctx)
    k_mac = cmac(key, b"\x5A\xA5\x00\x01\x00\x80" + ctx)
    return k_enc, k_mac


@dataclass
class Session:
    """An authenticated EV2 session as the PICC keeps it (volatile)."""

    key_no: int
    ti: bytes
    k_enc: bytes
    k_mac: bytes
    cmd_ctr: int = 0

    def __repr__(self) -> str:  # keep session keys out of logs and tracebacks
        return f"Session(key_no={self.key_no}, ti={self.ti.hex().upper()}, cmd_ctr={self.cmd_ctr})"

    def _ctr(self, value: int) -> bytes:
        return value.to_bytes(2, "little")

    def check_counter(self) -> None:
        """CmdCtr FFFF cannot move on: the next command fails as if its MAC were wrong (ref §6.1)."""
        if self.cmd_ctr >= 0xFFFF:
            raise ChipStatus(SW.INTEGRITY_ERROR)

    def verify_command_mac(self, ins: int, header_and_data: bytes, mac: bytes) -> None:
        """Check the MACt a PCD appended: CMAC over Cmd || CmdCtr || TI || header || data."""
        self.check_counter()
        expected = mact(self.k_mac, bytes([ins]) + self._ctr(self.cmd_ctr) + self.ti + header_and_data)
        if expected != mac:
            raise ChipStatus(SW.INTEGRITY_ERROR)

    def decrypt_command(self, cryptogram: bytes) -> bytes:
        """Decrypt a Full-mode command cryptogram with IVc (label A55A, CmdCtr n) and strip padding."""
        if not cryptogram or len(cryptogram) % 16:
            raise ChipStatus(SW.LENGTH_ERROR)
        iv = aes_ecb(self.k_enc, b"\xA5\x5A" + self.ti + self._ctr(self.cmd_ctr) + bytes(8))
        return unpad_m2(cbc_decrypt(self.k_enc, cryptogram, iv))

    def advance(self) -> None:
        """The command was accepted: CmdCtr moves to n + 1."""
        self.cmd_ctr += 1

    def response_mac(self, rc: int, data: bytes) -> bytes:
        """MACt over RC || CmdCtr(n+1) || TI || data (call after :meth:`advance`)."""
        return mact(self.k_mac, bytes([rc]) + self._ctr(self.cmd_ctr) + self.ti + data)

    def encrypt_response(self, data: bytes) -> bytes:
        """Full-mode response cryptogram with IVr (label 5AA5, CmdCtr n+1); empty data stays empty."""
        if not data:
            return b""
        iv = aes_ecb(self.k_enc, b"\x5A\xA5" + self.ti + self._ctr(self.cmd_ctr) + bytes(8))
        return cbc_encrypt(self.k_enc, pad_m2(data), iv)
