"""The line's database over TLS with ``sslmode=verify-full``, as docs/deployment.md sets a station up.

A private cluster that also listens on 127.0.0.1 with ``ssl = on``, a throw-away CA and a server
certificate for ``localhost``/``127.0.0.1`` made per run with the openssl CLI. pg_hba takes a password
role only over TLS and rejects plain TCP. The station's password lives only in a .pgpass file
(PGPASSFILE) and the TLS settings in the URL or a pg_service.conf entry: nothing secret on argv.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PASSWORD = "station-secret-9f2c"
ROLE, DBNAME = "station", "tagsmith"
TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
PASSPHRASE = "tagsmith-demo-passphrase"


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def make_certificates(where: Path, server: bool = True) -> None:
    """ca.pem/ca.key, and server.pem/server.key signed by it for DNS:localhost and IP:127.0.0.1."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=tagsmith test CA", cwd=where)
    if not server:
        return
    (where / "san.cnf").write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=where)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "san.cnf", cwd=where)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TlsLine:
    """The TLS cluster, its CA, a second CA that signed nothing of it, and the station's .pgpass."""

    def __init__(self, cluster, port: int, certs: Path, other_ca: Path, pgpass: Path) -> None:
        self.cluster, self.port, self.certs, self.other_ca, self.pgpass = cluster, port, certs, other_ca, pgpass

    def url(self, *, ca: Path | None = None, sslmode: str = "verify-full", host: str = "localhost", extra: str = "") -> str:
        return (f"postgresql://{ROLE}@{host}:{self.port}/{DBNAME}?sslmode={sslmode}"
                f"&sslrootcert={ca or self.certs / 'ca.pem'}{extra}")

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return {**env, "PGPASSFILE": str(self.pgpass), "TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE, **more}


@pytest.fixture(scope="module")
def tls_line():
    """A private cluster listening on a Unix socket (trust, for the superuser) and on 127.0.0.1 (TLS only)."""
    plugin = sys.modules["tagsmith_tests_pgcluster"]
    if not shutil.which("openssl"):
        plugin._unavailable("no openssl CLI to make the test certificates (./dev test installs it)")
    try:
        plugin.find_bindir()
        account = plugin.server_user()
    except plugin.PgClusterError as exc:
        plugin._unavailable(str(exc))
    scratch = Path(tempfile.mkdtemp(prefix="tagsmith-tls-"))
    certs, other = scratch / "server", scratch / "other"
    certs.mkdir()
    other.mkdir()
    make_certificates(certs)
    make_certificates(other, server=False)
    key = certs / "server.key"
    key.chmod(0o600)
    if account:  # the server runs as postgres: its key must be that user's own, mode 0600
        scratch.chmod(0o755)
        certs.chmod(0o755)
        os.chown(key, account.pw_uid, account.pw_gid)
    port = free_port()
    cluster = plugin.start_cluster(settings={
        "listen_addresses": "'127.0.0.1'", "port": str(port), "ssl": "on",
        "ssl_cert_file": f"'{certs / 'server.pem'}'", "ssl_key_file": f"'{key}'"})
    try:
        cluster.url = lambda db, user=plugin.SUPERUSER: f"postgresql:///{db}?host={cluster.socket_dir}&port={port}&user={user}"
        (cluster.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all {ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 reject\n")
        cluster._check("pg_ctl reload", cluster._run("pg_ctl", "reload", "-D", str(cluster.datadir), "-s"))
        import psycopg

        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE DATABASE {DBNAME} OWNER {ROLE}")
        pgpass = scratch / "pgpass"
        pgpass.write_text(f"*:{port}:*:{ROLE}:{PASSWORD}\n")
        pgpass.chmod(0o600)
        yield TlsLine(cluster, port, certs, other / "ca.pem", pgpass)
    finally:
        cluster.remove()
        shutil.rmtree(scratch, ignore_errors=True)


def tagsmith(line: TlsLine, home: Path, db: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [TAGSMITH, "--home", str(home), "--db", db, *args]
    assert PASSWORD not in " ".join(argv)  # the password only ever comes from .pgpass
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=line.env(**env))


def test_a_station_works_over_verify_full_tls_with_its_password_only_in_pgpass(tls_line, tmp_path, make_demo_home):
    demo = make_demo_home(tmp_path / "demo")
    url = tls_line.url()
    copied = tagsmith(tls_line, demo, url, "db", "copy", "--to", url)
    assert copied.returncode == 0, copied.stderr
    status = tagsmith(tls_line, demo, url, "db", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["tls"].startswith("TLSv1.")
    text = tagsmith(tls_line, demo, url, "db", "status")
    assert "over TLSv1." in text.stdout
    made = tagsmith(tls_line, demo, url, "batch", "create", "--product", "aurora-dw600", "--quantity", "3", "--json")
    assert made.returncode == 0, made.stderr
    batch = json.loads(made.stdout)["id"]
    run = tagsmith(tls_line, demo, url, "station", "run", "--batch", batch, "--sim", "--station", "tls-1", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.splitlines()[-1])
    assert summary["done"] == 3 and summary["batch_complete"] == {"done": 3, "quantity": 3}
    for output in (copied, status, text, made, run):
        assert PASSWORD not in output.stdout + output.stderr


def test_a_libpq_service_entry_names_the_tls_database(tls_line, tmp_path):
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[line1]\nhost=localhost\nport={tls_line.port}\ndbname={DBNAME}\nuser={ROLE}\n"
                        f"sslmode=verify-full\nsslrootcert={tls_line.certs / 'ca.pem'}\n")
    home = tmp_path / "ws"
    init = tagsmith(tls_line, home, "service=line1", "db", "init", "--json", PGSERVICEFILE=str(services))
    assert init.returncode == 0, init.stderr
    data = json.loads(init.stdout)
    assert data["engine"] == "postgresql" and data["tls"].startswith("TLSv1.")


@pytest.mark.parametrize(("how", "expected"), [
    ("another CA", "database TLS check failed: "),
    ("another host name", "database TLS check failed: "),
    ("no TLS", "database refused this connection: "),
    ("wrong password", "database refused the login: "),
])
def test_refusals_are_one_line_errors_without_the_password(tls_line, tmp_path, how, expected):
    url = {"another CA": tls_line.url(ca=tls_line.other_ca),
           "another host name": tls_line.url(host="wronghost", extra="&hostaddr=127.0.0.1"),
           "no TLS": tls_line.url(sslmode="disable"),
           "wrong password": tls_line.url()}[how]
    env = {}
    if how == "wrong password":
        wrong = tmp_path / "pgpass"
        wrong.write_text(f"*:{tls_line.port}:*:{ROLE}:not-{PASSWORD}\n")
        wrong.chmod(0o600)
        env["PGPASSFILE"] = str(wrong)
    result = tagsmith(tls_line, tmp_path / "ws", url, "db", "status", **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), result.stderr
    assert {"another CA": "certificate verify failed", "another host name": 'does not match host name "wronghost"',
            "no TLS": "pg_hba.conf rejects connection", "wrong password": "password authentication failed"}[how] in lines[0]
    assert PASSWORD not in result.stderr + result.stdout


def test_a_tcp_link_finds_a_silent_cut_within_seconds_unless_the_url_says_otherwise(tls_line, tmp_path, monkeypatch):
    """A station's socket to the line's database carries keepalives and a TCP user timeout (a cable pulled
    beyond the switch sends no reset: without them a query waits out the kernel's retransmissions, about
    a quarter of an hour); what the connection string sets is kept."""
    from tagsmith.batches.store import open_store
    from tagsmith.workspace import Workspace

    monkeypatch.setenv("PGPASSFILE", str(tls_line.pgpass))
    ws = Workspace.resolve(tmp_path / "ws")
    for extra, idle in (("", 10), ("&keepalives_idle=45", 45)):
        with open_store(ws, url=tls_line.url(extra=extra), create=True) as store:
            link = socket.socket(fileno=os.dup(store.conn.pgconn.socket))  # closing the copy leaves libpq's
            with link:
                assert link.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert link.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == idle
                assert link.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
                assert link.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
                assert link.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 10_000
