"""Bounds on what tagsmith reads from files and fields the user names.

A file is read at most one byte past its limit before anything parses it, so ``/dev/zero`` or a
runaway file is one clear error (exit 2) instead of gigabytes of memory; line-oriented files
(manifests) are streamed with a bound per line instead. TOML is parsed with the nesting depth
bounded too: Python's parser recurses and would otherwise crash on deeply nested input.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from tagsmith import ConfigError

KIB = 1024
MIB = 1024 * KIB
SMALL_FILE_BYTES = 1 * MIB  # product and layout TOML
PEM_BYTES = 1 * MIB  # public and private keys
KEY_FILE_BYTES = 4 * KIB  # a hex key is 32 digits
MANIFEST_LINE_BYTES = 64 * KIB  # one manifest record or header (a record is ~0.5 KiB)
SIGNATURE_BYTES = 1 * MIB  # a manifest's .sig (two entries while it is replaced)
EXPORT_BYTES = 16 * MIB  # a resolver key export (every version of two slots)
TEXT_FIELD_CHARS = 256  # a label text line
LABEL_SCAN_CHARS = 4096  # one scanned label URL (qa scan --labels or stdin)
TOML_MAX_DEPTH = 32  # tables and arrays inside each other


def read_limited(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The file's bytes, or ConfigError if it cannot be read or is larger than ``limit``."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(f"{what} {os.fspath(path)} is larger than {_size(limit)}: refused")
    return data


def read_text_limited(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """:func:`read_limited` as UTF-8 text."""
    try:
        return read_limited(path, limit, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {os.fspath(path)} is not UTF-8 text") from None


def loads_toml(text: str, what: str) -> dict[str, Any]:
    """Parse TOML; syntax errors and nesting deeper than ``TOML_MAX_DEPTH`` are ConfigError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{what}: nested deeper than {TOML_MAX_DEPTH} levels") from None
    if _depth(doc) > TOML_MAX_DEPTH:
        raise ConfigError(f"{what}: nested deeper than {TOML_MAX_DEPTH} levels")
    return doc


def check_text(value: str, what: str, limit: int = TEXT_FIELD_CHARS) -> str:
    """A text field no longer than ``limit`` characters."""
    if len(value) > limit:
        raise ConfigError(f"{what}: {len(value)} characters, at most {limit}")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed TOML, iteratively (the value may be as deep as the parser allowed)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit // KIB} KiB"
