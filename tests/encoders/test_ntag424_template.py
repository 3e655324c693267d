"""SUN URL templates: NDEF bytes, SDM offsets (AN12196 T15-T17, T6; docs/reference/ntag424.md §9.5) and refusals."""

from __future__ import annotations

import pytest

from tagsmith import ConfigError
from tagsmith.encoders.ntag424 import compile_template, url_from_ndef_file
from tagsmith.encoders.ntag424.errors import ResponseError


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_an12196_t15_t17_ndef_bytes_and_offsets(ntag_vectors):
    e = ntag_vectors["an12196-t15-t17-ndef-template-and-offsets"]["expected"]
    r = compile_template("https://choose.url.com/ntag424?e={picc}&c={cmac}").render()
    assert r.ndef_file == h(e["ndef_file_bytes"])
    assert r.mirror("picc").offset == e["picc_data_offset"] == 0x20
    assert r.mac_input_offset == r.mirror("cmac").offset == e["sdm_mac_offset"] == 67
    assert url_from_ndef_file(r.ndef_file) == r.url


def test_an12196_t6_offsets_with_enc_and_default_mac_input(ntag_vectors):
    i = ntag_vectors["an12196-t6-sun-mac-with-input"]["inputs"]
    r = compile_template("https://www.my424dna.com/?picc_data={picc}&enc={enc}&cmac={cmac}").render()
    assert r.ndef_file[6] == int(i["uri_identifier_code"], 16)
    sdm = r.file_settings(meta_read=0, file_read=0, ctr_ret=KEY_E).sdm
    assert sdm.picc_data_offset == int.from_bytes(h(i["picc_data_offset"]), "little") == 0x1F
    assert sdm.mac_input_offset == sdm.enc_offset == 0x44 and sdm.enc_length == 0x20 and sdm.mac_offset == 0x6A
    assert r.verifier_params() == {"picc_param": "picc_data", "enc_param": "enc", "mac_param": "cmac",
                                   "mac_input_from": "enc"}


KEY_E = 0xE


def test_derived_plain_mirror_example():
    r = compile_template("https://example.com/u?uid={mac_input}{uid}&ctr={ctr}&cmac={cmac}").render()
    fs = r.file_settings(meta_read=2, file_read=1)
    assert fs.to_change_bytes() == h("4000E0C1FFE11900002C0000190000380000")
    assert r.verifier_params() == {"uid_param": "uid", "ctr_param": "ctr", "mac_param": "cmac", "mac_input_from": "uid"}


def test_derived_encrypted_example_and_t19_settings():
    r = compile_template("https://example.com/t?p={picc}&c={cmac}").render()
    assert r.file_settings(meta_read=2, file_read=1).to_change_bytes() == h("4000E0C1FF211700003A00003A0000")
    t19 = compile_template("https://choose.url.com/ntag424?e={picc}&c={cmac}").render()
    assert t19.file_settings(meta_read=2, file_read=1, ctr_ret=1).to_change_bytes() == h("4000E0C1F121200000430000430000")


def test_static_values_are_filled_and_shift_offsets():
    t = compile_template("https://id.example.com/01/{gtin}/21/{serial}?p={picc}&c={cmac}")
    assert t.static_names == ("gtin", "serial")
    short = t.render(gtin="09506000134352", serial="7")
    longer = t.render(gtin="09506000134352", serial="A1/77")
    assert "/21/A1%2F77?p=" in longer.url
    assert longer.mirror("picc").offset - short.mirror("picc").offset == len("A1%2F77") - 1
    assert longer.ndef_file[:2] == (len(longer.ndef_file) - 2).to_bytes(2, "big")


def test_enc_length_and_enc_data():
    r = compile_template("https://e.com/?p={picc}&x={mac_input}{enc:64}&c={cmac}").render(enc_data=b"secret")
    enc = r.mirror("enc")
    assert enc.length == 64 and r.ndef_file[enc.offset:enc.offset + 6] == b"secret"
    assert r.ndef_file[enc.offset + 6:enc.offset + 64] == b"0" * 58
    with pytest.raises(ConfigError, match="holds 32"):
        compile_template("https://e.com/?p={picc}&x={enc:64}&c={cmac}").render(enc_data=bytes(33))


def test_static_template_has_no_sdm():
    r = compile_template("https://example.com/01/{gtin}").render(gtin="1")
    assert r.mirrors == () and r.file_settings().sdm is None


