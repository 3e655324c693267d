"""The tagsmith command line: the root options, the command groups (in :mod:`tagsmith.commands`), one error funnel.

Every expected failure is a :class:`tagsmith.TagsmithError`; :func:`main` catches it once and
prints one line with the error's exit code (see README "Exit codes"). Rich output is drawn only
here and in :mod:`tagsmith.commands`; every command that reports something takes ``--json``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from tagsmith import ConfigError, TagsmithError, __version__
from tagsmith.commands import db, demo, epcis, keys, labels, products, qa, resolver, station, sun, tag
from tagsmith.commands.context import State
from tagsmith.commands.options import JsonFlag
from tagsmith.commands.output import console, emit, err_console

log = logging.getLogger("tagsmith")


def _flags_without_metavar(command: Any) -> None:
    """Show no value placeholder for flags and counters in --help, in this command and below it.

    typer renders every option's type as its metavar, so a flag reads ``--json <bool>`` and the
    counter ``-v <int>``, as if they took a value; an empty metavar shows nothing.
    """
    help_option = command.get_help_option(typer.Context(command, info_name=command.name))  # made once, then kept
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):  # typer's own click: no isinstance
            param.metavar = ""
            if param.count:
                param.show_default = False
    for sub in getattr(command, "commands", {}).values():
        _flags_without_metavar(sub)


class _RootGroup(typer.core.TyperGroup):
    """tagsmith's root command: built with every subcommand in place, so their help is fixed up once here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _flags_without_metavar(self)


app = typer.Typer(
    name="tagsmith",
    cls=_RootGroup,
    help="Provision NTAG 424 DNA chips, serial numbers and QR door labels on the production line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    """``tagsmith --version``: print the version and stop before any command runs."""
    if value:
        console.print(f"tagsmith {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="TAGSMITH_HOME", help="Workspace directory (database, keystore, exports)."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--db", envvar="TAGSMITH_DB", help="The line's shared PostgreSQL database: a libpq URL or "
                     "service=NAME, its password in ~/.pgpass or PGPASSWORD (default: the workspace's SQLite file)."),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="Repeat for more: -v info, -vv debug, -vvv APDU traffic.")] = 0,
    user: Annotated[
        str | None,
        typer.Option("--user", envvar="TAGSMITH_USER",
                     help="Who is recorded on QA plans, scans, reports and overrides (default: the OS login)."),
    ] = None,
    _version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                           help="Print tagsmith's version and exit.")] = False,
) -> None:
    """Provision NTAG 424 DNA chips, serial numbers and QR door labels on the production line."""
    if user is not None and not user.strip():
        raise ConfigError("--user / TAGSMITH_USER is empty: give the name to record")
    ctx.obj = State(home=home, verbose=verbose, user=user.strip() if user else None, db=database or None)
    if verbose:
        level = {1: logging.INFO, 2: logging.DEBUG}.get(verbose, 5)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
def version(as_json: JsonFlag = False) -> None:
    """Print tagsmith's version."""
    emit({"version": __version__}, as_json, lambda: console.print(f"tagsmith {__version__}"))


app.add_typer(sun.sun_app, name="sun")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(products.product_app, name="product")
app.add_typer(products.batch_app, name="batch")
app.add_typer(products.unit_app, name="unit")
app.add_typer(products.manifest_app, name="manifest")
app.command()(tag.readers)
app.add_typer(tag.tag_app, name="tag")
app.add_typer(tag.sim_app, name="sim")
app.add_typer(labels.labels_app, name="labels")
app.add_typer(station.station_app, name="station")
app.add_typer(qa.qa_app, name="qa")
app.add_typer(db.db_app, name="db")
app.add_typer(epcis.epcis_app, name="epcis")
app.add_typer(resolver.resolver_app, name="resolver")
app.command()(demo.demo)


def _fail(message: str, code: int, label: str = "error") -> None:
    """Print one line on stderr (the message is data, never rich markup) and exit with ``code``."""
    err_console.print(Text.assemble((f"{label}: ", "bold red"), message), soft_wrap=True)
    sys.exit(code)


def _os_error_line(exc: OSError) -> tuple[str, int]:
    """A failed file or directory operation as one line: what, where, why; a bad path is bad input (2)."""
    where = f" {exc.filename}" if exc.filename is not None else ""
    why = exc.strerror or type(exc).__name__
    bad_path = isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                                FileExistsError))
    return f"cannot use{where}: {why}", 2 if bad_path else 1


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; print expected errors as one line and exit with their code."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="tagsmith")
    except TagsmithError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.Abort:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except typer.TyperException as exc:  # a usage error: a bad option or argument, a missing one
        command = getattr(getattr(exc, "ctx", None), "command_path", None) or "tagsmith"
        _fail(f"{exc.format_message()} (see: {command} --help)", exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:
        _fail(*_os_error_line(exc))
    except UnicodeDecodeError:
        _fail("an input file is not UTF-8 text (a binary or wrongly encoded file given where text is expected)", 2)
    except Exception as exc:  # an unexpected failure: one line here, the traceback in the log
        log.debug("unexpected error", exc_info=True)
        _fail(f"{type(exc).__name__}: {exc} (run with -vv for details)", 70, label="unexpected error")
    sys.exit(result if isinstance(result, int) else 0)
