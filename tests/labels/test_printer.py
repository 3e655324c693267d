"""Station printer sinks: raw TCP 9100 against a local server, files appended, clear errors."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from tagsmith import ConfigError
from tagsmith.labels import PrinterError
from tagsmith.labels.printer import FileSink, TcpSink, open_sink, print_zpl

ZPL = "^XA^FO10,10^A0N,20,20^FDhello^FS^XZ\n"


@pytest.fixture
def printer():
    """A one-connection TCP server on 127.0.0.1 that collects what a 'printer' receives."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
            received.append(b"".join(chunks))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}", received, thread
    server.close()


def test_zpl_reaches_a_raw_tcp_printer(printer):
    target, received, thread = printer
    sent = print_zpl(target, [ZPL, ZPL.replace("hello", "wörld")])
    thread.join(timeout=5)
    assert received == [(ZPL + ZPL.replace("hello", "wörld")).encode("utf-8")] and sent == len(received[0])


def test_an_unreachable_printer_is_one_clear_line():
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PrinterError, match=rf"^label printer tcp://127.0.0.1:{port} unreachable: .+$"):
        print_zpl(f"tcp://127.0.0.1:{port}", ZPL, timeout=2)


def test_default_port_is_9100_and_bad_targets_are_refused(monkeypatch):
    seen = {}
    monkeypatch.setattr(TcpSink, "__init__", lambda self, host, port, timeout: seen.update(host=host, port=port))
    open_sink("tcp://printer.local")
    assert seen == {"host": "printer.local", "port": 9100}
    with pytest.raises(ConfigError):
        open_sink("lpd://printer")
    with pytest.raises(ConfigError):
        open_sink("tcp://:9100")


def test_a_file_sink_appends(tmp_path):
    path = tmp_path / "station.zpl"
    print_zpl(str(path), ZPL)
    print_zpl(str(path), ZPL)
    assert path.read_text() == ZPL * 2
    assert isinstance(open_sink(str(path)), FileSink)


def test_a_device_node_is_written_not_appended(tmp_path):
    sink = open_sink("/dev/null")
    sink.send(ZPL.encode())
    sink.close()
    with pytest.raises(PrinterError, match="cannot open label printer /nonexistent/dir/lp0"):
        open_sink("/nonexistent/dir/lp0")


def test_a_failed_append_to_a_zpl_file_is_cut_back(tmp_path, monkeypatch):
    out = tmp_path / "labels.zpl"
    out.write_bytes(b"^XA^XZ")

    class FullDisk(io.FileIO):
        def write(self, data):  # a torn label: part of it reaches the file, then the disk is full
            super().write(bytes(data[:3]))
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("tagsmith.labels.printer.open", lambda path, mode, buffering: FullDisk(path, mode),
                        raising=False)
    with pytest.raises(PrinterError, match="labels.zpl failed: No space left on device"):
        print_zpl(str(out), "^XA^FDone^FS^XZ")
    assert out.read_bytes() == b"^XA^XZ"


def test_a_full_device_fails_at_the_write_not_at_close():
    with pytest.raises(PrinterError, match="/dev/full failed: No space left on device"):
        print_zpl("/dev/full", "^XA^XZ")
