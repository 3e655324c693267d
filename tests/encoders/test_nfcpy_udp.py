"""nfcpy specifics: the card-side ISO-DEP block rules, and reader errors over the udp driver."""

from __future__ import annotations

import socket

import pytest

from tagsmith.encoders.connection import ReaderUnavailableError
from tagsmith.encoders.nfcpy import ATS, NfcpyReader, Type4Emulator, _IsoDepCard, free_udp_path
from tagsmith.encoders.reader import NoTagError, open_reader
from tagsmith.encoders.simulator.chip import SimulatedNtag424

RATS_FSD256 = bytes.fromhex("E080")


def test_ats_is_ntag424s():
    assert ATS == bytes.fromhex("067777710280")


def test_i_block_answer_carries_the_toggled_block_number():
    card = _IsoDepCard(RATS_FSD256)
    assert card.frame(bytes.fromhex("02 00A4")) == ("apdu", bytes.fromhex("00A4"))
    assert card.respond(bytes.fromhex("9000")) == bytes.fromhex("02 9000")
    assert card.frame(bytes.fromhex("03 00A4")) == ("apdu", bytes.fromhex("00A4"))
    assert card.respond(bytes.fromhex("9000")) == bytes.fromhex("03 9000")


def test_long_response_is_chained_to_the_readers_frame_size():
    card = _IsoDepCard(RATS_FSD256)  # FSD 256: 253 bytes of INF per block
    card.frame(bytes.fromhex("02 00B0000000"))
    first = card.respond(bytes(256) + b"\x90\x00")
    assert first[0] == 0x12 and len(first) == 254
    kind, second = card.frame(bytes([0xA3]))  # R(ACK) with the reader's next block number
    assert kind == "reply" and second == bytes([0x03]) + bytes(3) + b"\x90\x00"  # 258 - 253 bytes left


def test_chained_command_is_acknowledged_then_assembled():
    card = _IsoDepCard(RATS_FSD256)
    assert card.frame(bytes.fromhex("12 00D6")) == ("reply", bytes([0xA2]))
    assert card.frame(bytes.fromhex("03 0000")) == ("apdu", bytes.fromhex("00D60000"))


def test_nak_resends_the_last_block_or_acks_a_presence_check():
    card = _IsoDepCard(RATS_FSD256)
    card.frame(bytes.fromhex("02 00A4"))
    sent = card.respond(b"\x90\x00")
    assert card.frame(bytes([0xB2])) == ("reply", sent)  # same number: the answer was lost
    assert card.frame(bytes([0xB3])) == ("reply", bytes([0xA2]))  # other number: presence check


def test_deselect_is_echoed():
    assert _IsoDepCard(RATS_FSD256).frame(b"\xc2") == ("deselect", b"\xc2")


def test_open_reader_dispatches_nfcpy_paths():
    path = free_udp_path()
    with Type4Emulator(SimulatedNtag424(), path):
        reader = open_reader(path)
        try:
            assert isinstance(reader, NfcpyReader) and reader.tag_present()
            with reader.wait_for_tag(5) as conn:
                assert conn.transceive(bytes.fromhex("00A4040007D276000085010100")) == (b"", 0x9000)
        finally:
            reader.close()


def test_wait_for_tag_times_out_with_no_tag_error():
    with NfcpyReader(free_udp_path()) as reader, pytest.raises(NoTagError, match="No tag placed"):
        reader.wait_for_tag(0.2)


def test_wait_for_removal_sees_the_tag_go():
    path = free_udp_path()
    emulator = Type4Emulator(SimulatedNtag424(), path).place()
    with NfcpyReader(path) as reader:
        reader.wait_for_tag(5).close()
        emulator.remove()
        reader.wait_for_removal(10)


def test_unknown_device_is_reader_unavailable():
    with pytest.raises(ReaderUnavailableError, match="usb:ffff:ffff"):
        NfcpyReader("usb:ffff:ffff")


def test_a_port_the_services_database_names_is_refused_in_one_line():
    """nfcpy's udp driver reads the port back as a service name and fails on int(); CI once drew 60179 (fido)."""
    try:
        port = socket.getservbyname("domain", "udp")
    except OSError:
        pytest.skip("no services database on this machine")
    with pytest.raises(ReaderUnavailableError, match=r"cannot use port 53: the services database names it 'domain'"):
        NfcpyReader(f"udp:127.0.0.1:{port}")
    with pytest.raises(ReaderUnavailableError, match="pick another port"):
        Type4Emulator(SimulatedNtag424(), f"udp:127.0.0.1:{port}").place()
