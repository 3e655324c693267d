"""Options shared by several groups, and the value types that parse hex, UIDs and keys once, for every command.

A hex or UID value is checked while the command line is parsed (a bad one is a one-line
:class:`ConfigError`, exit 2); a key never comes from the command line, where ``ps`` shows it, but
from a file, stdin or an environment variable.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from tagsmith import ConfigError

KEY_SOURCE_HELP = "a file holding the hex key, - for stdin, or env:VAR for an environment variable"
UID_BYTES = 7

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")]
ReaderOption = Annotated[
    str | None,
    typer.Option("--reader", "-r", envvar="TAGSMITH_READER",
                 help="PC/SC reader name or a unique part of it, or an nfcpy path (usb:…, tty:…, udp:host:port)."),
]
AllowSimulatorSignatureOpt = Annotated[bool, typer.Option(
    "--allow-simulator-signature",
    help="Also accept the test signing key of tagsmith's simulated chips.")]
#: The same option on commands that have --sim (which implies it): its help says so.
AllowSimulatorSignatureSimOpt = Annotated[bool, typer.Option(
    "--allow-simulator-signature",
    help="Also accept the test signing key of tagsmith's simulated chips (--sim implies it).")]
AllowIncompleteOpt = Annotated[bool, typer.Option(
    "--allow-incomplete", help="Go ahead although units are still being encoded (needs --reason; recorded).")]
IncompleteReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why going ahead is right (recorded).")]


def parse_hex(value: str | None, name: str) -> bytes:
    """Hex digits as bytes (none: empty); anything else is a ConfigError naming the option."""
    try:
        return bytes.fromhex(value or "")
    except ValueError:
        raise ConfigError(f"{name} is not hex") from None


def hex_value(name: str | None = None) -> Any:
    """A typer callback that turns an option's hex text into bytes (None stays None) as it is parsed."""

    def convert(param: typer.CallbackParam, value: str | None) -> bytes | None:
        return None if value is None else parse_hex(value, name or param.opts[0])

    return convert


def check_uids(param: typer.CallbackParam, values: list[str] | None) -> list[str] | None:
    """A typer callback: every repeated --uid is 7 bytes of hex, all checked before anything runs."""
    for uid in values or []:
        if len(parse_hex(uid, param.opts[0])) != UID_BYTES:
            raise ConfigError(f"{param.opts[0]} {uid!r}: a UID is 7 bytes (14 hex digits)")
    return values


def hex_option(*names: str, help: str, error_name: str | None = None) -> Any:
    """An option holding hex, given to the command as bytes."""
    return typer.Option(*names, help=help, metavar="<str>", callback=hex_value(error_name))


def key_from(source: str, option: str) -> bytes:
    """A 16-byte key read from a file, stdin (-) or env:VAR, never from the command line (ps shows it)."""
    from tagsmith.keystore.model import parse_key_hex

    if source == "-":
        text = sys.stdin.read(4096)
    elif source.startswith("env:"):
        text = os.environ.get(source[4:], "")
        if not text:
            raise ConfigError(f"{option}: the environment variable {source[4:]!r} is not set")
    else:
        try:
            with open(source, encoding="utf-8", errors="replace") as fh:
                text = fh.read(4096)  # a key file is 32 hex digits: read no more than a page
        except OSError as exc:
            raise ConfigError(f"{option}: cannot read {source}: {exc.strerror or exc}") from None
    return parse_key_hex(text, f"key from {option}")


def refuse_key_on_command_line(option: str, value: str | None, instead: str) -> None:
    """The old key options: a key in argv is visible to every user, so it is refused (exit 2)."""
    if value is not None:
        raise ConfigError(f"{option} would put a key on the command line, where every user sees it (ps): "
                          f"use {instead} PATH, {instead} - (stdin) or {instead} env:VAR")


def incomplete_reason(allow_incomplete: bool, reason: str | None) -> str | None:
    """The recorded reason for going ahead with units mid-encoding, or None (refuse if there are any)."""
    if allow_incomplete and not (reason and reason.strip()):
        raise ConfigError("--allow-incomplete needs --reason TEXT (it is recorded)")
    if reason is not None and not allow_incomplete:
        raise ConfigError("--reason goes with --allow-incomplete")
    return reason if allow_incomplete else None
