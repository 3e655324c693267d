"""The private PostgreSQL cluster of the test run (tests/pgcluster.py) is a real, isolated server."""

import os
import pwd

import psycopg
import pytest


def test_a_database_stores_and_returns_rows(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE serials (serial bigint PRIMARY KEY, uid text NOT NULL)")
        conn.execute("INSERT INTO serials VALUES (1, '04A1B2C3D4E5F6'), (2, '04A1B2C3D4E5F7')")
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT serial, uid FROM serials ORDER BY serial").fetchall()
        conn.execute("DROP TABLE serials")
    assert rows == [(1, "04A1B2C3D4E5F6"), (2, "04A1B2C3D4E5F7")]


def test_the_server_listens_only_on_its_private_socket(pg_cluster, postgres_url):
    with psycopg.connect(postgres_url) as conn:
        settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                     "('listen_addresses', 'unix_socket_directories')").fetchall())
    assert settings == {"listen_addresses": "", "unix_socket_directories": str(pg_cluster.socket_dir)}


@pytest.mark.skipif(os.geteuid() != 0, reason="the runuser path is taken only as root")
def test_as_root_the_server_runs_as_postgres(pg_cluster, postgres_url):
    with psycopg.connect(postgres_url) as conn:
        datadir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
    assert os.stat(datadir).st_uid == pwd.getpwnam("postgres").pw_uid
    assert os.stat(pg_cluster.socket_dir).st_mode & 0o777 == 0o710


def test_fresh_databases_are_empty_and_independent(pg_cluster, pg_database):
    other = pg_cluster.create_database()
    try:
        with psycopg.connect(pg_database) as conn:
            conn.execute("CREATE TABLE batches (id text PRIMARY KEY)")
            conn.execute("INSERT INTO batches VALUES ('B1')")
        with psycopg.connect(pg_cluster.url(other)) as conn:
            tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert tables == []
    finally:
        pg_cluster.drop_database(other)


def test_a_stopped_server_refuses_and_a_restarted_one_keeps_committed_rows(pg_cluster, pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE journal (step int)")
        conn.execute("INSERT INTO journal VALUES (1)")
    try:
        pg_cluster.stop("immediate")  # as if it crashed: a committed row must survive the throw-away tuning
        assert not pg_cluster.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_database, connect_timeout=2)
    finally:
        pg_cluster.start()
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT step FROM journal").fetchall() == [(1,)]


def test_a_cluster_that_cannot_start_says_why(new_pg_cluster):
    with pytest.raises(RuntimeError, match=r"(?s)initdb failed.*invalid locale"):
        new_pg_cluster("--lc-messages=no_such_locale")
    with pytest.raises(RuntimeError, match=r"(?s)pg_ctl start failed.*server log:.*shared_buffers"):
        new_pg_cluster(settings={"shared_buffers": "'lots'"})
