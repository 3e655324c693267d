"""Test-side helpers for the simulated chip: a tiny PCD written from docs/reference/ntag424.md.

It is NOT the reader library (``encoders.ntag424``): just enough EV2 authentication and
secure messaging (ref §5, §6) to drive the chip with raw APDUs in the tests.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from types import SimpleNamespace

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC

ZERO = bytes(16)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def feed(*chunks: str | bytes):
    """A ``random=`` source that hands out the given values in order, then os.urandom."""
    queue = [h(c) if isinstance(c, str) else bytes(c) for c in chunks]

    def draw(n: int) -> bytes:
        if queue:
            value = queue.pop(0)
            assert len(value) == n, f"chip asked for {n} random bytes, next fed value has {len(value)}"
            return value
        return os.urandom(n)

    return draw


def _cmac(key: bytes, data: bytes) -> bytes:
    return CMAC.new(key, msg=data, ciphermod=AES).digest()


def _mact(key: bytes, data: bytes) -> bytes:
    return _cmac(key, data)[1::2]


def _enc(key: bytes, data: bytes, iv: bytes = ZERO) -> bytes:
    return AES.new(key, AES.MODE_CBC, iv=iv).encrypt(data)


def _dec(key: bytes, data: bytes, iv: bytes = ZERO) -> bytes:
    return AES.new(key, AES.MODE_CBC, iv=iv).decrypt(data)


def _pad(data: bytes) -> bytes:
    data += b"\x80"
    return data + bytes(-len(data) % 16)


def _unpad(data: bytes) -> bytes:
    body = data.rstrip(b"\x00")
    assert body.endswith(b"\x80")
    return body[:-1]


def native(ins: int, data: bytes = b"") -> bytes:
    return bytes([0x90, ins, 0, 0]) + (bytes([len(data)]) + data if data else b"") + b"\x00"


class Pcd:
    """Raw-APDU driver with just enough EV2 to talk to the chip."""

    def __init__(self, chip) -> None:
        self.chip = chip
        self.ti = b""
        self.ctr = 0
        self.k_enc = self.k_mac = b""

    def send(self, apdu: bytes | str) -> tuple[bytes, int]:
        return self.chip.transceive(h(apdu) if isinstance(apdu, str) else apdu)

    def select_app(self) -> None:
        assert self.send("00A4040C07D276000085010100") == (b"", 0x9000)

    def _session_keys(self, key: bytes, rnd_a: bytes, rnd_b: bytes) -> None:
        ctx = rnd_a[:2] + bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True)) + rnd_b[6:] + rnd_a[8:]
        self.k_enc = _cmac(key, h("A55A00010080") + ctx)
        self.k_mac = _cmac(key, h("5AA500010080") + ctx)

    def auth(self, key_no: int, key: bytes = ZERO, *, first: bool = True, rnd_a: bytes | None = None) -> int:
        """Run AuthenticateEV2First/NonFirst; return the final status word."""
        rnd_a = rnd_a or os.urandom(16)
        data, sw = self.send(native(0x71, bytes([key_no, 0])) if first else native(0x77, bytes([key_no])))
        if sw != 0x91AF:
            return sw
        rnd_b = _dec(key, data)
        data, sw = self.send(native(0xAF, _enc(key, rnd_a + rnd_b[1:] + rnd_b[:1])))
        if sw != 0x9100:
            return sw
        plain = _dec(key, data)
        if first:
            assert plain[4:20] == rnd_a[1:] + rnd_a[:1]
            self.ti, self.ctr = plain[:4], 0
        else:
            assert plain == rnd_a[1:] + rnd_a[:1]
        self._session_keys(key, rnd_a, rnd_b)
        return sw

    def _iv(self, label: str, ctr: int) -> bytes:
        return AES.new(self.k_enc, AES.MODE_ECB).encrypt(h(label) + self.ti + ctr.to_bytes(2, "little") + bytes(8))

    def build(self, ins: int, header: bytes = b"", data: bytes = b"", mode: str = "full") -> bytes:
        """The C-APDU of an authenticated command in ``mode`` (plain/mac/full) at the current CmdCtr."""
        if mode == "plain":
            return native(ins, header + data)
        if mode == "full" and data:
            data = _enc(self.k_enc, _pad(data), self._iv("A55A", self.ctr))
        mac = _mact(self.k_mac, bytes([ins]) + self.ctr.to_bytes(2, "little") + self.ti + header + data)
        return native(ins, header + data + mac)

    def cmd(self, ins: int, header: bytes = b"", data: bytes = b"", mode: str = "full",
            *, expect_mac: bool = True) -> tuple[bytes, int]:
        """Send an authenticated command; check and strip the response MAC; decrypt in Full mode."""
        resp, sw = self.send(self.build(ins, header, data, mode))
        if sw >> 8 != 0x91 or sw & 0xFF not in (0x00, 0x90):
            return resp, sw
        self.ctr += 1
        if mode == "plain" or not expect_mac:
            return resp, sw
        body, mac = resp[:-8], resp[-8:]
        assert mac == _mact(self.k_mac, bytes([sw & 0xFF]) + self.ctr.to_bytes(2, "little") + self.ti + body)
        if mode == "full" and body:
            body = _unpad(_dec(self.k_enc, body, self._iv("5AA5", self.ctr)))
        return body, sw

    def change_key(self, key_no: int, new: bytes, version: int, old: bytes = ZERO) -> tuple[bytes, int]:
        if key_no == 0:
            data = new + bytes([version])
            return self.cmd(0xC4, bytes([key_no]), data, expect_mac=False)
        xored = bytes(a ^ b for a, b in zip(new, old, strict=True))
        crc = (zlib.crc32(new) ^ 0xFFFFFFFF).to_bytes(4, "little")
        return self.cmd(0xC4, bytes([key_no]), xored + bytes([version]) + crc)


def ndef_uri(rest: str, code: int = 0x04) -> bytes:
    """NLEN || short URI record (ref §9.5): 7 header bytes before the first URL character."""
    payload = bytes([code]) + rest.encode("ascii")
    record = bytes([0xD1, 0x01, len(payload), 0x55]) + payload
    return len(record).to_bytes(2, "big") + record


def offsets(ndef: bytes, *markers: str) -> Iterable[int]:
    """File offsets just after each marker text (e.g. 'e=')."""
    for marker in markers:
        yield ndef.index(marker.encode()) + len(marker)


def le3(value: int) -> bytes:
    return value.to_bytes(3, "little")


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (importlib import mode cannot import conftest)."""
    return SimpleNamespace(h=h, feed=feed, Pcd=Pcd, native=native, ndef_uri=ndef_uri,
                           offsets=offsets, le3=le3, ZERO=ZERO)
