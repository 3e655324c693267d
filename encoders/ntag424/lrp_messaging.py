"""LRP secure messaging: AuthenticateLRPFirst/NonFirst and the channel they open (docs/reference/lrp.md).

The LRP counterpart of :mod:`.ev2`, and like it a :class:`~.auth.Handshake`: the session sends
part 1 with :data:`PCD_CAPS` (PCDcap2.1 = 02 asks for LRP), hands the chip's ``01 || RndB`` to
:func:`answer_challenge`, sends the returned cryptogram ``RndA || MAC_LRP(SesAuthMACKey, RndA || RndB)``
as part 2 and gives the chip's reply to :meth:`LrpChallenge.finish_first` or
:meth:`LrpChallenge.finish_nonfirst`, which check the chip's MAC and open an :class:`LrpChannel`
(NT4H2421Gx §9.2.5-§9.2.7, AN12321 §4). Everything here is pure.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import ClassVar

from tagsmith import ConfigError

from . import crypto
from .channel import CommMode, SecureChannel, SecureMessaging, protect, unprotect
from .errors import ResponseError
from .lrp import Lrp

#: PCDcap2 sent in AuthenticateLRPFirst part 1: PCDcap2.1 = 02 asks for LRP (NT4H2421Gx §9.2.5, AN12321 §4)
PCD_CAPS = bytes.fromhex("020000000000")
FIRST_COMMAND = "AuthenticateLRPFirst"
NONFIRST_COMMAND = "AuthenticateLRPNonFirst"
RND_LEN = 16
AUTH_MODE_LRP = 0x01  # first byte of an LRP chip's part-1 answer, before RndB in plain
ENC_CTR_LEN = 4  # EncCtr: 32 bits, MSB first as the LRICB counter (NT4H2421Gx §9.2.4)
SV_PREFIX = bytes.fromhex("00010080")
SV_SUFFIX = bytes.fromhex("9669")


def session_vector(rnd_a: bytes, rnd_b: bytes) -> bytes:
    """SV = 00 01 00 80 || the EV2 context of RndA and RndB || 96 69 (NT4H2421Gx §9.2.7)."""
    return SV_PREFIX + crypto.ev2_context(rnd_a, rnd_b) + SV_SUFFIX


def session_master_key(key: bytes, rnd_a: bytes, rnd_b: bytes) -> bytes:
    """SesAuthMasterKey = CMAC_LRP(Kx, SV), under updated key 0 of Kx (NT4H2421Gx §9.2.7)."""
    return Lrp.from_key(key, 0).cmac(session_vector(rnd_a, rnd_b))


def session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[Lrp, Lrp]:
    """(SesAuthMACKey, SesAuthENCKey): the master key's LRP under its updated keys 0 and 1."""
    return Lrp.pair(session_master_key(key, rnd_a, rnd_b))


class LrpChannel:
    """An authenticated LRP session: TI, command counter, session keys and the encryption counter.

    MACs are CMAC_LRP truncated as in AES mode, over the same inputs (NT4H2421Gx §9.2.3). Full
    mode encrypts with LRICB from EncCtr, which counts every 16-byte block encrypted or decrypted
    since the authentication, commands and responses alike (NT4H2421Gx §9.2.4). So unlike the AES channel this
    one moves EncCtr as :meth:`protect` and :meth:`unprotect` run, and :meth:`advanced` carries it
    with CmdCtr + 1 into the successor. A failed exchange ends the session, so nothing rolls back.
    """

    mode: ClassVar[SecureMessaging] = SecureMessaging.LRP
    __slots__ = ("ti", "cmd_ctr", "enc_ctr", "_mac", "_enc")

    def __init__(self, *, ti: bytes, mac: Lrp, enc: Lrp, cmd_ctr: int = 0, enc_ctr: int = 0) -> None:
        self.ti = ti
        self.cmd_ctr = cmd_ctr
        self.enc_ctr = enc_ctr
        self._mac = mac
        self._enc = enc

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"LrpChannel(ti={self.ti.hex().upper()}, cmd_ctr={self.cmd_ctr}, enc_ctr={self.enc_ctr})"

    def advanced(self) -> LrpChannel:
        """The channel after the chip accepted one command (same keys and EncCtr, CmdCtr + 1)."""
        return LrpChannel(ti=self.ti, mac=self._mac, enc=self._enc, cmd_ctr=self.cmd_ctr + 1, enc_ctr=self.enc_ctr)

    def command_mac(self, ins: int, header: bytes, data: bytes) -> bytes:
        """MACt over Cmd || CmdCtr || TI || CmdHeader || CmdData (data already encrypted in Full mode)."""
        return self._mac.mac_t(bytes([ins]) + self.cmd_ctr.to_bytes(2, "little") + self.ti + header + data)

    def response_mac(self, rc: int, data: bytes) -> bytes:
        """MACt over RC || CmdCtr+1 || TI || RespData."""
        return self._mac.mac_t(bytes([rc]) + (self.cmd_ctr + 1).to_bytes(2, "little") + self.ti + data)

    def encrypt_command_data(self, data: bytes) -> bytes:
        """LRICB-encrypt CmdData from EncCtr after method-2 padding (always padded); EncCtr moves on."""
        out, counter = self._enc.encrypt(data, self.enc_ctr.to_bytes(ENC_CTR_LEN, "big"))
        self.enc_ctr = int.from_bytes(counter, "big")
        return out

    def decrypt_response_data(self, data: bytes) -> bytes:
        """LRICB-decrypt RespData from EncCtr and strip method-2 padding; EncCtr moves on."""
        if not data or len(data) % crypto.BLOCK:
            raise ResponseError(f"encrypted response of {len(data)} bytes is not whole blocks")
        try:
            plain, counter = self._enc.decrypt(data, self.enc_ctr.to_bytes(ENC_CTR_LEN, "big"))
        except ValueError:
            raise ResponseError("encrypted response has malformed padding") from None
        self.enc_ctr = int.from_bytes(counter, "big")
        return plain

    def protect(self, ins: int, header: bytes, data: bytes, mode: CommMode) -> bytes:
        return protect(self, ins, header, data, mode)

    def unprotect(self, payload: bytes, mode: CommMode, command: str, rc: int = 0x00) -> bytes:
        return unprotect(self, payload, mode, command, rc)


