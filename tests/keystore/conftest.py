"""Keystore fixtures: cheap file keystores, a private SoftHSM2 token, resolver key pairs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from Crypto.PublicKey import ECC, RSA

from tagsmith.keystore import init_keystore
from tagsmith.workspace import Workspace

PASSPHRASE = "test passphrase 1"
TEST_KDF_N = 2**10  # the floor the library accepts; production default is 2**15
TOKEN_LABEL, TOKEN_PIN, TOKEN_SO_PIN = "tagsmith-test", "4321", "87654321"
SOFTHSM_CANDIDATES = [Path("/usr/lib/softhsm/libsofthsm2.so"),
                      Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
                      Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
                      Path("/usr/local/lib/softhsm/libsofthsm2.so")]


@pytest.fixture
def passphrase() -> str:
    return PASSPHRASE


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def file_store(workspace):
    with init_keystore(workspace, "file", passphrase=PASSPHRASE, scrypt_n=TEST_KDF_N) as store:
        yield store


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """A SoftHSM2 configuration with its own token directory and one initialised token.

    Runs whenever SoftHSM2 is installed (./dev test installs it); skips only off CI when the
    library is absent, and fails on CI (CI=true), where a skip would hide the HSM backend.
    """
    module = next((p for p in SOFTHSM_CANDIDATES if p.exists()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        message = "SoftHSM2 is not installed (apt-get install softhsm2, or run ./dev test as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    with pytest.MonkeyPatch.context() as mp:
        # Set before the library is first loaded in this process: SoftHSM reads it at C_Initialize.
        mp.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run([util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", TOKEN_PIN,
                        "--so-pin", TOKEN_SO_PIN], check=True, capture_output=True)
        yield {"module": str(module), "token_label": TOKEN_LABEL, "pin": TOKEN_PIN, "conf": str(conf)}


@pytest.fixture
def pkcs11_store(softhsm, tmp_path):
    """A PKCS#11 keystore in the session token (each gets its own label namespace)."""
    ws = Workspace(tmp_path / "ws-hsm")
    with init_keystore(ws, "pkcs11", module=softhsm["module"], token_label=softhsm["token_label"],
                       pin=softhsm["pin"]) as store:
        yield store


@pytest.fixture(scope="session")
def rsa_pair():
    key = RSA.generate(3072)
    return key.export_key().decode(), key.publickey().export_key().decode()


@pytest.fixture(scope="session")
def other_rsa_pair():
    key = RSA.generate(3072)
    return key.export_key().decode(), key.publickey().export_key().decode()


@pytest.fixture
def make_x25519():
    """A factory of fresh X25519 key pairs (private PEM, public PEM)."""
    def make() -> tuple[str, str]:
        key = ECC.generate(curve="Curve25519")
        return key.export_key(format="PEM"), key.public_key().export_key(format="PEM")
    return make
