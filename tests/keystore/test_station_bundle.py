"""Station bundles in the library: any byte changed is refused with nothing imported, and a PKCS#11
station imports a bundle into its token while a token keystore makes none."""

from __future__ import annotations

import pytest

from tagsmith import KeystoreError, TagsmithError
from tagsmith.keystore import init_keystore, open_keystore
from tagsmith.keystore.bundle import export_bundle, import_bundle
from tagsmith.keystore.station import ensure_station_key, parse_station_pub
from tagsmith.workspace import Workspace

from .conftest import PASSPHRASE, TEST_KDF_N

UID = bytes.fromhex("04AABBCCDDEEFF")


@pytest.fixture
def station(tmp_path):
    with init_keystore(Workspace(tmp_path / "st"), "file", passphrase=PASSPHRASE, scrypt_n=TEST_KDF_N) as store:
        yield store


def _bundle(engineer, station_store) -> bytes:
    engineer.create_key_set("lamp", b"LAMP")
    engineer.rotate("lamp", 2)
    key, _ = ensure_station_key(station_store, "st1")
    return export_bundle(engineer, "lamp-product", ["lamp"], parse_station_pub(key.text()))[0]


def test_every_changed_byte_is_refused_and_nothing_is_imported(file_store, station):
    raw, line_pem = _bundle(file_store, station), file_store.manifest_public_key_pem()
    records = station.audit_anchor()
    for at in range(len(raw)):
        tampered = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]
        with pytest.raises(TagsmithError) as refused:
            import_bundle(station, tampered, line_pem)
        assert len(str(refused.value).splitlines()) == 1
    for cut in (raw[:-1], raw[:len(raw) // 2], raw + b" "):
        with pytest.raises(TagsmithError):
            import_bundle(station, cut, line_pem)
    assert station.key_sets() == [] and station.audit_anchor() == records
    assert import_bundle(station, raw, line_pem).changed
    assert station.chip_keys("lamp", UID).keys == file_store.chip_keys("lamp", UID).keys
    assert station.key_versions("lamp") == file_store.key_versions("lamp") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}


def test_a_newer_bundle_adds_only_the_new_versions(file_store, station):
    line_pem = file_store.manifest_public_key_pem()
    import_bundle(station, _bundle(file_store, station), line_pem)
    file_store.rotate("lamp", 0)
    key = parse_station_pub(ensure_station_key(station)[0].text())
    result = import_bundle(station, export_bundle(file_store, "lamp-product", ["lamp"], key)[0], line_pem)
    assert result.key_sets[0].added == ((0, 2),) and result.key_sets[0].present == 6
    assert station.chip_keys("lamp", UID).keys == file_store.chip_keys("lamp", UID).keys


def test_a_pkcs11_station_imports_into_its_token(file_store, pkcs11_store):
    raw = _bundle(file_store, pkcs11_store)
    assert import_bundle(pkcs11_store, raw, file_store.manifest_public_key_pem()).changed
    assert pkcs11_store.chip_keys("lamp", UID).keys == file_store.chip_keys("lamp", UID).keys
    with pytest.raises(KeystoreError, match="KeyUnextractable"):
        pkcs11_store._extract_master(("lamp", 0, 1))  # imported into the token as non-extractable


def test_a_token_keystore_makes_no_bundle(file_store, pkcs11_store):
    pkcs11_store.create_key_set("lamp")
    key, _ = ensure_station_key(file_store, "st1")
    with pytest.raises(KeystoreError, match="let the stations share the token"):
        export_bundle(pkcs11_store, "lamp-product", ["lamp"], key)


def test_stations_sharing_a_token_derive_the_engineers_keys(pkcs11_store, softhsm, tmp_path):
    pkcs11_store.create_key_set("lamp")
    station = Workspace(tmp_path / "station")
    station.ensure()
    station.keystore.write_bytes(pkcs11_store.path.read_bytes())  # metadata only: no secret in it
    with open_keystore(station, pin=softhsm["pin"]) as shared:
        assert shared.chip_keys("lamp", UID).keys == pkcs11_store.chip_keys("lamp", UID).keys
    assert not station.audit_log.exists()  # deriving chip keys writes nothing
