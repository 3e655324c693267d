"""PICC-side cryptography and EV2 secure messaging of the simulated NTAG 424 DNA.

Written from the data-sheet facts restated in ``docs/reference/ntag424.md`` ("docs/reference/ntag424.md §N" below):
EV2 session keys (docs/reference/ntag424.md §5.3), command counter (docs/reference/ntag424.md §6.1),
MAC (docs/reference/ntag424.md §6.2), Full-mode encryption (docs/reference/ntag424.md §6.3),
ChangeKey CRC32NK (docs/reference/ntag424.md §8). The LRP primitive and LRP sessions are in :mod:`.lrp` and :mod:`.lrp_auth`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tagsmith.encoders.apdu import SW

from .lrp import Lrp
from .status import ChipStatus

ZERO_IV = bytes(16)
_MASK128 = (1 << 128) - 1


def _dbl(value: int) -> int:
    """Doubling in GF(2^128), the CMAC subkey step (SP 800-38B §6.1)."""
    value <<= 1
    return (value ^ 0x87) & _MASK128 if value >> 128 else value


class AesKey:
    """One AES-128 key, expanded once: block encryption, CBC both ways and CMAC.

    Expanding a key costs more than the few blocks a command needs, and an EV2 session or an
    authentication uses the same key many times, so the key lives here in open OpenSSL contexts
    (through cryptography): one CBC run that each call restarts from its own IV (see
    :meth:`cbc_encrypt`), and an ECB decryption context. A chip is one thread; its contexts are
    not shared.
    """

    __slots__ = ("_key", "_ecb_decrypt", "_cbc", "_chain", "_k1", "_k2")

    def __init__(self, key: bytes) -> None:
        self._key = bytes(key)
        self._ecb_decrypt: Callable[[bytes], bytes] | None = None  # made on first use: many keys never decrypt
        self._cbc: Callable[[bytes], bytes] | None = None  # made on the first CBC call; chains on from its last output block
        self._chain = 0
        self._k1: int | None = None  # CMAC subkeys K1, K2, made on the first CMAC
        self._k2 = 0

    def __repr__(self) -> str:  # keep key material out of logs and tracebacks
        return "AesKey(<hidden>)"

    def __reduce__(self) -> tuple[type[AesKey], tuple[bytes]]:
        # copy/pickle by key: cipher contexts cannot be, and calls share no state
        return AesKey, (self._key,)

    def cbc_encrypt(self, data: bytes, iv: bytes = ZERO_IV) -> bytes:
        """AES-128-CBC without padding (``data`` is block aligned), each call an independent run from ``iv``.

        The open CBC context chains on from its last ciphertext block; XORing that block and ``iv``
        into the first input block restarts the chain from ``iv``, so no context is made per call.
        """
        if len(data) % 16 or len(iv) != 16:
            raise ValueError("CBC data must be block aligned and the IV 16 bytes")
        if not data:
            return b""
        if self._cbc is None:
            self._cbc = Cipher(algorithms.AES128(self._key), modes.CBC(ZERO_IV)).encryptor().update
        first = int.from_bytes(data[:16], "big") ^ int.from_bytes(iv, "big") ^ self._chain
        out = self._cbc(first.to_bytes(16, "big") + data[16:])
        self._chain = int.from_bytes(out[-16:], "big")
        return out

    def encrypt_block(self, block: bytes) -> bytes:
        """One AES-128 block encryption (ECB)."""
        if len(block) != 16:
            raise ValueError("an AES block is 16 bytes")
        return self.cbc_encrypt(block)  # CBC of one block from a zero IV is ECB

    def cbc_decrypt(self, data: bytes, iv: bytes = ZERO_IV) -> bytes:
        """AES-128-CBC decryption without padding removal: ECB-decrypt, then XOR IV || C[:-1]."""
        if len(data) % 16 or len(iv) != 16:
            raise ValueError("CBC data must be block aligned and the IV 16 bytes")
        if not data:
            return b""
        if self._ecb_decrypt is None:
            self._ecb_decrypt = Cipher(algorithms.AES128(self._key), modes.ECB()).decryptor().update
        plain = int.from_bytes(self._ecb_decrypt(data), "big") ^ int.from_bytes(iv + data[:-16], "big")
        return plain.to_bytes(len(data), "big")

    def cmac(self, data: bytes) -> bytes:
        """AES-CMAC (NIST SP 800-38B, RFC 4493), 16 bytes: CBC-MAC with the last block masked."""
        if self._k1 is None:
            k1 = _dbl(int.from_bytes(self.encrypt_block(ZERO_IV), "big"))
            self._k1, self._k2 = k1, _dbl(k1)
        size = len(data)
        if size and not size % 16:
            head, last = data[:-16], int.from_bytes(data[-16:], "big") ^ self._k1
        else:
            cut = size - size % 16
            head, last = data[:cut], int.from_bytes(pad_m2(data[cut:]), "big") ^ self._k2
        return self.cbc_encrypt(head + last.to_bytes(16, "big"))[-16:]

    def mact(self, data: bytes) -> bytes:
        """The 8-byte truncated MAC: CMAC bytes at zero-based indices 1, 3, ..., 15 (docs/reference/ntag424.md §1)."""
        return self.cmac(data)[1::2]


def pad_m2(data: bytes) -> bytes:
    """ISO 9797-1 padding method 2: always append 80, then zeros to a block boundary (docs/reference/ntag424.md §6.3)."""
    data = data + b"\x80"
    return data + bytes(-len(data) % 16)


def unpad_m2(data: bytes) -> bytes:
    """Strip padding method 2; a malformed padding is an integrity error (911E, docs/reference/ntag424.md §6.3)."""
    stripped = data.rstrip(b"\x00")
    if not data or len(data) % 16 or not stripped.endswith(b"\x80") or len(data) - len(stripped) > 15:
        raise ChipStatus(SW.INTEGRITY_ERROR)
    return stripped[:-1]


def rotl1(data: bytes) -> bytes:
    """Rotate left by one byte (RndA' / RndB')."""
    return data[1:] + data[:1]


def crc32nk(data: bytes) -> bytes:
    """JAMCRC: IEEE CRC-32 without the final inversion, LSB first (docs/reference/ntag424.md §8)."""
    return (zlib.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")


def session_context(rnd_a: bytes, rnd_b: bytes) -> bytes:
    """The 26-byte mix of RndA and RndB both modes derive session keys from (docs/reference/ntag424.md §5.3)."""
    mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    return rnd_a[0:2] + mixed + rnd_b[6:16] + rnd_a[8:16]


def ev2_session_keys(key: AesKey, rnd_a: bytes, rnd_b: bytes) -> tuple[AesKey, AesKey]:
    """(SesAuthENCKey, SesAuthMACKey) from the AuthenticateEV2 randoms (docs/reference/ntag424.md §5.3)."""
    ctx = session_context(rnd_a, rnd_b)
    k_enc = key.cmac(b"\xA5\x5A\x00\x01\x00\x80" + ctx)
    k_mac = key.cmac(b"\x5A\xA5\x00\x01\x00\x80" + ctx)
    return AesKey(k_enc), AesKey(k_mac)


class MacKey(Protocol):
    """What computes a session's MACt: an :class:`AesKey` in AES mode, an LRP MAC key in LRP mode."""

    def mact(self, data: bytes) -> bytes: ...


