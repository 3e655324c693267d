"""A folder's fsync that fails is an error, unless the filesystem cannot sync a folder at all (fsync(2))."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from tagsmith import atomicfile


def _failing_folder_fsync(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(atomicfile.os, "fsync", fsync)


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_folder_fsync_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    _failing_folder_fsync(monkeypatch, code)
    with pytest.raises(OSError) as raised:
        atomicfile.fsync_dir(tmp_path)
    assert raised.value.errno == code
    with pytest.raises(OSError):
        atomicfile.atomic_write(tmp_path / "f", b"new")


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EROFS, errno.ENOTSUP, errno.EOPNOTSUPP])
def test_a_filesystem_that_cannot_sync_a_folder_is_tolerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             code: int) -> None:
    _failing_folder_fsync(monkeypatch, code)
    atomicfile.fsync_dir(tmp_path)
    atomicfile.atomic_write(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"new"


def test_the_folder_descriptor_is_closed_when_fsync_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_folder_fsync(monkeypatch, errno.EIO)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(OSError):
            atomicfile.fsync_dir(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before
