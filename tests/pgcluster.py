"""A private PostgreSQL cluster for the test run (registered as a plugin by tests/conftest.py).

initdb into a temporary directory (on /dev/shm when it has room), a server listening only on a Unix
socket in that directory (no TCP port, so it runs beside any system PostgreSQL and beside other
runs), stopped and removed at the end.
PostgreSQL refuses to run as root: as root the server runs as the `postgres` user, which owns the
directory (mode 0710, group root, so root reaches the socket and nobody else does). The test
processes connect over the socket as the superuser role `postgres` (trust authentication).

Fixtures:
  pg_cluster        the session's cluster: .url(db), .create_database(), .drop_database(),
                    .stop(mode) / .start() for outage tests, .running
  postgres_url      a libpq URL to the session database `tagsmith`
  pg_database       a URL to a fresh empty database for one test (dropped afterwards)
  new_pg_cluster    ``make(*initdb_args, settings=None) -> PgCluster``: a private cluster for one test

The server is tuned for a throw-away cluster: fsync and full-page writes off (they only protect
against an operating-system crash), synchronous_commit left on, so a killed server loses nothing
that was committed. A cluster that cannot start skips the tests with the reason locally and fails
them in CI (CI=true).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SUPERUSER = "postgres"
SERVER_OS_USER = "postgres"  # the account Debian's postgresql package creates
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
PORT = 5432  # names the socket file only: the server listens on no TCP port
SHM = Path("/dev/shm")
SHM_ROOM = 1 << 30  # container defaults (64 MiB) are too small for a cluster
SERVER_SETTINGS = {
    "listen_addresses": "''",
    "port": str(PORT),
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


class PgClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says which step and why."""


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl: PATH first, else Debian's newest /usr/lib/postgresql/<ver>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted((p for p in DEBIAN_PG_ROOT.glob("*/bin") if (p / "initdb").exists() and p.parent.name.isdigit()),
                      key=lambda p: int(p.parent.name))
    if not versions:
        raise PgClusterError(f"PostgreSQL is not installed: no initdb on PATH or under {DEBIAN_PG_ROOT}/<version>/bin "
                             "(./dev test installs it when run as root)")
    return versions[-1]


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class PgCluster:
    """One initdb'd data directory and its server; see the module docstring."""

    def __init__(self, root: Path, bindir: Path, run_as: str | None) -> None:
        self.root, self.bindir, self.run_as = root, bindir, run_as
        self.datadir, self.logfile = root / "data", root / "server.log"
        self.socket_dir = root
        self.timings: dict[str, float] = {}
        self.client_libpq = 0  # psycopg's libpq version (e.g. 150018), for the run's summary
        self._names = itertools.count(1)

    # -- server life cycle ------------------------------------------------------------------------
    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.root)

    def _check(self, step: str, result: subprocess.CompletedProcess[str], log: bool = False) -> None:
        if result.returncode == 0:
            return
        detail = _tail(result.stderr or result.stdout)
        if log and self.logfile.exists():
            detail += "\nserver log:\n" + _tail(self.logfile.read_text(errors="replace"))
        raise PgClusterError(f"{step} failed (exit {result.returncode}):\n{detail}")

    def init(self, *initdb_args: str, settings: dict[str, str] | None = None) -> None:
        """initdb (superuser `postgres`, trust authentication) and write the server settings."""
        started = time.monotonic()
        self._check("initdb", self._run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, "--auth=trust",
                                        "--encoding=UTF8", "--locale=C", "--no-sync", *initdb_args))
        chosen = {**SERVER_SETTINGS, "unix_socket_directories": "'" + str(self.socket_dir).replace("'", "''") + "'",
                  **(settings or {})}
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# tagsmith test cluster\n" + "".join(f"{k} = {v}\n" for k, v in chosen.items()))
        self.timings["initdb"] = time.monotonic() - started

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        started = time.monotonic()
        self._check("pg_ctl start", self._run("pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile),
                                              "-w", "-t", "30", "-s"), log=True)
        self.timings.setdefault("start", time.monotonic() - started)  # the first start: restarts are the tests' own

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" (clean, disconnects clients) or "immediate" (as if it crashed)."""
        self._check("pg_ctl stop", self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", mode, "-w", "-s"), log=True)

    @property
    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.datadir)).returncode == 0

    def remove(self) -> None:
        """Stop the server if it runs and delete the directory."""
        try:
            if self.datadir.exists() and self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- databases --------------------------------------------------------------------------------
    def url(self, dbname: str, user: str = SUPERUSER) -> str:
        """A libpq URL to ``dbname`` over the cluster's socket."""
        return f"postgresql:///{dbname}?host={self.socket_dir}&port={PORT}&user={user}"

    def _admin(self, statement: str, *names: str) -> None:
        import psycopg
        from psycopg import sql

        query = sql.SQL(statement).format(*(sql.Identifier(n) for n in names))
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(query)

    def create_database(self, name: str | None = None, template: str = "template1") -> str:
        """CREATE DATABASE as a file copy of ``template``; returns its name."""
        name = name or f"test_{next(self._names)}"
        self._admin("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY", name, template)
        return name

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, disconnecting whoever is still connected."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def ensure_running(self) -> None:
        """Start the server again if a test stopped it (or it was killed)."""
        if not self.running:
            self.start()