class SessionCipher(Protocol):
    """Full-mode encryption of one session (docs/reference/ntag424.md §6.3; LRP: docs/reference/lrp.md §5)."""

    mode: str

    def decrypt_command(self, cryptogram: bytes, ti: bytes, cmd_ctr: bytes) -> bytes: ...

    def encrypt_response(self, data: bytes, ti: bytes, cmd_ctr: bytes) -> bytes: ...


class AesCipher:
    """EV2 Full mode: AES-CBC with an IV made from TI and CmdCtr (labels A55A / 5AA5)."""

    __slots__ = ("_key",)
    mode = "aes"

    def __init__(self, key: AesKey) -> None:
        self._key = key

    def decrypt_command(self, cryptogram: bytes, ti: bytes, cmd_ctr: bytes) -> bytes:
        """Decrypt a command cryptogram with IVc (label A55A, CmdCtr n) and strip padding."""
        if not cryptogram or len(cryptogram) % 16:
            raise ChipStatus(SW.LENGTH_ERROR)
        iv = self._key.encrypt_block(b"\xA5\x5A" + ti + cmd_ctr + bytes(8))
        return unpad_m2(self._key.cbc_decrypt(cryptogram, iv))

    def encrypt_response(self, data: bytes, ti: bytes, cmd_ctr: bytes) -> bytes:
        """Response cryptogram with IVr (label 5AA5, CmdCtr n+1)."""
        iv = self._key.encrypt_block(b"\x5A\xA5" + ti + cmd_ctr + bytes(8))
        return self._key.cbc_encrypt(pad_m2(data), iv)


