"""AuthenticateEV2First / EV2NonFirst computations (docs/reference/ntag424.md §5.1-§5.3), without any I/O.

The session sends part 1, hands the chip's E(Kx, RndB) to :func:`answer_challenge`, sends the
returned cryptogram as part 2 and gives the chip's reply to :func:`finish_first` or
:func:`finish_nonfirst`, which check RndA' and return the new :class:`SecureChannel`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from tagsmith import ConfigError

from . import crypto
from .channel import SecureChannel
from .errors import ResponseError

KEY_LEN = 16


@dataclass(frozen=True, repr=False)
class Challenge:
    """State between part 1 and part 2: the key (expanded once for the four operations under it),
    both randoms and the part-2 cryptogram."""

    key: crypto.AesKey
    rnd_a: bytes
    rnd_b: bytes
    cryptogram: bytes


def check_key(key: bytes) -> None:
    """Refuse anything but a 16-byte AES key before it reaches the chip."""
    if len(key) != KEY_LEN:
        raise ConfigError(f"AES-128 key must be 16 bytes, got {len(key)}")


def answer_challenge(key: bytes, encrypted_rnd_b: bytes, rnd_a: bytes) -> Challenge:
    """Decrypt RndB and build E(Kx, RndA || RndB') for part 2."""
    if len(encrypted_rnd_b) != 16:
        raise ResponseError(f"authentication part 1 returned {len(encrypted_rnd_b)} bytes, expected 16")
    if len(rnd_a) != 16:
        raise ConfigError("RndA must be 16 bytes")
    cipher = crypto.AesKey(key)
    rnd_b = cipher.cbc_decrypt(encrypted_rnd_b)
    cryptogram = cipher.cbc_encrypt(rnd_a + crypto.rotate_left(rnd_b))
    return Challenge(key=cipher, rnd_a=rnd_a, rnd_b=rnd_b, cryptogram=cryptogram)


def _check_rnd_a(challenge: Challenge, rnd_a_rotated: bytes) -> None:
    if not hmac.compare_digest(rnd_a_rotated, crypto.rotate_left(challenge.rnd_a)):
        raise ResponseError("authentication failed: the chip's RndA' does not match (wrong key or chip)")


def finish_first(challenge: Challenge, response: bytes) -> SecureChannel:
    """Check E(Kx, TI || RndA' || PDcap2 || PCDcap2) and open a channel with CmdCtr 0."""
    if len(response) != 32:
        raise ResponseError(f"AuthenticateEV2First part 2 returned {len(response)} bytes, expected 32")
    plain = challenge.key.cbc_decrypt(response)
    _check_rnd_a(challenge, plain[4:20])
    enc, mac = crypto.ev2_session_keys(challenge.key, challenge.rnd_a, challenge.rnd_b)
    return SecureChannel(ti=plain[:4], enc_key=enc, mac_key=mac, cmd_ctr=0)


def finish_nonfirst(challenge: Challenge, response: bytes, previous: SecureChannel) -> SecureChannel:
    """Check E(Kx, RndA') and keep TI and CmdCtr of the running transaction with new keys."""
    if len(response) != 16:
        raise ResponseError(f"AuthenticateEV2NonFirst part 2 returned {len(response)} bytes, expected 16")
    _check_rnd_a(challenge, challenge.key.cbc_decrypt(response))
    enc, mac = crypto.ev2_session_keys(challenge.key, challenge.rnd_a, challenge.rnd_b)
    return SecureChannel(ti=previous.ti, enc_key=enc, mac_key=mac, cmd_ctr=previous.cmd_ctr)
