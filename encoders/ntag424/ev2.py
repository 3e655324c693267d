"""AES (EV2) secure messaging: AuthenticateEV2First/NonFirst and the channel they open (docs/reference/ntag424.md §5.1-§6).

The session sends part 1 with :data:`PCD_CAPS`, hands the chip's E(Kx, RndB) to
:func:`answer_challenge`, sends the returned cryptogram as part 2 and gives the chip's reply to
:meth:`Ev2Challenge.finish_first` or :meth:`Ev2Challenge.finish_nonfirst`, which check RndA' and
open an :class:`Ev2Channel`. An :class:`Ev2Channel` protects command payloads (MAC or Full) with
the current counter ``n`` and opens the matching responses with ``n + 1`` (§6.1-§6.3).
This module is the AES entry of :data:`.auth.HANDSHAKES`; everything here is pure.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import ClassVar

from tagsmith import ConfigError

from . import crypto
from .channel import CommMode, SecureChannel, SecureMessaging, protect, unprotect
from .errors import ResponseError

#: PCDcap2 sent in AuthenticateEV2First part 1: none (LenCap 00), which asks for AES (§5.1)
PCD_CAPS = b""
FIRST_COMMAND = "AuthenticateEV2First"
NONFIRST_COMMAND = "AuthenticateEV2NonFirst"
RND_LEN = 16


@dataclass(frozen=True, repr=False)
class Ev2Channel:
    """An authenticated EV2 session: transaction identifier, command counter and session keys."""

    mode: ClassVar[SecureMessaging] = SecureMessaging.AES
    ti: bytes
    enc_key: bytes
    mac_key: bytes
    cmd_ctr: int = 0
    # the session keys expanded once per authentication, not once per message
    _enc: crypto.AesKey = field(init=False, compare=False)
    _mac: crypto.AesKey = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_enc", crypto.AesKey(self.enc_key))
        object.__setattr__(self, "_mac", crypto.AesKey(self.mac_key))

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"Ev2Channel(ti={self.ti.hex().upper()}, cmd_ctr={self.cmd_ctr})"

    def advanced(self) -> Ev2Channel:
        """The channel after the chip accepted one command (same expanded keys, counter + 1)."""
        successor = object.__new__(Ev2Channel)  # a field-for-field copy (copy.copy is several times slower)
        successor.__dict__.update(self.__dict__, cmd_ctr=self.cmd_ctr + 1)
        return successor

    def _iv(self, label: bytes, ctr: int) -> bytes:
        block = label + self.ti + ctr.to_bytes(2, "little") + bytes(8)
        return self._enc.ecb_encrypt(block)

    def command_iv(self) -> bytes:
        """IVc = E(SesAuthENCKey, A55A || TI || CmdCtr || 0^8)."""
        return self._iv(b"\xa5\x5a", self.cmd_ctr)

    def response_iv(self) -> bytes:
        """IVr = E(SesAuthENCKey, 5AA5 || TI || CmdCtr+1 || 0^8)."""
        return self._iv(b"\x5a\xa5", self.cmd_ctr + 1)

    def command_mac(self, ins: int, header: bytes, data: bytes) -> bytes:
        """MACt over Cmd || CmdCtr || TI || CmdHeader || CmdData (data already encrypted in Full mode)."""
        message = bytes([ins]) + self.cmd_ctr.to_bytes(2, "little") + self.ti + header + data
        return self._mac.mac_t(message)

    def response_mac(self, rc: int, data: bytes) -> bytes:
        """MACt over RC || CmdCtr+1 || TI || RespData."""
        message = bytes([rc]) + (self.cmd_ctr + 1).to_bytes(2, "little") + self.ti + data
        return self._mac.mac_t(message)

    def encrypt_command_data(self, data: bytes) -> bytes:
        """Encrypt CmdData with IVc after method-2 padding (always padded)."""
        return self._enc.cbc_encrypt(crypto.pad_m2(data), self.command_iv())

    def decrypt_response_data(self, data: bytes) -> bytes:
        """Decrypt RespData with IVr and strip method-2 padding."""
        if not data or len(data) % crypto.BLOCK:
            raise ResponseError(f"encrypted response of {len(data)} bytes is not whole blocks")
        try:
            return crypto.unpad_m2(self._enc.cbc_decrypt(data, self.response_iv()))
        except ValueError:
            raise ResponseError("encrypted response has malformed padding") from None

    def protect(self, ins: int, header: bytes, data: bytes, mode: CommMode) -> bytes:
        return protect(self, ins, header, data, mode)

    def unprotect(self, payload: bytes, mode: CommMode, command: str, rc: int = 0x00) -> bytes:
        return unprotect(self, payload, mode, command, rc)


@dataclass(frozen=True, repr=False)
class Ev2Challenge:
    """State between part 1 and part 2: the key (expanded once for the four operations under it),
    both randoms and the part-2 cryptogram E(Kx, RndA || RndB')."""

    key: crypto.AesKey
    rnd_a: bytes
    rnd_b: bytes
    cryptogram: bytes

    def _check_rnd_a(self, rnd_a_rotated: bytes) -> None:
        if not hmac.compare_digest(rnd_a_rotated, crypto.rotate_left(self.rnd_a)):
            raise ResponseError("authentication failed: the chip's RndA' does not match (wrong key or chip)")

    def finish_first(self, response: bytes) -> Ev2Channel:
        """Check E(Kx, TI || RndA' || PDcap2 || PCDcap2) and open a channel with CmdCtr 0 (§5.1, §5.3)."""
        if len(response) != 32:
            raise ResponseError(f"{FIRST_COMMAND} part 2 returned {len(response)} bytes, expected 32")
        plain = self.key.cbc_decrypt(response)
        self._check_rnd_a(plain[4:20])
        enc, mac = crypto.ev2_session_keys(self.key, self.rnd_a, self.rnd_b)
        return Ev2Channel(ti=plain[:4], enc_key=enc, mac_key=mac, cmd_ctr=0)

    def finish_nonfirst(self, response: bytes, previous: SecureChannel) -> Ev2Channel:
        """Check E(Kx, RndA') and keep TI and CmdCtr of the running transaction with new keys (§5.2)."""
        if len(response) != 16:
            raise ResponseError(f"{NONFIRST_COMMAND} part 2 returned {len(response)} bytes, expected 16")
        self._check_rnd_a(self.key.cbc_decrypt(response))
        enc, mac = crypto.ev2_session_keys(self.key, self.rnd_a, self.rnd_b)
        return Ev2Channel(ti=previous.ti, enc_key=enc, mac_key=mac, cmd_ctr=previous.cmd_ctr)


def answer_challenge(key: bytes, encrypted_rnd_b: bytes, rnd_a: bytes) -> Ev2Challenge:
    """Decrypt RndB from part 1's answer and build E(Kx, RndA || RndB') for part 2."""
    if len(encrypted_rnd_b) != RND_LEN:
        raise ResponseError(f"authentication part 1 returned {len(encrypted_rnd_b)} bytes, expected 16")
    if len(rnd_a) != RND_LEN:
        raise ConfigError("RndA must be 16 bytes")
    cipher = crypto.AesKey(key)
    rnd_b = cipher.cbc_decrypt(encrypted_rnd_b)
    cryptogram = cipher.cbc_encrypt(rnd_a + crypto.rotate_left(rnd_b))
    return Ev2Challenge(key=cipher, rnd_a=rnd_a, rnd_b=rnd_b, cryptogram=cryptogram)
