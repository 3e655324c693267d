"""The shipped product's SUN MAC covers the URL path: a genuine tap moved onto another unit's path fails it."""

from __future__ import annotations

import json
from pathlib import Path

from tagsmith.batches.product import load_product
from tagsmith.batches.verify import read_header
from tagsmith.encoders.ntag424.sun import verify_sun_url
from tagsmith.encoders.ntag424.template import compile_template
from tagsmith.keystore import open_keystore
from tagsmith.provision.catalog import check_fits_chip
from tagsmith.workspace import Workspace

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
PASSPHRASE = "tagsmith-demo-passphrase"  # the demo workspace's
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}


def _tap(tagsmith_cli, home: Path, uid: str) -> str:
    done = tagsmith_cli(home, "tag", "verify", "--sim", uid, "--json", env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["url"]


def test_shipped_template_puts_gtin_and_serial_under_the_mac():
    product = load_product(DISHWASHER)
    rendered = compile_template(product.url_template).render(gtin=product.gtin, serial="DW60000001XX")
    start = rendered.mac_input_offset - (len(rendered.ndef_file) - len(rendered.url))
    assert rendered.url[start:].startswith(f"/01/{product.gtin}/21/DW60000001XX?p=")
    assert rendered.verifier_params()["mac_input_from"] == "/"
    check_fits_chip(product)


def test_a_genuine_tap_moved_to_another_units_path_fails_the_mac(tmp_path, tagsmith_cli):
    home = tmp_path / "demo"
    assert tagsmith_cli(home, "demo", "--units", "2", "--tear-rate", "0", "--json", env=ENV).returncode == 0
    manifest = Path(home / "exports").glob("*.manifest.jsonl").__next__()
    _, header = read_header(manifest)
    params = header["sdm"]["verifier_params"]
    assert params["mac_input_from"] == "/"
    units = [json.loads(line) for line in manifest.read_text().splitlines()[1:]]
    first, second = units[0], units[1]
    genuine = _tap(tagsmith_cli, home, first["uid"])
    moved = second["url"] + genuine[genuine.index("?"):]  # p and c of the first unit on the second's path
    with open_keystore(Workspace.resolve(home), PASSPHRASE) as keystore:  # what the resolver's key export holds
        key_set = header["keys"]["key_set"]
        meta_key = keystore.meta_read_key(key_set)
        file_key = keystore.file_read_key(key_set, bytes.fromhex(first["uid"]))
    # a resolver that trusts the MAC alone (no UID -> unit lookup), with the manifest's verifier parameters
    assert verify_sun_url(genuine, meta_key=meta_key, file_key=file_key, **params).cmac_valid
    result = verify_sun_url(moved, meta_key=meta_key, file_key=file_key, **params)
    assert result.uid == bytes.fromhex(first["uid"]) and not result.cmac_valid
    refused = tagsmith_cli(home, "tag", "verify", "--url", moved, env=ENV)
    assert refused.returncode == 6, refused.stderr