def server_user() -> pwd.struct_passwd | None:
    """The account to run the server as: None (this user), or `postgres` as root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise PgClusterError(f"PostgreSQL refuses to run as root and there is no {SERVER_OS_USER!r} user "
                             "to run it as") from None
    if not shutil.which("runuser"):
        raise PgClusterError("running as root: runuser (util-linux) is needed to start PostgreSQL as postgres")
    return account


def scratch_parent() -> str | None:
    """Where to make the cluster's directory: TMPDIR when set, else a roomy /dev/shm (tmpfs: initdb
    twice and CREATE DATABASE about ten times as fast as on a disk), else the system temp dir."""
    if os.environ.get("TMPDIR"):
        return None
    try:
        room = os.statvfs(SHM)
    except OSError:
        return None
    return str(SHM) if room.f_bavail * room.f_frsize >= SHM_ROOM and os.access(SHM, os.W_OK) else None


def start_cluster(*initdb_args: str, settings: dict[str, str] | None = None) -> PgCluster:
    """initdb and start a cluster in a new temporary directory; PgClusterError says what failed."""
    bindir, account = find_bindir(), server_user()
    root = Path(tempfile.mkdtemp(prefix="tagsmith-pg-", dir=scratch_parent()))
    run_as = None
    if account:
        os.chown(root, account.pw_uid, 0)
        root.chmod(0o710)
        run_as = account.pw_name
    cluster = PgCluster(root, bindir, run_as)
    try:
        cluster.init(*initdb_args, settings=settings)
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL cannot start: {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_session_cluster: list[PgCluster] = []


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's private cluster (see the module docstring)."""
    try:
        import psycopg  # the fixtures and the tests talk to the server through it (and the system libpq)

        cluster = start_cluster()
        cluster.client_libpq = psycopg.pq.version()
    except (ImportError, OSError, PgClusterError, subprocess.TimeoutExpired) as exc:
        _unavailable(str(exc))
    _session_cluster.append(cluster)
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres_url(pg_cluster: PgCluster) -> str:
    """A libpq URL to the session database `tagsmith` (shared by every test that asks for it)."""
    pg_cluster.ensure_running()
    return pg_cluster.url(pg_cluster.create_database("tagsmith"))


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """A libpq URL to a fresh empty database, dropped after the test."""
    pg_cluster.ensure_running()
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.ensure_running()
    pg_cluster.drop_database(name)


@pytest.fixture
def new_pg_cluster() -> Iterator[Callable[..., PgCluster]]:
    """``make(*initdb_args, settings=None) -> PgCluster``: a private cluster, removed after the test.

    A missing PostgreSQL skips (or in CI fails) the test here; a cluster that fails to start raises
    PgClusterError from ``make``."""
    try:
        find_bindir()
        server_user()
    except PgClusterError as exc:
        _unavailable(str(exc))
    made: list[PgCluster] = []

    def make(*initdb_args: str, settings: dict[str, str] | None = None) -> PgCluster:
        made.append(start_cluster(*initdb_args, settings=settings))
        return made[-1]

    try:
        yield make
    finally:
        for cluster in made:
            cluster.remove()


def pytest_terminal_summary(terminalreporter) -> None:
    """Say how long the session cluster took to come up (it is on every run's critical path)."""
    for cluster in _session_cluster:
        t = cluster.timings
        terminalreporter.write_line(f"postgresql: private cluster {cluster.bindir.parent.name} up in "
                                    f"{t.get('initdb', 0) + t.get('start', 0):.2f} s "
                                    f"(initdb {t.get('initdb', 0):.2f} s, start {t.get('start', 0):.2f} s); "
                                    f"client libpq {cluster.client_libpq}")
