"""Where a station's ZPL goes: a file (appended), a device node, or a raw TCP port-9100 printer.

The target is one string, as the user types it: ``tcp://HOST[:PORT]`` (port 9100 by default), a
device such as ``/dev/usb/lp0``, or any other path, which is appended to.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self
from urllib.parse import urlsplit

from tagsmith import ConfigError

from . import PrinterError

RAW_PORT = 9100
TIMEOUT_S = 5.0


class _Closing:
    target: str

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class FileSink(_Closing):
    """Append to a file (or write to a device node, which cannot be appended to)."""

    def __init__(self, path: str | Path) -> None:
        self.target = str(path)
        self._device = self._is_device(Path(path))
        try:
            self._file: BinaryIO = open(path, "wb" if self._device else "ab", buffering=0)
        except OSError as exc:
            raise PrinterError(f"cannot open label printer {self.target}: {exc.strerror or exc}") from None

    @staticmethod
    def _is_device(path: Path) -> bool:
        try:
            return stat.S_ISCHR(path.stat().st_mode)
        except OSError:
            return False

    def send(self, data: bytes) -> None:
        """Write ``data``; a failed write to a file is cut back to where it began (no torn label left)."""
        start = None if self._device else os.fstat(self._file.fileno()).st_size
        view = memoryview(data)
        try:
            while view:  # unbuffered: a short write is retried, a failed one raises here and not at close
                view = view[self._file.write(view):]
        except OSError as exc:
            if start is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._file.fileno(), start)
            raise PrinterError(f"writing to label printer {self.target} failed: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._file.close()


class TcpSink(_Closing):
    """A raw TCP printer port (Zebra "port 9100" printing): bytes in, nothing back."""

    def __init__(self, host: str, port: int = RAW_PORT, timeout: float = TIMEOUT_S) -> None:
        self.target = f"tcp://{host}:{port}"
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise PrinterError(f"label printer {self.target} unreachable: {reason}") from None

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise PrinterError(f"sending to label printer {self.target} failed: {exc.strerror or exc}") from None

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._sock.close()


def is_printer_target(target: str) -> bool:
    """Whether a target names a printer rather than a file: ``tcp://...`` or an existing character device."""
    return target.startswith("tcp://") or FileSink._is_device(Path(os.path.expanduser(target)))


def open_sink(target: str, timeout: float = TIMEOUT_S) -> FileSink | TcpSink:
    """Open the sink a user named: ``tcp://HOST[:PORT]``, a device path, or a file to append to."""
    if target.startswith("tcp://"):
        parts = urlsplit(target)
        if not parts.hostname:
            raise ConfigError(f"label printer {target!r}: expected tcp://HOST[:PORT]")
        try:
            port = parts.port or RAW_PORT
        except ValueError:
            raise ConfigError(f"label printer {target!r}: bad port") from None
        return TcpSink(parts.hostname, port, timeout)
    if "://" in target:
        raise ConfigError(f"label printer {target!r}: use tcp://HOST[:PORT], a device path or a file path")
    return FileSink(os.path.expanduser(target))


def print_zpl(target: str, zpl: str | list[str], timeout: float = TIMEOUT_S) -> int:
    """Send ZPL (one string or a list of labels) to a target; returns the number of bytes sent."""
    data = ("".join(zpl) if isinstance(zpl, list) else zpl).encode("utf-8")  # ^CI28: UTF-8
    with open_sink(target, timeout) as sink:
        sink.send(data)
    return len(data)
