"""Tearing, persistence across placements, state snapshots, authentication delay, originality."""

from __future__ import annotations

import pytest
from Crypto.PublicKey import ECC

from tagsmith.encoders.connection import Connection, TagRemovedError
from tagsmith.encoders.simulator import SIMULATOR_PUBLIC_KEY, NvState, SimulatedNtag424

P224_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D


def test_is_a_connection():
    assert isinstance(SimulatedNtag424(), Connection)


def test_tear_after_commits_the_write_and_loses_the_response(kit):
    chip = SimulatedNtag424(tear_after=2)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    with pytest.raises(TagRemovedError):
        pcd.send("908D0000090200000002000011 22 00".replace(" ", ""))
    assert not chip.view.in_field and chip.view.apdu_total == 2
    with pytest.raises(TagRemovedError):
        pcd.send("9060000000")
    chip.place()
    assert chip.view.apdu_count == 0 and chip.view.apdu_total == 2 and chip.view.selected == "picc"
    assert chip.view.file_contents(2)[:2] == kit.h("1122")


def test_tear_without_commit_rolls_back(kit):
    chip = SimulatedNtag424(tear_commits=False)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    chip.tear_next()
    with pytest.raises(TagRemovedError):
        pcd.send("908D0000090200000002000011 22 00".replace(" ", ""))
    chip.place()
    assert chip.view.file_contents(2)[:2] == bytes(2)


def test_torn_change_key_then_resume_from_versions(kit):
    chip = SimulatedNtag424()
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.auth(0) == 0x9100
    assert pcd.change_key(1, bytes([1]) * 16, 1) == (b"", 0x9100)
    chip.tear_at(1)
    with pytest.raises(TagRemovedError):
        pcd.change_key(2, bytes([2]) * 16, 1)
    chip.place()
    # NVM kept both key changes; the session is gone; the selection too
    assert chip.view.key_versions == (0, 1, 1, 0, 0)
    assert chip.view.authenticated_key is None and chip.view.selected == "picc"
    pcd.select_app()
    assert pcd.send(kit.native(0x64, b"\x02")) == (b"\x01", 0x9100)
    assert pcd.auth(2, bytes([2]) * 16) == 0x9100


def test_sdm_first_read_tracking_resets_on_placement(kit):
    ndef = kit.ndef_uri("x.io/?c=" + "0" * 6)
    (ctr_off,) = kit.offsets(ndef, "c=")
    settings = kit.h("40E0EE" "41" "FFEF") + kit.le3(ctr_off)
    chip = SimulatedNtag424(files={2: ndef}, file_settings={2: settings})
    pcd = kit.Pcd(chip)
    pcd.select_app()
    pcd.send("90AD0000070200000000000000")
    chip.place()
    pcd.select_app()
    data, _ = pcd.send("90AD0000070200000000000000")
    assert chip.view.read_counter == 2 and b"c=000002" in data


def test_remove_and_counts(kit):
    chip = SimulatedNtag424()
    pcd = kit.Pcd(chip)
    pcd.select_app()
    pcd.send("9060000000")
    assert chip.view.apdu_count == 2
    chip.remove()
    with pytest.raises(TagRemovedError):
        pcd.send("9060000000")
    chip.place()
    pcd.send("9060000000")
    assert (chip.view.apdu_count, chip.view.apdu_total) == (1, 3)


def test_snapshot_restore_and_dict_roundtrip(kit):
    chip = SimulatedNtag424(uid=kit.h("04A1A2A3A4A5A6"))
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5F, b"\x02", kit.h("40E0EEC1FF00") + kit.le3(0) + kit.le3(40) + kit.le3(40))[1] == 0x9100
    assert pcd.change_key(3, bytes([3]) * 16, 5)[1] == 0x9100
    snap = chip.snapshot()
    assert "03030303" not in repr(snap) and "03030303" not in repr(chip)
    again = NvState.from_dict(snap.to_dict())
    assert again.to_dict() == snap.to_dict()
    clone = SimulatedNtag424(state=again)
    assert clone.view.key_versions == (0, 0, 0, 5, 0) and clone.view.file_settings_bytes(2) == chip.view.file_settings_bytes(2)
    chip.restore(NvState(uid=kit.h("04A1A2A3A4A5A6")))
    assert chip.view.key_versions == (0,) * 5 and chip.view.authenticated_key is None


