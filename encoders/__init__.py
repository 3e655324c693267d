"""Chip protocol and reader transports. ``ntag424`` is pure protocol; transports plug in via Connection."""

from .connection import TRAFFIC, Connection, ReaderUnavailableError, TagRemovedError

__all__ = ["TRAFFIC", "Connection", "ReaderUnavailableError", "TagRemovedError"]
