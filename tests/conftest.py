"""Shared fixtures. Helpers that are real parts (simulator, transports) live in the package."""

from __future__ import annotations

import json
import os as _os
import tempfile as _tempfile
import threading as _threading
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_vectors(name: str) -> dict:
    """Load a published-vector file from tests/vectors/ by file name."""
    return json.loads((VECTORS / name).read_text())


@pytest.fixture
def ntag_vectors() -> dict:
    """AN12196 / AN10922 / data-sheet vectors keyed by id."""
    return {v["id"]: v for v in load_vectors("ntag424.json")["vectors"]}


def pytest_addoption(parser):
    parser.addoption("--reader", action="store", default=None,
                     help="Run tests/device/ against the real PC/SC reader with this name.")


def pytest_configure(config):
    """Register tests/pgcluster.py (the private PostgreSQL cluster's fixtures) as a plugin: the
    importlib import mode cannot import it by name, so it is loaded from its file."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("tagsmith_tests_pgcluster", Path(__file__).with_name("pgcluster.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    config.pluginmanager.register(module, "tagsmith-pgcluster")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh workspace directory, also exported as TAGSMITH_HOME."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("TAGSMITH_HOME", str(ws))
    return ws


# ==================================================================================================
# pcscd + vpcd: a private pcscd with virtual readers, shared by the session
# (docs/reference/pcsc-virtual-reader.md §2, §6)
# --------------------------------------------------------------------------------------------------
# `pcscd` starts /usr/sbin/pcscd in the foreground with its own reader.conf.d (two vpcd entries,
# each with its own copy of the driver: four readers on fixed, unusual ports) and its own client
# socket (PCSCLITE_CSOCK_NAME), waits for the readers, and stops it by PID at the end. In CI
# (CI=true) a missing pcscd fails the test; locally it skips. `vpcd_reader` lends one empty
# virtual reader to a test: `.reader` (PC/SC name), `.port`, `.card(chip)` -> VirtualCard,
# `.serve(chips)` -> started VpiccServer; whatever it placed is removed afterwards.
# ==================================================================================================

PCSCD_ENTRIES = ("Tagsmith Sim A", "Tagsmith Sim B")
PCSCD_BASE_PORT = 35990  # fixed and unusual (vpcd's default is 35963); next free pair if taken


def _worker_base_port() -> int:
    """The session pcscd's first vpcd port in this pytest-xdist worker (gw0, gw1, ...): 1000 apart, so
    that two workers starting at once never both find the same ports free (36090-36290 stay for the
    tests and benches that start a pcscd of their own)."""
    worker = _os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return PCSCD_BASE_PORT + 1000 * int(worker.removeprefix("gw") or 0)


@pytest.fixture(scope="session", autouse=True)
def _pcscd_client_socket(request):
    """Point libpcsclite at the session's private pcscd before anything talks PC/SC.

    libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so this must precede the first call.
    With --reader (tests/device/) the system pcscd is used instead.
    """
    if request.config.getoption("--reader") or "PCSCLITE_CSOCK_NAME" in _os.environ:
        yield None
        return
    workdir = _tempfile.mkdtemp(prefix="tagsmith-pcscd-")
    _os.environ["PCSCLITE_CSOCK_NAME"] = _os.path.join(workdir, "pcscd.comm")
    yield workdir
    _os.environ.pop("PCSCLITE_CSOCK_NAME", None)


def require_pcscd() -> None:
    """Skip (locally) or fail (CI=true) when pcscd or the vpcd driver is missing."""
    from tagsmith.encoders.simulator.pcscd import find_pcscd, find_vpcd_driver

    if find_pcscd() and find_vpcd_driver():
        return
    message = "pcscd and vsmartcard-vpcd are not installed (./dev test installs them when run as root)"
    if _os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def wait_for_readers(names, timeout: float = 15.0) -> None:
    """Wait until PC/SC lists every reader in ``names``."""
    import time

    from tagsmith.encoders.pcsc import list_readers

    deadline = time.monotonic() + timeout
    while not set(names) <= {r.name for r in list_readers()}:
        assert time.monotonic() < deadline, f"pcscd did not list {sorted(names)}"
        time.sleep(0.02)


@pytest.fixture(scope="session")
def pcscd(_pcscd_client_socket):
    """The session's private pcscd with four vpcd readers (see the block comment above)."""
    require_pcscd()
    from tagsmith.encoders.simulator.pcscd import PrivatePcscd

    workdir = _pcscd_client_socket
    if workdir is None:  # never start a pcscd on a socket someone else chose (it may be the system's)
        pytest.skip("PCSCLITE_CSOCK_NAME or --reader given: not starting a private pcscd")
    instance = PrivatePcscd(workdir, PCSCD_ENTRIES, base_port=_worker_base_port())
    instance.start()
    try:
        wait_for_readers([s.reader for s in instance.slots])
        instance.free_slots = list(instance.slots)
        instance.slot_lock = _threading.Lock()
        yield instance
    finally:
        instance.stop()


