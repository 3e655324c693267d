"""``tagsmith sun``: verify a tapped SUN URL, show what a URL template compiles to (the protocol core)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tagsmith import ConfigError, VerificationError
from tagsmith.commands.options import KEY_SOURCE_HELP, JsonFlag, key_from, refuse_key_on_command_line
from tagsmith.commands.output import emit, esc, print_line

sun_app = typer.Typer(help="SUN URLs: verify a tapped URL, show what a URL template compiles to.",
                      no_args_is_help=True)


def _sun_keys(file_key: str | None, meta_key: str | None, file_key_argv: str | None,
              meta_key_argv: str | None) -> tuple[bytes, bytes | None]:
    """(file-read key, meta-read key or None) from their sources; a key on the command line is refused."""
    refuse_key_on_command_line("--file-key", file_key_argv, "--file-key-file")
    refuse_key_on_command_line("--meta-key", meta_key_argv, "--meta-key-file")
    if file_key is None:
        raise ConfigError(f"the SDM file-read key is needed: --file-key-file ({KEY_SOURCE_HELP})")
    if file_key == meta_key == "-":
        raise ConfigError("only one key can come from stdin: give the other as a file or env:VAR")
    meta_read = key_from(meta_key, "--meta-key-file") if meta_key else None  # read first, as the verifier takes them
    return key_from(file_key, "--file-key-file"), meta_read


def _sun_dict(mode: str, result: Any) -> dict[str, Any]:
    return {"mode": mode, "uid": result.uid.hex().upper() if result.uid else None, "read_counter": result.read_counter,
            "cmac_valid": result.cmac_valid, "file_data": result.file_data.hex().upper() if result.file_data else None}


@sun_app.command("verify")
def sun_verify(
    url: Annotated[str, typer.Argument(help="The URL exactly as the tag produced it.")],
    file_key: Annotated[str | None, typer.Option(
        "--file-key-file", help=f"SDM file-read key of this tag: {KEY_SOURCE_HELP}.")] = None,
    meta_key: Annotated[str | None, typer.Option(
        "--meta-key-file", help=f"SDM meta-read key (needed for encrypted PICC data): {KEY_SOURCE_HELP}.")] = None,
    file_key_argv: Annotated[str | None, typer.Option("--file-key", hidden=True)] = None,
    meta_key_argv: Annotated[str | None, typer.Option("--meta-key", hidden=True)] = None,
    picc_param: Annotated[str, typer.Option("--picc-param", help="Query parameter holding encrypted PICC data.")] = "picc_data",
    mac_param: Annotated[str, typer.Option("--mac-param", help="Query parameter holding the SUN MAC.")] = "cmac",
    enc_param: Annotated[str, typer.Option("--enc-param", help="Query parameter holding encrypted file data.")] = "enc",
    uid_param: Annotated[str, typer.Option("--uid-param", help="Query parameter holding a plain UID mirror.")] = "uid",
    ctr_param: Annotated[str, typer.Option("--ctr-param", help="Query parameter holding a plain counter mirror.")] = "ctr",
    mac_input_from: Annotated[str | None, typer.Option(
        "--mac-input-from", help="The MAC covers the text from this parameter's value up to the MAC value "
                                 "('/': from the URL's path, as the shipped product's template).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify a SUN URL's MAC and decrypt what it carries; exit 6 when the MAC is wrong.

    The PICC data's length tells the mode: 32 hex characters AES, 48 LRP.
    """
    from tagsmith.encoders.ntag424.sun import scheme_for_url, verify_sun_url

    file_read, meta_read = _sun_keys(file_key, meta_key, file_key_argv, meta_key_argv)
    scheme = scheme_for_url(url, picc_param)
    result = verify_sun_url(
        url, meta_key=meta_read, file_key=file_read, picc_param=picc_param, mac_param=mac_param,
        enc_param=enc_param, uid_param=uid_param, ctr_param=ctr_param, mac_input_from=mac_input_from, scheme=scheme)
    data = _sun_dict(scheme.mode.value, result)
    mode = scheme.mode.name
    if not result.cmac_valid:
        if as_json:
            emit(data, True)
        counter = "-" if data["read_counter"] is None else data["read_counter"]
        raise VerificationError(f"SUN MAC does not verify ({mode}, UID {data['uid'] or '-'}, counter {counter})")
    emit(data, as_json, lambda: print_line(
        f"[green]valid[/] {mode}  UID {esc(data['uid'])}  counter {esc(data['read_counter'])}"
        + (f"  file data {esc(data['file_data'])}" if data["file_data"] else "")))


def _render_template(data: dict[str, Any]) -> None:
    print_line(f"URL      {esc(data['url'])}")
    print_line(f"NDEF     {data['ndef_length']} bytes: {data['ndef_file']}")
    for m in data["mirrors"]:
        print_line(f"{m['kind']:<8} offset {m['offset']:>3} (0x{m['offset']:02X})  length {m['length']:>2}"
                   f"  param {esc(m['param'] or '-')}")
    if data["mac_input_offset"] is not None:
        print_line(f"MAC input from offset {data['mac_input_offset']} (0x{data['mac_input_offset']:02X})")
    print_line(f"ChangeFileSettings data  {data['change_file_settings']}")


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
    emit(data, as_json, lambda: _render_template(data))
