"""Reader failures through the real ``tagsmith`` console script: one line, the right exit code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading

import pytest

from tagsmith.encoders.simulator.chip import SimulatedNtag424
from tagsmith.encoders.simulator.pcscd import PrivatePcscd

pytestmark = pytest.mark.pcscd

UID = bytes.fromhex("04C0FFEE424242")
TAGSMITH = shutil.which("tagsmith") or os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                                    "../../.venv/bin/tagsmith")


def tagsmith(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([TAGSMITH, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or dict(os.environ))


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Place a tag")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    return lines[0]


class BlockingChip:
    """A chip that holds its answer to the n-th APDU until released (to pull the rug mid-command)."""

    def __init__(self, chip: SimulatedNtag424, block_at: int) -> None:
        self.chip, self.block_at, self.seen = chip, block_at, 0
        self.uid = chip.uid
        self.reached, self.release = threading.Event(), threading.Event()

    def place(self) -> None:
        self.chip.place()

    def transceive(self, apdu: bytes):
        self.seen += 1
        if self.seen == self.block_at:
            self.reached.set()
            self.release.wait(30)
        return self.chip.transceive(apdu)


def test_tag_info_on_a_simulated_chip(vpcd_reader, home):
    with vpcd_reader.card(SimulatedNtag424(uid=UID)):
        result = tagsmith("tag", "info", "--reader", vpcd_reader.reader.lower(), "--allow-simulator-signature")
    assert result.returncode == 0, result.stderr
    assert "04C0FFEE424242" in result.stdout and "factory-fresh" in result.stdout
    assert "valid (tagsmith simulator key)" in result.stdout


def test_simulator_signature_is_not_trusted_unless_asked(vpcd_reader, home):
    with vpcd_reader.card(SimulatedNtag424(uid=UID)):
        result = tagsmith("tag", "info", "--reader", vpcd_reader.reader, "--json")
    assert result.returncode == 0, result.stderr
    assert '"originality": "invalid"' in result.stdout and '"verdict": "unknown"' in result.stdout


def test_readers_lists_the_virtual_readers_and_tag_presence(pcscd, vpcd_reader):
    with vpcd_reader.card(SimulatedNtag424(uid=UID)), vpcd_reader.open() as reader:
        reader.wait_for_tag(5).close()
        result = tagsmith("readers", "--json")
    assert result.returncode == 0, result.stderr
    assert f'{{"name": "{vpcd_reader.reader}", "tag_present": true, "atr": "3B8180018080"}}' in result.stdout
    for slot in pcscd.slots:
        assert slot.reader in result.stdout


def test_pcscd_not_running(tmp_path):
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-such-pcscd.comm"))
    result = tagsmith("readers", env=env)
    assert result.returncode == 4
    assert one_line(result) == ("error: PC/SC service not available while connecting to pcscd: "
                                "is pcscd running? (0x8010001D)")


def test_no_reader_configured(tmp_path):
    with PrivatePcscd(tmp_path, entries=()) as empty:
        result = tagsmith("tag", "info", env=empty.env)
        listed = tagsmith("readers", "--json", env=empty.env)
    assert result.returncode == 4 and one_line(result) == "error: No PC/SC reader is connected"
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"


def test_no_matching_reader_name(pcscd):
    result = tagsmith("tag", "info", "--reader", "Omnikey 5022")
    assert result.returncode == 8
    line = one_line(result)
    assert line.startswith("error: No reader matches 'Omnikey 5022' (connected: ")
    assert all(slot.reader in line for slot in pcscd.slots)


def test_ambiguous_reader_name(pcscd):
    result = tagsmith("tag", "info", "--reader", "tagsmith sim a")
    assert result.returncode == 2
    assert one_line(result).startswith("error: Reader name 'tagsmith sim a' matches 2 readers: ")


def test_no_tag_placed(vpcd_reader):
    result = tagsmith("tag", "info", "--reader", vpcd_reader.reader, "--wait", "0.5")
    assert result.returncode == 4
    assert one_line(result) == f"error: No tag placed on reader {vpcd_reader.reader!r} within 0.5 s"


@pytest.mark.parametrize("tear_at", [0, 3, 9])
def test_tag_removed_mid_command(vpcd_reader, home, tear_at):
    with vpcd_reader.card(SimulatedNtag424(uid=UID), tear_at=tear_at):
        result = tagsmith("tag", "info", "--reader", vpcd_reader.reader, "--allow-simulator-signature")
    assert result.returncode == 4
    assert one_line(result) == "error: Tag lifted too early: place it again to finish"


def test_reader_unplugged_mid_command(tmp_path, home):
    """pcscd dies while a command is on its way: the service is gone, said in one line."""
    from tagsmith.encoders.simulator.vpicc import VirtualCard

    with PrivatePcscd(tmp_path, entries=("Unplug Me",), base_port=36090) as private:
        chip = BlockingChip(SimulatedNtag424(uid=UID), block_at=4)
        card = VirtualCard(chip, private.slots[0].port).place()
        process = subprocess.Popen([TAGSMITH, "tag", "info", "--reader", "unplug me 00 00"], env=private.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert chip.reached.wait(20), "the CLI never reached the blocking APDU"
            private.kill()
        finally:
            chip.release.set()
            card.remove()
        _, stderr = process.communicate(timeout=30)
    result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
    assert result.returncode == 4
    # SCARD_F_COMM_ERROR when the socket drops mid-call, SCARD_E_NO_SERVICE after: one message either way
    assert re.fullmatch(r"error: PC/SC service not available while talking to the tag: "
                        r"is pcscd running\? \(0x801000(13|1D)\)", one_line(result))
