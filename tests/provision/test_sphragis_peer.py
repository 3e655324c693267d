"""Sphragis 1.0 (an independent NTAG 424 DNA tool whose provisioning flow was validated on physical tags)
against our simulated chip, unmodified, through our Connection interface.

Sphragis authenticates with key 0, reads the UID (GetCardUID), re-selects the application by DF name
and writes the NDEF file with ISOUpdateBinary; later it re-selects and reads with ISOReadBinary. That
works on silicon only if the DF select ends the authentication (docs/reference/ntag424.md §3.3), the
simulator's default model. Under the other model (``keeps-auth``) the same flow is refused with 6982,
which the last test pins, so these tests can tell the two apart.
"""

from __future__ import annotations

import pytest
from sphragis.apdu import ApduError
from sphragis.ev2 import authenticate_ev2_first
from sphragis.keyprov import DiversifiedTagKeys, MemoryKeyInventory, get_card_uid, get_key_version, rekey_tag
from sphragis.ndef import read_uri
from sphragis.provision import provision_tag
from sphragis.sdm import compute_sdmmac, decrypt_picc_data
from sphragis.transport import ApduTransport
from sphragis.verifier import StaticKeys, Verifier

from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.sun import verify_sun_url
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.encoders.simulator.signing import SIMULATOR_PUBLIC_KEY
from tagsmith.provision.encode import TagResult, process_tag
from tagsmith.provision.taginfo import inspect_tag

UID = bytes.fromhex("04A1B2C3D4E5F6")
BASE_URL = "https://tags.example.com/t"
ZERO = bytes(16)


class OurConnection(ApduTransport):
    """Sphragis's transport (APDU in, data || SW1 SW2 out) over any tagsmith Connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sent: list[bytes] = []

    def transceive(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        data, sw = self.connection.transceive(bytes(apdu))
        return bytes(data) + sw.to_bytes(2, "big")


def brand_keys() -> DiversifiedTagKeys:
    return DiversifiedTagKeys(bytes(range(1, 17)), bytes(range(17, 33)), bytes(range(33, 49)), version=0x21)


def test_sphragis_provisions_verifies_and_rekeys_our_simulated_chip():
    chip = SimulatedNtag424(uid=UID)
    link = OurConnection(chip)
    report = provision_tag(link, BASE_URL)
    assert report.uid == UID and report.wrote_ndef and report.changed_settings and report.verified, report.log
    assert any(apdu[:2] == b"\x00\xd6" for apdu in link.sent)  # the NDEF went in by ISOUpdateBinary

    tap = read_uri(link)  # a phone's read: select, select file, ISOReadBinary
    assert Verifier(StaticKeys(ZERO, ZERO)).verify(tap).ok
    ours = verify_sun_url(tap, meta_key=ZERO, file_key=ZERO)  # and tagsmith reads the same tap
    assert ours.uid == UID and ours.cmac_valid

    target = brand_keys()
    rekeyed = rekey_tag(link, target, inventory=MemoryKeyInventory(), originality_key=SIMULATOR_PUBLIC_KEY)
    assert rekeyed.uid == UID and rekeyed.verified and sorted(rekeyed.changed) == [0, 1, 2, 3, 4], rekeyed.log
    assert list(chip.view.key_versions) == [0x21] * 5
    keys = target.keys_for(UID)
    again = provision_tag(link, BASE_URL, tag_keys=keys)  # already in place: nothing written, the tap verifies
    assert again.already_provisioned and again.verified

    chip.remove()
    chip.place()
    report = inspect_tag(chip, UID, allow_simulator_signature=True)  # tagsmith's `tag info` reading of the result
    assert report.key_versions == {n: 0x21 for n in range(5)} and report.originality == "simulator"
    assert report.ndef_url is not None and report.ndef_url.startswith(BASE_URL)
    tapped = verify_sun_url(report.ndef_url, meta_key=keys[2], file_key=keys[1])
    assert tapped.uid == UID and tapped.cmac_valid


def test_sphragis_reads_and_authenticates_a_chip_our_station_personalised(station_ctx):
    chip = SimulatedNtag424(uid=UID)
    outcome = process_tag(station_ctx, chip)
    assert outcome.result == TagResult.ENCODED, outcome.reason
    unit = station_ctx.store.unit_by_uid(UID)
    keys = station_ctx.chip_keys(UID, unit)
    chip.remove()
    chip.place()
    link = OurConnection(chip)

    url = read_uri(link)  # Sphragis reads the NDEF as a phone does
    assert url.split("?")[0] == outcome.url.split("?")[0] and unit.serial in url
    params = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    picc = decrypt_picc_data(bytes.fromhex(params["p"]), keys.meta_read_key)
    assert picc.uid == UID and picc.read_counter > outcome.read_counter
    path = url.split("://", 1)[1]
    mac_input = path[path.index("/"):path.index("c=") + 2]  # the product's {mac_input}: from the path to the MAC
    assert compute_sdmmac(keys.file_read_key, UID, picc.read_counter, mac_input.encode()) == bytes.fromhex(params["c"])

    for slot in range(5):  # and authenticates with each of the keys our keystore derived for this chip
        link.transceive(bytes.fromhex("00A4040C07D276000085010100"))
        session = authenticate_ev2_first(link, slot, keys.key(slot))
        assert get_card_uid(session) == UID
        assert [get_key_version(session, n) for n in range(5)] == list(keys.versions)


def test_under_the_keeps_auth_model_sphragis_is_refused_with_6982():
    chip = SimulatedNtag424(uid=UID, df_select_ends_auth=False)
    with pytest.raises(ApduError) as refused:
        provision_tag(OurConnection(chip), BASE_URL)
    assert refused.value.sw == 0x6982


def test_an12196_t23_t24_nonfirst_after_a_df_select_works_under_both_models():
    """The published sequence continues with AuthenticateEV2NonFirst after a DF select: the TI survives."""
    for ends in (True, False):
        chip = SimulatedNtag424(uid=UID, df_select_ends_auth=ends)
        link = OurConnection(chip)
        link.transceive(bytes.fromhex("00A4040C07D276000085010100"))
        session = authenticate_ev2_first(link, 0, ZERO)
        link.transceive(bytes.fromhex("00A4040C07D276000085010100"))
        data, sw = chip.transceive(bytes.fromhex("9077000001") + b"\x00" + b"\x00")
        assert sw == 0x91AF and len(data) == 16, (ends, hex(sw))
        assert session is not None
