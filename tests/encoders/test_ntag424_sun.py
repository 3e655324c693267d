"""Resolver-side SUN verification against AN12196 T3-T6 and the sdm-backend plain-mirror vector."""

from __future__ import annotations

import pytest

from tagsmith import ConfigError, VerificationError
from tagsmith.encoders.ntag424 import SunVerifier, compile_template, crypto, verify_sun_url

ZERO = bytes(16)


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_encrypted_picc_data_empty_mac_input_t3_t5(ntag_vectors):
    v = ntag_vectors["an12196-t3-t5-sun-encrypted-piccdata-empty-mac-input"]
    r = verify_sun_url(v["inputs"]["url"], meta_key=ZERO, file_key=ZERO, picc_param="e", mac_param="c")
    assert (r.uid, r.read_counter, r.cmac_valid, r.file_data) == (h(v["expected"]["uid"]), 61, True, None)


def test_sdmencfiledata_t4(ntag_vectors):
    v = ntag_vectors["an12196-t4-sdmencfiledata"]
    r = verify_sun_url(v["inputs"]["url"], meta_key=ZERO, file_key=ZERO, mac_input_from="enc")
    assert r.cmac_valid and r.read_counter == 1 and r.file_data == h(v["expected"]["file_data_plaintext"])


def test_mac_with_input_t6(ntag_vectors):
    v = ntag_vectors["an12196-t6-sun-mac-with-input"]
    r = verify_sun_url(v["inputs"]["url"], meta_key=ZERO, file_key=ZERO, mac_input_from="enc")
    assert r.cmac_valid and r.read_counter == 8 and r.file_data == b"x" * 16
    assert not verify_sun_url(v["inputs"]["url"], meta_key=ZERO, file_key=ZERO).cmac_valid  # wrong window


def test_plain_mirror_sdm_backend_vector(ntag_vectors):
    i, e = (ntag_vectors["sdm-backend-plain-uid-ctr-mirror"][k] for k in ("inputs", "expected"))
    url = f"https://example.com/u?uid={i['uid_ascii']}&ctr={i['ctr_ascii_msb_first']}&cmac={e['sdmmac_truncated']}"
    r = verify_sun_url(url, meta_key=None, file_key=ZERO)
    assert (r.uid, r.read_counter, r.cmac_valid) == (h(i["uid_ascii"]), 6, True)


def test_per_uid_file_key_callable(ntag_vectors):
    v = ntag_vectors["an12196-t3-t5-sun-encrypted-piccdata-empty-mac-input"]
    seen = []
    r = verify_sun_url(v["inputs"]["url"], meta_key=ZERO, file_key=lambda uid: seen.append(uid) or ZERO,
                       picc_param="e", mac_param="c")
    assert r.cmac_valid and seen == [h(v["expected"]["uid"])]


def test_wrong_mac_or_key_is_invalid_not_an_exception(ntag_vectors):
    url = ntag_vectors["an12196-t3-t5-sun-encrypted-piccdata-empty-mac-input"]["inputs"]["url"]
    assert not verify_sun_url(url[:-1] + "7", meta_key=ZERO, file_key=ZERO, picc_param="e", mac_param="c").cmac_valid
    assert not verify_sun_url(url, meta_key=ZERO, file_key=b"\x01" * 16, picc_param="e", mac_param="c").cmac_valid


@pytest.mark.parametrize("url, message", [
    ("https://x.com/424", "no query string"),
    ("https://x.com/424?e=EF963FF7828658A599F3041510671E88", "no c= parameter"),
    ("https://x.com/424?e=EF963FF7828658A599F3041510671E8&c=94EED9EE65337086", "e must be 32 hex"),
    ("https://x.com/424?e=EF963FF7828658A599F3041510671EZZ&c=94EED9EE65337086", "not hexadecimal"),
    ("https://x.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE6533708", "c must be 16 hex"),
    ("https://x.com/424?c=94EED9EE65337086", "neither e="),
    ("https://x.com/424?e=00000000000000000000000000000000&c=94EED9EE65337086", "PICC data tag"),
])
def test_malformed_urls_are_one_line_verification_errors(url, message):
    with pytest.raises(VerificationError, match=message):
        verify_sun_url(url, meta_key=ZERO, file_key=ZERO, picc_param="e", mac_param="c")


def test_bad_keys_are_config_errors():
    with pytest.raises(ConfigError, match="16-byte"):
        SunVerifier(meta_key=bytes(5), file_key=ZERO)
    with pytest.raises(ConfigError, match="meta-read key"):
        verify_sun_url("https://x/?picc_data=" + "0" * 32 + "&cmac=" + "0" * 16, meta_key=None, file_key=ZERO)


def _tap(template_url: str, picc_key: bytes, file_key: bytes, uid: bytes, ctr: int) -> str:
    """Fill a rendered template the way the chip does at a tap (encrypted PICC data, MAC over the window)."""
    rendered = compile_template(template_url).render()
    text = rendered.url
    base = len(rendered.ndef_file) - len(text)
    picc = crypto.cbc_encrypt(picc_key, b"\xc7" + uid + ctr.to_bytes(3, "little") + bytes(5)).hex().upper()
    at = rendered.mirror("picc").offset - base
    text = text[:at] + picc + text[at + 32:]
    _, mac_key = crypto.sdm_session_keys(file_key, uid, ctr)
    mac_at = rendered.mirror("cmac").offset - base
    window = text[rendered.mac_input_offset - base:mac_at].encode()
    return text[:mac_at] + crypto.mac_t(mac_key, window).hex().upper() + text[mac_at + 16:]


def test_template_and_verifier_agree_on_parameters():
    template = "https://id.example.com/t?p={mac_input}{picc}&c={cmac}"
    params = compile_template(template).render().verifier_params()
    url = _tap(template, b"\x11" * 16, b"\x22" * 16, h("04010203040506"), 42)
    r = verify_sun_url(url, meta_key=b"\x11" * 16, file_key=b"\x22" * 16, **params)
    assert r.cmac_valid and r.read_counter == 42 and r.uid == h("04010203040506")
