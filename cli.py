"""The tagsmith command line: thin commands that parse, call one library function, and render.

Every expected failure is a :class:`tagsmith.TagsmithError`; :func:`main` catches it once and
prints one line with the error's exit code (see README "Exit codes"). Rich output is used
only in this module; every command that reports something takes ``--json``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import click
import typer
from rich.console import Console

from tagsmith import TagsmithError, __version__

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
log = logging.getLogger("tagsmith")

app = typer.Typer(
    name="tagsmith",
    help="Provision NTAG 424 DNA chips, serial numbers and QR door labels on the production line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class State:
    """Global options, stored by the callback; nothing is opened until a command needs it."""

    home: Optional[Path] = None
    verbose: int = 0

    @property
    def workspace(self):  # -> provision.workspace.Workspace (imported lazily to keep --help fast)
        from tagsmith.provision.workspace import Workspace

        return Workspace.resolve(self.home)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")]


def state(ctx: typer.Context) -> State:
    """The State stored by the root callback."""
    return ctx.find_root().obj


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as one line of JSON, or call ``render`` to draw it for a person."""
    if as_json or render is None:
        print(json.dumps(data, default=str))
    else:
        render()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Optional[Path],
        typer.Option("--home", envvar="TAGSMITH_HOME", help="Workspace directory (database, keystore, exports)."),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug, -vvv APDU traffic.")] = 0,
) -> None:
    """Provision NTAG 424 DNA chips, serial numbers and QR door labels on the production line."""
    ctx.obj = State(home=home, verbose=verbose)
    if verbose:
        level = {1: logging.INFO, 2: logging.DEBUG}.get(verbose, 5)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
def version(as_json: JsonFlag = False) -> None:
    """Print tagsmith's version."""
    emit({"version": __version__}, as_json, lambda: console.print(f"tagsmith {__version__}"))


# ---------------------------------------------------------------- section: sun (protocol core)
# ---------------------------------------------------------------- end section: sun

# ---------------------------------------------------------------- section: keys (keystore)
# ---------------------------------------------------------------- end section: keys

# ---------------------------------------------------------------- section: product, batch, manifest
# ---------------------------------------------------------------- end section: product, batch, manifest

# ---------------------------------------------------------------- section: readers, tag, sim (transports)
# ---------------------------------------------------------------- end section: readers, tag, sim

# ---------------------------------------------------------------- section: labels
# ---------------------------------------------------------------- end section: labels

# ---------------------------------------------------------------- section: station
# ---------------------------------------------------------------- end section: station

# ---------------------------------------------------------------- section: qa
# ---------------------------------------------------------------- end section: qa

# ---------------------------------------------------------------- section: demo
# ---------------------------------------------------------------- end section: demo


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; print expected errors as one line and exit with their code."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="tagsmith")
    except TagsmithError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # an unexpected failure: one line here, the traceback in the log
        log.debug("unexpected error", exc_info=True)
        err_console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc} (run with -vv for details)")
        sys.exit(70)
    sys.exit(result if isinstance(result, int) else 0)
