"""Where a command may write a file the user named with ``--out`` (or a label printer target).

Every such path goes through :func:`check_output` first: a user's output must never land on the
workspace's own state (keystore, database and its WAL/SHM, audit log, simulated chips, locks and
temp files), never replace something that is not a regular file (a FIFO, a device, a directory),
and never replace an existing file unless the user said ``--force``. The path is judged as the
kernel would resolve it: symlinks followed, ``..`` normalised.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tagsmith import ConfigError, TagsmithError
from tagsmith.atomicfile import atomic_write

from ..workspace import Workspace


def check_output(path: str | os.PathLike[str], workspace: Workspace, *, force: bool, option: str = "--out") -> Path:
    """The path to write, once it is known not to destroy anything; ConfigError (exit 2) otherwise."""
    target = _named(path, option)
    _refuse_workspace_state(target, workspace, option)
    kind = _kind(target)
    if kind is None and target.is_relative_to("/dev"):
        raise ConfigError(f"{option} {target}: no such device")
    if kind is None:
        return target
    if kind != "regular file":
        raise ConfigError(f"{option} {target}: is a {kind}, not a regular file; refusing to replace it")
    if not force:
        raise ConfigError(f"{option} {target}: the file exists; add --force to replace it")
    return target


def write_file(path: Path, data: bytes) -> None:
    """Write a checked output atomically (temp file, fsync, rename), private to the user (0600)."""
    if not path.parent.is_dir():  # a mistyped folder is bad input, not something to create
        raise ConfigError(f"cannot write {path}: No such file or directory (no folder {path.parent})")
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise TagsmithError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_printer(target: str, workspace: Workspace, *, option: str) -> str:
    """A label printer target: ``tcp://``, a character device, or a file the labels are added to.

    A printer is a device, so a character device is what the user means here; a file target is
    appended to (it collects labels), so it needs no ``--force``, but it may still not be workspace
    state or any other kind of special file.
    """
    if not target.strip():
        raise ConfigError(f"{option}: empty; give a file, a device such as /dev/usb/lp0 or tcp://HOST:9100")
    if target.startswith("tcp://"):
        return target
    path = _named(os.path.expanduser(target), option)
    _refuse_workspace_state(path, workspace, option)
    kind = _kind(path)
    if kind not in (None, "regular file", "character device"):
        raise ConfigError(f"{option} {path}: is a {kind}; give a file, a character device or tcp://HOST:9100")
    return target


def _named(path: str | os.PathLike[str], option: str) -> Path:
    text = os.fspath(path)
    if not text.strip():
        raise ConfigError(f"{option}: empty path; name the file to write")
    if "\0" in text:
        raise ConfigError(f"{option}: the path holds a NUL character")
    return Path(os.path.realpath(text))


def _kind(path: Path) -> str | None:
    """What is at ``path`` (symlinks followed), or None when nothing is."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot use {path}: {exc.strerror or exc}") from None
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _refuse_workspace_state(target: Path, workspace: Workspace, option: str) -> None:
    home = Path(os.path.realpath(workspace.home))
    if target == home or home.is_relative_to(target):
        raise ConfigError(f"{option} {target}: is the workspace folder itself; refusing to write over it")
    for own in workspace.state_paths():
        own = Path(os.path.realpath(own))
        sidecar = target.parent == own.parent and (target.name.startswith((f"{own.name}.", f"{own.name}-",
                                                                          f".{own.name}")))
        if target == own or target.is_relative_to(own) or sidecar:
            raise ConfigError(f"{option} {target}: is the workspace's {own.name} (or its lock, journal or "
                              f"temp file); refusing to write over it: write outside {home} or in its exports/")
