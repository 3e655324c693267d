"""One workspace directory holds all of tagsmith's state: database, keystore, products, exports.

Chosen with ``--home DIR`` or ``TAGSMITH_HOME``; otherwise the user's data directory
(``$XDG_DATA_HOME/tagsmith`` or ``~/.local/share/tagsmith``). Nothing is written elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "TAGSMITH_HOME"


def default_home() -> Path:
    """The per-user data directory, following the XDG base-directory convention."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tagsmith"


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace; directories are created only when something is written."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Workspace:
        chosen = home or os.environ.get(ENV_HOME) or default_home()
        return cls(Path(chosen).expanduser().absolute())

    @property
    def database(self) -> Path:
        return self.home / "tagsmith.db"

    @property
    def keystore(self) -> Path:
        return self.home / "keystore.json"

    @property
    def audit_log(self) -> Path:
        return self.home / "audit.log"

    @property
    def products(self) -> Path:
        return self.home / "products"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def sim_chips(self) -> Path:
        return self.home / "sim-chips"

    @property
    def leases(self) -> Path:
        """A leased station's journals, one SQLite file per station and batch (docs/deployment.md)."""
        return self.home / "leases"

    def state_paths(self) -> tuple[Path, ...]:
        """The workspace's own state: no user output may be written over these, nor beside them as
        their lock, journal or temp files (``keystore.json.lock``, ``tagsmith.db-wal``, ...)."""
        return (self.database, self.keystore, self.audit_log, self.products, self.sim_chips, self.leases)

    def ensure(self) -> Workspace:
        """Create the workspace directory (private to the user: it holds the keystore)."""
        if self.home.exists() and not self.home.is_dir():
            from tagsmith import ConfigError

            raise ConfigError(f"workspace {self.home} is a file, not a directory (check --home / {ENV_HOME})")
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def holds_data(self) -> bool:
        """True when the workspace already has a database or keystore (the demo must not reuse it)."""
        return self.database.exists() or self.keystore.exists()
