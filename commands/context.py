"""What a command runs with: the root options, and the workspace's store and keystore opened once, on first use.

A group's callback puts a :class:`Opened` on its context; its commands take ``opened(ctx).store`` or
``opened(ctx).keys``. Nothing is opened until a command asks (so ``--help`` and commands that need
neither create no database), and what was opened is closed when the command ends.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tagsmith.workspace import Workspace

if TYPE_CHECKING:  # the store and keystore are imported when first opened, to keep --help fast
    from tagsmith.batches.store import Store
    from tagsmith.keystore import Keystore


@dataclass
class State:
    """Global options, stored by the root callback; nothing is opened until a command needs it."""

    home: Path | None = None
    verbose: int = 0
    user: str | None = None  # who signs QA plans, scans, reports and overrides (default: the OS user)
    db: str | None = None  # the line's shared database (--db / TAGSMITH_DB); None: the workspace's SQLite file

    @property
    def workspace(self) -> Workspace:
        return Workspace.resolve(self.home)


def state(ctx: typer.Context) -> State:
    """The State stored by the root callback."""
    found: State = ctx.find_root().obj
    return found


def who(ctx: typer.Context) -> str:
    """Who a recorded decision names: --user / TAGSMITH_USER, else the OS login."""
    from tagsmith.provision.qa_plan import current_user

    return state(ctx).user or current_user()


def checked_out(ctx: typer.Context, path: Any, force: bool, option: str = "--out") -> Path:
    """A user-named output checked before anything is done: never the workspace's own files, never a
    FIFO/device/directory, an existing file only with --force (one line, exit 2 otherwise)."""
    from tagsmith.provision.outputs import check_output

    return check_output(path, state(ctx).workspace, force=force, option=option)


def at_terminal() -> bool:
    """Whether a hidden prompt can be shown (stdin is a terminal)."""
    return sys.stdin.isatty()


def hidden_prompt(prompt: str, confirm: bool = False) -> str | None:
    """A secret typed at the terminal, never echoed; None without a terminal to hide it on."""
    if not at_terminal():
        return None
    answer: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return answer


def open_keys(ctx: typer.Context) -> Keystore:
    """Open the workspace keystore, asking for the passphrase or PIN only when it is needed."""
    from tagsmith.keystore import open_keystore

    return open_keystore(state(ctx).workspace, ask=lambda backend: hidden_prompt(
        "Keystore passphrase" if backend == "file" else "Token user PIN"))


def open_batch_store(ctx: typer.Context, create: bool = True) -> Store:
    """The workspace's batch database: created and migrated on first use, or (``create=False``) only an existing one."""
    from tagsmith.batches.store import open_store

    ws = state(ctx).workspace
    return open_store(ws.ensure() if create else ws, url=state(ctx).db, create=create)


class Opened:
    """The store and keystore of one command, each opened on first use and closed when the command ends."""

    def __init__(self, ctx: typer.Context, create_store: bool = True) -> None:
        self._ctx, self._create_store = ctx, create_store

    @cached_property
    def store(self) -> Store:
        return self._ctx.with_resource(open_batch_store(self._ctx, self._create_store))

    @cached_property
    def keys(self) -> Keystore:
        return self._ctx.with_resource(open_keys(self._ctx))


def provide(ctx: typer.Context, create_store: bool = True) -> None:
    """A group callback's one job: let the group's commands open the store and keystore once, lazily."""
    ctx.obj = Opened(ctx, create_store)


def opened(ctx: typer.Context) -> Opened:
    """The group's lazily opened store and keystore (see :func:`provide`)."""
    found = ctx.obj
    assert isinstance(found, Opened), "the command's group callback did not call provide()"
    return found
