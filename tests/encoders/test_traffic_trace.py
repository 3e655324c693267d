"""The TRAFFIC trace format and where the session redacts key material from it."""

from __future__ import annotations

from tagsmith.encoders.connection import TRAFFIC, format_command, format_response
from tagsmith.encoders.ntag424.session import Ntag424Session
from tagsmith.encoders.simulator import SimulatedNtag424

REASON = "secure messaging"


def test_redaction_keeps_header_lc_le_and_status_only():
    assert format_command(bytes.fromhex("90C4000029") + bytes(41) + b"\x00", REASON) == \
        "90C40000 29 <41 bytes redacted: secure messaging> 00"
    assert format_command(bytes.fromhex("00D6000002ABCD"), REASON) == "00D60000 02 <2 bytes redacted: secure messaging>"
    assert format_command(bytes.fromhex("9060000000"), REASON) == "9060000000"  # no data field: nothing to hide
    assert format_command(bytes.fromhex("00A4040C07D276000085010100")) == "00A4040C07D276000085010100"
    assert format_response(bytes.fromhex("0102030405060708"), 0x9100, REASON) == \
        "<8 bytes redacted: secure messaging> 9100"
    assert format_response(b"", 0x91AE, REASON) == "91AE"
    assert format_response(b"\x04\x04", 0x91AF) == "040491AF"


def test_nonfirst_authentication_and_every_frame_of_a_session_are_redacted(caplog):
    session = Ntag424Session(SimulatedNtag424())
    session.select_application()
    with caplog.at_level(TRAFFIC):
        session.authenticate_ev2_first(0, bytes(16))
        session.get_version()  # three frames inside the session, 91AF continuations included
        session.authenticate_ev2_nonfirst(3, bytes(16))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 * (2 + 3 + 2)
    # every frame with data is redacted: what is left in clear is a bare header or status word
    assert all("redacted" in line or len(line) in (len("RECV 9100"), len("SEND 90AF000000")) for line in lines)
    assert "SEND 90770000 01 <1 byte redacted: authentication> 00" in lines
    assert lines.count("RECV <16 bytes redacted: authentication> 9100") == 1  # NonFirst part 2: E(K, RndA')
    assert "SEND 90AF000000" in lines  # GetVersion's continuation has no data to hide
    assert [line for line in lines if line.startswith("RECV")][2:5] == [
        "RECV <7 bytes redacted: secure messaging> 91AF", "RECV <7 bytes redacted: secure messaging> 91AF",
        "RECV <22 bytes redacted: secure messaging> 9100"]
