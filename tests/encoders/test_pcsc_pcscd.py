"""pyscard through a real pcscd + vpcd with simulated chips behind it (marked ``pcscd``)."""

from __future__ import annotations

import logging
import statistics
import time

import pytest

from tagsmith.encoders.connection import TRAFFIC, TagRemovedError
from tagsmith.encoders.pcsc import list_readers
from tagsmith.encoders.reader import NoTagError
from tagsmith.encoders.simulator.chip import SimulatedNtag424
from tagsmith.encoders.simulator.vpicc import ATR

pytestmark = pytest.mark.pcscd

SELECT_APP = bytes.fromhex("00A4040007D276000085010100")
SELECT_NDEF = bytes.fromhex("00A4000C02E104")
A, B = bytes.fromhex("04AA000000000A"), bytes.fromhex("04BB000000000B")


def test_lists_every_virtual_reader_with_tag_presence(pcscd, vpcd_reader):
    with vpcd_reader.card(SimulatedNtag424(uid=A)), vpcd_reader.open() as reader:
        reader.wait_for_tag(5).close()
        listed = {r.name: r for r in list_readers()}
        assert {s.reader for s in pcscd.slots} <= set(listed)
        assert listed[vpcd_reader.reader].tag_present and listed[vpcd_reader.reader].atr == ATR
        assert reader.tag_present()


def test_uid_and_atr_come_from_the_reader(vpcd_reader):
    with vpcd_reader.card(SimulatedNtag424(uid=A)), vpcd_reader.open() as reader:
        with reader.wait_for_tag(5) as conn:
            assert conn.get_uid() == A
            assert conn.get_atr() == ATR


def test_waits_time_out_with_no_tag_error(vpcd_reader):
    with vpcd_reader.open() as reader:
        assert not reader.tag_present()
        started = time.monotonic()
        with pytest.raises(NoTagError, match="No tag placed"):
            reader.wait_for_tag(0.3)
        assert time.monotonic() - started < 1.0
        with vpcd_reader.card(SimulatedNtag424(uid=A)):
            reader.wait_for_tag(5).close()
            with pytest.raises(NoTagError, match="not removed"):
                reader.wait_for_removal(0.3)
        reader.wait_for_removal(3)


def test_card_closing_instead_of_answering_is_tag_removed(vpcd_reader):
    """The 'Card returned no valid response' case (hresult 0)."""
    card = vpcd_reader.card(SimulatedNtag424(uid=A)).place()
    with vpcd_reader.open() as reader, reader.wait_for_tag(5) as conn:
        assert conn.transceive(SELECT_APP)[1] == 0x9000
        card.tear_at = card.apdus
        with pytest.raises(TagRemovedError):
            conn.transceive(SELECT_APP)
        with pytest.raises(TagRemovedError):  # and every later exchange on the old handle
            conn.transceive(SELECT_APP)


def test_exchange_after_pcscd_noticed_the_removal_is_tag_removed(vpcd_reader):
    """The SCARD_W_REMOVED_CARD (0x80100069) case, after pcscd's presence poll."""
    card = vpcd_reader.card(SimulatedNtag424(uid=A)).place()
    with vpcd_reader.open() as reader, reader.wait_for_tag(5) as conn:
        card.remove()
        reader.wait_for_removal(3)
        with pytest.raises(TagRemovedError):
            conn.transceive(SELECT_APP)


def test_server_presents_chips_in_turn_and_state_survives_replacement(vpcd_reader):
    chip_a, chip_b = SimulatedNtag424(uid=A), SimulatedNtag424(uid=B)
    server = vpcd_reader.serve([chip_a, chip_b, chip_a])
    seen = []
    with vpcd_reader.open() as reader:
        for _ in range(3):
            with reader.wait_for_tag(10) as conn:
                uid = conn.get_uid()
                conn.transceive(SELECT_APP)
                conn.transceive(SELECT_NDEF)
                stored, _ = conn.transceive(bytes.fromhex("00B0000004"))
                seen.append((uid, stored))
                if uid == A and stored == bytes(4):
                    assert conn.transceive(bytes.fromhex("00D6000004CAFEF00D")) == (b"", 0x9000)
            reader.wait_for_removal(5)
    server.join(5)
    assert seen == [(A, bytes(4)), (B, bytes(4)), (A, bytes.fromhex("CAFEF00D"))]
    assert [p.uid for p in server.placements] == [A, B, A] and server.error is None


