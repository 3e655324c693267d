"""Sync a SQLite WAL file to disk, at once or overlapped with the caller's work.

In WAL mode synchronous=FULL is synchronous=NORMAL plus one fsync of the WAL file after each
commit (SQLite's documentation of PRAGMA synchronous). This does that fsync itself, after a
NORMAL commit. :meth:`WalSync.sync` does it at once. :meth:`WalSync.start` hands it to a helper
process: the station goes on writing the NDEF and the file settings, and waits for it
(:meth:`WalSync.wait`) only before the first key change, the point from which a chip without a
record could not be recovered.

Why a process and not a thread: a thread needs the GIL to begin the fsync and again to report
it done, and the station's own work is CPU-bound Python that rarely lets go of it. Measured with
the in-process simulator, a helper thread began its fsync only once the station came to wait for
it, so nothing overlapped. A process has no such tie. It is started on the first overlapped
sync, reads one byte per request, opens the WAL afresh each time (SQLite recreates the file) and
answers one line; it ignores Ctrl-C (the station finishes its tag) and exits when the pipe closes.
It runs in a process group of its own, so a Ctrl-C at the terminal never reaches it, not even
while its interpreter starts (before it can ignore the signal); a station that ends while a sync is
pending closes the pipes under it, and the helper then just exits, without a word on stderr.
It needs nothing from the station's environment, which may hold the keystore passphrase or the
token PIN: it starts with :func:`helper_env`, a short allow-list with no secret in it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

#: The helper's program (``python -I -S -c``): argv[1] is the WAL path.
HELPER_CODE = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
path = sys.argv[1]
while os.read(0, 1):
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        reply = "0\n"
    except OSError as exc:
        reply = "%d %s\n" % (exc.errno or 0, exc.strerror or exc)
    try:
        os.write(1, reply.encode())
    except OSError:  # the station ended (and closed our pipe) while this sync ran: nobody waits
        break
"""


#: What the helper inherits: locale and PATH only (``python -I`` ignores PYTHON* anyway).
HELPER_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")


def helper_env() -> dict[str, str]:
    """The helper's environment: an allow-list, so no passphrase, PIN or other TAGSMITH_* value reaches it."""
    return {name: os.environ[name] for name in HELPER_ENV_KEEP if name in os.environ}


def _pipes(helper: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """The helper's stdin and stdout (always piped by ``_spawn``)."""
    if helper.stdin is None or helper.stdout is None:
        raise OSError(errno.EIO, "the database sync helper has no pipes")
    return helper.stdin, helper.stdout


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)  # any descriptor of the file flushes its pages (fsync(2))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalSync:
    """fsync of ``<database>-wal``; ``wait`` is the barrier of an overlapped one, and raises its error."""

    def __init__(self, database: Path) -> None:
        self.wal = f"{database}-wal"
        self._helper: subprocess.Popen[bytes] | None = None
        self._pending = False

    def sync(self) -> None:
        """fsync the WAL now, on this thread (after any overlapped sync still running)."""
        self.wait()
        _fsync(self.wal)

    def start(self) -> None:
        """Begin syncing what the WAL holds now (call right after COMMIT); :meth:`wait` for it."""
        self.wait()  # an earlier failure must surface, not be covered by a later fsync
        helper = self._helper or self._spawn()
        if helper is None:  # no helper process could start: sync here, without the overlap
            _fsync(self.wal)
            return
        try:
            _pipes(helper)[0].write(b"s")
            self._pending = True
        except OSError:
            self._ended()
        except BaseException:  # Ctrl-C around the request: its reply could no longer be matched to a wait
            self._discard()
            raise

    def wait(self) -> None:
        """Return once every sync handed over is on disk; an I/O error of the fsync is raised here."""
        if not self._pending:
            return
        try:
            line = _pipes(self._helper)[1].readline() if self._helper else b""
            self._pending = False
        except BaseException:  # Ctrl-C around the read: whether the reply was taken is unknown
            self._discard()
            raise
        if not line:
            self._ended()
        code, _, message = line.decode(errors="replace").strip().partition(" ")
        if code != "0":
            raise OSError(int(code) if code.isdigit() else errno.EIO, message or "fsync failed")

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        """Start the helper (None when no process can start); ``HELPER_CODE`` is read at each start."""
        try:
            self._helper = subprocess.Popen([sys.executable, "-I", "-S", "-c", HELPER_CODE, self.wal],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                            process_group=0,  # out of the terminal's Ctrl-C
                                            env=helper_env())
        except OSError:
            return None
        return self._helper

    def _ended(self) -> None:
        """The helper is gone: reap it, and say so (the next overlapped sync starts a new one)."""
        self._reap()
        raise OSError(errno.EIO, "the database sync helper process has ended")

    def _discard(self) -> None:
        """Let this helper go after an interrupted request or reply, so that no later wait takes a stale
        reply (or waits for one already taken); the next overlapped sync starts a new helper."""
        self._pending = False
        self._reap()

    def _reap(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            stdin, stdout = _pipes(helper)
            with contextlib.suppress(OSError):  # a helper already gone: nothing to tell it
                stdin.close()  # EOF: a live helper exits
            stdout.close()
            helper.wait()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._reap()
