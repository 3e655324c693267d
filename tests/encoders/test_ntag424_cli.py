"""`tagsmith sun verify` and `tagsmith sun template` through Typer's runner and the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith.cli import app

ZERO = "00" * 16
T5_URL = "https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086"
T6_URL = ("https://www.my424dna.com/?picc_data=FD91EC264309878BE6345CBE53BADF40"
          "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6")
runner = CliRunner()
KEYS = ["--meta-key-file", "env:SUN_META_KEY", "--file-key-file", "env:SUN_FILE_KEY"]
KEY_ENV = {"SUN_META_KEY": ZERO, "SUN_FILE_KEY": ZERO}


def test_verify_json_valid():
    result = runner.invoke(app, ["sun", "verify", T5_URL, *KEYS, "--picc-param", "e", "--mac-param", "c", "--json"],
                           env=KEY_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"mode": "aes", "uid": "04DE5F1EACC040", "read_counter": 61, "cmac_valid": True,
                                         "file_data": None}


# LRP taps with the zero keys. PICC data: PICCRand 0011223344556677, then C7 || UID || counter 7 || padding
# LRICB-encrypted by tagsmith's LRP code (its decryption is pinned to sdm-backend's LRP taps in
# test_lrp_sun.py); the SDMMAC over an empty input for that UID and counter is johnnyb/ntag424-java's
# published A9DAF6E5B2E583ED.
LRP_URL = "https://id.example.com/t?picc_data=00112233445566774652BD4BF043A9F9046530FCE7774E7D&cmac=A9DAF6E5B2E583ED"
# sdm-backend's second LRP tap (PICC data and SDMENCFileData as published, file data 0102030400000000); its
# SDMMAC over an empty input computed by tagsmith's LRP code, whose SDMMAC is pinned in test_lrp_sun.py
LRP_ENC_URL = ("https://id.example.com/t?picc_data=65628ED36888CF9C84797E43ECACF114C6ED9A5E101EB592"
               "&enc=4ADE304B5AB9474CB40AFFCAB0607A85&cmac=AF5EE8AE6FBAD6F2")


def test_verify_tells_lrp_by_the_picc_data_length():
    result = runner.invoke(app, ["sun", "verify", LRP_URL, *KEYS, "--json"], env=KEY_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"mode": "lrp", "uid": "04827F12647380", "read_counter": 7, "cmac_valid": True,
                                         "file_data": None}
    human = runner.invoke(app, ["sun", "verify", LRP_URL, *KEYS], env=KEY_ENV)
    assert human.exit_code == 0 and "valid LRP" in human.stdout and "04827F12647380" in human.stdout
    aes = runner.invoke(app, ["sun", "verify", T6_URL, *KEYS, "--mac-input-from", "enc"], env=KEY_ENV)
    assert aes.exit_code == 0 and "valid AES" in aes.stdout


def test_verify_lrp_file_data_and_a_wrong_lrp_mac():
    result = runner.invoke(app, ["sun", "verify", LRP_ENC_URL, *KEYS, "--json"], env=KEY_ENV)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["mode"], data["uid"], data["read_counter"]) == ("lrp", "042E1D222A6380", 0x7B)
    assert bytes.fromhex(data["file_data"]) == b"0102030400000000"
    bad = runner.invoke(app, ["sun", "verify", LRP_URL[:-1] + "C", *KEYS, "--json"], env=KEY_ENV)
    assert bad.exit_code != 0 and type(bad.exception).__name__ == "VerificationError"
    assert "LRP" in str(bad.exception) and json.loads(bad.stdout)["mode"] == "lrp"


def test_verify_with_mac_input_and_file_data():
    result = runner.invoke(app, ["sun", "verify", T6_URL, *KEYS, "--mac-input-from", "enc", "--json"], env=KEY_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["file_data"] == (b"x" * 16).hex().upper()


def test_verify_invalid_mac_raises_verification_error():
    result = runner.invoke(app, ["sun", "verify", T6_URL, *KEYS], env=KEY_ENV)
    assert result.exit_code != 0 and type(result.exception).__name__ == "VerificationError"


def test_template_json():
    template = "https://choose.url.com/ntag424?e={picc}&c={cmac}"
    result = runner.invoke(app, ["sun", "template", template, "--meta-read", "2", "--file-read", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(m["kind"], m["offset"]) for m in data["mirrors"]] == [("picc", 32), ("cmac", 67)]
    assert data["change_file_settings"] == "4000E0C1FF21200000430000430000"  # AN12196's keys 2 and 1
    default = json.loads(runner.invoke(app, ["sun", "template", template, "--json"]).stdout)
    assert default["change_file_settings"] == "4000E0C1FF12200000430000430000"  # the station's slots 1 and 2


def _console_script() -> str:
    script = Path(sys.executable).parent / "tagsmith"
    found = str(script) if script.exists() else shutil.which("tagsmith")
    if not found:
        pytest.skip("tagsmith console script is not installed")
    return found


def test_console_script_exit_codes_and_one_line_errors(tmp_path):
    script = _console_script()
    key_file = tmp_path / "file-read.key"
    key_file.write_text(ZERO + "\n")
    ok = subprocess.run([script, "sun", "verify", T5_URL, "--meta-key-file", "-", "--file-key-file", str(key_file),
                         "--picc-param", "e", "--mac-param", "c", "--json"], input=ZERO, capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["cmac_valid"] is True
    bad = subprocess.run([script, "sun", "verify", T5_URL[:-1] + "7", "--meta-key-file", str(key_file),
                          "--file-key-file", str(key_file), "--picc-param", "e", "--mac-param", "c"],
                         capture_output=True, text=True)
    assert bad.returncode == 6
    assert bad.stderr.strip().count("\n") == 0 and "SUN MAC does not verify" in bad.stderr
    malformed = subprocess.run([script, "sun", "verify", "https://x/?picc_data=12&cmac=00",
                                "--file-key-file", str(key_file)], capture_output=True, text=True)
    assert malformed.returncode == 6 and "Traceback" not in malformed.stderr
    refused = subprocess.run([script, "sun", "template", "https://e.com/?p={picc}&u={uid}&c={cmac}"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("option", ["--file-key", "--meta-key"])
def test_a_key_on_the_command_line_is_refused_and_not_echoed(tmp_path, option):
    """argv is visible to every user in ps: a key option is refused, saying how to pass the key instead."""
    secret = "5A1E" * 8
    other = ["--file-key-file", "env:SUN_FILE_KEY"] if option == "--meta-key" else []
    refused = subprocess.run([_console_script(), "sun", "verify", T5_URL, option, secret, *other],
                             capture_output=True, text=True, env={"SUN_FILE_KEY": ZERO, "PATH": "/usr/bin:/bin"})
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert f"{option}-file PATH" in refused.stderr and "env:VAR" in refused.stderr
    assert secret not in refused.stderr + refused.stdout
    unset = subprocess.run([_console_script(), "sun", "verify", T5_URL, "--file-key-file", "env:NO_SUCH_VAR"],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert unset.returncode == 2 and "NO_SUCH_VAR" in unset.stderr


@pytest.mark.parametrize("option", ["--picc-param", "--mac-param", "--enc-param", "--uid-param", "--ctr-param"])
@pytest.mark.parametrize("name", ["", "a=b", "x&y"])
def test_a_bad_parameter_name_is_bad_input(option, name):
    result = subprocess.run([_console_script(), "sun", "verify", T6_URL, *KEYS, option, name],
                            capture_output=True, text=True, env={**os.environ, **KEY_ENV})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "parameter's name" in result.stderr