def test_server_places_a_torn_chip_again(vpcd_reader):
    chip = SimulatedNtag424(uid=A)
    server = vpcd_reader.serve([chip], tear_at={0: 1})
    with vpcd_reader.open() as reader:
        with reader.wait_for_tag(10) as conn:
            assert conn.transceive(SELECT_APP)[1] == 0x9000
            with pytest.raises(TagRemovedError):
                conn.transceive(SELECT_APP)
        with reader.wait_for_tag(10) as conn:
            assert conn.get_uid() == A and conn.transceive(SELECT_APP)[1] == 0x9000
    server.join(5)
    assert [p.torn for p in server.placements] == [True, False]


def test_traffic_is_logged_below_debug_by_the_session_only(vpcd_reader, caplog):
    """The session traces APDUs through pcscd as through any transport; the transport itself logs no bytes."""
    from tagsmith.encoders.ntag424.session import Ntag424Session

    with vpcd_reader.card(SimulatedNtag424(uid=A)), vpcd_reader.open() as reader:
        with reader.wait_for_tag(5) as conn, caplog.at_level(TRAFFIC):
            Ntag424Session(conn).select_application()
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    session = "tagsmith.encoders.ntag424.session"
    assert (session, TRAFFIC, "SEND 00A4040C07D276000085010100") in lines and (session, TRAFFIC, "RECV 9000") in lines
    assert not [line for line in lines if line[0].startswith("tagsmith.encoders.pcsc")]
    assert TRAFFIC < logging.DEBUG


def test_round_trip_has_no_delayed_ack_stall(vpcd_reader):
    """Without TCP_QUICKACK before every recv each APDU takes ~44 ms; with it ~0.1 ms."""
    with vpcd_reader.card(SimulatedNtag424(uid=A)), vpcd_reader.open() as reader:
        with reader.wait_for_tag(5) as conn:
            times = []
            for _ in range(200):
                started = time.perf_counter()
                conn.transceive(SELECT_APP)
                times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.005


def _personalise(connection) -> None:
    """A short personalisation: NDEF URL, then key 1 and key 0 changed (key 0 last)."""
    from tagsmith.encoders.ntag424.session import Ntag424Session

    session = Ntag424Session(connection, random=_counter_random())
    session.select_application()
    session.authenticate_ev2_first(0, bytes(16))
    session.write_data(2, 0, bytes.fromhex("0012D1010E5504746167736D6974682E6465762F31"))
    session.change_key(1, bytes.fromhex("11" * 16), 1, old_key=bytes(16))
    session.change_key(0, bytes.fromhex("00" * 15 + "01"), 1)


def _counter_random():
    state = {"n": 0}

    def random(n: int) -> bytes:
        state["n"] += 1
        return bytes([state["n"] & 0xFF]) * n

    return random


def test_chip_personalised_through_pcscd_ends_exactly_like_one_personalised_in_process(vpcd_reader):
    in_process = SimulatedNtag424(uid=A, random=_counter_random())
    _personalise(in_process)
    through_pcscd = SimulatedNtag424(uid=A, random=_counter_random())
    with vpcd_reader.card(through_pcscd), vpcd_reader.open() as reader, reader.wait_for_tag(5) as conn:
        _personalise(conn)
    assert through_pcscd.view.key_versions == in_process.view.key_versions == (1, 1, 0, 0, 0)
    assert through_pcscd.snapshot().to_dict() == in_process.snapshot().to_dict()  # the chip's whole NVM, byte for byte
