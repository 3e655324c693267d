"""Product files: the shipped example loads; each mistake is one line naming the field."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tagsmith import ConfigError
from tagsmith.batches.product import load_product, parse_product

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
TEXT = DISHWASHER.read_text()


def test_example_dishwasher_loads():
    product = load_product(DISHWASHER)
    assert product.id == "aurora-dw600" and product.name == "Aurora DW-600 Dishwasher"
    assert product.gtin == "09506000134376" and product.resolver == "https://id.example.com"
    assert product.serial.kind == "sequential" and product.serial.prefix == "DW6"
    assert product.keys.versions() == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
    assert product.keys.system_id == b"AURORA"
    assert product.label_layout == "roll-50x25"
    assert product.sha256 == hashlib.sha256(DISHWASHER.read_bytes()).hexdigest()


def _edit(old, new):
    assert old in TEXT, old
    return TEXT.replace(old, new, 1).encode()


@pytest.mark.parametrize("old, new, message", [
    ('gtin = "09506000134376"', 'gtin = "09506000134377"', "gtin: GTIN '09506000134377' has check digit 7, expected 6"),
    ('gtin = "09506000134376"', 'gtin = "123"', "gtin: GTIN '123' has 3 digits"),
    ('id = "aurora-dw600"', 'id = "Aurora DW600"', "id:"),
    ('name = "Aurora DW-600 Dishwasher"\n', "", "name: missing"),
    ('resolver = "https://id.example.com"', 'resolver = "http://id.example.com"',
     "url.resolver: resolver 'http://id.example.com' must start with https://"),
    ('template = "https://id.example.com{mac_input}/01/{gtin}/21/{serial}?p={picc}&c={cmac}"',
     'template = "https://id.example.com{mac_input}/01/{gtin}?p={picc}&c={cmac}"', "url.template: must contain {serial}"),
    ('template = "https://id.example.com{mac_input}/01/{gtin}/21/{serial}?p={picc}&c={cmac}"',
     'template = "https://other.example.com/01/{gtin}/21/{serial}"', "url.template: must start with the resolver"),
    ('?p={picc}&c={cmac}"', '?p={pic}&c={cmac}"', "url.template: unknown placeholder {pic}"),
    ("lot_in_url = false", "lot_in_url = true", "url.template: must contain {lot}"),
    ("lot_in_url = false", 'lot_in_url = "no"', "url.lot_in_url: must be true or false"),
    ('prefix = "DW6"', 'prefix = "dw6"', "serial: serial prefix 'dw6'"),
    ("digits = 7", "digits = 17", "serial: serial digits 17 must be 1 to 15"),
    ('prefix = "DW6"', 'prefix = "DW6ABCDEFGHI"', "serial: serials would be 21 characters"),
    ('format = "sequential"', 'format = "random"\nlength = 4', "serial: random serial length 4"),
    ('system_id = "4155524F5241"', 'system_id = "xyz"', "keys.system_id: must be hex"),
    ("0 = { role = \"app-master\", version = 1 }", "", "keys.slots: slot 0"),
    ("4 = { role = \"spare\", version = 1 }", "5 = { role = \"spare\", version = 1 }", "keys.slots.5: slot must be 0 to 4"),
    ("3 = { role = \"proprietary-write\", version = 1 }", "3 = { role = \"proprietary-write\", version = 0 }",
     "keys.slots.3.version: must be 1 to 255"),
    ("4 = { role = \"spare\", version = 1 }", "4 = { role = \"change-configuration\", version = 1 }",
     "keys.slots.4.role: unknown slot role 'change-configuration' (one of: app-master, sdm-meta-read"),
    ('layout = "roll-50x25"', "layout = 3", "label.layout: missing"),
    ("[label]", "[labels]", "unknown field 'labels'"),
    ("digits = 7", "digits = 7\ndigit = 3", "unknown field 'serial.digit'"),
    ('id = "aurora-dw600"', 'id = "aurora-dw600', "not valid TOML"),
    ('name = "Aurora DW-600 Dishwasher"', 'name = "' + "N" * 201 + '"', "name: at most 200 printable characters"),
    ('name = "Aurora DW-600 Dishwasher"', 'name = "two\\nlines"', "name: at most 200 printable characters"),
])
def test_errors_are_one_line_naming_the_field(old, new, message):
    with pytest.raises(ConfigError) as err:
        parse_product(_edit(old, new), "dishwasher.toml")
    text = str(err.value)
    assert "\n" not in text.strip() or "TOML" in text
    assert text.startswith("dishwasher.toml: ")
    assert message in text, text


def test_lot_in_url_product():
    data = _edit("lot_in_url = false", "lot_in_url = true")
    data = data.replace(b"/21/{serial}?", b"/10/{lot}/21/{serial}?")
    assert parse_product(data).lot_in_url


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("cannot read product file")):
        load_product(tmp_path / "nope.toml")


def test_system_id_limit_is_the_keystores():
    """Whatever a product file accepts, the keystore can diversify with (M is at most 31 bytes)."""
    from tagsmith.keyslots import MAX_SYSTEM_ID

    with pytest.raises(ConfigError, match=f"at most {MAX_SYSTEM_ID} bytes"):
        parse_product(_edit('system_id = "4155524F5241"', f'system_id = "{"AB" * (MAX_SYSTEM_ID + 1)}"'))
