"""EV2 secure messaging state and its pure transforms (docs/reference/ntag424.md §6).

A :class:`SecureChannel` is the result of an AuthenticateEV2First/NonFirst: TI, the command
counter and the two session keys. It protects command payloads (MAC or Full) with the current
counter ``n`` and opens the matching responses with ``n + 1``; the session advances the counter
once per accepted command, Plain ones included (§6.1).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import IntEnum

from . import crypto
from .errors import NotAuthenticatedError, ResponseError

MACT_LEN = 8
MAX_CMD_CTR = 0xFFFF


class CommMode(IntEnum):
    """File communication mode (FileOption bits 1..0); 0b10 also means Plain on the chip."""

    PLAIN = 0
    MAC = 1
    FULL = 3


@dataclass(frozen=True, repr=False)
class SecureChannel:
    """An authenticated EV2 session: transaction identifier, command counter and session keys."""

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
        return f"SecureChannel(ti={self.ti.hex().upper()}, cmd_ctr={self.cmd_ctr})"

    def advanced(self) -> SecureChannel:
        """The channel after the chip accepted one command (same expanded keys, counter + 1)."""
        successor = object.__new__(SecureChannel)  # a field-for-field copy (copy.copy is several times slower)
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
        """Build the APDU data field: header || data (encrypted for Full) || MACt (MAC, Full)."""
        if self.cmd_ctr >= MAX_CMD_CTR:
            raise NotAuthenticatedError("command counter exhausted: authenticate again")
        if mode is CommMode.PLAIN:
            return header + data
        if mode is CommMode.FULL and data:
            data = self.encrypt_command_data(data)
        return header + data + self.command_mac(ins, header, data)

    def unprotect(self, payload: bytes, mode: CommMode, command: str, rc: int = 0x00) -> bytes:
        """Check the response MACt (MAC, Full) and decrypt (Full); return the plain response data."""
        if mode is CommMode.PLAIN:
            return payload
        if len(payload) < MACT_LEN:
            raise ResponseError(f"{command}: response of {len(payload)} bytes lacks its MAC")
        data, mac = payload[:-MACT_LEN], payload[-MACT_LEN:]
        if not hmac.compare_digest(mac, self.response_mac(rc, data)):
            raise ResponseError(f"{command}: response MAC does not verify")
        if mode is CommMode.FULL and data:
            return self.decrypt_response_data(data)
        return data