def lrp_session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[Lrp, Lrp]:
    """(SesAuthMACKey, SesAuthENCKey) of AuthenticateLRPFirst/NonFirst (docs/reference/lrp.md §4).

    ``SesAuthMasterKey = CMAC_LRP(Kx, 00 01 00 80 || ctx || 96 69)``; the MAC and ENC keys are
    its updated keys 0 and 1 (NT4H2421Gx §9.2.7).
    """
    master = Lrp(key, 0).cmac(b"\x00\x01\x00\x80" + session_context(rnd_a, rnd_b) + b"\x96\x69")
    return Lrp.pair(master)


class LrpCipher:
    """LRP Full mode: LRICB under SesAuthENCKey with padding method 2 and the session's EncCtr.

    EncCtr (32 bits, MSB first) counts every block encrypted or decrypted since the
    authentication, command and response data alike; TI and CmdCtr do not enter the cipher
    (docs/reference/lrp.md §5).
    """

    __slots__ = ("_enc", "enc_ctr")
    mode = "lrp"

    def __init__(self, enc: Lrp, enc_ctr: int) -> None:
        self._enc = enc
        self.enc_ctr = enc_ctr

    def decrypt_command(self, cryptogram: bytes, ti: bytes, cmd_ctr: bytes) -> bytes:
        if not cryptogram or len(cryptogram) % 16:
            raise ChipStatus(SW.LENGTH_ERROR)
        plain, after = self._enc.decrypt(cryptogram, self.enc_ctr.to_bytes(4, "big"))
        self.enc_ctr = int.from_bytes(after, "big")
        return unpad_m2(plain)

    def encrypt_response(self, data: bytes, ti: bytes, cmd_ctr: bytes) -> bytes:
        cryptogram, after = self._enc.encrypt(pad_m2(data), self.enc_ctr.to_bytes(4, "big"))
        self.enc_ctr = int.from_bytes(after, "big")
        return cryptogram


@dataclass
class Session:
    """An authenticated session as the PICC keeps it (volatile): TI, CmdCtr, MAC key and cipher.

    CmdCtr, TI and the MAC inputs are the same in AES and LRP mode; only the MAC function and
    the Full-mode cipher differ (docs/reference/lrp.md §5).
    """

    key_no: int
    ti: bytes
    mac: MacKey
    cipher: SessionCipher
    cmd_ctr: int = 0

    def __repr__(self) -> str:  # keep session keys out of logs and tracebacks
        return f"Session(key_no={self.key_no}, ti={self.ti.hex().upper()}, cmd_ctr={self.cmd_ctr})"

    @property
    def mode(self) -> str:
        """``"aes"`` or ``"lrp"``: the secure messaging the authentication chose."""
        return self.cipher.mode

    def _ctr(self, value: int) -> bytes:
        return value.to_bytes(2, "little")

    def check_counter(self) -> None:
        """CmdCtr FFFF cannot move on: the next command fails as if its MAC were wrong (docs/reference/ntag424.md §6.1)."""
        if self.cmd_ctr >= 0xFFFF:
            raise ChipStatus(SW.INTEGRITY_ERROR)

    def verify_command_mac(self, ins: int, header_and_data: bytes, mac: bytes) -> None:
        """Check the MACt a PCD appended: CMAC over Cmd || CmdCtr || TI || header || data."""
        self.check_counter()
        expected = self.mac.mact(bytes([ins]) + self._ctr(self.cmd_ctr) + self.ti + header_and_data)
        if expected != mac:
            raise ChipStatus(SW.INTEGRITY_ERROR)

    def decrypt_command(self, cryptogram: bytes) -> bytes:
        """Decrypt a Full-mode command cryptogram (at CmdCtr n) and strip its padding."""
        return self.cipher.decrypt_command(cryptogram, self.ti, self._ctr(self.cmd_ctr))

    def advance(self) -> None:
        """The command was accepted: CmdCtr moves to n + 1."""
        self.cmd_ctr += 1

    def response_mac(self, rc: int, data: bytes) -> bytes:
        """MACt over RC || CmdCtr(n+1) || TI || data (call after :meth:`advance`)."""
        return self.mac.mact(bytes([rc]) + self._ctr(self.cmd_ctr) + self.ti + data)

    def encrypt_response(self, data: bytes) -> bytes:
        """Full-mode response cryptogram (at CmdCtr n+1); empty data stays empty."""
        if not data:
            return b""
        return self.cipher.encrypt_response(data, self.ti, self._ctr(self.cmd_ctr))
