"""What every part of the store shares: the clock, the name and UID checks, a step's stored detail."""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache

from tagsmith import ConfigError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_QUANTITY = 10_000_000
INCOMPLETE_SHOWN = 5  # serials named in a refusal before "+N more"

_second_text: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """Now in UTC, ISO 8601 with milliseconds and a Z (the date and time formatted once a second:
    a station stamps about ten rows per tag)."""
    global _second_text
    now = time.time()
    second, text = _second_text
    if int(now) != second:
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{min(int((now - second) * 1000), 999):03d}Z"


def check_name(what: str, name: str) -> str:
    """A name the database records (station, batch id, line): 1-64 of A-Z a-z 0-9 . _ : - (ConfigError otherwise)."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"{what} {name!r} must be 1-64 of A-Z a-z 0-9 . _ : -")
    return name


def check_station_name(station: str) -> str:
    """A station name as the database records it (ConfigError otherwise)."""
    return check_name("station name", station)


def check_uid(uid: bytes) -> bytes:
    if not isinstance(uid, (bytes, bytearray)) or len(uid) not in (4, 7, 10):
        raise ConfigError(f"a tag UID is 4, 7 or 10 bytes, got {uid!r}")
    return bytes(uid)


@lru_cache(maxsize=64)
def step_detail(step: str, found: bool) -> str:
    """A step event's JSON detail; a station writes the same seven about ten thousand times a shift."""
    return json.dumps({"step": step, "found": True} if found else {"step": step})
