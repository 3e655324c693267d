"""``tagsmith keys``: the keystore's master keys, per-chip keys, versions and export for the resolver."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tagsmith import ConfigError, KeystoreError, VerificationError
from tagsmith.commands import keys_stations
from tagsmith.commands.context import checked_out, hidden_prompt, open_batch_store, opened, provide, state
from tagsmith.commands.options import (
    KEY_SOURCE_HELP,
    ForceOpt,
    JsonFlag,
    hex_option,
    key_from,
    refuse_key_on_command_line,
)
from tagsmith.commands.output import emit, err_console, esc, print_line, print_table

keys_app = typer.Typer(help="The keystore: master keys, per-chip keys, versions, export for the resolver.",
                       no_args_is_help=True)

ProductOpt = Annotated[str, typer.Option(
    "--product", "--key-set",
    help="The product's key set: its id, as in the product file's [keys] key_set (one per product or family).")]
SlotOpt = Annotated[int, typer.Option("--slot", min=0, max=4, help="Chip key slot 0..4.")]


@keys_app.callback()
def _keys(ctx: typer.Context) -> None:
    provide(ctx)


def _secret_from_env_or_prompt(env: str, prompt: str, confirm: bool = False) -> str:
    """A secret from the environment, else a hidden prompt (never from an argument, never echoed)."""
    secret = os.environ.get(env) or hidden_prompt(prompt, confirm)
    if not secret:  # no terminal: the environment is the only way
        raise KeystoreError(f"no terminal to ask for the {prompt.lower()} on: set {env}")
    return secret


def _render_key_set(info: Any) -> None:
    from rich.table import Table

    table = Table(title=f"key set {esc(info.key_set)}  (system id {info.system_id.hex().upper()})")
    for col in ("slot", "role", "diversified", "current", "versions (fingerprint)"):
        table.add_column(col, overflow="fold")
    for p in info.policy.slots:
        versions = ", ".join(f"v{v.version} {v.fingerprint}" for v in info.versions[p.slot])
        table.add_row(str(p.slot), esc(p.role.value), "yes" if p.diversified else "SHARED",
                      f"v{info.current[p.slot]}", esc(versions))
    print_table(table)


def _create_keystore(ctx: typer.Context, backend: str, kdf_n: int, module: str | None, token_label: str | None) -> Any:
    """The new keystore of the chosen backend, its secret asked for (or taken from the environment)."""
    from tagsmith.keystore import init_keystore
    from tagsmith.keystore.access import BACKENDS, ENV_PASSPHRASE, ENV_PIN
    from tagsmith.keystore.file import DEFAULT_SCRYPT_N

    if backend not in BACKENDS:
        raise ConfigError(f"unknown keystore backend {backend!r}: use {' or '.join(BACKENDS)}")
    if backend != "file":
        pin = _secret_from_env_or_prompt(ENV_PIN, "Token user PIN")
        return init_keystore(state(ctx).workspace, backend, module=module, token_label=token_label, pin=pin)
    secret = _secret_from_env_or_prompt(ENV_PASSPHRASE, "New keystore passphrase", confirm=True)
    store = init_keystore(state(ctx).workspace, "file", passphrase=secret, scrypt_n=kdf_n)
    if kdf_n < DEFAULT_SCRYPT_N:
        err_console.print(f"note: scrypt cost {kdf_n} is below the default {DEFAULT_SCRYPT_N}: "
                          "fit for a throwaway keystore only", markup=False, soft_wrap=True)
    return store


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
    with _create_keystore(ctx, backend, kdf_n, module, token_label) as store:
        data = {"backend": store.backend, "path": str(store.path), "manifest_public_key": store.manifest_public_key_pem()}
    emit(data, as_json, lambda: print_line(f"keystore created: {esc(data['path'])} ({esc(data['backend'])})\n"
                                           f"manifest public key:\n{esc(data['manifest_public_key'])}"))


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    product: ProductOpt,
    system_id: Annotated[Any, hex_option(
        "--system-id", help="AN10922 system identifier, hex, as in the product file's [keys] system_id "
                            "(default: the key set id's bytes).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate a new key set: one master per slot, version 1 (system id from the products that use it)."""
    from tagsmith.provision.keysets import key_set_system_id

    wanted = key_set_system_id(opened(ctx).store, product, system_id)
    info = opened(ctx).keys.create_key_set(product, wanted)
    emit(info.to_dict(), as_json, lambda: _render_key_set(info))


