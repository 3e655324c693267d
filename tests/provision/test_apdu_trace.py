"""The -vvv APDU trace of a whole personalisation gives away no key.

The factory key 0 is public (all zero), so a trace of its authentication would give RndA and RndB,
hence the session keys, hence every new key of every ChangeKey. The trace must show the commands
(header, lengths, status words) and nothing an attacker could decrypt.
"""

from __future__ import annotations

import json
import re

import pytest

from tagsmith.encoders.connection import TRAFFIC, format_command
from tagsmith.encoders.ntag424 import crypto, ev2
from tagsmith.encoders.simulator import SimulatedNtag424
from tagsmith.keystore import open_keystore
from tagsmith.provision.encode import process_tag
from tagsmith.provision.simpool import sim_pool
from tagsmith.workspace import Workspace

FACTORY_KEY = bytes(16)
_SEND = re.compile(r"SEND ([0-9A-F]+)$")


class RawRecorder:
    """A Connection that keeps every C-APDU as it went on the wire (what the old transport trace printed)."""

    def __init__(self, inner) -> None:
        self.inner, self.lines = inner, []

    def transceive(self, apdu: bytes):
        self.lines.append("SEND " + format_command(apdu))
        return self.inner.transceive(apdu)


@pytest.fixture
def spied_sessions(monkeypatch):
    """Record, beside the real authentication code, the randoms and session keys of every session."""
    secrets: list[bytes] = []
    real_answer, real_first, real_nonfirst = ev2.answer_challenge, ev2.Ev2Challenge.finish_first, ev2.Ev2Challenge.finish_nonfirst

    def answer(key, encrypted_rnd_b, rnd_a):
        challenge = real_answer(key, encrypted_rnd_b, rnd_a)
        secrets.extend([challenge.rnd_a, challenge.rnd_b, encrypted_rnd_b, challenge.cryptogram])
        return challenge

    def keep(channel):
        secrets.extend([channel.enc_key, channel.mac_key])
        return channel

    monkeypatch.setattr(ev2, "answer_challenge", answer)
    monkeypatch.setattr(ev2.Ev2Challenge, "finish_first", lambda *a: keep(real_first(*a)))
    monkeypatch.setattr(ev2.Ev2Challenge, "finish_nonfirst", lambda *a: keep(real_nonfirst(*a)))
    return secrets


def recover_session_keys(trace: str) -> list[tuple[bytes, bytes]]:
    """The attacker: every factory-key AuthenticateEV2First in the trace, replayed with the all-zero key.

    Part 2 of the authentication carries E(K, RndA || RndB'); with K known both randoms, and so
    both session keys, follow.
    """
    found, after_part1 = [], False
    for line in trace.splitlines():
        sent = _SEND.search(line)
        if "SEND 90710000" in line:
            after_part1 = True
        elif sent and after_part1 and sent.group(1).startswith("90AF000020"):
            cryptogram = bytes.fromhex(sent.group(1))[5:37]
            plain = crypto.cbc_decrypt(FACTORY_KEY, cryptogram)
            rnd_a, rnd_b = plain[:16], plain[-1:] + plain[16:31]
            found.append(crypto.ev2_session_keys(FACTORY_KEY, rnd_a, rnd_b))
            after_part1 = False
        elif "SEND" in line:
            after_part1 = False
    return found


def key_hex(values) -> set[str]:
    """Upper-case hex of each value; the all-zero factory key is public and left out."""
    return {v.hex().upper() for v in values if any(v)}


def assert_no_key_in(text: str, secrets: set[str]) -> None:
    leaked = {s for s in secrets if s in text.upper()}
    assert not leaked, f"{len(leaked)} secrets in the trace"


def run_traced(ctx, connection, caplog) -> tuple[object, str]:
    with caplog.at_level(TRAFFIC):
        outcome = process_tag(ctx, connection)
    trace = "\n".join(r.getMessage() for r in caplog.records if r.levelno == TRAFFIC)
    return outcome, trace


