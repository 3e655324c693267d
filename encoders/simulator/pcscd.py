"""Run a private pcscd with vpcd virtual readers, for tests and benchmarks (standard library only).

The instance gets its own reader configuration directory (one copied driver ``.so`` per entry:
entries sharing a file silently steal each other's slots), fixed but unusual TCP ports (each
entry has two slots, PORT and PORT+1), and its own client socket: pcscd 1.9.9 accepts a
systemd-style inherited listening socket (``LISTEN_FDS=1``, fd 3), and libpcsclite clients find
it through ``PCSCLITE_CSOCK_NAME``. So it runs beside a system pcscd and beside other private
ones. libpcsclite reads that variable once per process: set it before the first PC/SC call.
Caveat: as root, pcscd still writes, and on exit removes, ``/run/pcscd/pcscd.pid``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tagsmith.encoders.connection import ReaderUnavailableError

PCSCD = "/usr/sbin/pcscd"
VPCD_DRIVER_GLOB = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so*"
SLOTS_PER_ENTRY = 2  # Debian builds vpcd with VPCDSLOTS=2

# Hand the listening socket to pcscd as systemd would: as fd 3, with LISTEN_FDS=1 and LISTEN_PID
# equal to pcscd's own PID (this process execs pcscd in place, so the PID carries over).
_EXEC_WITH_LISTEN_FD = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.environ.pop("LISTEN_FDNAMES", None)
os.execv(sys.argv[2], sys.argv[2:])
"""


@dataclass(frozen=True)
class VirtualSlot:
    """One virtual reader: its PC/SC name and the TCP port a simulated card connects to."""

    reader: str
    port: int


def find_pcscd() -> str | None:
    """Path of the pcscd binary, or None when it is not installed."""
    return shutil.which("pcscd") or (PCSCD if os.access(PCSCD, os.X_OK) else None)


def find_vpcd_driver() -> str | None:
    """Path of the real vpcd driver file (not a symlink), or None when vsmartcard-vpcd is missing."""
    files = sorted(p for p in glob.glob(VPCD_DRIVER_GLOB) if not os.path.islink(p))
    return files[-1] if files else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port_block(start: int, size: int = SLOTS_PER_ENTRY, tries: int = 200) -> int:
    """First port from ``start`` (stepping by ``size``) where ``size`` consecutive ports are free."""
    for port in range(start, start + size * tries, size):
        if all(_port_free(p) for p in range(port, port + size)):
            return port
    raise ReaderUnavailableError(f"No {size} free consecutive TCP ports from {start}")


def _listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class PrivatePcscd:
    """A pcscd in the foreground with its own vpcd readers and its own client socket.

    ``entries`` are FRIENDLYNAMEs; each gives two readers, ``"<name> 00 00"`` and ``"<name> 00 01"``.
    """

    def __init__(self, workdir: str | os.PathLike[str], entries: Sequence[str] = ("Tagsmith Sim",),
                 base_port: int = 35990, pcscd: str | None = None, driver: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.entries = list(entries)
        self.base_port = base_port
        self.pcscd = pcscd or find_pcscd() or PCSCD
        self.driver = driver or find_vpcd_driver()
        self.socket_path = self.workdir / "pcscd.comm"
        self.log_path = self.workdir / "pcscd.log"
        self.slots: list[VirtualSlot] = []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process (libpcsclite finds this instance through it)."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    def slot(self, reader: str) -> VirtualSlot:
        """The slot whose reader name is ``reader``."""
        return next(s for s in self.slots if s.reader == reader)

    def __enter__(self) -> PrivatePcscd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        conf = self.workdir / "reader.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        port = self.base_port
        for number, name in enumerate(self.entries):
            port = free_port_block(port)
            driver = self.workdir / f"libifdvpcd-{number}.so"
            assert self.driver is not None  # start() refuses to run without one
            shutil.copyfile(self.driver, driver)  # a real copy per entry, never a link
            (conf / f"entry-{number}").write_text(
                f'FRIENDLYNAME "{name}"\nDEVICENAME /dev/null:{port}\nLIBPATH {driver}\nCHANNELID 0\n')
            self.slots += [VirtualSlot(f"{name} 00 {slot:02X}", port + slot) for slot in range(SLOTS_PER_ENTRY)]
            port += SLOTS_PER_ENTRY

    def _options(self) -> list[str]:
        options = ["--foreground", "--config", str(self.workdir / "reader.conf.d")]
        helptext = subprocess.run([self.pcscd, "--help"], capture_output=True, text=True).stdout
        if "--disable-polkit" in helptext:  # pcsc-lite >= 2.0 only; fatal on 1.9.9
            options.append("--disable-polkit")
        return options

    def start(self, timeout: float = 10.0) -> PrivatePcscd:
        """Start pcscd and wait until every vpcd port listens."""
        if not self.driver and self.entries:
            raise ReaderUnavailableError("vpcd driver not found: install vsmartcard-vpcd")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.socket_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        listener.listen(64)
        os.chmod(self.socket_path, 0o777)
        fd = listener.fileno()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-c", _EXEC_WITH_LISTEN_FD, str(fd), self.pcscd,
                                             *self._options()], pass_fds=[fd], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        listener.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        wanted = {s.port for s in self.slots}
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not wanted <= _listening_ports():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                self.stop()
                raise ReaderUnavailableError(f"pcscd did not start its vpcd readers: {' | '.join(tail)}")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop pcscd by its PID (SIGTERM, then SIGKILL) and wait until it has exited."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.socket_path.unlink(missing_ok=True)  # a socket-activated pcscd leaves it behind

    def kill(self) -> None:
        """Kill pcscd at once (SIGKILL), as when a reader's host service dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
