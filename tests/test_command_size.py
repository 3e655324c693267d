"""Commands stay thin: each command body is short, and the CLI's modules stay small.

A command parses its options, calls one function and renders the result, so its body (from the
first statement after the docstring to its end) stays under 30 lines; the work belongs in
``provision``. Every registered command is found through the Typer app itself, so a command
added anywhere is measured.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tagsmith.cli import app

ROOT = Path(__file__).resolve().parents[1]
MAX_BODY_LINES = 30
MAX_MODULE_LINES = 400


def _registered(typer_app: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(command path, function) of every command and group callback registered on ``typer_app`` and below it."""
    if typer_app.registered_callback is not None:
        yield " ".join(path) or "(root callback)", typer_app.registered_callback.callback
    for command in typer_app.registered_commands:
        yield " ".join((*path, command.name or command.callback.__name__)), command.callback
    for group in typer_app.registered_groups:
        yield from _registered(group.typer_instance, (*path, group.name))


def body_lines(function: Callable[..., Any]) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def test_the_walk_finds_every_command():
    names = {name for name, _ in _registered(app)}
    assert len(names) > 45
    assert {"readers", "demo", "version", "qa scan", "station run", "labels print", "manifest export"} <= names


def test_every_command_body_is_under_30_lines():
    long = sorted(f"{name} ({fn.__module__}.{fn.__name__}): {n} lines"
                  for name, fn in _registered(app) if (n := body_lines(fn)) >= MAX_BODY_LINES)
    assert not long, "command bodies of 30 lines or more (move the work into provision):\n" + "\n".join(long)


def test_the_cli_modules_are_under_400_lines():
    modules = [ROOT / "cli.py", *sorted((ROOT / "commands").glob("*.py"))]
    big = [f"{path.relative_to(ROOT)}: {n} lines" for path in modules
           if (n := len(path.read_text(encoding="utf-8").splitlines())) >= MAX_MODULE_LINES]
    assert not big, "CLI modules of 400 lines or more:\n" + "\n".join(big)
