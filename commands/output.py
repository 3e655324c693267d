"""Everything the CLI prints: rich text and tables for a person, one line of JSON with ``--json``.

Rich is drawn only by the CLI (``cli.py`` and this package); values from the user, a file, the
database or a chip always go through :func:`esc`, so they print verbatim.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.segment import Segments
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

#: A ``(done, total, what)`` progress callback.
Progress = Callable[[int, int, str], None]


def esc(value: Any) -> str:
    """A value from the user, a file, the database or a chip as rich text that prints verbatim; None as ``-``.

    Everything given to ``console.print`` or a table cell is parsed as rich markup: a product
    name such as ``Oven [bold red]X`` or a path with ``[/]`` would be restyled or crash.
    """
    return "-" if value is None else escape(str(value))


def print_line(text: str, err: bool = False) -> None:
    """Print one message (its values escaped with :func:`esc`) unwrapped and uncut, so URLs and paths stay whole."""
    (err_console if err else console).print(text, soft_wrap=True)


def print_table(table: Any) -> None:
    """Print a table whole: at a terminal its long values fold; piped or redirected, at its natural
    width, so no URL, path or id is cut with an ellipsis or wrapped onto a second line."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.measure(table, options=console.options.update_width(1 << 16)).maximum
    console.print(Segments(console.render(table, console.options.update_width(max(width, 1)))), soft_wrap=True)


def print_rows(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print rows of values verbatim (None as -); at a narrow terminal long values fold, never lose characters."""
    table = Table(title=esc(title))
    for column in columns:
        table.add_column(esc(column), overflow="fold")
    for row in rows:
        table.add_row(*(esc(v) for v in row))
    print_table(table)


def folding_table(*columns: str, **options: Any) -> Table:
    """A table whose every column folds long values instead of cutting them."""
    table = Table(*columns, **options)
    for column in table.columns:
        column.overflow = "fold"
    return table


def json_line(data: Any) -> None:
    """Write ``data`` as one JSON line in a single write, then flush.

    ``print`` writes the text and the newline separately, so a Ctrl-C between the two left a line
    open and the next line (a station's summary) was glued onto it, unreadable to a JSON-lines reader.
    """
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as one line of JSON, or call ``render`` to draw it for a person."""
    if as_json or render is None:
        json_line(data)
    else:
        render()


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress | None]:
    """A rich progress bar on stderr at a terminal, as a ``(done, total, what)`` callback; None when piped."""
    if not (enabled and err_console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
             TimeRemainingColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(done: int, total: int, what: str) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"decoding {esc(what)}", total=total)
            bar.update(tasks[what], completed=done)

        yield update
