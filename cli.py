"""The tagsmith command line: thin commands that parse, call one library function, and render.

Every expected failure is a :class:`tagsmith.TagsmithError`; :func:`main` catches it once and
prints one line with the error's exit code (see README "Exit codes"). Rich output is used
only in this module; every command that reports something takes ``--json``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape

from tagsmith import TagsmithError, __version__

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
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


@dataclass
class State:
    """Global options, stored by the callback; nothing is opened until a command needs it."""

    home: Path | None = None
    verbose: int = 0
    user: str | None = None  # who signs QA plans, scans, reports and overrides (default: the OS user)

    @property
    def workspace(self):  # -> provision.workspace.Workspace (imported lazily to keep --help fast)
        from tagsmith.workspace import Workspace

        return Workspace.resolve(self.home)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")]


def state(ctx: typer.Context) -> State:
    """The State stored by the root callback."""
    return ctx.find_root().obj


ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")]


def _out(ctx: typer.Context, path: Any, force: bool, option: str = "--out") -> Path:
    """A user-named output checked before anything is done: never the workspace's own files, never a
    FIFO/device/directory, an existing file only with --force (one line, exit 2 otherwise)."""
    from tagsmith.provision.outputs import check_output

    return check_output(path, state(ctx).workspace, force=force, option=option)


def _esc(value: Any) -> str:
    """A value from the user, a file, the database or a chip as rich text that prints verbatim; None as ``-``.

    Everything given to ``console.print`` or a table cell is parsed as rich markup: a product
    name such as ``Oven [bold red]X`` or a path with ``[/]`` would be restyled or crash.
    """
    return "-" if value is None else escape(str(value))


def _print(text: str, err: bool = False) -> None:
    """Print one message (its values escaped with :func:`_esc`) unwrapped and uncut, so URLs and paths stay whole."""
    (err_console if err else console).print(text, soft_wrap=True)


def _print_table(table: Any) -> None:
    """Print a table whole: at a terminal its long values fold; piped or redirected, at its natural
    width, so no URL, path or id is cut with an ellipsis or wrapped onto a second line."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.segment import Segments

    width = console.measure(table, options=console.options.update_width(1 << 16)).maximum
    console.print(Segments(console.render(table, console.options.update_width(max(width, 1)))), soft_wrap=True)


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as one line of JSON, or call ``render`` to draw it for a person."""
    if as_json or render is None:
        print(json.dumps(data, default=str))
    else:
        render()


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
        from tagsmith import ConfigError

        raise ConfigError("--user / TAGSMITH_USER is empty: give the name to record")
    ctx.obj = State(home=home, verbose=verbose, user=user.strip() if user else None)
    if verbose:
        level = {1: logging.INFO, 2: logging.DEBUG}.get(verbose, 5)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
def version(as_json: JsonFlag = False) -> None:
    """Print tagsmith's version."""
    emit({"version": __version__}, as_json, lambda: console.print(f"tagsmith {__version__}"))


# ---------------------------------------------------------------- section: sun (protocol core)
sun_app = typer.Typer(help="SUN URLs: verify a tapped URL, show what a URL template compiles to.",
                      no_args_is_help=True)
app.add_typer(sun_app, name="sun")


KEY_SOURCE_HELP = "a file holding the hex key, - for stdin, or env:VAR for an environment variable"


def _key_from(source: str, option: str) -> bytes:
    """A 16-byte key read from a file, stdin (-) or env:VAR, never from the command line (ps shows it)."""
    import os

    from tagsmith import ConfigError
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


def _refuse_key_on_command_line(option: str, value: str | None, instead: str) -> None:
    """The old key options: a key in argv is visible to every user, so it is refused (exit 2)."""
    from tagsmith import ConfigError

    if value is not None:
        raise ConfigError(f"{option} would put a key on the command line, where every user sees it (ps): "
                          f"use {instead} PATH, {instead} - (stdin) or {instead} env:VAR")