def every_key(world, chip) -> set[str]:
    """The chip's keys, its diversified keys as the keystore derives them, and every master key."""
    unit = world.store.unit_by_uid(chip.uid)
    chip_keys = world.keys.chip_keys(world.product.keys.key_set, chip.uid, unit.key_versions)
    masters = [bytes.fromhex(m) for m in world.keys._masters.values()]
    return key_hex([chip.view.key(slot) for slot in range(5)] + list(chip_keys.keys) + masters)


def test_a_personalisation_trace_holds_no_key_and_the_attacker_recovers_nothing(world, caplog, spied_sessions):
    chip = SimulatedNtag424()
    raw = RawRecorder(chip)
    outcome, trace = run_traced(world.context(), raw, caplog)
    assert outcome.result == "encoded", outcome
    # the trace is there and useful: every round trip, the unauthenticated ones in full
    assert trace.count("SEND ") == outcome.apdus == len(raw.lines)
    assert "SEND 00A4040C07D276000085010100" in trace and "RECV 9000" in trace
    assert "SEND 90710000 02 <2 bytes redacted: authentication> 00" in trace
    assert "RECV <16 bytes redacted: authentication> 91AF" in trace
    assert re.search(r"SEND 90C40000 29 <41 bytes redacted: secure messaging> 00", trace)
    # nothing in it decrypts: no chip, diversified or master key, no RndA/RndB, no session key
    assert len(spied_sessions) == 6  # one authentication: RndA, RndB, both cryptograms, two session keys
    assert_no_key_in(trace, every_key(world, chip) | key_hex(spied_sessions))
    assert recover_session_keys(trace) == []
    # the attacker is real: on the wire bytes (what transports used to log) it gets the session keys
    assert recover_session_keys("\n".join(raw.lines)) == [tuple(spied_sessions[4:6])]


def test_through_nfcpy_even_debug_logging_holds_no_key(world, caplog, spied_sessions):
    """A reader transport logs no bytes itself, and nfcpy's own frame logging stays off."""
    from tagsmith.encoders.nfcpy import NfcpyReader, Type4Emulator, free_udp_path

    chip = SimulatedNtag424()
    path = free_udp_path()
    with Type4Emulator(chip, path), NfcpyReader(path, timeout=0.5) as reader:
        connection = reader.wait_for_tag(5)
        with caplog.at_level(1):  # everything, down to nfcpy's DEBUG-1 datagram logging
            outcome = process_tag(world.context(), connection)
        connection.close()
    assert outcome.result == "encoded", outcome
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("SEND ") == outcome.apdus
    assert_no_key_in(text, every_key(world, chip) | key_hex(spied_sessions))
    assert recover_session_keys(text) == []


def test_vvv_station_run_prints_no_key(tmp_path, tagsmith_cli):
    home, passphrase = tmp_path / "ws", "tagsmith-demo-passphrase"
    assert tagsmith_cli(home, "demo", "--units", "2", "--tear-rate", "0", "--json").returncode == 0
    env = {"TAGSMITH_KEYSTORE_PASSPHRASE": passphrase}
    batch = json.loads(tagsmith_cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "3",
                                    "--json", env=env).stdout)["id"]
    before = set(sim_pool(Workspace.resolve(home)).uids())
    run = tagsmith_cli(home, "-vvv", "station", "run", "--batch", batch, "--sim", "--seed", "5", "--json", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "redacted: authentication" in run.stderr and "redacted: secure messaging" in run.stderr
    assert "TRAFFIC" in run.stderr and "SEND 00A4040C07D276000085010100" in run.stderr
    pool = sim_pool(Workspace.resolve(home))
    chips = [pool.load(uid) for uid in set(pool.uids()) - before]
    assert chips
    keys = open_keystore(Workspace.resolve(home), passphrase)
    secrets = key_hex([chip.view.key(slot) for chip in chips for slot in range(5)])
    secrets |= key_hex(bytes.fromhex(m) for m in keys._masters.values())
    assert len(secrets) > 5
    assert_no_key_in(run.stdout + run.stderr, secrets)
    assert recover_session_keys(run.stderr) == []
