"""Which simulated chips ``tagsmith sim serve`` presents, in what order."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from tagsmith import ConfigError

from .chip import SimulatedNtag424


def parse_uid(text: str) -> bytes:
    """A 7-byte NXP UID from hex (spaces and colons allowed)."""
    try:
        uid = bytes.fromhex(text.replace(":", "").replace(" ", ""))
    except ValueError:
        raise ConfigError(f"UID {text!r} is not hex") from None
    if len(uid) != 7 or uid[0] != 0x04:
        raise ConfigError(f"UID {text!r} must be 7 bytes starting with 04 (NXP)")
    return uid


def chip_sequence(uids: list[str], count: int = 0) -> Iterator[SimulatedNtag424]:
    """Chips to place one after another: the given UIDs in turn, or fresh random ones.

    With UIDs, ``count`` placements cycle through them (default: each once); the same UID is the
    same chip object, so what a station wrote to it is still there when it comes back. Without
    UIDs, ``count`` fresh factory chips (0: without end).
    """
    chips: dict[bytes, SimulatedNtag424] = {}
    if uids:
        order = [parse_uid(u) for u in uids]
        sequence = itertools.islice(itertools.cycle(order), count or len(order))
        for uid in sequence:
            yield chips.setdefault(uid, SimulatedNtag424(uid=uid))
        return
    for _ in itertools.count() if count == 0 else range(count):
        yield SimulatedNtag424()
