"""The one contract every Connection keeps, whatever carries the bytes (not collected itself).

A subclass provides a ``link`` fixture returning a :class:`Link`-shaped object:
``connection`` (the Connection under test), ``uid`` (the tag's UID, or None if unknown),
``get_uid()``, ``tear_next()`` (the tag leaves the field during the next APDU) and
``replace()`` (the tag is placed again; returns a fresh Connection). Test files load this module
by path, since tests/ has no packages (``importlib.util.spec_from_file_location``).
"""

from __future__ import annotations

import pytest

from tagsmith.encoders.connection import Connection, TagRemovedError

SELECT_APP = bytes.fromhex("00A4040007D276000085010100")
SELECT_NDEF_FILE = bytes.fromhex("00A4000C02E104")
READ_BINARY_256 = bytes.fromhex("00B0000000")
GET_VERSION = bytes.fromhex("9060000000")
ADDITIONAL_FRAME = bytes.fromhex("90AF000000")
GET_FILE_SETTINGS_NO_SUCH_FILE = bytes.fromhex("90F50000010F00")


class ConnectionContract:
    """What the protocol layer may rely on from any Connection."""

    def test_is_a_connection(self, link):
        assert isinstance(link.connection, Connection)

    def test_select_application_answers_9000(self, link):
        assert link.connection.transceive(SELECT_APP) == (b"", 0x9000)

    def test_get_version_takes_three_frames(self, link):
        conn = link.connection
        part1, sw1 = conn.transceive(GET_VERSION)
        part2, sw2 = conn.transceive(ADDITIONAL_FRAME)
        part3, sw3 = conn.transceive(ADDITIONAL_FRAME)
        assert (sw1, sw2, sw3) == (0x91AF, 0x91AF, 0x9100)
        assert part1[0] == 0x04 and len(part1) == len(part2) == 7  # vendor NXP; HW, SW info
        assert len(part3) in (14, 15)
        if link.uid is not None:
            assert part3[:7] == link.uid

    def test_native_error_is_a_status_word_not_an_exception(self, link):
        conn = link.connection
        assert conn.transceive(SELECT_APP)[1] == 0x9000
        data, sw = conn.transceive(GET_FILE_SETTINGS_NO_SUCH_FILE)
        assert (data, sw) == (b"", 0x91F0)
        assert conn.transceive(ADDITIONAL_FRAME) == (b"", 0x911C)  # nothing to continue

    def test_status_word_is_a_plain_16_bit_int(self, link):
        _, sw = link.connection.transceive(SELECT_APP)
        assert int(sw) == 0x9000 and 0 <= sw <= 0xFFFF

    def test_256_byte_response(self, link):
        conn = link.connection
        assert conn.transceive(SELECT_APP)[1] == 0x9000
        assert conn.transceive(SELECT_NDEF_FILE)[1] == 0x9000
        data, sw = conn.transceive(READ_BINARY_256)
        assert sw == 0x9000 and len(data) == 256

    def test_long_command_is_answered_with_a_status_word(self, link):
        """A 205-byte APDU (chained over ISO-DEP) reaches the chip, which rejects it politely."""
        conn = link.connection
        data, sw = conn.transceive(bytes.fromhex("00A40400C8") + bytes(200))
        assert data == b"" and sw != 0x9000 and sw >> 8 in (0x67, 0x6A)
        assert conn.transceive(SELECT_APP) == (b"", 0x9000)

    def test_uid(self, link):
        uid = link.get_uid()
        assert len(uid) == 7 and uid[0] == 0x04
        if link.uid is not None:
            assert uid == link.uid

    def test_tag_lifted_mid_apdu_raises_tag_removed(self, link):
        conn = link.connection
        assert conn.transceive(SELECT_APP)[1] == 0x9000
        link.tear_next()
        with pytest.raises(TagRemovedError):
            conn.transceive(GET_VERSION)

    def test_tag_works_again_after_replacement(self, link):
        conn = link.connection
        conn.transceive(SELECT_APP)
        conn.transceive(GET_VERSION)  # leave a multi-frame command pending, then lift the tag
        link.tear_next()
        with pytest.raises(TagRemovedError):
            conn.transceive(ADDITIONAL_FRAME)
        conn = link.replace()
        assert conn.transceive(ADDITIONAL_FRAME)[1] == 0x911C  # the pending frame died with the field
        assert conn.transceive(SELECT_APP) == (b"", 0x9000)
        assert conn.transceive(GET_VERSION)[1] == 0x91AF
