"""Every command's --help, as a user reads it: no type placeholder on flags, no hint about options
the command does not have, and a root ``--version``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from tagsmith import __version__
from tagsmith.cli import app

TAGSMITH = shutil.which("tagsmith") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "tagsmith")


def _commands(command, path=()):
    """(argv path, click command) for the root and every group and command below it, hidden ones too."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"TERMINAL_WIDTH": "200", "COLUMNS": "200"})
    assert result.exit_code == 0, (path, result.output)
    return re.sub(r"[\s│]+", " ", result.stdout)  # one line, table borders gone, whatever the wrapping


def test_every_help_page_shows_no_bool_metavar_and_no_sim_hint_without_sim():
    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 40  # the walk reached the subcommands
    for path, command in commands:
        text = _help(path)
        assert "<bool>" not in text, path
        has_sim = any("--sim" in getattr(p, "opts", ()) for p in command.params)
        assert has_sim or "--sim implies" not in text, path
    root = _help(())
    assert "-v <int>" not in root and "-vvv" in root and "--version" in root


def test_keys_product_option_names_the_key_set_and_has_the_key_set_alias():
    text = _help(("keys", "create"))
    assert "--product" in text and "--key-set" in text and "key set" in text
    assert "--system-id" in text and "hex" in text.split("--system-id", 1)[1][:120]
    assert "hex" in _help(("keys", "diversify")).split("--system-id", 1)[1][:120]


def test_version_option_and_command_through_the_console_script():
    for argv in (["--version"], ["version"]):
        result = subprocess.run([TAGSMITH, *argv], capture_output=True, text=True, timeout=60, env=dict(os.environ))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"tagsmith {__version__}"
    counted = subprocess.run([TAGSMITH, "-vv", "version"], capture_output=True, text=True, timeout=60)
    assert counted.returncode == 0 and counted.stdout.strip() == f"tagsmith {__version__}"
