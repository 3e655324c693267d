"""The CC file tells phones the truth: NDEF writes need key 0, so its NDEF write access byte is FF.

docs/reference/ntag424.md §3.2.

NFC Forum Type 4 Tag: the NDEF File Control TLV's write access byte is 00 (granted) or FF (no
write access); the factory CC says 00, which is true only while the NDEF file's write right is free.
"""

from __future__ import annotations

import json

import pytest

from tagsmith.encoders.ntag424.errors import AuthenticationError, SecurityStatusError
from tagsmith.encoders.ntag424.files import KEY_FREE, AccessRights, cc_ndef_write_access
from tagsmith.encoders.ntag424.session import CC_FILE_ID, NDEF_FILE_ID, Ntag424Session
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.provision.simpool import sim_pool
from tagsmith.workspace import Workspace

CC_NDEF_WRITE = 0x0E  # offset of the NDEF file's write access byte in the CC


def phone_reads_cc(chip) -> bytes:
    """What a phone's Type 4 Tag NDEF detection reads: select the application, select E103, ReadBinary."""
    phone = Ntag424Session(chip)
    phone.select_application()
    phone.select_file(CC_FILE_ID)
    return phone.iso_read_binary(0, 15)


def test_a_station_run_leaves_a_cc_that_forbids_phone_writes_and_the_chip_agrees(tmp_path, tagsmith_cli):
    home, env = tmp_path / "ws", {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase"}
    assert tagsmith_cli(home, "demo", "--units", "2", "--tear-rate", "0", "--json").returncode == 0
    batch = json.loads(tagsmith_cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "3",
                                    "--json", env=env).stdout)["id"]
    pool = sim_pool(Workspace.resolve(home))
    before = set(pool.uids())
    run = tagsmith_cli(home, "station", "run", "--batch", batch, "--sim", "--sim-tear-rate", "0.3", "--seed", "4",
                       "--json", env=env)
    assert run.returncode == 0, run.stderr
    chips = [pool.load(uid) for uid in sorted(set(pool.uids()) - before)]
    assert len(chips) >= 3
    for chip in chips:
        chip.place()
        cc = phone_reads_cc(chip)
        assert cc[7:11] == bytes.fromhex("0406E104")  # the NDEF File Control TLV for E104
        assert cc[CC_NDEF_WRITE - 1] == 0x00  # read access: granted (SUN reads stay free)
        assert cc[CC_NDEF_WRITE] == 0xFF  # write access: none, as the file settings enforce
        ndef = chip.view.file_contents(2)
        phone = Ntag424Session(chip)
        assert phone.read_ndef_as_phone().startswith("https://")  # phones still read the URL
        phone.select_file(NDEF_FILE_ID)
        with pytest.raises(SecurityStatusError):  # a phone app's write attempt: refused by the chip
            phone.iso_update_binary(0, bytes(2))
        assert chip.view.file_contents(2) == ndef
        chip.remove()


@pytest.mark.parametrize(("write", "read_write", "expected"), [
    (0, 0, 0xFF), (KEY_FREE, 0, 0x00), (0, KEY_FREE, 0x00), (3, 0xF, 0xFF), (0xF, 0xF, 0xFF)])
def test_cc_write_byte_follows_the_ndef_rights(write, read_write, expected):
    assert cc_ndef_write_access(AccessRights(write=write, read_write=read_write)) == expected


def test_the_simulated_cc_file_is_written_only_under_key_0():
    """Factory CC file: read free, write and read-write key 0 (NT4H2421Gx factory file settings)."""
    chip = SimulatedNtag424()
    phone = Ntag424Session(chip)
    phone.select_application()
    phone.select_file(CC_FILE_ID)
    with pytest.raises(SecurityStatusError):
        phone.iso_update_binary(CC_NDEF_WRITE, b"\xff")
    with pytest.raises(AuthenticationError):
        phone.write_data(1, CC_NDEF_WRITE, b"\xff")
    assert chip.view.file_contents(1)[CC_NDEF_WRITE] == 0x00
    station = Ntag424Session(chip)
    station.select_application()
    station.authenticate_ev2_first(0, bytes(16))
    station.write_data(1, CC_NDEF_WRITE, b"\xff")
    assert chip.view.file_contents(1)[CC_NDEF_WRITE] == 0xFF