@sun_app.command("verify")
def sun_verify(
    url: Annotated[str, typer.Argument(help="The URL exactly as the tag produced it.")],
    file_key: Annotated[str | None, typer.Option("--file-key-file", help=f"SDM file-read key of this tag: {KEY_SOURCE_HELP}.")] = None,
    meta_key: Annotated[str | None, typer.Option("--meta-key-file", help=f"SDM meta-read key (needed for encrypted PICC data): {KEY_SOURCE_HELP}.")] = None,
    file_key_argv: Annotated[str | None, typer.Option("--file-key", hidden=True)] = None,
    meta_key_argv: Annotated[str | None, typer.Option("--meta-key", hidden=True)] = None,
    picc_param: Annotated[str, typer.Option("--picc-param", help="Query parameter holding encrypted PICC data.")] = "picc_data",
    mac_param: Annotated[str, typer.Option("--mac-param", help="Query parameter holding the SUN MAC.")] = "cmac",
    enc_param: Annotated[str, typer.Option("--enc-param", help="Query parameter holding encrypted file data.")] = "enc",
    uid_param: Annotated[str, typer.Option("--uid-param", help="Query parameter holding a plain UID mirror.")] = "uid",
    ctr_param: Annotated[str, typer.Option("--ctr-param", help="Query parameter holding a plain counter mirror.")] = "ctr",
    mac_input_from: Annotated[str | None, typer.Option("--mac-input-from", help="The MAC covers the text from this parameter's value up to the MAC value "
                                                                                     "('/': from the URL's path, as the shipped product's template).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify a SUN URL's MAC and decrypt what it carries; exit 6 when the MAC is wrong."""
    from tagsmith import ConfigError, VerificationError
    from tagsmith.encoders.ntag424.sun import verify_sun_url

    _refuse_key_on_command_line("--file-key", file_key_argv, "--file-key-file")
    _refuse_key_on_command_line("--meta-key", meta_key_argv, "--meta-key-file")
    if file_key is None:
        raise ConfigError(f"the SDM file-read key is needed: --file-key-file ({KEY_SOURCE_HELP})")
    if file_key == meta_key == "-":
        raise ConfigError("only one key can come from stdin: give the other as a file or env:VAR")
    result = verify_sun_url(
        url, meta_key=_key_from(meta_key, "--meta-key-file") if meta_key else None,
        file_key=_key_from(file_key, "--file-key-file"), picc_param=picc_param, mac_param=mac_param,
        enc_param=enc_param, uid_param=uid_param, ctr_param=ctr_param, mac_input_from=mac_input_from)
    data = {"uid": result.uid.hex().upper() if result.uid else None, "read_counter": result.read_counter,
            "cmac_valid": result.cmac_valid, "file_data": result.file_data.hex().upper() if result.file_data else None}
    if not result.cmac_valid:
        if as_json:
            emit(data, True)
        counter = "-" if data["read_counter"] is None else data["read_counter"]
        raise VerificationError(f"SUN MAC does not verify (UID {data['uid'] or '-'}, counter {counter})")
    emit(data, as_json, lambda: _print(
        f"[green]valid[/] UID {_esc(data['uid'])}  counter {_esc(data['read_counter'])}"
        + (f"  file data {_esc(data['file_data'])}" if data["file_data"] else "")))


@sun_app.command("template")
def sun_template(
    template: Annotated[str, typer.Argument(help="URL template, e.g. 'https://id.example.com/01/{gtin}/21/{serial}?p={picc}&c={cmac}'.")],
    gtin: Annotated[str | None, typer.Option("--gtin", help="Value for {gtin}.")] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="Value for {serial}.")] = None,
    lot: Annotated[str | None, typer.Option("--lot", help="Value for {lot}.")] = None,
    meta_read: Annotated[int, typer.Option("--meta-read", min=0, max=15,
                                           help="SDM meta-read key number (default 1, as the station's products).")] = 1,
    file_read: Annotated[int, typer.Option("--file-read", min=0, max=15,
                                           help="SDM file-read key number (default 2, as the station's products).")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Show the NDEF file bytes, SDM offsets and file settings a URL template compiles to."""
    from tagsmith.encoders.ntag424.template import compile_template

    rendered = compile_template(template).render(gtin=gtin, serial=serial, lot=lot)
    settings = rendered.file_settings(meta_read=meta_read, file_read=file_read)
    data = {
        "url": rendered.url, "ndef_file": rendered.ndef_file.hex().upper(), "ndef_length": len(rendered.ndef_file),
        "mirrors": [{"kind": m.kind, "offset": m.offset, "length": m.length, "param": m.param} for m in rendered.mirrors],
        "mac_input_offset": rendered.mac_input_offset, "mac_input_param": rendered.mac_input_param,
        "change_file_settings": settings.to_change_bytes().hex().upper(),
    }

    def render() -> None:
        _print(f"URL      {_esc(data['url'])}")
        _print(f"NDEF     {data['ndef_length']} bytes: {data['ndef_file']}")
        for m in data["mirrors"]:
            _print(f"{m['kind']:<8} offset {m['offset']:>3} (0x{m['offset']:02X})  length {m['length']:>2}"
                   f"  param {_esc(m['param'] or '-')}")
        if data["mac_input_offset"] is not None:
            _print(f"MAC input from offset {data['mac_input_offset']} (0x{data['mac_input_offset']:02X})")
        _print(f"ChangeFileSettings data  {data['change_file_settings']}")

    emit(data, as_json, render)
# ---------------------------------------------------------------- end section: sun

# ---------------------------------------------------------------- section: keys (keystore)
keys_app = typer.Typer(help="The keystore: master keys, per-chip keys, versions, export for the resolver.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

ProductOpt = Annotated[str, typer.Option(
    "--product", "--key-set",
    help="The product's key set: its id, as in the product file's [keys] key_set (one per product or family).")]
SlotOpt = Annotated[int, typer.Option("--slot", min=0, max=4, help="Chip key slot 0..4.")]


def _at_terminal() -> bool:
    """Whether a hidden prompt can be shown (stdin is a terminal)."""
    return sys.stdin.isatty()


def _hidden_prompt(prompt: str, confirm: bool = False) -> str | None:
    """A secret typed at the terminal, never echoed; None without a terminal to hide it on."""
    if not _at_terminal():
        return None
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)


def _secret_from_env_or_prompt(env: str, prompt: str, confirm: bool = False) -> str:
    """A secret from the environment, else a hidden prompt (never from an argument, never echoed)."""
    import os

    from tagsmith import KeystoreError

    secret = os.environ.get(env) or _hidden_prompt(prompt, confirm)
    if not secret:  # no terminal: the environment is the only way
        raise KeystoreError(f"no terminal to ask for the {prompt.lower()} on: set {env}")
    return secret


def _open_keys(ctx: typer.Context):
    """Open the workspace keystore, asking for the passphrase or PIN only when it is needed."""
    from tagsmith.keystore import open_keystore

    return open_keystore(state(ctx).workspace, ask=lambda backend: _hidden_prompt(
        "Keystore passphrase" if backend == "file" else "Token user PIN"))


def _hex_arg(value: str | None, name: str) -> bytes:
    from tagsmith import ConfigError

    try:
        return bytes.fromhex(value or "")
    except ValueError:
        raise ConfigError(f"{name} is not hex") from None


def _render_key_set(info) -> None:
    from rich.table import Table

    table = Table(title=f"key set {_esc(info.key_set)}  (system id {info.system_id.hex().upper()})")
    for col in ("slot", "role", "diversified", "current", "versions (fingerprint)"):
        table.add_column(col, overflow="fold")
    for p in info.policy.slots:
        versions = ", ".join(f"v{v.version} {v.fingerprint}" for v in info.versions[p.slot])
        table.add_row(str(p.slot), _esc(p.role.value), "yes" if p.diversified else "SHARED",
                      f"v{info.current[p.slot]}", _esc(versions))
    _print_table(table)


@keys_app.command("init")
def keys_init(
    ctx: typer.Context,
    backend: Annotated[str, typer.Option("--backend", help="file (passphrase-encrypted) or pkcs11 (HSM).")] = "file",
    kdf_n: Annotated[int, typer.Option(
        "--scrypt-cost", "--kdf-n",
        help="scrypt cost N of the file backend: a power of two, 1024 (throwaway keystores) to 1048576; "
             "default 131072 (2^17).")] = 2**17,
    module: Annotated[str | None, typer.Option("--module", help="PKCS#11 module path (pkcs11 backend).")] = None,
    token_label: Annotated[str | None, typer.Option("--token-label", help="PKCS#11 token label.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the workspace's keystore and the line's Ed25519 manifest key."""
    from tagsmith import ConfigError
    from tagsmith.keystore import init_keystore
    from tagsmith.keystore.access import BACKENDS, ENV_PASSPHRASE, ENV_PIN
    from tagsmith.keystore.file import DEFAULT_SCRYPT_N

    if backend not in BACKENDS:
        raise ConfigError(f"unknown keystore backend {backend!r}: use {' or '.join(BACKENDS)}")
    if backend == "file":
        secret = _secret_from_env_or_prompt(ENV_PASSPHRASE, "New keystore passphrase", confirm=True)
        store = init_keystore(state(ctx).workspace, "file", passphrase=secret, scrypt_n=kdf_n)
        if kdf_n < DEFAULT_SCRYPT_N:
            err_console.print(f"note: scrypt cost {kdf_n} is below the default {DEFAULT_SCRYPT_N}: "
                              "fit for a throwaway keystore only", markup=False, soft_wrap=True)
    else:
        pin = _secret_from_env_or_prompt(ENV_PIN, "Token user PIN")
        store = init_keystore(state(ctx).workspace, backend, module=module, token_label=token_label, pin=pin)
    with store:
        data = {"backend": store.backend, "path": str(store.path), "manifest_public_key": store.manifest_public_key_pem()}
    emit(data, as_json, lambda: _print(f"keystore created: {_esc(data['path'])} ({_esc(data['backend'])})\n"
                                       f"manifest public key:\n{_esc(data['manifest_public_key'])}"))


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    product: ProductOpt,
    system_id: Annotated[str | None, typer.Option(
        "--system-id", help="AN10922 system identifier, hex, as in the product file's [keys] system_id "
                            "(default: the key set id's bytes).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate a new key set: one master per slot, version 1 (system id from the products that use it)."""
    wanted = _key_set_system_id(ctx, product, None if system_id is None else _hex_arg(system_id, "--system-id"))
    with _open_keys(ctx) as store:
        info = store.create_key_set(product, wanted)
    emit(info.to_dict(), as_json, lambda: _render_key_set(info))


def _key_set_system_id(ctx: typer.Context, key_set: str, given: bytes | None) -> bytes | None:
    """The system id for a new key set: the one its products' [keys] name (one source of truth).

    A product added to the workspace that names ``key_set`` fixes the system id; ``--system-id`` may
    repeat it but not contradict it. With no such product, ``given`` (or the keystore's default).
    """
    from tagsmith import ConfigError

    with _store(ctx) as db:
        named = {record.id: db.product(record.id).keys for record in db.products()}
    ids = {keys.system_id for keys in named.values() if keys.key_set == key_set}
    users = ", ".join(sorted(pid for pid, keys in named.items() if keys.key_set == key_set))
    if len(ids) > 1:
        raise ConfigError(f"products {users} use key set {key_set} with different system ids "
                          f"({', '.join(sorted(i.hex().upper() for i in ids))}): make them agree first")
    if not ids:
        return given
    (theirs,) = ids
    if given is not None and given != theirs:
        raise ConfigError(f"--system-id {given.hex().upper()} differs from [keys] system_id "
                          f"{theirs.hex().upper()} of {users}, which use key set {key_set}: leave --system-id out")
    return theirs


def _chips_system_id(keystore, product) -> bytes | None:
    """The system id the product's key set diversified its chips with (None: the key set is not here)."""
    from tagsmith import NotFoundError

    try:
        return keystore.info(product.keys.key_set).system_id
    except NotFoundError:
        return None


def _check_key_set_of(ctx: typer.Context, product) -> None:
    """Refuse a product whose key set, if the workspace keystore holds it, has another system id."""
    from tagsmith import NotFoundError
    from tagsmith.keystore.model import check_same_system_id

    if not state(ctx).workspace.keystore.exists():
        return  # no keystore yet: keys create will take the system id from this product
    with _open_keys(ctx) as keystore:
        try:
            info = keystore.info(product.keys.key_set)
        except NotFoundError:
            return  # the key set is made later, from this product
    check_same_system_id(product.id, product.keys.system_id, info.key_set, info.system_id)


@keys_app.command("import")
def keys_import(
    ctx: typer.Context,
    product: ProductOpt,
    slot: SlotOpt,
    file: Annotated[Path | None, typer.Option("--file", exists=True, dir_okay=False, help="Read the hex key from this file (default: stdin).")] = None,
    key_version: Annotated[int | None, typer.Option("--version", help="Version to store it as (default: next).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import a master key made elsewhere (hex from a file or stdin, never an argument)."""
    import os

    from tagsmith import ConfigError
    from tagsmith.keystore import keystore_backend
    from tagsmith.keystore.access import ENV_PASSPHRASE
    from tagsmith.keystore.model import parse_key_hex

    if file is None and not sys.stdin.isatty() and not os.environ.get(ENV_PASSPHRASE) \
            and keystore_backend(state(ctx).workspace) == "file":
        raise ConfigError(f"the key comes from stdin, so the passphrase cannot: set {ENV_PASSPHRASE} or use --file")
    if file is not None:
        from tagsmith.limits import KEY_FILE_BYTES, read_text_limited

        text = read_text_limited(file, KEY_FILE_BYTES, "key file")
    elif sys.stdin.isatty():
        text = typer.prompt("Master key (hex)", hide_input=True, err=True)
    else:
        text = sys.stdin.read(4096)  # a hex key is 32 digits: read no more than a page
    key = parse_key_hex(text, "master key")
    with _open_keys(ctx) as store:
        ref = store.import_master(product, slot, key, key_version)
        fp = next(v.fingerprint for v in store.info(product).versions[slot] if v.version == ref.version)
    data = {"key_set": ref.key_set, "slot": ref.slot, "version": ref.version, "fingerprint": fp}
    emit(data, as_json, lambda: _print(f"imported {_esc(ref)} (fingerprint {_esc(fp)})"))


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List key sets: slot roles, versions and fingerprints (never key bytes)."""
    with _open_keys(ctx) as store:
        infos = store.key_sets()
        data = {"backend": store.backend, "key_sets": [i.to_dict() for i in infos]}

    def render() -> None:
        if not infos:
            _print("no key sets (create one with: tagsmith keys create --product ID)")
        for info in infos:
            _render_key_set(info)

    emit(data, as_json, render)


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context, product: ProductOpt, slot: SlotOpt, as_json: JsonFlag = False) -> None:
    """Make a new current version for one slot; older versions stay to verify older tags.

    Chips get the version their product file pins, so the output names each product still pinning
    an older one and the exact [keys.slots] line that moves it.
    """
    with _open_keys(ctx) as store:
        ref = store.rotate(product, slot)
        fp = store.info(product).versions[slot][-1].fingerprint
    pins = _slot_pins(ctx, ref.key_set, slot)
    data = {"key_set": ref.key_set, "slot": ref.slot, "version": ref.version, "fingerprint": fp,
            "products": [{"product": p.product, "pinned_version": p.pinned, "chips_get": p.chips_get(ref.version),
                          "move_with": None if p.pinned in (None, ref.version) else p.move_to(ref.version)}
                         for p in pins]}
    emit(data, as_json, lambda: _render_rotation(ref, fp, pins))


def _slot_pins(ctx: typer.Context, key_set: str, slot: int) -> list:
    """How the workspace's products use ``slot`` of ``key_set`` (none without a database; never creates one)."""
    from tagsmith.batches.db import BatchStore
    from tagsmith.batches.product import slot_pins

    path = state(ctx).workspace.database
    if not path.exists():
        return []
    with BatchStore(path) as db:
        return slot_pins((db.product(record.id) for record in db.products()), key_set, slot)


def _render_rotation(ref: Any, fp: str, pins: list) -> None:
    v = ref.version
    _print(f"rotated: {_esc(ref)} is the key set's newest version (fingerprint {_esc(fp)})")
    if not pins:
        _print(f"no product in this workspace uses key set {_esc(ref.key_set)}: chips get the version their "
               f"product file pins under {_esc('[keys.slots]')}")
    for pin in pins:
        if pin.pinned is None:
            _print(f"product {_esc(pin.product)} does not pin slot {ref.slot}: its new chips get v{v}")
        elif pin.pinned == v:
            _print(f"product {_esc(pin.product)} pins slot {ref.slot} at v{v}: its new batches' chips get v{v}")
        else:
            _print(f"product {_esc(pin.product)} still pins slot {ref.slot} at v{pin.pinned}, so its chips still get "
                   f"v{pin.pinned}. To move it to v{v}, set this line under {_esc('[keys.slots]')} in its product file:\n"
                   f"  {_esc(pin.move_to(v))}\nthen run: tagsmith product add FILE (batches created after that "
                   f"get v{v}; batches already created keep the version they were made with)")


@keys_app.command("audit")
def keys_audit(ctx: typer.Context, last: Annotated[int, typer.Option("--last", min=1, help="Show the newest N records.")] = 20,
               as_json: JsonFlag = False) -> None:
    """Show the key operations in audit.log; check its chain and its end against the keystore (exit 6 if tampered)."""
    from tagsmith import VerificationError
    from tagsmith.keystore.audit import check_log

    path = state(ctx).workspace.audit_log
    with _open_keys(ctx) as store:  # the anchor is authenticated by the keystore: it needs the secret
        found = check_log(path, store.audit_anchor())
    records = found.records
    data = {"path": str(path), "records": len(records), "intact": found.problem is None,
            "first_broken": found.first_broken, "problem": found.problem, "anchored": found.anchored,
            "not_anchored": found.unanchored, "last": records[-last:] if last > 0 else []}

    def render() -> None:
        for r in data["last"]:
            detail = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("time", "op", "user", "host", "prev"))
            op = f"{r.get('op')!s:<14}"
            _print(f"{_esc(r.get('time'))}  {_esc(op)} {_esc(r.get('user'))}@{_esc(r.get('host'))}  {_esc(detail)}")
        if found.problem is not None:
            _print(f"{len(records)} records readable; TAMPERED: {_esc(found.problem)}")
            return
        later = (f"; {found.unanchored} after it, not anchored (failed unlocks or an interrupted operation)"
                 if found.unanchored else "")
        _print(f"{len(records)} records; hash chain intact, {found.anchored} anchored in the keystore{later}")

    emit(data, as_json, render)
    if found.problem is not None:
        raise VerificationError(f"audit log {path} was tampered with: {found.problem}")


@keys_app.command("export")
def keys_export(
    ctx: typer.Context,
    product: ProductOpt,
    recipient: Annotated[Path, typer.Option("--for", exists=True, dir_okay=False, help="Resolver's public key PEM (RSA-3072+ or X25519).")],
    out: Annotated[str, typer.Option("--out", help="Export file to write (an existing one only with --force).")],
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Export the SDM meta-read and file-read masters, wrapped for the resolver's public key."""
    from tagsmith.limits import PEM_BYTES, read_text_limited

    target = _out(ctx, out, force)
    pem = read_text_limited(recipient, PEM_BYTES, "resolver key")
    with _open_keys(ctx) as store:
        doc = json.loads(store.export_for_resolver(product, pem, target))
    data = {"key_set": doc["key_set"], "out": str(out), "wrapping": doc["wrapping"]["scheme"],
            "recipient_fingerprint": doc["wrapping"]["recipient_fingerprint"], "payload_sha256": doc["payload_sha256"]}
    emit(data, as_json, lambda: _print(f"wrote {_esc(out)} for resolver key {_esc(data['recipient_fingerprint'])} "
                                       f"({_esc(data['wrapping'])}); payload sha256 {_esc(data['payload_sha256'])}"))


@keys_app.command("derive")
def keys_derive(
    ctx: typer.Context,
    product: ProductOpt,
    slot: SlotOpt,
    uid: Annotated[str, typer.Option("--uid", help="Chip UID, 7 bytes hex.")],
    key_version: Annotated[int | None, typer.Option("--version", help="Key version (default: current).")] = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Confirm printing a secret chip key (audited).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Print one chip's diversified key for diagnostics (needs --reveal; audited)."""
    from tagsmith import ConfigError
    from tagsmith.keystore import KeyRef

    if not reveal:
        raise ConfigError("keys derive prints a secret chip key; add --reveal to confirm")
    uid_bytes = _hex_arg(uid, "--uid")
    with _open_keys(ctx) as store:
        ref = KeyRef(product, slot, key_version or store.key_versions(product)[slot], uid_bytes)
        key = store.reveal_chip_key(ref)
    err_console.print(f"[bold red]WARNING: printing the secret key of {_esc(ref)}. Anyone who sees it can "
                      "rewrite or clone this tag's data. This was recorded in the audit log.[/]", markup=True,
                      soft_wrap=True)
    data = {"key_set": product, "slot": slot, "version": ref.version, "uid": uid_bytes.hex().upper(),
            "key": key.hex().upper()}
    emit(data, as_json, lambda: _print(_esc(data["key"])))


@keys_app.command("manifest-key")
def keys_manifest_key(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print the line's Ed25519 manifest public key (PEM) for the resolver."""
    from tagsmith.keystore.signing import public_key_fingerprint

    with _open_keys(ctx) as store:
        pem = store.manifest_public_key_pem()
    data = {"public_key": pem, "fingerprint": public_key_fingerprint(pem)}
    emit(data, as_json, lambda: _print(_esc(pem.rstrip())))


@keys_app.command("diversify")
def keys_diversify(
    key_file: Annotated[str | None, typer.Option("--key-file", help=f"The AES-128 master key: {KEY_SOURCE_HELP}.")] = None,
    uid: Annotated[str | None, typer.Option("--uid", help="UID, hex (M = UID || AID || system id).")] = None,
    aid: Annotated[str | None, typer.Option("--aid", help="AID, hex.")] = None,
    system_id: Annotated[str | None, typer.Option(
        "--system-id", help="AN10922 system identifier, hex, as in the product file's [keys] system_id.")] = None,
    m_input: Annotated[str | None, typer.Option("--input", help="The whole diversification input M, hex.")] = None,
    master_argv: Annotated[str | None, typer.Option("--master", hidden=True)] = None,
    as_json: JsonFlag = False,
) -> None:
    """AN10922 AES-128 diversification of a given master (a calculator: no keystore involved)."""
    from tagsmith import ConfigError
    from tagsmith.keystore.diversify import MAX_INPUT, diversify_aes128

    _refuse_key_on_command_line("--master", master_argv, "--key-file")
    if key_file is None:
        raise ConfigError(f"the master key is needed: --key-file ({KEY_SOURCE_HELP})")
    if (uid is None) == (m_input is None) or (m_input is not None and (aid or system_id)):
        raise ConfigError("give either --uid [--aid] [--system-id] or --input")
    m = _hex_arg(m_input, "--input") if m_input is not None else \
        _hex_arg(uid, "--uid") + _hex_arg(aid, "--aid") + _hex_arg(system_id, "--system-id")
    if not 1 <= len(m) <= MAX_INPUT:
        raise ConfigError(f"diversification input must be 1..{MAX_INPUT} bytes, got {len(m)}")
    data = {"input": m.hex().upper(), "key": diversify_aes128(_key_from(key_file, "--key-file"), m).hex().upper()}
    emit(data, as_json, lambda: _print(_esc(data["key"])))
# ---------------------------------------------------------------- end section: keys

# ---------------------------------------------------------------- section: product, batch, manifest
product_app = typer.Typer(help="Product files: GTIN, URL template, serial format, key policy, label layout.",
                          no_args_is_help=True)
batch_app = typer.Typer(help="Batches of one product: serials minted up front, progress, closing.", no_args_is_help=True)
manifest_app = typer.Typer(help="Signed manifests of a batch for the cloud resolver.", no_args_is_help=True)
app.add_typer(product_app, name="product")
app.add_typer(batch_app, name="batch")
unit_app = typer.Typer(help="One unit: its record and journal; void a unit whose chip is lost.", no_args_is_help=True)
app.add_typer(unit_app, name="unit")
app.add_typer(manifest_app, name="manifest")


AllowIncompleteOpt = Annotated[bool, typer.Option(
    "--allow-incomplete", help="Go ahead although units are still being encoded (needs --reason; recorded).")]
IncompleteReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why going ahead is right (recorded).")]


def _who(ctx: typer.Context) -> str:
    """Who a recorded decision names: --user / TAGSMITH_USER, else the OS login."""
    from tagsmith.provision.qa_plan import current_user

    return state(ctx).user or current_user()


def _incomplete_reason(allow_incomplete: bool, reason: str | None) -> str | None:
    """The recorded reason for going ahead with units mid-encoding, or None (refuse if there are any)."""
    from tagsmith import ConfigError

    if allow_incomplete and not (reason and reason.strip()):
        raise ConfigError("--allow-incomplete needs --reason TEXT (it is recorded)")
    if reason is not None and not allow_incomplete:
        raise ConfigError("--reason goes with --allow-incomplete")
    return reason if allow_incomplete else None


def _store(ctx: typer.Context):
    """The workspace's batch database (created and migrated on first use)."""
    from tagsmith.batches.db import BatchStore

    return BatchStore(state(ctx).workspace.ensure().database)


def _manifest_signer(ctx: typer.Context):
    """(signer, public key PEM, keystore) from the workspace keystore's manifest key."""
    keystore = _open_keys(ctx)
    return keystore.sign_manifest, keystore.manifest_public_key_pem(), keystore


def _sdm_layout(product, serial: str | None, lot: str | None) -> dict[str, Any] | None:
    """Where the chip's mirrors and MAC input sit in the URL, from the template compiler."""
    from tagsmith.encoders.ntag424.template import compile_template

    if serial is None:
        return None
    return compile_template(product.url_template).render(gtin=product.gtin, serial=serial, lot=lot).sdm_layout()


def _product_dict(record) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "model": record.model, "gtin": record.gtin,
            "sha256": record.current_sha256, "versions": record.versions, "updated_at": record.updated_at}


def _batch_dict(store, batch) -> dict[str, Any]:
    manifests = [{"id": m.id, "kind": m.kind, "path": m.path, "units": m.units, "sha256": m.sha256,
                  "created_at": m.created_at, "uploaded": m.uploaded_at is not None, "uploaded_at": m.uploaded_at,
                  "receipt": m.receipt, "superseded_by": m.superseded_by} for m in store.manifests(batch.id)]
    return {"id": batch.id, "product": batch.product_id, "product_sha256": batch.product_sha256, "lot": batch.lot,
            "line": batch.line, "quantity": batch.quantity, "state": batch.state, "created_at": batch.created_at,
            "closed_at": batch.closed_at, "progress": store.batch_progress(batch.id).to_dict(),
            "manifests": manifests, "uploaded": any(m["uploaded"] for m in manifests)}


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print rows of values verbatim (None as -); at a narrow terminal long values fold, never lose characters."""
    from rich.table import Table

    table = Table(title=_esc(title))
    for column in columns:
        table.add_column(_esc(column), overflow="fold")
    for row in rows:
        table.add_row(*(_esc(v) for v in row))
    _print_table(table)


@product_app.command("add")
def product_add(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Product TOML file.")],
                as_json: JsonFlag = False) -> None:
    """Check a product file and record this version of it (by its SHA-256)."""
    from tagsmith.batches.product import load_product

    product = load_product(file)
    _check_key_set_of(ctx, product)
    with _store(ctx) as store:
        record, added = store.add_product(product)
    data = {**_product_dict(record), "added": added}
    emit(data, as_json, lambda: _print(
        f"product {_esc(record.id)} {'recorded' if added else 'unchanged'}: version {_esc(record.current_sha256[:12])} "
        f"({record.versions} version(s)), GTIN {_esc(record.gtin)}"))


@product_app.command("list")
def product_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List recorded products."""
    with _store(ctx) as store:
        data = [_product_dict(p) for p in store.products()]
    emit(data, as_json, lambda: _table("products", ["id", "name", "GTIN", "version", "versions"],
                                       [[p["id"], p["name"], p["gtin"], p["sha256"][:12], p["versions"]] for p in data]))


@product_app.command("show")
def product_show(ctx: typer.Context, product_id: Annotated[str, typer.Argument(metavar="ID")],
                 as_json: JsonFlag = False) -> None:
    """Show a product's current version: GTIN, URLs, serial format, key policy, layout."""
    with _store(ctx) as store:
        record, product = store.product_record(product_id), store.product(product_id)
    data = {**_product_dict(record), "resolver": product.resolver, "url_template": product.url_template,
            "lot_in_url": product.lot_in_url, "serial": vars(product.serial) | {"series": product.serial.series},
            "key_set": product.keys.key_set, "system_id": product.keys.system_id.hex().upper(),
            "slots": {s.slot: {"role": s.role, "version": s.version} for s in product.keys.slots},
            "label_layout": product.label_layout}
    emit(data, as_json, lambda: _table(f"product {product_id}", ["field", "value"],
                                       [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in data.items()]))


@batch_app.command("create")
def batch_create(
    ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", help="Product id (its current version is used).")],
    quantity: Annotated[int, typer.Option("--quantity", help="Number of serials to mint.")],
    lot: Annotated[str | None, typer.Option("--lot", help="Batch/lot number, AI (10).")] = None,
    line: Annotated[str | None, typer.Option("--line", help="Production line name.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a batch and mint its serials."""
    with _store(ctx) as store:
        _check_key_set_of(ctx, store.product(product))
        batch = store.create_batch(product, quantity, lot=lot, line=line)
        data = _batch_dict(store, batch)
    emit(data, as_json, lambda: _print(f"batch {_esc(batch.id)}: {quantity} serials minted for {_esc(product)}"))


@batch_app.command("list")
def batch_list(ctx: typer.Context,
               product: Annotated[str | None, typer.Option("--product", help="Only this product's batches.")] = None,
               as_json: JsonFlag = False) -> None:
    """List batches with their progress."""
    with _store(ctx) as store:
        data = [_batch_dict(store, b) for b in store.batches(product)]
    emit(data, as_json, lambda: _table("batches", ["id", "product", "lot", "state", "done", "quantity", "uploaded"], [
        [b["id"], b["product"], b["lot"], b["state"], b["progress"]["done"], b["quantity"], b["uploaded"]] for b in data]))


@batch_app.command("show")
def batch_show(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonFlag = False) -> None:
    """Show a batch: counts by state, progress, manifests and whether they were uploaded."""
    with _store(ctx) as store:
        data = _batch_dict(store, store.batch(batch_id))
    progress = data["progress"]

    def render() -> None:
        _print(f"batch {_esc(data['id'])}  product {_esc(data['product'])} ({_esc(data['product_sha256'][:12])})  "
               f"lot {_esc(data['lot'] or '-')}  line {_esc(data['line'] or '-')}  {_esc(data['state'])}")
        # progress["allocated"] counts serials handed to tags so far; by_state["allocated"] the units
        # holding a serial whose encoding has not started yet
        _print(f"done {progress['done']}/{data['quantity']}  serials allocated {progress['allocated']}  "
               f"serials remaining {progress['remaining']}")
        _print("units by state: " + "  ".join(
            f"{'allocated (not started)' if k == 'allocated' else _esc(k)} {v}" for k, v in progress["by_state"].items()))
        for m in data["manifests"]:
            _print(f"manifest {_esc(m['id'])} {_esc(m['kind'])} {m['units']} units {_esc(m['path'])}  "
                   + (f"uploaded {_esc(m['uploaded_at'])}" if m["uploaded"] else "not uploaded")
                   + (f"  (file replaced by {_esc(m['superseded_by'])})" if m["superseded_by"] else ""))
    emit(data, as_json, render)


@batch_app.command("close")
def batch_close(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")],
                allow_incomplete: AllowIncompleteOpt = False, reason: IncompleteReasonOpt = None,
                as_json: JsonFlag = False) -> None:
    """Close a batch: no more allocations (verification, QA and labels still work)."""
    with _store(ctx) as store:
        data = _batch_dict(store, store.close_batch(
            batch_id, incomplete_reason=_incomplete_reason(allow_incomplete, reason), by=_who(ctx)))
    emit(data, as_json, lambda: _print(f"batch {_esc(batch_id)} closed"))


def _unit_row(u: dict[str, Any]) -> list[Any]:
    versions = ",".join(f"{k}:{v}" for k, v in u["key_versions"].items()) or None
    return [u["serial"], u["uid"], u["state"], u["station"], versions, u["floor"]]


_UNIT_COLUMNS = ["serial", "UID", "state", "station", "key versions", "floor"]


@batch_app.command("units")
def batch_units(ctx: typer.Context, batch_id: Annotated[str, typer.Argument(metavar="ID")],
                unit_state: Annotated[str | None, typer.Option("--state", help="Only units in this state: "
                                                                  "allocated, encoding, encoded, verified, voided.")] = None,
                as_json: JsonFlag = False) -> None:
    """List the batch's units in allocation order: serial, UID, state, station, key versions, replay floor."""
    from tagsmith import ConfigError
    from tagsmith.batches.records import UNIT_STATES

    if unit_state is not None and unit_state not in UNIT_STATES:
        raise ConfigError(f"--state must be one of {', '.join(UNIT_STATES)}")
    with _store(ctx) as store:
        store.batch(batch_id)  # an unknown batch is not found, not empty
        rows = [u.to_dict() for u in store.units(batch_id, (unit_state,) if unit_state else None)]
    emit(rows, as_json, lambda: _table(f"Units of batch {batch_id}" + (f" ({unit_state})" if unit_state else ""),
                                       _UNIT_COLUMNS, [_unit_row(u) for u in rows])
         if rows else _print(f"batch {_esc(batch_id)} has no {_esc(unit_state or '')} units".replace("  ", " ")))


@unit_app.command("show")
def unit_show(ctx: typer.Context, ref: Annotated[str, typer.Argument(metavar="SERIAL|UID")],
              as_json: JsonFlag = False) -> None:
    """One unit's record and its journal (allocation, steps, encoding, verifications, taps, QA, labels, void)."""
    with _store(ctx) as store:
        unit = store.find_unit(ref)
        data = {**unit.to_dict(), "events": [e.to_dict() for e in store.unit_events(unit.id)]}

    def render() -> None:
        for key, value in data.items():
            if key != "events":
                _print(f"{_esc(key)}: {_esc(value)}")
        _table("Journal", ["at", "event", "station", "detail"],
               [[e["at"], e["event"], e["station"], json.dumps(e["detail"]) if e["detail"] else None]
                for e in data["events"]])
    emit(data, as_json, render)


@unit_app.command("void")
def unit_void(ctx: typer.Context, serial: Annotated[str, typer.Argument(metavar="SERIAL")],
              reason: Annotated[str, typer.Option("--reason", help="Why (recorded with who and when).")],
              yes: Annotated[bool, typer.Option("--yes", help="Confirm: the serial is burnt, never reused.")] = False,
              encoded: Annotated[bool, typer.Option("--encoded", help="The unit is encoded and its chip is lost or "
                                                    "destroyed: void it anyway (manifests leave it out).")] = False,
              as_json: JsonFlag = False) -> None:
    """Void a unit whose chip is lost (stranded mid-encoding): its serial is never reused."""
    from tagsmith import ConfigError
    from tagsmith.batches.records import DONE, IN_PROGRESS

    if not yes:
        raise ConfigError("unit void burns the serial for good: add --yes to confirm")
    with _store(ctx) as store:
        unit = store.find_unit(serial)
        if unit.state in DONE and not encoded:
            from tagsmith import StateError

            raise StateError(f"unit {unit.serial} is {unit.state}: its chip holds live keys. Rework a chip you hold "
                             "with tagsmith tag reset; void a lost encoded chip with --encoded")
        unit = store.void_unit(unit.id, reason, by=_who(ctx),
                               states=IN_PROGRESS + (DONE if encoded else ()))
    data = unit.to_dict()
    emit(data, as_json, lambda: _print(f"unit {_esc(unit.serial)} voided by {_esc(unit.voided_by)}: {_esc(reason)}"))


def _manifest_out(ctx: typer.Context, out: str, force: bool) -> Path:
    """A manifest's --out, checked with the FILE.sig written beside it."""
    from tagsmith.batches.manifest import signature_path

    target = _out(ctx, out, force)
    _out(ctx, signature_path(target), force, option="--out (its .sig)")
    return target


@manifest_app.command("export")
def manifest_export(
    ctx: typer.Context,
    batch: Annotated[str, typer.Option("--batch", help="Batch id.")],
    out: Annotated[str, typer.Option("--out", help="Manifest file to write (FILE.sig is written beside it; "
                                                   "an existing one only with --force).")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    force: ForceOpt = False,
    without_qa: Annotated[bool, typer.Option("--without-qa", help="Release without an accepted QA decision (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is released without QA or with units mid-encoding (recorded).")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Export the batch's encoded units as a manifest signed with the line's manifest key (QA must have accepted it)."""
    from tagsmith import ConfigError
    from tagsmith.batches.manifest import export_manifest
    from tagsmith.keystore import DIVERSIFICATION_SCHEME
    from tagsmith.provision.qa_plan import release_check, release_override

    if reason is not None and not (without_qa or allow_incomplete):
        raise ConfigError("--reason goes with --without-qa or --allow-incomplete")
    target = _manifest_out(ctx, out, force)
    with _store(ctx) as store:
        store.require_complete(batch, "manifest export", _incomplete_reason(allow_incomplete, reason if allow_incomplete
                                                                            else None), _who(ctx))
        qa = release_override(store, batch, reason, state(ctx).user) if without_qa else release_check(store, batch)
        first = next(store.units(batch, ("encoded", "verified")), None)
        record = store.batch(batch)
        layout = _sdm_layout(store.batch_product(batch), first.serial if first else None, record.lot)
        signer, public_pem, keystore = _manifest_signer(ctx)
        with keystore:
            result = export_manifest(store, batch, target, signer=signer, public_key_pem=public_pem, fmt=fmt,
                                     sdm_layout=layout, diversification=DIVERSIFICATION_SCHEME, qa=qa,
                                     system_id=_chips_system_id(keystore, store.batch_product(batch)))
        if without_qa:
            store.record_qa_override(batch, qa["reason"], qa["by"], result.manifest_id)
    data = {"manifest_id": result.manifest_id, "path": str(result.path), "signature": str(result.signature_path),
            "sha256": result.sha256, "units": result.units, "format": result.format, "qa": qa}
    emit(data, as_json, lambda: _print(f"manifest {_esc(result.manifest_id)}: {result.units} units -> {_esc(result.path)} "
                                       f"(signed, {_esc(result.signature_path.name)})"))


@manifest_app.command("verify")
def manifest_verify(
    file: Annotated[Path, typer.Argument(help="Manifest file (FILE.sig beside it).")],
    public_key: Annotated[Path | None, typer.Option("--public-key", help="PEM of the line's manifest key.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a manifest's signature, schema and consistency; exit 6 with the reason if anything is off."""
    from tagsmith.batches.verify import verify_manifest
    from tagsmith.limits import PEM_BYTES, read_text_limited

    report = verify_manifest(file, read_text_limited(public_key, PEM_BYTES, "--public-key") if public_key else None)
    data = {"ok": True, "manifest_id": report.manifest_id, "batch": report.batch_id, "units": report.units,
            "sha256": report.sha256, "format": report.format, "key_pinned": report.key_pinned}
    emit(data, as_json, lambda: _print(
        f"manifest {_esc(report.manifest_id)} OK: {report.units} units of batch {_esc(report.batch_id)}"
        + ("" if report.key_pinned else " (signature checked against the key in the .sig file; "
           "pass --public-key to check who signed it)")))


@manifest_app.command("upload")
def manifest_upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Manifest file (FILE.sig beside it).")],
    to: Annotated[str, typer.Option("--to", help="Platform URL (https); token from TAGSMITH_UPLOAD_TOKEN.")],
    attempts: Annotated[int, typer.Option("--attempts", min=1, help="Tries before giving up.")] = 6,
    as_json: JsonFlag = False,
) -> None:
    """Upload a signed manifest (idempotent by manifest id, retried with backoff) and keep the receipt."""
    from tagsmith.batches.upload import upload_manifest

    with _store(ctx) as store:
        receipt = upload_manifest(file, to, store=store, attempts=attempts)
    emit(receipt, as_json, lambda: _print(f"uploaded manifest {_esc(receipt.get('manifest_id'))}: receipt {_esc(receipt)}"))


@manifest_app.command("merge")
def manifest_merge(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Manifests of the same batch from several stations.")],
    out: Annotated[str, typer.Option("--out", help="Merged manifest to write (an existing one only with --force).")],
    public_key: Annotated[list[Path] | None, typer.Option(
        "--public-key", help="PEM of a station's manifest key the inputs may be signed with (repeatable; "
                             "the line's own key is always accepted).")] = None,
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Merge station manifests of one batch; refuse an input not signed by a trusted key, and conflicts; lose no unit."""
    from tagsmith.batches.merge import MergeConflictError, merge_manifests
    from tagsmith.limits import PEM_BYTES, read_text_limited

    target = _manifest_out(ctx, out, force)
    trusted = [read_text_limited(pem, PEM_BYTES, "--public-key") for pem in public_key or ()]
    with _store(ctx) as store:
        signer, public_pem, keystore = _manifest_signer(ctx)
        with keystore:
            try:
                result = merge_manifests(files, target, signer=signer, public_key_pem=public_pem, store=store,
                                         trusted_keys=trusted)
            except MergeConflictError as exc:
                for conflict in exc.conflicts:
                    _print(f"conflict: {_esc(conflict)}", err=True)
                raise
    data = {"manifest_id": result.manifest_id, "path": str(result.path), "sha256": result.sha256,
            "units": result.units, "duplicates_collapsed": result.duplicates,
            "sources": [{"manifest_id": r.manifest_id, "units": r.units} for r in result.sources]}
    emit(data, as_json, lambda: _print(f"merged {len(files)} manifests: {result.units} units "
                                       f"({result.duplicates} repeats collapsed) -> {_esc(result.path)}"))
# ---------------------------------------------------------------- end section: product, batch, manifest

# ---------------------------------------------------------------- section: readers, tag, sim (transports)
AllowSimulatorSignatureOpt = Annotated[bool, typer.Option(
    "--allow-simulator-signature",
    help="Also accept the test signing key of tagsmith's simulated chips.")]
#: The same option on commands that have --sim (which implies it): its help says so.
AllowSimulatorSignatureSimOpt = Annotated[bool, typer.Option(
    "--allow-simulator-signature",
    help="Also accept the test signing key of tagsmith's simulated chips (--sim implies it).")]
ReaderOption = Annotated[
    str | None,
    typer.Option("--reader", "-r", envvar="TAGSMITH_READER",
                 help="PC/SC reader name or a unique part of it, or an nfcpy path (usb:…, tty:…, udp:host:port)."),
]


@app.command()
def readers(as_json: JsonFlag = False) -> None:
    """List PC/SC readers and whether a tag is on each (like pcsc_scan)."""
    from tagsmith.encoders.reader import list_readers

    found = [r.to_dict() for r in list_readers()]

    def render() -> None:
        from rich.table import Table

        if not found:
            _print("No PC/SC reader connected.")
            return
        table = Table("Reader", "Tag", "ATR", box=None)
        for column in table.columns:
            column.overflow = "fold"
        for r in found:
            table.add_row(_esc(r["name"]), "present" if r["tag_present"] else "-", _esc(r["atr"] or ""))
        _print_table(table)

    emit(found, as_json, render)


tag_app = typer.Typer(help="One tag on a reader: look at it (info, verify: no authentication) or reset it "
                                "for rework.", no_args_is_help=True)
app.add_typer(tag_app, name="tag")


@tag_app.command("info")
def tag_info(
    ctx: typer.Context,
    reader: ReaderOption = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a tag to be placed.")] = 10.0,
    allow_simulator_signature: AllowSimulatorSignatureOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Identify the tag: UID, product, originality, NDEF, file settings and whose it is."""
    from tagsmith.encoders.reader import open_reader
    from tagsmith.provision.taginfo import database_lookup, inspect_tag

    lookup = database_lookup(state(ctx).workspace.database)
    with open_reader(reader) as device:
        if not device.tag_present():
            _print(f"Place a tag on {_esc(device.name)} …", err=True)
        with device.wait_for_tag(wait) as connection:
            report = inspect_tag(connection, connection.get_uid(),
                                 allow_simulator_signature=allow_simulator_signature, lookup=lookup)
    emit(report.to_dict(), as_json, lambda: _render_tag_report(report))


def _render_tag_report(report: Any) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    table.add_row("UID", _esc(report.uid))
    table.add_row("Product", f"{_esc(report.product or '?')} ({_esc(report.storage or '?')})")
    table.add_row("Originality", {"nxp": "valid (NXP)", "simulator": "valid (tagsmith simulator key)",
                                  "invalid": "[red]INVALID[/]"}.get(report.originality or "", "not read"))
    table.add_row("Key versions", " ".join(f"{_esc(k)}:{v:02X}" for k, v in report.key_versions.items()))
    table.add_row("NDEF (as a phone)", _esc(report.ndef_url or "(none)"))
    for file_no, settings in report.file_settings.items():
        text = settings if isinstance(settings, str) else ", ".join(f"{k} {v}" for k, v in settings.items())
        table.add_row(f"File {file_no:02X}", _esc(text))
    table.add_row("Verdict", f"[bold]{_esc(report.verdict)}[/]: {_esc(report.reason)}")
    for note in report.notes:
        table.add_row("Note", _esc(note))
    _print_table(table)


sim_app = typer.Typer(help="Simulated NTAG 424 DNA chips on pcscd's virtual reader (vsmartcard vpcd).",
                      no_args_is_help=True)
app.add_typer(sim_app, name="sim")


@sim_app.command("serve")
def sim_serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="vpcd slot port: 35963 is 'Virtual PCD 00 00'.")] = 35963,
    host: Annotated[str, typer.Option("--host", help="Host where pcscd's vpcd listens.")] = "127.0.0.1",
    count: Annotated[int, typer.Option("--count", "-n", min=0, help="Placements before stopping (0: until Ctrl-C).")] = 0,
    uids: Annotated[list[str] | None, typer.Option(
        "--uid", help="7-byte UID in hex; repeat to cycle through several (same UID, same chip).")] = None,
    tear_rate: Annotated[float, typer.Option(
        "--tear-rate", min=0.0, max=1.0, help="Chance per APDU that the chip leaves the field.")] = 0.0,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", help="Also remove a chip after this many seconds without an APDU.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Present simulated chips to pcscd one after another, each until the reader side is done."""
    from tagsmith.encoders.simulator.serve import chip_sequence
    from tagsmith.encoders.simulator.vpicc import VpiccServer

    def report(event: str, placement: Any) -> None:
        line = {"event": event, "placement": placement.number + 1,
                "uid": placement.uid.hex().upper() if placement.uid else None, "apdus": placement.apdus}
        emit(line, as_json, lambda: _print(
            f"#{line['placement']} {_esc(line['uid'])} {_esc(event)}"
            + (f" after {placement.apdus} APDUs" if event != "placed" else "")))

    from tagsmith import ConfigError

    for uid in uids or []:  # all of them now, not at the placement that reaches a bad one
        if len(_hex_arg(uid, "--uid")) != 7:
            raise ConfigError(f"--uid {uid!r}: a UID is 7 bytes (14 hex digits)")
    server = VpiccServer(port, chip_sequence(uids or [], count), host=host, tear_rate=tear_rate,
                         idle_timeout=idle_timeout, on_event=report)
    if not as_json:
        _print(f"Serving simulated chips to vpcd at {_esc(host)}:{port} (Ctrl-C stops)", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
# ---------------------------------------------------------------- end section: readers, tag, sim

# ---------------------------------------------------------------- section: labels
labels_app = typer.Typer(help="QR door labels: PDF sheets and rolls, ZPL for Zebra printers, previews, checks.",
                         no_args_is_help=True)
app.add_typer(labels_app, name="labels")
LabelBatchOpt = Annotated[str, typer.Option("--batch", help="Batch id.")]
SerialRangeOpt = Annotated[str | None, typer.Option("--serials", help="Only units FROM..TO (batch order, inclusive).")]


def _labels_store(ctx: typer.Context):  # -> batches.db.BatchStore; never creates a database
    from tagsmith import NotFoundError
    from tagsmith.batches.db import BatchStore

    path = state(ctx).workspace.database
    if not path.exists():
        raise NotFoundError(f"no batch database at {path}: create a batch first")
    return BatchStore(path)


def _batch_labels(store, batch_id: str, serials: str | None) -> tuple[Any, list[tuple[int, Any]]]:
    """The batch's product and (unit id, LabelData) of its encoded/verified units, in batch order."""
    from tagsmith.batches.records import DONE
    from tagsmith.labels.jobs import parse_serial_range, select_for_print
    from tagsmith.provision.labelling import UnitLabels

    batch, product = store.batch(batch_id), store.batch_product(batch_id)
    labels = UnitLabels(product, batch.lot)
    units = [(u.id, labels.label(u.serial)) for u in store.units(batch_id, DONE)]
    if serials:
        units = list(select_for_print(units, parse_serial_range(serials), reprint=True).items)
    return product, units


@labels_app.command("print")
def labels_print(
    ctx: typer.Context,
    batch: LabelBatchOpt,
    out: Annotated[str, typer.Option("--out", help="Output file (zpl: also tcp://HOST:9100 or a device such as /dev/usb/lp0).")],
    layout: Annotated[str | None, typer.Option("--layout", help="Layout name or TOML file (default: the product's).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="pdf | zpl | png | svg (png/svg: previews, one file per label).")] = "pdf",
    serials: SerialRangeOpt = None,
    reprint: Annotated[bool, typer.Option("--reprint", help="Also print units that have a label already.")] = False,
    proof: Annotated[bool, typer.Option(
        "--proof", help="A proof to look at, not the print: recorded as a proof, so a later print run still prints "
                        "these units (a PDF of a roll layout is always a proof).")] = False,
    dpi: Annotated[int | None, typer.Option("--dpi", help="Printer dpi for zpl (203 or 300); pixel dpi for png.")] = None,
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Print the labels of a batch (or a serial range); pdf and zpl prints and proofs are recorded per unit."""
    from tagsmith.labels import jobs
    from tagsmith.labels.layouts import load_layout
    from tagsmith.provision.outputs import write_file

    jobs.check_format(fmt)
    if not out.strip():
        _out(ctx, out, force)  # one line: an empty --out names nothing
    preview = fmt in ("png", "svg")
    with _labels_store(ctx) as store:
        product, units = _batch_labels(store, batch, serials)
        lay = load_layout(layout or product.label_layout)
        proof = not preview and jobs.is_proof(fmt, lay, proof)
        chosen = jobs.select_for_print(units, reprint=reprint or preview or proof, printed=store.label_printed)
        result = jobs.render([d for _, d in chosen.items], lay, fmt, out, dpi, write=write_file,
                             check=lambda path: _out(ctx, path, force)) if chosen.items else None
        for unit_id, _ in chosen.items if result and not preview else ():
            store.record_label_print(unit_id, lay.name, fmt, proof=proof)
    data = {"batch": batch, "layout": lay.name, "format": fmt, "proof": proof, "labels": result.labels if result else 0,
            "pages": result.pages if result else 0, "outputs": list(result.outputs) if result else [],
            "skipped_already_printed": chosen.already_printed, "recorded": 0 if preview or not result else result.labels}
    skipped = f"; skipped {chosen.already_printed} already printed (--reprint to include them)" if chosen.already_printed else ""
    emit(data, as_json, lambda: _print(
        (f"wrote {data['labels']} label(s) to {_esc(', '.join(data['outputs'][:3]))}" + (" ..." if len(data["outputs"]) > 3 else "")
         + f" with layout {_esc(lay.name)}" + (" (a proof: not counted as printed)" if proof else "")
         if result else "nothing to print") + skipped))


@contextmanager
def _progress_bar(enabled: bool = True):
    """A rich progress bar on stderr at a terminal, as a ``(done, total, what)`` callback; None when piped."""
    if not (enabled and err_console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(done: int, total: int, what: str) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"decoding {_esc(what)}", total=total)
            bar.update(tasks[what], completed=done)

        yield update


@labels_app.command("check")
def labels_check(
    ctx: typer.Context,
    pdf: Annotated[Path, typer.Argument(help="Label PDF to rasterise and decode.")],
    batch: LabelBatchOpt,
    serials: SerialRangeOpt = None,
    layout: Annotated[str | None, typer.Option(
        "--layout", help="Layout the PDF was printed with (default: the product's): each cell is decoded.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Decode every QR in a label PDF and compare with the batch: each unit exactly once; exit 6 if not."""
    from tagsmith import VerificationError
    from tagsmith.labels.check import check_pdf
    from tagsmith.labels.layouts import load_layout

    with _labels_store(ctx) as store:
        product, units = _batch_labels(store, batch, serials)
    lay = load_layout(layout or product.label_layout)
    with _progress_bar(enabled=not as_json) as progress:
        report = check_pdf(pdf, {d.url: d.serial for _, d in units}, lay, progress)
    data = {"batch": batch, "pdf": str(pdf), **report.to_dict()}
    problems = (f"{len(report.missing)} missing, {len(report.duplicates)} duplicated, "
                f"{len(report.unknown)} unknown")
    if not report.ok:
        if as_json:
            emit(data, True)
        else:
            for title, items in (("missing", report.missing), ("duplicated", list(report.duplicates)),
                                 ("unknown", list(report.unknown))):
                if items:
                    _print(f"{title}: {_esc(', '.join(items[:20]))}" + (" ..." if len(items) > 20 else ""))
        raise VerificationError(f"label check of {pdf} failed: {problems} ({report.decoded} decoded, {report.expected} expected)")
    emit(data, as_json, lambda: _print(
        f"[green]ok[/] {len(report.found)} unit(s) of batch {_esc(batch)}, each exactly once, on {report.pages} page(s)"))


@labels_app.command("layouts")
def labels_layouts(as_json: JsonFlag = False) -> None:
    """List the shipped label layouts with their geometry."""
    from rich.table import Table

    from tagsmith.labels.layouts import load_layout, shipped_layouts

    rows = [load_layout(name).summary() for name in shipped_layouts()]

    def render() -> None:
        table = Table("layout", "kind", "label mm", "grid", "QR area mm", "max QR version", "stock")
        for column in table.columns:
            column.overflow = "fold"
        for r in rows:
            table.add_row(_esc(r["name"]), _esc(r["kind"]), "x".join(f"{v:g}" for v in r["label_mm"]),
                          "x".join(map(str, r["grid"])), f"{r['qr_area_mm']:g}",
                          f"{r['max_qr_version']}-{_esc(r['error'])}" + (f" @{r['dpi']} dpi" if r["dpi"] else ""),
                          _esc(r["stock"]))
        _print_table(table)

    emit(rows, as_json, render)
# ---------------------------------------------------------------- end section: labels

# ---------------------------------------------------------------- section: station
station_app = typer.Typer(help="The encoding station: place a tag, get a verified, recorded, labelled unit.",
                          no_args_is_help=True)
app.add_typer(station_app, name="station")

_RESULT_STYLE = {"encoded": "bold green", "resumed": "bold green", "verified": "green",
                 "refused": "bold yellow", "failed": "bold red", "torn": "bold red"}


def _label_hook(store: Any, ctx_enc: Any, printer: str | None, layout_name: str | None, dpi: int):
    """Print each newly encoded unit's ZPL label to ``printer`` and record it, or None."""
    if not printer:
        return None
    from tagsmith.provision.labelling import StationLabeller

    return StationLabeller(store, ctx_enc.product, printer, layout_name, dpi, lot=ctx_enc.lot).print_unit


class _OperatorView:
    """The rich live view: last tag big, counts, rate, time per tag, progress, last errors."""

    def __init__(self, store: Any, batch_id: str, station: str | None = None) -> None:
        self.store, self.batch_id, self.station = store, batch_id, station
        self.quantity = store.batch(batch_id).quantity
        self.last: Any = None
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.message = "Place a tag on the reader"
        self.started = __import__("time").perf_counter()

    def add(self, outcome: Any) -> None:
        self.last = outcome
        self.counts[outcome.result] = self.counts.get(outcome.result, 0) + 1
        if outcome.result in ("refused", "failed", "torn"):
            who = outcome.uid if outcome.result == "refused" and outcome.uid else outcome.serial or outcome.uid
            self.errors = (self.errors + [f"{who or 'tag'}: {outcome.reason}"])[-4:]
            console.bell()

    def render(self) -> Any:
        import time

        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        counts = self.store.unit_counts(self.batch_id)
        done = counts.get("encoded", 0) + counts.get("verified", 0)
        if self.last is None:
            big = Text(self.message, style="bold")
        else:
            o = self.last
            label = {"encoded": "PASS", "resumed": "PASS (resumed)", "verified": "ALREADY DONE"}.get(
                o.result, o.result.upper())
            big = Text(f"{label}  {o.serial or ''}\n", style=_RESULT_STYLE.get(o.result, "bold"))
            big.append(f"UID {o.uid or '?'}  ·  {o.apdus} round trips  ·  {o.seconds * 1000:.0f} ms\n{o.reason}",
                       style="default")
        elapsed = time.perf_counter() - self.started
        finished = self.counts.get("encoded", 0) + self.counts.get("resumed", 0)
        stats = Table.grid(padding=(0, 2))
        stats.add_row(*(f"{k} {self.counts.get(k, 0)}" for k in ("encoded", "resumed", "refused", "failed", "torn")))
        stats.add_row(f"{60 * finished / elapsed:.0f}/min" if elapsed else "", f"batch {done}/{self.quantity}")
        bar = Table.grid()
        bar.add_row(ProgressBar(total=max(self.quantity, 1), completed=done, width=50))
        errors = Text("\n".join(self.errors) or "no errors", style="red" if self.errors else "dim")
        title = f"station {_esc(self.station)} · batch {_esc(self.batch_id)}" if self.station else \
            f"station · batch {_esc(self.batch_id)}"
        return Group(Panel(big, title=title), stats, bar, Panel(errors, title="last errors"))


@station_app.command("run")
def station_run(
    ctx: typer.Context,
    batch: Annotated[str, typer.Option("--batch", help="Batch to encode.")],
    reader: ReaderOption = None,
    sim: Annotated[bool, typer.Option("--sim", help="Simulated chips in-process instead of a reader.")] = False,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N units are done.")] = None,
    sim_tear_rate: Annotated[float, typer.Option("--sim-tear-rate", min=0.0, max=1.0,
                                                 help="Share of simulated placements lifted mid-encode.")] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for simulated chips and tears.")] = None,
    station_name: Annotated[str | None, typer.Option("--station", help="Station name (default: host name).")] = None,
    label_printer: Annotated[str | None, typer.Option(
        "--label-printer", help="Print each unit's ZPL label: a file, a device path or tcp://HOST:9100.")] = None,
    layout: Annotated[str | None, typer.Option("--layout", help="Label layout (default: the product's).")] = None,
    dpi: Annotated[int, typer.Option("--dpi", help="Label printer resolution: 203 or 300.")] = 203,
    wait: Annotated[float | None, typer.Option("--wait", help="Seconds to wait for each tag (default: forever).")] = None,
    allow_simulator_signature: AllowSimulatorSignatureSimOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Encode tags for a batch: identify, personalise or resume, verify as a phone, record, label."""
    import socket

    from tagsmith import ConfigError
    from tagsmith.provision import station
    from tagsmith.provision.encode import EncodeContext
    from tagsmith.provision.simpool import sim_pool

    if sim == (reader is not None):
        raise ConfigError("choose one tag source: --reader NAME or --sim")
    ws = state(ctx).workspace
    if label_printer is not None:
        from tagsmith.provision.outputs import check_printer

        check_printer(label_printer, ws, option="--label-printer")
    with _store(ctx) as store, _open_keys(ctx) as keys:
        enc = EncodeContext.for_batch(store, keys, batch, station_name or socket.gethostname(),
                                      allow_simulator_signature=allow_simulator_signature or sim)
        hook = _label_hook(store, enc, label_printer, layout, dpi)
        view = _OperatorView(store, batch, enc.station)
        if sim:
            pool = sim_pool(ws)
            again = station.interrupted_sim_chips(enc, pool)  # placed again first, as an operator would
            left = store.batch(batch).quantity - store.batch(batch).allocated
            if left <= 0 and not again and station.batch_complete(enc) is None:
                from tagsmith import StateError

                raise StateError(f"batch {batch} has no serials left and its unfinished units have no simulated chip "
                                 f"here (see: tagsmith batch units {batch} --state encoding)")
            source: Any = station.SimulatedSource(max(0, min(count or left, left)), tear_rate=sim_tear_rate, seed=seed,
                                                  pool=pool, persist_each_apdu=True, resume=again)
            summary = _drive_station(station.run(enc, source, count=count, on_done=hook), view, as_json)
        else:
            from tagsmith.encoders.reader import open_reader

            with open_reader(reader) as device:
                source = station.ReaderSource(device, timeout=wait, on_wait=lambda m: setattr(view, "message", m))
                summary = _drive_station(station.run(enc, source, count=count, on_done=hook), view, as_json)
    _session_exit(summary)


def _session_exit(summary: Any) -> None:
    """Ctrl-C exits 130 (README); a session whose placements all failed is not a success either,
    unless it ended because the batch is complete."""
    if summary.interrupted:
        raise typer.Exit(130)
    if summary.complete is None and summary.done == 0 and summary.counts.get("failed"):
        from tagsmith import TagsmithError

        raise TagsmithError(f"no unit was encoded: {summary.counts['failed']} placement(s) failed (see the reasons above)")


def _outcome_line(outcome: Any) -> str:
    """One tag's result as one line of rich text: the result styled, serial (or UID) and reason verbatim."""
    style = _RESULT_STYLE.get(outcome.result, "bold")
    shown = outcome.uid if outcome.result == "refused" and outcome.uid else outcome.serial or outcome.uid
    result, unit = f"{outcome.result:8}", f"{shown or '':14}"  # a refused chip by its UID: which one to set aside
    return f"[{style}]{_esc(result)}[/] {_esc(unit)} {_esc(outcome.reason)}"


def _drive_station(events: Any, view: _OperatorView, as_json: bool) -> Any:
    """Show the events: one JSON line each, the live operator view at a terminal (one line per tag when
    the output is piped or redirected, where a live view can only be cut and wrapped), then a closing
    summary; the Summary."""
    from tagsmith.provision.station import Summary

    def consume(show: Callable[[Any], None]) -> Any:
        """Show events up to the Summary. A Ctrl-C while one is shown is passed into the station
        loop (suspended between tags), which then ends with its summary as for one during a tag."""
        try:
            for event in events:
                if isinstance(event, Summary):
                    return event
                show(event)
        except KeyboardInterrupt:
            return events.throw(KeyboardInterrupt)
        raise AssertionError("the station loop ended without its summary")

    if as_json:
        summary = consume(lambda event: print(json.dumps(event.to_dict()), flush=True))
        print(json.dumps(summary.to_dict()), flush=True)
        return summary
    if console.is_terminal:
        from rich.live import Live

        with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
            def show(event: Any) -> None:
                view.add(event)
                live.update(view.render())

            summary = consume(show)
        console.print()
    else:
        summary = consume(lambda event: _print(_outcome_line(event)))
    if summary.complete is not None:
        _print("[bold green]batch complete: {} of {}[/]".format(*summary.complete))
    s = summary.to_dict()
    rates = (f"; {s['per_minute']}/min, {s['ms_per_tag']} ms and {s['apdus_per_tag']} round trips per tag"
             if s["tags"] else "")
    where = f" at station {_esc(view.station)}" if view.station else ""
    _print(f"[bold]session{where}:[/] {s['done']} done of {s['tags']} placements"
           + (f" ({', '.join(f'{_esc(k)} {v}' for k, v in sorted(s['counts'].items()))})" if s["counts"] else "")
           + rates + (" — interrupted" if s["interrupted"] else ""))
    return summary


@tag_app.command("verify")
def tag_verify(
    ctx: typer.Context,
    reader: ReaderOption = None,
    sim: Annotated[str | None, typer.Option("--sim", help="UID of a simulated chip in this workspace.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A tapped SUN URL to check as the resolver would.")] = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a tag.")] = 10.0,
    allow_simulator_signature: AllowSimulatorSignatureSimOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Check one unit as a phone would (tag) or as the resolver would (URL), against the database."""
    from tagsmith import ConfigError
    from tagsmith.provision.check import check_connection, check_url, raise_for
    from tagsmith.provision.simpool import sim_pool

    if sum(x is not None for x in (reader, sim, url)) != 1:
        raise ConfigError("give exactly one of --reader NAME, --sim UID or --url URL")
    with _store(ctx) as store, _open_keys(ctx) as keys:
        if url is not None:
            report = check_url(store, keys, url)
        elif sim is not None:
            pool = sim_pool(state(ctx).workspace)
            uid = _hex_arg(sim, "--sim UID")
            if uid not in pool.uids():
                from tagsmith import NotFoundError

                raise NotFoundError(f"no simulated chip {sim.upper()} in this workspace")
            chip = pool.load(uid)
            chip.place()
            report = check_connection(store, keys, chip, allow_simulator_signature=True)
            pool.save(chip)
        else:
            from tagsmith.encoders.reader import open_reader

            with open_reader(reader) as device, device.wait_for_tag(wait) as connection:
                report = check_connection(store, keys, connection, allow_simulator_signature=allow_simulator_signature)
    emit(report.to_dict(), as_json, lambda: _render_check(report))
    raise_for(report)  # 6 failed, 7 replay or unit state, 8 unknown chip


def _render_check(report: Any) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    for key, value in report.to_dict().items():
        table.add_row(_esc(key), _esc(value))
    _print_table(table)
    _print("[bold green]OK[/]" if report.ok else f"[bold red]FAILED[/] {_esc(report.reason)}")

@tag_app.command("reset")
def tag_reset(
    ctx: typer.Context,
    reader: ReaderOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the unit's serial is voided for good.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the unit's record.")] = "reset to factory for rework",
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a tag.")] = 10.0,
    allow_simulator_signature: AllowSimulatorSignatureOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Return a tag of ours to factory keys and settings; its serial is voided (rework, test tags)."""
    from tagsmith import ConfigError
    from tagsmith.encoders.reader import open_reader
    from tagsmith.provision.rework import reset_tag

    if not yes:
        raise ConfigError("tag reset voids the unit's serial for good: add --yes to confirm")
    if reader is None:
        raise ConfigError("name the reader with --reader NAME")
    with _store(ctx) as store, _open_keys(ctx) as keys, open_reader(reader) as device:
        with device.wait_for_tag(wait) as connection:
            result = reset_tag(store, keys, connection, reason=reason,
                               allow_simulator_signature=allow_simulator_signature)
    data = {"uid": result.uid, "serial": result.serial, "batch": result.batch_id, "apdus": result.apdus,
            "voided": True}
    emit(data, as_json, lambda: _print(
        f"[bold green]reset[/] {_esc(result.uid)}: factory keys and settings; serial {_esc(result.serial)} voided"))


@tag_app.command("refusals")
def tag_refusals(
    ctx: typer.Context,
    include_cleared: Annotated[bool, typer.Option("--all", help="Also list refusals an engineer has cleared.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Chips that refused an authentication here: no station authenticates them again until cleared."""
    with _store(ctx) as store:
        failures = store.auth_failures(include_cleared=include_cleared)
    rows = [f.to_dict() for f in failures]
    emit(rows, as_json, lambda: _table(
        "Chips refused (never authenticated again)", ["UID", "serial", "status", "station", "at", "cleared"],
        [[r["uid"], r["serial"] or "-", r["status"], r["station"] or "-", r["at"][:19].replace("T", " "),
          f"{r['cleared_at']}: {r['clear_reason']}" if r["cleared_at"] else "-"] for r in rows])
        if rows else _print("No chip has refused an authentication here."))


@tag_app.command("clear-refusal")
def tag_clear_refusal(
    ctx: typer.Context,
    uid: Annotated[str, typer.Argument(metavar="UID", help="The chip's 7-byte UID in hex.")],
    reason: Annotated[str, typer.Option("--reason", help="Why trying again is safe, for the record.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the next station authenticates this chip once more.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Let stations try a refused chip once more (each refusal counts on the chip; key 0 blocks at its limit)."""
    from tagsmith import ConfigError

    if not yes:
        raise ConfigError("the chip counts every refused authentication: add --yes to let a station try it once more")
    with _store(ctx) as store:
        cleared = store.clear_auth_failure(_hex_arg(uid, "UID"), reason)
    emit(cleared.to_dict(), as_json, lambda: _print(
        f"[bold green]cleared[/] {cleared.uid.hex().upper()}: the next station will authenticate it once more"))
# ---------------------------------------------------------------- end section: station

# ---------------------------------------------------------------- section: qa
qa_app = typer.Typer(help="QA: ISO 2859-1 sampling plans, sample units scanned chip and label together, reports.",
                     no_args_is_help=True)
app.add_typer(qa_app, name="qa")
QaBatchOpt = Annotated[str, typer.Option("--batch", help="Batch id.")]


def _qa_plan_text(data: dict[str, Any]) -> str:
    d = {k: _esc(v) for k, v in data.items() if not isinstance(v, list)}
    text = (f"code letter {d['code_letter']}"
            + (f" ({d['via_arrow']})" if data.get("via_arrow") else "")
            + f": inspect {d['sample_size']} of {d['lot_size']}"
            + (" (100 %)" if data["hundred_percent"] else "")
            + f", accept <= {d['accept']} defects, reject at {d['reject']}"
            + f" (AQL {d['aql']}%, level {d['level']}, {d['inspection']} inspection)")
    if data.get("plan_id"):
        text = f"plan {d['plan_id']} for batch {d['batch']}: {text}\nseed {d['seed']}; pull these serials:\n  " \
               + "\n  ".join(_esc(serial) for serial in data["serials"])
    return text


@qa_app.command("plan")
def qa_plan(
    ctx: typer.Context,
    batch: Annotated[str | None, typer.Option("--batch", help="Batch id: draw (or show) its recorded plan.")] = None,
    lot_size: Annotated[int | None, typer.Option("--lot-size", help="Just compute the plan for a lot of N.")] = None,
    aql: Annotated[str | None, typer.Option("--aql", help="AQL in percent: 0.065, 0.10, 0.25, 0.65 (default), 1.0.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="Inspection level: S-1..S-4, I, II (default), III.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Draw a new plan for a decided (resubmitted) batch.")] = False,
    inspection: Annotated[str, typer.Option("--inspection", help="auto (the product's switching state) or normal.")] = "auto",
    seed: Annotated[int | None, typer.Option("--seed", hidden=True, help="Seed for the draw (tests).")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    reason: IncompleteReasonOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """The ISO 2859-1 single sampling plan for a lot size, or a batch's recorded plan and serials to pull."""
    from tagsmith import ConfigError
    from tagsmith.provision.qa_plan import DEFAULT_AQL, as_sampling_plan, create_plan
    from tagsmith.provision.sampling import normal_plan

    if (batch is None) == (lot_size is None):
        raise ConfigError("give --batch ID or --lot-size N" + (", not both" if batch is not None else ""))
    if inspection not in ("auto", "normal"):
        raise ConfigError("--inspection must be auto or normal")
    if lot_size is not None:
        data = normal_plan(lot_size, aql or DEFAULT_AQL, level or "II").to_dict()
    else:
        with _store(ctx) as store:
            record = create_plan(store, batch, aql=aql, level=level, new=new, seed=seed, user=state(ctx).user,
                                 inspection=None if inspection == "auto" else inspection,
                                 incomplete_reason=_incomplete_reason(allow_incomplete, reason))
        data = {**as_sampling_plan(record).to_dict(), **record.to_dict()}
    emit(data, as_json, lambda: _print(_qa_plan_text(data)))


def _qa_unit_line(result) -> str:
    mark = "[green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    if not result.counted:
        mark += " [yellow](not counted)[/]"
    return (f"{mark} {_esc(result.serial or '?')} {result.uid.hex().upper() if result.uid else ''}  "
            f"{_esc(result.note or result.reason)}")


@qa_app.command("scan")
def qa_scan(
    ctx: typer.Context,
    batch: QaBatchOpt,
    reader: Annotated[str | None, typer.Option("--reader", "-r", help="Reader to tap sample units on.")] = None,
    sim: Annotated[bool, typer.Option("--sim", help="Read the sample units' simulated chips from the workspace.")] = False,
    labels: Annotated[Path | None, typer.Option("--labels", exists=True, dir_okay=False,
                                                   help="Label URLs, one per line (default: stdin, a handheld scanner).")] = None,
    station: Annotated[str | None, typer.Option("--station", help="QA station name to record.")] = None,
    wait: Annotated[float | None, typer.Option("--wait", help="Seconds to wait for each tap (default: forever).")] = None,
    allow_simulator_signature: AllowSimulatorSignatureSimOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Scan sample units: tap the chip, scan its door label; decide as soon as the plan allows. Exit 6 on reject."""
    from tagsmith import ConfigError, VerificationError
    from tagsmith.encoders.connection import TagRemovedError
    from tagsmith.limits import LABEL_SCAN_CHARS
    from tagsmith.provision.qa import QaSession, scan_simulated

    if (reader is None) == (not sim):
        raise ConfigError("give --reader NAME or --sim")
    source = labels.open() if labels is not None else sys.stdin
    interactive = labels is None and sys.stdin.isatty() and not as_json

    def say(text: str) -> None:  # rich text: values in it are escaped with _esc
        if not as_json:
            _print(text, err=True)

    def label_line() -> str | None:
        if interactive:
            _print("Scan the door label …", err=True)
        line = source.readline(LABEL_SCAN_CHARS + 1)  # bounded: a label URL is ~100 characters
        if len(line) > LABEL_SCAN_CHARS:
            raise ConfigError(f"a scanned label line is longer than {LABEL_SCAN_CHARS} characters: not a label URL")
        return line.strip() if line else None

    def show(result) -> None:
        emit(result.to_dict(), as_json, lambda: _print(_qa_unit_line(result)))

    with _store(ctx) as store, _open_keys(ctx) as keys:
        session = QaSession(store, keys, batch, station=station,
                            allow_simulator_signature=allow_simulator_signature or sim, inspector=state(ctx).user)
        plan = session.plan
        say(f"plan {_esc(plan.id)}: {session.tally.inspected}/{plan.sample_size} inspected, accept <= {plan.accept}, "
            f"reject at {plan.reject}")
        if sim:
            from tagsmith.provision.simpool import sim_pool

            lines = iter(label_line, None)
            for result in scan_simulated(session, sim_pool(state(ctx).workspace), lines):
                show(result)
        else:
            from tagsmith.encoders.reader import open_reader

            with open_reader(reader) as device:
                while not session.decision and session.pending:
                    say(f"Tap a sample unit on {_esc(device.name)} ({len(session.pending)} to go: "
                        f"{_esc(', '.join(session.pending[:5]))}{' …' if len(session.pending) > 5 else ''})")
                    connection = device.wait_for_tag(wait)
                    try:
                        reading = session.read(connection)
                    except TagRemovedError as exc:
                        say(f"[yellow]{_esc(exc)}[/]")
                        continue
                    finally:
                        connection.close()
                    label = label_line()
                    if label is None:
                        break
                    show(session.inspect_reading(reading, label))
                    say("Remove the tag")
                    device.wait_for_removal(wait)
        tally = session.tally
    data = {"event": "decision", "batch": batch, "plan_id": plan.id, **tally.to_dict(),
            "pending": [] if tally.decision else session.pending}
    if tally.decision == "reject":
        if as_json:
            emit(data, True)
        raise VerificationError(f"batch {batch} REJECTED by QA: {tally.defects} defect(s) in {tally.inspected} "
                                f"inspected (reject at {tally.reject})")
    emit(data, as_json, lambda: _print(
        f"[bold green]batch {_esc(batch)} ACCEPTED[/]: {tally.defects} defect(s) in {tally.inspected} inspected"
        if tally.decision else f"undecided: {tally.inspected} of {tally.sample_size} inspected, {tally.defects} "
        f"defect(s); still to scan: {_esc(', '.join(data['pending']))}"))


@qa_app.command("report")
def qa_report(
    ctx: typer.Context,
    batch: QaBatchOpt,
    out: Annotated[str, typer.Option("--out", help="Report file: .pdf or .html (an existing one only with --force).")],
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the QA report: plan, each sample unit's checks, decision, who and when, encode timeline."""
    from tagsmith.provision.qa_report import build_report, write_report

    target = _out(ctx, out, force)
    with _store(ctx) as store:
        report = build_report(store, batch, user=state(ctx).user)
    write_report(report, target)
    path = Path(out)
    data = {"batch": batch, "out": str(path), "verdict": report.verdict, "scans": len(report.results)}
    emit(data, as_json, lambda: _print(f"QA report of batch {_esc(batch)} ({_esc(report.verdict)}) -> {_esc(path)}"))

@qa_app.command("switching")
def qa_switching(
    ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", help="Product id.")],
    corrective_action: Annotated[bool, typer.Option(
        "--corrective-action", help="Record corrective action after discontinuation (resumes at tightened).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a product's switching state (normal, tightened, reduced, discontinued) across its batches."""
    from tagsmith.provision.qa_plan import record_corrective_action, switching_state

    with _store(ctx) as store:
        current = (record_corrective_action if corrective_action else switching_state)(store, product)
    data = {"product": product, **current.to_dict()}
    emit(data, as_json, lambda: _print(
        f"product {_esc(product)}: [bold]{_esc(data['inspection'])}[/] inspection after {data['lots']} lot(s); "
        f"switching score {_esc(data['score'])}" + ("; eligible for reduced" if data["reduced_eligible"] else "")))
# ---------------------------------------------------------------- end section: qa

# ---------------------------------------------------------------- section: demo
@app.command()
def demo(
    ctx: typer.Context,
    units: Annotated[int, typer.Option("--units", min=1, max=10000, help="Units in the demo batch.")] = 50,
    tear_rate: Annotated[float, typer.Option("--tear-rate", min=0.0, max=0.9,
                                             help="Share of placements lifted mid-encode (resumed later).")] = 0.2,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for reproducible chips and tears.")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="Workspace to use if it holds no data yet.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole line on simulated chips: keystore, product, batch, station, labels, manifest, QA."""
    from tagsmith.provision.demo import run_demo

    def say(message: str) -> None:
        if not as_json:
            _print(f"[cyan]•[/] {_esc(message)}")

    def on_tag(outcome: Any) -> None:
        if not as_json and outcome.result not in ("encoded",):
            _print(f"  {_outcome_line(outcome)}")

    report = run_demo(home or state(ctx).home, units=units, tear_rate=tear_rate, seed=seed, say=say, on_tag=on_tag)
    report.program = _program_name()
    data = report.to_dict()
    emit(data, as_json, lambda: _render_demo(data))


def _program_name() -> str:
    """``tagsmith`` when the shell finds this very script, else its full path (e.g. inside .venv)."""
    import os
    import shutil

    script = os.path.realpath(sys.argv[0])
    if not os.path.basename(script).startswith("tagsmith"):
        return f"{sys.executable} -m tagsmith"
    found = shutil.which("tagsmith")
    return "tagsmith" if found and os.path.realpath(found) == script else script


def _render_demo(data: dict) -> None:
    s = data["station"]
    console.print()
    console.print(soft_wrap=False)
    _print(f"[bold green]Demo complete[/] in {data['seconds']:.1f} s. Batch [bold]{_esc(data['batch'])}[/] of "
           f"{_esc(data['product'])}: {s['done']} units encoded and verified as a phone would "
           f"({s['counts'].get('resumed', 0)} of them resumed after {s['counts'].get('torn', 0)} tears); "
           f"{s['apdus_per_tag']} round trips and {s['ms_per_tag']} ms per placement.")
    console.print("\nExplore what it made:")
    for command in data["commands"]:
        console.print(f"  {command}", soft_wrap=True, markup=False)
# ---------------------------------------------------------------- end section: demo


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Abort) classes: recent Typer raises its vendored click's, older Typer click's own."""
    usage, abort = [click.exceptions.ClickException], [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as vendored  # Typer >= 0.20 vendors click
    except ImportError:
        pass
    else:
        usage.append(vendored.ClickException)
    return tuple(usage), tuple(abort)


_CLICK_ERRORS, _CLICK_ABORTS = _click_exception_types()


def _fail(message: str, code: int, label: str = "error") -> None:
    """Print one line on stderr (the message is data, never rich markup) and exit with ``code``."""
    from rich.text import Text

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
    import sqlite3

    try:
        result = app(args=argv, standalone_mode=False, prog_name="tagsmith")
    except TagsmithError as exc:
        _fail(str(exc), exc.exit_code)
    except _CLICK_ABORTS:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except _CLICK_ERRORS as exc:
        command = getattr(getattr(exc, "ctx", None), "command_path", None) or "tagsmith"
        _fail(f"{exc.format_message()} (see: {command} --help)", exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:
        _fail(*_os_error_line(exc))
    except UnicodeDecodeError:
        _fail("an input file is not UTF-8 text (a binary or wrongly encoded file given where text is expected)", 2)
    except sqlite3.DatabaseError as exc:
        _fail(f"the workspace database cannot be used: {exc} (a damaged file, or not a tagsmith database?)", 1)
    except Exception as exc:  # an unexpected failure: one line here, the traceback in the log
        log.debug("unexpected error", exc_info=True)
        _fail(f"{type(exc).__name__}: {exc} (run with -vv for details)", 70, label="unexpected error")
    sys.exit(result if isinstance(result, int) else 0)
