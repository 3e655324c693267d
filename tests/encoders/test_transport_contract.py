"""The connection contract on all three transports, each with the simulated chip at the far end.

In-process (the chip is the Connection), pyscard through a real pcscd + vpcd (marked ``pcscd``),
and nfcpy's ISO-DEP over its ``udp`` driver with the chip behind tagsmith's Type 4 emulator.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tagsmith.encoders.simulator.chip import SimulatedNtag424

_spec = importlib.util.spec_from_file_location("connection_contract", Path(__file__).with_name("connection_contract.py"))
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)
ConnectionContract = _contract.ConnectionContract

UID = bytes.fromhex("04C0FFEE424242")


class InProcessLink:
    """The simulated chip itself is the Connection."""

    def __init__(self, chip: SimulatedNtag424) -> None:
        self.chip = self.connection = chip
        self.uid = chip.uid

    def get_uid(self) -> bytes:
        return self.chip.uid

    def tear_next(self) -> None:
        self.chip.tear_next()

    def replace(self):
        self.chip.place()
        return self.chip


class _ReaderLink:
    """A chip behind a real transport: the connection reports the UID, the chip is torn directly."""

    def get_uid(self) -> bytes:
        return self.connection.get_uid()

    def tear_next(self) -> None:
        self.chip.tear_next()


class PcscLink(_ReaderLink):
    """pyscard -> libpcsclite -> pcscd -> vpcd -> TCP -> vpicc -> the simulated chip."""

    def __init__(self, vpcd_reader, chip: SimulatedNtag424) -> None:
        self.chip, self.uid = chip, chip.uid
        self.card = vpcd_reader.card(chip).place()
        self.reader = vpcd_reader.open()
        self.connection = self.reader.wait_for_tag(5)

    def replace(self):
        self.connection.close()
        self.reader.wait_for_removal(5)
        self.card.place()
        self.connection = self.reader.wait_for_tag(5)
        return self.connection

    def close(self) -> None:
        self.connection.close()
        self.reader.close()


class NfcpyLink(_ReaderLink):
    """nfcpy Type4Tag.transceive -> udp driver -> tagsmith's ISO-DEP card loop -> the simulated chip."""

    def __init__(self, chip: SimulatedNtag424) -> None:
        from tagsmith.encoders.nfcpy import NfcpyReader, Type4Emulator, free_udp_path

        path = free_udp_path()
        self.chip, self.uid = chip, chip.uid
        self.emulator = Type4Emulator(chip, path).place()
        self.reader = NfcpyReader(path, timeout=0.1)
        self.connection = self.reader.wait_for_tag(5)

    def replace(self):
        self.connection.close()
        self.connection = self.reader.wait_for_tag(5)
        return self.connection

    def close(self) -> None:
        self.connection.close()
        self.reader.close()
        self.emulator.remove()


class TestInProcessContract(ConnectionContract):
    @pytest.fixture
    def link(self):
        return InProcessLink(SimulatedNtag424(uid=UID))


@pytest.mark.pcscd
class TestPcscContract(ConnectionContract):
    @pytest.fixture
    def link(self, vpcd_reader):
        link = PcscLink(vpcd_reader, SimulatedNtag424(uid=UID))
        yield link
        link.close()


class TestNfcpyContract(ConnectionContract):
    @pytest.fixture
    def link(self):
        link = NfcpyLink(SimulatedNtag424(uid=UID))
        yield link
        link.close()
