"""docs/cli-reference.md is what the CLI says of itself: every command and option, none missing, none stale.

The reference is generated from the CLI (this file, run as a script with ``--write``: ``./dev reference``),
so it cannot drift from the code: the test fails when the file differs from what render() produces.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from tagsmith.cli import app

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "cli-reference.md"
HEADER = """# Command reference

Every `tagsmith` command with its arguments and options, as `--help` shows them. Generated from the
CLI by `./dev reference`; the test suite fails when this file and the code disagree. The README and the
docs explain what the commands are for and how they fit together; this page is the list.
"""


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(argv path, click command) for every command below the root, groups before their members, hidden ones left out."""
    for name, sub in getattr(command, "commands", {}).items():  # in the order --help lists them
        if getattr(sub, "hidden", False):
            continue
        yield (*path, name), sub
        yield from _commands(sub, (*path, name))


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _param(param: Any, ctx: Any) -> tuple[str, str]:
    """(how it is written, what it means) for one argument or option, exactly as ``--help`` shows it."""
    written, meaning = param.get_help_record(ctx) or (param.name, "")
    return f"`{written}`", _cell(meaning)


def _table(command: Any, path: tuple[str, ...]) -> str:
    params = [p for p in command.params if p.name != "help" and not getattr(p, "hidden", False)]
    if not params:
        return ""
    ctx = command.make_context(path[-1] if path else "tagsmith", [], resilient_parsing=True)
    rows = "".join("| {} | {} |\n".format(*_param(param, ctx)) for param in params)
    return "\n| argument or option | meaning |\n|---|---|\n" + rows


def render() -> str:
    root = typer.main.get_command(app)
    parts = [HEADER, "\n## tagsmith (root options, before the command)\n"]
    parts.append(_table(root, ()))
    for path, command in _commands(root):
        parts.append(f"\n{'##' if len(path) == 1 else '###'} tagsmith {' '.join(path)}\n")
        parts.append(_cell(command.help).split(" \b")[0] + "\n")
        if not hasattr(command, "commands"):
            parts.append(_table(command, path))
    return "".join(parts)


def test_the_command_reference_is_generated_from_the_current_cli():
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/cli-reference.md is out of date with the CLI: run ./dev reference and commit the result")


def test_the_reference_names_every_command_and_the_readme_points_at_it():
    text = render()
    for command in ("tagsmith station run", "tagsmith sun verify", "tagsmith db copy", "tagsmith epcis capture"):
        assert f" {command}\n" in text
    assert "docs/cli-reference.md" in (REFERENCE.parents[1] / "README.md").read_text(encoding="utf-8")


if __name__ == "__main__":
    text = render()
    if sys.argv[1:] == ["--write"]:
        REFERENCE.write_text(text, encoding="utf-8")
        print(f"wrote {REFERENCE} ({text.count(chr(10))} lines)")
    else:
        sys.stdout.write(text)
