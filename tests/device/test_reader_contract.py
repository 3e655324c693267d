"""Qualify a real reader: the connection contract against a real NTAG 424 DNA on it.

Opt-in: ``pytest tests/device --reader NAME`` (a PC/SC reader name or part of it, or an nfcpy
path such as ``usb:072f:2200``). Place a factory-fresh or tagsmith-personalised NTAG 424 DNA on
the reader first. Nothing is written to the tag. The tests that need a person to lift the tag
are skipped here; the simulator runs them on every transport in tests/encoders/.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tagsmith.encoders.reader import open_reader

_spec = importlib.util.spec_from_file_location(
    "connection_contract", Path(__file__).parents[1] / "encoders" / "connection_contract.py")
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)

pytestmark = pytest.mark.device


class RealReaderLink:
    """A real tag on a real reader; its UID is whatever the reader reports."""

    uid = None

    def __init__(self, name: str) -> None:
        self.reader = open_reader(name)
        self.connection = self.reader.wait_for_tag(30)

    def get_uid(self) -> bytes:
        return self.connection.get_uid()

    def tear_next(self) -> None:
        pytest.skip("lifting the tag mid-command needs a person; covered by the simulator")

    def replace(self):
        pytest.skip("re-placing the tag needs a person; covered by the simulator")

    def close(self) -> None:
        self.connection.close()
        self.reader.close()


@pytest.fixture(scope="module")
def reader_name(request) -> str:
    name = request.config.getoption("--reader")
    if not name:
        pytest.skip("real-reader tests run only with --reader NAME")
    return name


class TestRealReaderContract(_contract.ConnectionContract):
    @pytest.fixture
    def link(self, reader_name):
        link = RealReaderLink(reader_name)
        yield link
        link.close()

    def test_uid_agrees_with_get_version(self, link):
        conn = link.connection
        conn.transceive(_contract.GET_VERSION)
        conn.transceive(_contract.ADDITIONAL_FRAME)
        part3, _ = conn.transceive(_contract.ADDITIONAL_FRAME)
        if any(part3[:7]):  # zeros mean Random ID is on: the reader sees a random UID
            assert link.get_uid() == part3[:7]