@dataclass(frozen=True, repr=False)
class LrpChallenge:
    """State between part 1 and part 2: both randoms, the session keys and the part-2 cryptogram."""

    rnd_a: bytes
    rnd_b: bytes
    mac: Lrp
    enc: Lrp
    cryptogram: bytes

    def _check_mac(self, message: bytes, received: bytes) -> None:
        if not hmac.compare_digest(self.mac.cmac(message), received):
            raise ResponseError("authentication failed: the chip's PICCResponse does not verify (wrong key or chip)")

    def finish_first(self, response: bytes) -> LrpChannel:
        """Check PICCResponse over RndB || RndA || PICCData, decrypt TI from PICCData, open the channel.

        PICCData = E_LRP(SesAuthENCKey, TI || PDcap2 || PCDcap2) takes EncCtr 0, so the channel
        starts at EncCtr 1 with CmdCtr 0 (NT4H2421Gx §9.2.4, §9.2.5).
        """
        if len(response) != 2 * RND_LEN:
            raise ResponseError(f"{FIRST_COMMAND} part 2 returned {len(response)} bytes, expected 32")
        picc_data, picc_mac = response[:RND_LEN], response[RND_LEN:]
        self._check_mac(self.rnd_b + self.rnd_a + picc_data, picc_mac)
        plain, counter = self.enc.decrypt(picc_data, bytes(ENC_CTR_LEN), pad=False)
        return LrpChannel(ti=plain[:4], mac=self.mac, enc=self.enc, cmd_ctr=0, enc_ctr=int.from_bytes(counter, "big"))

    def finish_nonfirst(self, response: bytes, previous: SecureChannel) -> LrpChannel:
        """Check PICCResponse over RndB || RndA; keep TI and CmdCtr with new keys, EncCtr 0 (NT4H2421Gx §9.2.6)."""
        if len(response) != RND_LEN:
            raise ResponseError(f"{NONFIRST_COMMAND} part 2 returned {len(response)} bytes, expected 16")
        self._check_mac(self.rnd_b + self.rnd_a, response)
        return LrpChannel(ti=previous.ti, mac=self.mac, enc=self.enc, cmd_ctr=previous.cmd_ctr, enc_ctr=0)


def answer_challenge(key: bytes, challenge: bytes, rnd_a: bytes) -> LrpChallenge:
    """Take part 1's ``01 || RndB`` and build part 2: RndA || MAC_LRP(SesAuthMACKey, RndA || RndB).

    An AES-mode chip answers E(Kx, RndB), 16 bytes, instead: a ResponseError here.
    """
    if len(challenge) != 1 + RND_LEN or challenge[0] != AUTH_MODE_LRP:
        raise ResponseError(f"LRP authentication part 1 returned {len(challenge)} bytes, expected 01 || RndB "
                            "(17): the chip is not in LRP mode")
    if len(rnd_a) != RND_LEN:
        raise ConfigError("RndA must be 16 bytes")
    rnd_b = challenge[1:]
    mac, enc = session_keys(key, rnd_a, rnd_b)
    return LrpChallenge(rnd_a=rnd_a, rnd_b=rnd_b, mac=mac, enc=enc, cryptogram=rnd_a + mac.cmac(rnd_a + rnd_b))