@pytest.mark.parametrize("template, message", [
    ("https://e.com/?p={picc}&c={cmac}&x={foo}", "unknown placeholder"),
    ("https://e.com/?p={picc}&q={picc}&c={cmac}", "more than once"),
    ("https://e.com/?p={picc}&u={uid}&c={cmac}", "already carries UID"),
    ("https://e.com/?u={uid}&e={enc}&c={cmac}", "needs the UID and counter"),
    ("https://e.com/?p={picc}&e={enc}", "need {cmac}"),
    ("https://e.com/?c={cmac}", "needs {picc}"),
    ("https://e.com/?p={picc}&c={cmac}{mac_input}", "before {cmac}"),
    ("https://e.com/?p={picc}&c={cmac}&e={enc}", "before {cmac}"),
    ("https://e.com/?p={picc}&e={enc}&m={mac_input}&c={cmac}", "at or before {enc}"),
    ("https://e.com/?p={picc}&e={enc:48}&c={cmac}", "multiple of 32"),
    ("https://e.com/?p={picc:48}&c={cmac}", "takes no length"),
    ("https://e.com/?p={picc&c={cmac}", "stray brace"),
    ("https://e.com/ p={picc}&c={cmac}", "without spaces"),
])
def test_refusals(template, message):
    with pytest.raises(ConfigError, match=message):
        compile_template(template)


def test_refusals_at_render_and_settings():
    with pytest.raises(ConfigError, match="needs a value for {serial}"):
        compile_template("https://e.com/{serial}?p={picc}&c={cmac}").render()
    with pytest.raises(ConfigError, match="NDEF file holds 256"):
        compile_template("https://e.com/" + "a" * 200 + "?p={picc}&c={cmac}").render()
    r = compile_template("https://e.com/?p={picc}&c={cmac}").render()
    with pytest.raises(ConfigError, match="never E"):
        r.file_settings(write=0xE)
    with pytest.raises(ConfigError, match="meta_read key"):
        r.file_settings(meta_read=0xE)
    path = compile_template("https://e.com/{picc}/{cmac}").render()
    with pytest.raises(ConfigError, match="not a whole query parameter"):
        path.verifier_params()


@pytest.mark.parametrize("template", [
    "https://id.example.com/01/{gtin}/21/{serial}?p={picc}&c={cmac}",
    "http://www.e.com/{serial}?uid={uid}&ctr={ctr}&x={mac_input}{enc:64}&c={cmac}",
    "urn:nfc:x?{picc}",  # a prefix code other than https://, a mirror not in a parameter
])
def test_url_in_file_is_what_an_ndef_parse_reads(template):
    """The station reads the URL by splicing the mirrors into its own; a full NDEF parse must agree."""
    import random

    rng = random.Random(template)
    r = compile_template(template).render(gtin="09506000134352", serial="A1/77")
    filled = bytearray(r.ndef_file)
    for m in r.mirrors:
        filled[m.offset:m.offset + m.length] = "".join(rng.choice("0123456789ABCDEF") for _ in range(m.length)).encode()
    assert r.matches_file(bytes(filled))
    assert r.url_in_file(bytes(filled)) == url_from_ndef_file(bytes(filled)) != r.url
    filled[r.mirrors[0].offset] = 0xC3
    with pytest.raises(ResponseError, match="non-ASCII"):
        r.url_in_file(bytes(filled))


@pytest.mark.parametrize("template, serials", [
    ("https://id.example.com/01/{gtin}/21/{serial}?p={picc}&c={cmac}", ["A0001", "B7777", "A1/77", "XYZ", "Q0002"]),
    ("urn:epc:{serial}:x?p={picc}&c={cmac}", ["abc", "tag", "raw", "ab"]),  # the URI code depends on the serial
    ("https://{serial}.e.com/?p={picc}&c={cmac}", ["www01", "www02", "w"]),
])
def test_a_reused_layout_renders_what_a_fresh_template_renders(template, serials):
    """Renders of one layout are reused; each must equal a render by a template that never saw another unit."""
    kept = compile_template(template)
    for serial in serials * 2:
        fresh = compile_template(template).render(gtin="09506000134352", serial=serial)
        again = kept.render(gtin="09506000134352", serial=serial)
        assert again == fresh and again.ndef_file == fresh.ndef_file and again.url == fresh.url
        assert url_from_ndef_file(again.ndef_file) == again.url
        settings = again.file_settings(meta_read=1, file_read=2)
        assert settings == fresh.file_settings(meta_read=1, file_read=2)
        assert again.file_settings(meta_read=2, file_read=1) == fresh.file_settings(meta_read=2, file_read=1) != settings