def test_authentication_delay_and_total_fail_counter(kit):
    chip = SimulatedNtag424(auth_delay_after=3, auth_delay_attempts=2)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    wrong = bytes([9]) * 16
    for _ in range(3):
        assert pcd.auth(1, wrong) == 0x91AE
    # delay: two 91AD answers, then one real try
    assert pcd.auth(1) == 0x91AD
    assert pcd.auth(1) == 0x91AD
    assert pcd.auth(1, wrong) == 0x91AE
    assert pcd.auth(1) == 0x91AD
    # the delay is per key; other keys are not affected
    assert pcd.auth(2) == 0x9100
    # leaving the field forfeits the spent delay (it is volatile); failures are not (NVM)
    assert pcd.auth(1) == 0x91AD
    chip.place()
    pcd.select_app()
    assert pcd.auth(1) == 0x91AD
    assert pcd.auth(1) == 0x91AD
    assert chip.view.tot_fail_counters[1] == 4
    assert pcd.auth(1) == 0x9100  # success: consecutive failures cleared, TotFailCtr - 10 (floor 0)
    assert chip.view.consecutive_failures[1] == 0 and chip.view.tot_fail_counters[1] == 0
    assert pcd.auth(1) == 0x9100


def test_total_fail_limit_blocks_key_until_changekey(kit):
    chip = SimulatedNtag424()
    pcd = kit.Pcd(chip)
    pcd.select_app()
    assert pcd.auth(0) == 0x9100
    assert pcd.cmd(0x5C, b"\x0A", kit.h("01" "0200" "0A00")) == (b"", 0x9100)  # limit 2
    for _ in range(2):
        assert pcd.auth(4, bytes([7]) * 16) == 0x91AE
    assert pcd.auth(4) == 0x919D  # blocked
    assert pcd.auth(0) == 0x9100
    assert pcd.change_key(4, bytes([4]) * 16, 1)[1] == 0x9100  # ChangeKey resets its counters
    assert pcd.auth(4, bytes([4]) * 16) == 0x9100


def _verify(uid: bytes, sig: bytes, public_sec1: bytes) -> bool:
    """Plain ECDSA verification on P-224 with e = int(uid) (no hash), using pycryptodome point math."""
    r, s = int.from_bytes(sig[:28], "big"), int.from_bytes(sig[28:], "big")
    if not (0 < r < P224_N and 0 < s < P224_N):
        return False
    e = int.from_bytes(uid, "big")
    q = ECC.EccPoint(int.from_bytes(public_sec1[1:29], "big"), int.from_bytes(public_sec1[29:], "big"), "P-224")
    g = ECC.construct(curve="P-224", d=1).pointQ
    w = pow(s, -1, P224_N)
    point = g * (e * w % P224_N) + q * (r * w % P224_N)
    return int(point.x) % P224_N == r


def test_originality_signature_verifies_with_the_simulator_key(kit, ntag_vectors):
    uid = kit.h("04518DFAA96180")
    chip = SimulatedNtag424(uid=uid)
    pcd = kit.Pcd(chip)
    pcd.select_app()
    sig, sw = pcd.send("903C0000010000")
    assert sw == 0x9190 and len(sig) == 56
    assert SIMULATOR_PUBLIC_KEY == kit.h("041B4D3B35DC492FBD300C64E3B175EBED1D700F0F72B92B045F9B1C3D4FC38B56"
                                         "106EF9F61D06F07A134169CC12B9CE281415F3B00D033596")
    assert _verify(uid, sig, SIMULATOR_PUBLIC_KEY)
    assert not _verify(kit.h("04518DFAA96181"), sig, SIMULATOR_PUBLIC_KEY)
    assert pcd.send("903C0000010000")[0] == sig  # deterministic nonce
    # the checker itself accepts NXP's published example and refuses the simulator key for it
    t30 = ntag_vectors["an12196-t30-originality-signature"]
    nxp_sig = kit.h(t30["expected"]["signature_r"] + t30["expected"]["signature_s"])
    nxp_key = kit.h(t30["inputs"]["nxp_public_key_sec1_uncompressed"])
    assert _verify(uid, nxp_sig, nxp_key)
    assert not _verify(uid, sig, nxp_key)
    assert pcd.send("903C0000010100") == (b"", 0x919E)
    assert pcd.send("903C0000020000 00".replace(" ", "")) == (b"", 0x917E)


def test_constructor_validation(kit):
    with pytest.raises(ValueError):
        SimulatedNtag424(uid=kit.h("05112233445566"))
    with pytest.raises(ValueError):
        SimulatedNtag424(keys=[bytes(16)] * 4)
    with pytest.raises(ValueError):
        SimulatedNtag424(file_settings={1: kit.h("40E0EEC1FF00") + bytes(9)})
    fresh = SimulatedNtag424()
    assert fresh.uid[0] == 0x04 and len(fresh.uid) == 7 and "key" not in repr(fresh).replace("key_versions", "")