def _master_key_text(ctx: typer.Context, file: Path | None) -> str:
    """The hex master key from --file, a hidden prompt or stdin (then the passphrase cannot come from stdin too)."""
    from tagsmith.keystore import keystore_backend
    from tagsmith.keystore.access import ENV_PASSPHRASE
    from tagsmith.limits import KEY_FILE_BYTES, read_text_limited

    if file is None and not sys.stdin.isatty() and not os.environ.get(ENV_PASSPHRASE) \
            and keystore_backend(state(ctx).workspace) == "file":
        raise ConfigError(f"the key comes from stdin, so the passphrase cannot: set {ENV_PASSPHRASE} or use --file")
    if file is not None:
        return read_text_limited(file, KEY_FILE_BYTES, "key file")
    if sys.stdin.isatty():
        text: str = typer.prompt("Master key (hex)", hide_input=True, err=True)
        return text
    return sys.stdin.read(4096)  # a hex key is 32 digits: read no more than a page


@keys_app.command("import")
def keys_import(
    ctx: typer.Context,
    product: ProductOpt,
    slot: SlotOpt,
    file: Annotated[Path | None, typer.Option("--file", exists=True, dir_okay=False,
                                              help="Read the hex key from this file (default: stdin).")] = None,
    key_version: Annotated[int | None, typer.Option("--version", help="Version to store it as (default: next).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import a master key made elsewhere (hex from a file or stdin, never an argument)."""
    from tagsmith.keystore.model import parse_key_hex

    key = parse_key_hex(_master_key_text(ctx, file), "master key")
    store = opened(ctx).keys
    ref = store.import_master(product, slot, key, key_version)
    fp = next(v.fingerprint for v in store.info(product).versions[slot] if v.version == ref.version)
    data = {"key_set": ref.key_set, "slot": ref.slot, "version": ref.version, "fingerprint": fp}
    emit(data, as_json, lambda: print_line(f"imported {esc(ref)} (fingerprint {esc(fp)})"))


def _render_key_sets(infos: list[Any]) -> None:
    if not infos:
        print_line("no key sets (create one with: tagsmith keys create --product ID)")
    for info in infos:
        _render_key_set(info)


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List key sets: slot roles, versions and fingerprints (never key bytes)."""
    store = opened(ctx).keys
    infos = store.key_sets()
    data = {"backend": store.backend, "key_sets": [i.to_dict() for i in infos]}
    emit(data, as_json, lambda: _render_key_sets(infos))


def _slot_pins(ctx: typer.Context, key_set: str, slot: int) -> list[Any]:
    """How the workspace's products use ``slot`` of ``key_set`` (none without a database; never creates one)."""
    from tagsmith.batches.product import slot_pins

    if not state(ctx).workspace.database.exists():
        return []
    with open_batch_store(ctx, create=False) as db:
        return slot_pins((db.product(record.id) for record in db.products()), key_set, slot)


def _render_rotation(ref: Any, fp: str, pins: list[Any]) -> None:
    v = ref.version
    print_line(f"rotated: {esc(ref)} is the key set's newest version (fingerprint {esc(fp)})")
    if not pins:
        print_line(f"no product in this workspace uses key set {esc(ref.key_set)}: chips get the version their "
                   f"product file pins under {esc('[keys.slots]')}")
    for pin in pins:
        if pin.pinned is None:
            print_line(f"product {esc(pin.product)} does not pin slot {ref.slot}: its new chips get v{v}")
        elif pin.pinned == v:
            print_line(f"product {esc(pin.product)} pins slot {ref.slot} at v{v}: its new batches' chips get v{v}")
        else:
            print_line(f"product {esc(pin.product)} still pins slot {ref.slot} at v{pin.pinned}, so its chips still get "
                       f"v{pin.pinned}. To move it to v{v}, set this line under {esc('[keys.slots]')} in its product file:\n"
                       f"  {esc(pin.move_to(v))}\nthen run: tagsmith product add FILE (batches created after that "
                       f"get v{v}; batches already created keep the version they were made with)")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context, product: ProductOpt, slot: SlotOpt, as_json: JsonFlag = False) -> None:
    """Make a new current version for one slot; older versions stay to verify older tags.

    Chips get the version their product file pins, so the output names each product still pinning
    an older one and the exact [keys.slots] line that moves it.
    """
    store = opened(ctx).keys
    ref = store.rotate(product, slot)
    fp = store.info(product).versions[slot][-1].fingerprint
    pins = _slot_pins(ctx, ref.key_set, slot)
    data = {"key_set": ref.key_set, "slot": ref.slot, "version": ref.version, "fingerprint": fp,
            "products": [{"product": p.product, "pinned_version": p.pinned, "chips_get": p.chips_get(ref.version),
                          "move_with": None if p.pinned in (None, ref.version) else p.move_to(ref.version)}
                         for p in pins]}
    emit(data, as_json, lambda: _render_rotation(ref, fp, pins))


def _render_audit(data: dict[str, Any], found: Any) -> None:
    for r in data["last"]:
        detail = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("time", "op", "user", "host", "prev"))
        op = f"{r.get('op')!s:<14}"
        print_line(f"{esc(r.get('time'))}  {esc(op)} {esc(r.get('user'))}@{esc(r.get('host'))}  {esc(detail)}")
    if found.problem is not None:
        print_line(f"{data['records']} records readable; TAMPERED: {esc(found.problem)}")
        return
    later = (f"; {found.unanchored} after it, not anchored (failed unlocks or an interrupted operation)"
             if found.unanchored else "")
    print_line(f"{data['records']} records; hash chain intact, {found.anchored} anchored in the keystore{later}")


@keys_app.command("audit")
def keys_audit(ctx: typer.Context, last: Annotated[int, typer.Option("--last", min=1, help="Show the newest N records.")] = 20,
               as_json: JsonFlag = False) -> None:
    """Show the key operations in audit.log; check its chain and its end against the keystore (exit 6 if tampered)."""
    from tagsmith.keystore.audit import check_log

    path = state(ctx).workspace.audit_log
    found = check_log(path, opened(ctx).keys.audit_anchor())  # the anchor is authenticated by the keystore: it needs the secret
    records = found.records
    data = {"path": str(path), "records": len(records), "intact": found.problem is None,
            "first_broken": found.first_broken, "problem": found.problem, "anchored": found.anchored,
            "not_anchored": found.unanchored, "last": records[-last:] if last > 0 else []}
    emit(data, as_json, lambda: _render_audit(data, found))
    if found.problem is not None:
        raise VerificationError(f"audit log {path} was tampered with: {found.problem}")


@keys_app.command("export")
def keys_export(
    ctx: typer.Context,
    product: ProductOpt,
    out: Annotated[str, typer.Option("--out", help="Export file to write (an existing one only with --force).")],
    recipient: Annotated[Path | None, typer.Option("--for", exists=True, dir_okay=False,
                                                   help="Resolver's public key PEM (RSA-3072+ or X25519).")] = None,
    station: Annotated[Path | None, typer.Option(
        "--for-station", exists=True, dir_okay=False,
        help="A station's STATION.pub (keys station-key): bundle every key set the product (--product: a "
             "product id) needs, for that station.")] = None,
    only: Annotated[list[str] | None, typer.Option("--only-key-set", help="With --for-station: just this key "
                                                   "set of the product's (repeatable).")] = None,
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Export the SDM meta-read and file-read masters for the resolver (--for), or a product's key sets
    for a station (--for-station)."""
    from tagsmith.keystore.export import export_for_resolver
    from tagsmith.limits import PEM_BYTES, read_text_limited
    from tagsmith.provision.keysets import key_set_modes

    if (recipient is None) == (station is None):
        raise ConfigError("give one of --for RESOLVER.pem or --for-station STATION.pub")
    target = checked_out(ctx, out, force)
    if station is not None:
        pub = read_text_limited(station, PEM_BYTES, "--for-station")
        return keys_stations.keys_export_for_station(ctx, product, pub, only or [], target, as_json)
    assert recipient is not None  # checked above: one of the two is given
    pem = read_text_limited(recipient, PEM_BYTES, "resolver key")
    doc = json.loads(export_for_resolver(opened(ctx).keys, product, pem, target))
    modes = key_set_modes(opened(ctx).store, doc["key_set"])
    data = {"key_set": doc["key_set"], "out": str(out), "wrapping": doc["wrapping"]["scheme"],
            "recipient_fingerprint": doc["wrapping"]["recipient_fingerprint"], "payload_sha256": doc["payload_sha256"],
            "secure_messaging": modes}
    used = ", ".join(f"{esc(p)} {m.upper()}" for p, m in sorted(modes.items())) or "none recorded"
    emit(data, as_json, lambda: print_line(f"wrote {esc(out)} for resolver key {esc(data['recipient_fingerprint'])} "
                                           f"({esc(data['wrapping'])}); payload sha256 {esc(data['payload_sha256'])}; "
                                           f"products (SUN mode): {used}"))


keys_app.command("station-key")(keys_stations.keys_station_key)
keys_app.command("import-bundle")(keys_stations.keys_import_bundle)


@keys_app.command("derive")
def keys_derive(
    ctx: typer.Context,
    product: ProductOpt,
    slot: SlotOpt,
    uid: Annotated[Any, hex_option("--uid", help="Chip UID, 7 bytes hex.")],
    key_version: Annotated[int | None, typer.Option("--version", help="Key version (default: current).")] = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Confirm printing a secret chip key (audited).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Print one chip's diversified key for diagnostics (needs --reveal; audited)."""
    from tagsmith.keystore import KeyRef

    if not reveal:
        raise ConfigError("keys derive prints a secret chip key; add --reveal to confirm")
    store = opened(ctx).keys
    ref = KeyRef(product, slot, key_version or store.key_versions(product)[slot], uid)
    key = store.reveal_chip_key(ref)
    err_console.print(f"[bold red]WARNING: printing the secret key of {esc(ref)}. Anyone who sees it can "
                      "rewrite or clone this tag's data. This was recorded in the audit log.[/]", markup=True,
                      soft_wrap=True)
    data = {"key_set": product, "slot": slot, "version": ref.version, "uid": uid.hex().upper(), "key": key.hex().upper()}
    emit(data, as_json, lambda: print_line(esc(data["key"])))


@keys_app.command("manifest-key")
def keys_manifest_key(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print the line's Ed25519 manifest public key (PEM) for the resolver."""
    from tagsmith.keystore.signing import public_key_fingerprint

    pem = opened(ctx).keys.manifest_public_key_pem()
    data = {"public_key": pem, "fingerprint": public_key_fingerprint(pem)}
    emit(data, as_json, lambda: print_line(esc(pem.rstrip())))


@keys_app.command("diversify")
def keys_diversify(
    key_file: Annotated[str | None, typer.Option("--key-file", help=f"The AES-128 master key: {KEY_SOURCE_HELP}.")] = None,
    uid: Annotated[Any, hex_option("--uid", help="UID, hex (M = UID || AID || system id).")] = None,
    aid: Annotated[Any, hex_option("--aid", help="AID, hex.")] = None,
    system_id: Annotated[Any, hex_option(
        "--system-id", help="AN10922 system identifier, hex, as in the product file's [keys] system_id.")] = None,
    m_input: Annotated[Any, hex_option("--input", help="The whole diversification input M, hex.")] = None,
    master_argv: Annotated[str | None, typer.Option("--master", hidden=True)] = None,
    as_json: JsonFlag = False,
) -> None:
    """AN10922 AES-128 diversification of a given master (a calculator: no keystore involved)."""
    from tagsmith.keystore.diversify import MAX_INPUT, diversify_aes128

    refuse_key_on_command_line("--master", master_argv, "--key-file")
    if key_file is None:
        raise ConfigError(f"the master key is needed: --key-file ({KEY_SOURCE_HELP})")
    if (uid is None) == (m_input is None) or (m_input is not None and (aid or system_id)):
        raise ConfigError("give either --uid [--aid] [--system-id] or --input")
    m = m_input if m_input is not None else uid + (aid or b"") + (system_id or b"")
    if not 1 <= len(m) <= MAX_INPUT:
        raise ConfigError(f"diversification input must be 1..{MAX_INPUT} bytes, got {len(m)}")
    data = {"input": m.hex().upper(), "key": diversify_aes128(key_from(key_file, "--key-file"), m).hex().upper()}
    emit(data, as_json, lambda: print_line(esc(data["key"])))
