"""Which simulated chips ``tagsmith sim serve`` presents, in what order, and how slow their radio link is."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from tagsmith import ConfigError

from .chip import SimulatedNtag424
from .vpicc import Chip, VpiccServer, chip_uid, leave_field, reenter_field


class LatentLink:
    """A chip behind a radio link that takes ``latency_ms`` per command APDU, as a real reader's does.

    A USB reader takes about 5-15 ms per round trip; a simulated chip answers in microseconds, so
    a line benchmark without this delay measures the host, not what a factory would see. The delay
    is the link's: the chip's own logic and timing are untouched. Also what vpicc needs of a chip
    (``uid``, ``place()``, ``remove()``), passed through to the chip behind.
    """

    def __init__(self, chip: Chip, latency_ms: float) -> None:
        self.chip, self.delay = chip, latency_ms / 1000

    @property
    def uid(self) -> bytes | None:
        return chip_uid(self.chip)

    def place(self) -> None:
        reenter_field(self.chip)

    def remove(self) -> None:
        leave_field(self.chip)

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        time.sleep(self.delay)
        return self.chip.transceive(apdu)


def with_latency(chip: Any, latency_ms: float) -> Any:
    """``chip`` behind a link of ``latency_ms`` per APDU; the chip itself when there is no delay."""
    return LatentLink(chip, latency_ms) if latency_ms > 0 else chip


def parse_uid(text: str) -> bytes:
    """A 7-byte NXP UID from hex (spaces and colons allowed)."""
    try:
        uid = bytes.fromhex(text.replace(":", "").replace(" ", ""))
    except ValueError:
        raise ConfigError(f"UID {text!r} is not hex") from None
    if len(uid) != 7 or uid[0] != 0x04:
        raise ConfigError(f"UID {text!r} must be 7 bytes starting with 04 (NXP)")
    return uid


def chip_sequence(uids: list[str], count: int = 0, latency_ms: float = 0.0) -> Iterator[Chip]:
    """Chips to place one after another: the given UIDs in turn, or fresh random ones.

    With UIDs, ``count`` placements cycle through them (default: each once); the same UID is the
    same chip object, so what a station wrote to it is still there when it comes back. Without
    UIDs, ``count`` fresh factory chips (0: without end). Each answers through a link of
    ``latency_ms`` per APDU (:class:`LatentLink`).
    """
    chips: dict[bytes, Chip] = {}
    if uids:
        order = [parse_uid(u) for u in uids]
        sequence = itertools.islice(itertools.cycle(order), count or len(order))
        for uid in sequence:
            if uid not in chips:
                chips[uid] = with_latency(SimulatedNtag424(uid=uid), latency_ms)
            yield chips[uid]
        return
    for _ in itertools.count() if count == 0 else range(count):
        yield with_latency(SimulatedNtag424(), latency_ms)


def serve_all(servers: list[VpiccServer]) -> None:
    """Serve every slot until each has presented its chips, or Ctrl-C; the first slot's error is raised."""
    if len(servers) == 1:  # one reader: served in this thread, as Ctrl-C reaches it directly
        try:
            servers[0].run()
        except KeyboardInterrupt:
            pass
        finally:
            servers[0].stop()
        return
    for server in servers:
        server.start()
    try:
        for server in servers:
            while server.running:
                server.join(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            server.join(5)
    errors = [server.error for server in servers if server.error is not None]
    if errors:
        raise errors[0]
