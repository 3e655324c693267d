"""``tagsmith keys station-key``, ``keys import-bundle`` and ``keys export --for-station``: enrolling a station.

The engineer's PC exports a product's key sets for one station's X25519 key, signed with the line's
manifest key; the station imports the bundle. ``commands/keys.py`` registers these on ``keys``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tagsmith.commands.context import checked_out, opened
from tagsmith.commands.options import ForceOpt, JsonFlag
from tagsmith.commands.output import emit, esc, print_line


def keys_export_for_station(ctx: typer.Context, product: str, pub: str, only: list[str], out: Path,
                            as_json: bool) -> None:
    """``keys export --for-station``: the product's key sets in a bundle only that station can open."""
    from tagsmith.provision.enrolment import export_for_station

    data = export_for_station(opened(ctx).store, opened(ctx).keys, product, pub, only, out)
    emit(data, as_json, lambda: print_line(
        f"wrote {esc(out)}: key sets {esc(', '.join(data['key_sets']))} of product {esc(product)} for station "
        f"{esc(data['station'])} (key {esc(data['station_fingerprint'])}), signed with the line's manifest key"))


def keys_station_key(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="The station's name when its key is made "
                                                            "(default: the host name).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Write STATION.pub here (an existing file only with "
                                                          "--force); default: print it.")] = None,
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Make (once) and print this station's X25519 key, for keys export --for-station on the engineer's PC."""
    from tagsmith.keystore.station import ensure_station_key

    target = checked_out(ctx, out, force) if out is not None else None
    key, made = ensure_station_key(opened(ctx).keys, name)
    if target is not None:
        target.write_text(key.text())
    data = {**key.to_dict(), "created": made, "out": out}
    emit(data, as_json, lambda: print_line(esc(key.text().rstrip()) if target is None else
                                           f"wrote {esc(out)}: station {esc(key.name)}, key {esc(key.fingerprint)}"))


def keys_import_bundle(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The bundle from keys export --for-station.")],
    public_key: Annotated[Path, typer.Option("--public-key", exists=True, dir_okay=False,
                                             help="The line's manifest public key PEM (keys manifest-key on the "
                                                  "engineer's PC): the bundle must be signed with it.")],
    as_json: JsonFlag = False,
) -> None:
    """Verify a station bundle and import its key sets into this station's keystore (audited)."""
    from tagsmith.keystore.bundle import import_bundle
    from tagsmith.limits import EXPORT_BYTES, PEM_BYTES, read_limited, read_text_limited

    pem = read_text_limited(public_key, PEM_BYTES, "--public-key")
    result = import_bundle(opened(ctx).keys, read_limited(file, EXPORT_BYTES, "bundle"), pem)
    lines = [f"key set {esc(k.key_set)}: " + (", ".join(f"slot {s} v{v}" for s, v in k.added) or "nothing new")
             + (f" ({k.present} versions already here)" if k.present else "") for k in result.key_sets]
    emit(result.to_dict(), as_json, lambda: print_line(
        f"bundle for product {esc(result.product)}, signed by line key {esc(result.signer_fingerprint)}: "
        + ("imported" if result.changed else "already imported, nothing changed") + "\n" + "\n".join(lines)))
