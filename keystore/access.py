"""Opening the workspace's keystore for the rest of tagsmith: file or PKCS#11, audited.

The workspace's keystore.json says which backend it is. The file backend needs the passphrase
(argument, else ``TAGSMITH_KEYSTORE_PASSPHRASE``); the PKCS#11 backend records the module path
and token label and takes the user PIN from ``TAGSMITH_PKCS11_PIN``. Prompting is the CLI's job.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tagsmith import ConfigError, KeystoreError, NotFoundError, StateError

from .audit import AuditLog
from .base import Keystore
from .file import DEFAULT_SCRYPT_N, FileKeystore, parse_header
from .storage import locked, read_bytes

if TYPE_CHECKING:
    from tagsmith.workspace import Workspace

ENV_PASSPHRASE = "TAGSMITH_KEYSTORE_PASSPHRASE"
ENV_PIN = "TAGSMITH_PKCS11_PIN"
BACKENDS = ("file", "pkcs11")


def keystore_backend(workspace: Workspace) -> str:
    """Which backend the workspace's keystore uses (reads only its unencrypted header)."""
    path = workspace.keystore
    raw = read_bytes(path)
    if raw is None:
        raise NotFoundError(f"no keystore in {workspace.home} (create one with: tagsmith keys init)")
    return str(parse_header(path, raw).get("backend"))


def open_keystore(workspace: Workspace, passphrase: str | None = None, *, pin: str | None = None,
                  ask: Callable[[str], str | None] | None = None) -> Keystore:
    """Open the workspace's keystore; every failure is a one-line KeystoreError or NotFoundError.

    A secret not given comes from the environment, else from ``ask(backend)`` (the CLI's prompt),
    so the keystore file is read once and only the secret its backend needs is asked for.
    """
    path, audit = workspace.keystore, AuditLog(workspace.audit_log)
    raw = read_bytes(path)
    if raw is None:
        raise NotFoundError(f"no keystore in {workspace.home} (create one with: tagsmith keys init)")
    backend = parse_header(path, raw).get("backend")
    if backend == "file":
        secret = passphrase if passphrase is not None else os.environ.get(ENV_PASSPHRASE)
        if not secret and ask is not None:
            secret = ask("file")
        if not secret:
            raise KeystoreError(f"the keystore passphrase is needed: set {ENV_PASSPHRASE} or enter it when asked")
        try:
            return FileKeystore.open(path, raw, secret, audit=audit)
        except KeystoreError as exc:
            try:  # not anchored: without the key the keystore cannot be written (see keystore.audit)
                audit.record("unlock-failed", backend="file")
            except KeystoreError as unrecorded:
                raise KeystoreError(f"{exc} (and the failure could not be recorded: {unrecorded})") from None
            raise
    if backend == "pkcs11":
        from .pkcs11 import Pkcs11Keystore

        if pin is None:
            pin = os.environ.get(ENV_PIN) or (ask("pkcs11") if ask is not None else None)
        return Pkcs11Keystore.open(path, raw, pin, audit=audit)
    raise KeystoreError(f"keystore {path} names an unknown backend {backend!r}")


def init_keystore(workspace: Workspace, backend: str = "file", *, passphrase: str | None = None,
                  scrypt_n: int = DEFAULT_SCRYPT_N, module: str | None = None, token_label: str | None = None,
                  pin: str | None = None) -> Keystore:
    """Create the workspace's keystore (refused when one exists: it would orphan its keys)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown keystore backend {backend!r} (choose file or pkcs11)")
    workspace.ensure()
    path, audit = workspace.keystore, AuditLog(workspace.audit_log)
    with locked(path):
        if path.exists():
            raise StateError(f"{path} already exists; a second keystore would orphan its keys")
    if backend == "file":
        secret = passphrase if passphrase is not None else os.environ.get(ENV_PASSPHRASE)
        if not secret:
            raise KeystoreError(f"a passphrase is needed: set {ENV_PASSPHRASE} or enter it when asked")
        store: Keystore = FileKeystore.create(path, secret, scrypt_n=scrypt_n, audit=audit)
    else:
        from .pkcs11 import Pkcs11Keystore

        if not module or not token_label:
            raise ConfigError("the pkcs11 backend needs --module PATH and --token-label LABEL")
        if not Path(module).exists():
            raise ConfigError(f"PKCS#11 module {module} does not exist")
        store = Pkcs11Keystore.create(path, module, token_label, pin if pin is not None else os.environ.get(ENV_PIN),
                                      audit=audit)
    return store
