"""Crash-safe writes of files that must never be left half-written: keystore, audit log, manifests, outputs.

One mechanism for the whole package: the new bytes go to a temp file in the target's folder, are
fsynced, the temp file is renamed over the target and the folder is fsynced, so a crash at any
point leaves the old file or the new one. An append-only log gets the other half: one write, one
fsync, and a failed append is cut back to where it began. New files are private (0600 before the
umask) because they hold keys, chip lists or a chip's state. (The database's WAL is SQLite's and
is synced by ``batches/walsync.py``.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_TMP_PREFIX = "."
_TMP_SUFFIX = ".tmp"


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a new file is 0600 whatever the umask would have allowed."""
    return os.open(path, flags, 0o600)


@contextlib.contextmanager
def synced_file(path: Path) -> Iterator[BinaryIO]:
    """A new private file open for writing whose bytes are on disk once the block ends."""
    with open(path, "wb", opener=private_opener) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, temp: Path | None = None,
                 durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash at any point leaves the old or the new file.

    ``temp`` names the temp file when the caller sweeps its own (the simulated chips name theirs
    after their writer's pid); by default it is a fresh ``.NAME.*.tmp`` and the stale ones a crash
    left beside ``path`` are removed first. ``durable=False`` skips both fsyncs: the file must
    outlive its process, not a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if temp is None:
        _remove_stale_temps(path)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{_TMP_PREFIX}{path.name}.", suffix=_TMP_SUFFIX)
        temp = Path(name)
    else:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if durable:
        fsync_dir(path.parent)


def append_synced(path: Path, data: bytes, *, undo_to: int) -> None:
    """Append ``data`` as one write and fsync it; on any failure cut the file back to ``undo_to`` bytes.

    Raises the OSError; the file then ends where it did before (no torn record left behind).
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(28, "No space left on device")
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, undo_to)
            os.fsync(fd)
        raise
    finally:
        os.close(fd)


#: fsync(2)'s answers for "this filesystem cannot sync a folder" (EINVAL, EROFS; ENOTSUP on some
#: network and FUSE filesystems): the rename is as durable as that filesystem can make it.
_CANNOT_SYNC_FOLDER = frozenset({errno.EINVAL, errno.EROFS, errno.ENOTSUP, errno.EOPNOTSUPP})


def fsync_dir(directory: Path) -> None:
    """Make the renames into ``directory`` durable; raises OSError unless the filesystem cannot sync a folder."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC_FOLDER:
            raise
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    # Temp files survive only a crash mid-write; they hold no more than the real file did.
    for stale in path.parent.glob(f"{_TMP_PREFIX}{path.name}.*{_TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()