class VpcdReaderLease:
    """One of the session pcscd's virtual readers, lent to a test; see `vpcd_reader`."""

    def __init__(self, slot) -> None:
        self.slot = slot
        self.reader, self.port = slot.reader, slot.port
        self._cards, self._servers = [], []

    def card(self, chip, **options):
        """A VirtualCard for this reader (not yet placed: call .place() or use `with`)."""
        from tagsmith.encoders.simulator.vpicc import VirtualCard

        card = VirtualCard(chip, self.port, **options)
        self._cards.append(card)
        return card

    def serve(self, chips, **options):
        """Start presenting ``chips`` one after another (VpiccServer) on this reader."""
        from tagsmith.encoders.simulator.vpicc import VpiccServer

        server = VpiccServer(self.port, chips, **options).start()
        self._servers.append(server)
        return server

    def open(self):
        """Open this reader through PC/SC (tagsmith.encoders.pcsc.PcscReader)."""
        from tagsmith.encoders.pcsc import open_reader

        return open_reader(self.reader)

    def clear(self) -> None:
        for server in self._servers:
            server.stop()
            server.join(5)
        for card in self._cards:
            card.remove()
        with self.open() as reader:
            reader.wait_for_removal(3)


@pytest.fixture
def vpcd_reader(pcscd):
    """An empty virtual reader of the session pcscd; what the test placed is removed afterwards."""
    with pcscd.slot_lock:
        slot = pcscd.free_slots.pop(0)
    lease = VpcdReaderLease(slot)
    try:
        yield lease
    finally:
        try:
            lease.clear()
        finally:
            with pcscd.slot_lock:
                pcscd.free_slots.append(slot)


SYNC_HELPER_STANDIN = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
path = sys.argv[1]
while os.read(0, 1):
    time.sleep(delay)
    with open(log, "a") as out:
        out.write("%s %.6f\n" % (path, time.monotonic()))
    os.write(1, (fail + "\n" if fail else "0\n").encode())
"""


@pytest.fixture
def sync_helper(monkeypatch, tmp_path):
    """Stand in for the WAL sync helper's program: same protocol, logs each sync (path, CLOCK_MONOTONIC).

    ``install(delay=0.05)`` makes it a slow disk, ``install(fail="5 Input/output error")`` a failing
    one; the returned function reads the log as [(path, monotonic time)]. WalSync starts it as it
    starts the real one; the settings are written into its code (it gets no environment to speak of).
    """
    from tagsmith.batches import walsync

    log = tmp_path / "sync-helper.log"

    def install(delay: float = 0.0, fail: str = ""):
        settings = f"log, delay, fail = {str(log)!r}, {float(delay)!r}, {fail!r}\n"
        monkeypatch.setattr(walsync, "HELPER_CODE", settings + SYNC_HELPER_STANDIN)

        def entries():
            if not log.exists():
                return []
            return [(p, float(t)) for p, t in (line.rsplit(" ", 1) for line in log.read_text().splitlines())]

        return entries

    return install


@pytest.fixture(scope="session")
def tagsmith_cli():
    """``run(home, *args, env=None) -> CompletedProcess``: the console script on workspace ``home`` in a
    subprocess, ``env`` over this environment (no TAGSMITH_HOME, 200 columns), no stdin, text output."""
    import subprocess
    import sys

    program = str(Path(sys.executable).with_name("tagsmith"))

    def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**_os.environ, **(env or {}), "COLUMNS": "200"}
        full_env.pop("TAGSMITH_HOME", None)
        return subprocess.run([program, "--home", str(home), *args], capture_output=True, text=True, env=full_env,
                              stdin=subprocess.DEVNULL, timeout=300)

    return run


@pytest.fixture(scope="session")
def make_demo_home():
    """``make(root) -> home``: a demo workspace in ``root/ws`` (2 encoded units, labels, a signed
    manifest), made in-process through the CLI's entry point."""
    from tagsmith.cli import main

    def make(root: Path) -> Path:
        home = root / "ws"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", "tagsmith-demo-passphrase")
            with pytest.raises(SystemExit) as exc:
                main(["--home", str(home), "demo", "--units", "2", "--tear-rate", "0"])
        assert exc.value.code == 0
        return home

    return make
