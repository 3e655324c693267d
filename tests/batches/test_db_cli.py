"""tagsmith db init / migrate / status / copy, and --db / TAGSMITH_DB: the commands on a line's PostgreSQL database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith import ConfigError, NotFoundError, StateError
from tagsmith.batches.store import open_store
from tagsmith.cli import app
from tagsmith.workspace import Workspace

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
runner = CliRunner()


def invoke(ws, *args):
    return runner.invoke(app, ["--home", str(ws), *args])


def run_json(ws, *args):
    result = invoke(ws, *args, "--json")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_workspace_copied_to_postgresql_goes_on_there(tmp_path, pg_database, product):
    ws = tmp_path / "ws"
    run_json(ws, "product", "add", str(DISHWASHER))
    batch = run_json(ws, "batch", "create", "--product", product.id, "--quantity", "5")["id"]
    with open_store(Workspace(ws)) as store:  # two units encoded on the workspace's own station
        store.bulk_encoded(batch, [(bytes([4, 0, 0, 0, 0, 0, i]), {0: 1}, 1) for i in range(2)], "st-1")
    assert run_json(ws, "db", "status")["engine"] == "sqlite"
    with pytest.raises(NotFoundError, match="no tagsmith schema"):
        run_json(ws, "--db", pg_database, "db", "status")  # an empty database is not created by a read
    copied = run_json(ws, "db", "copy", "--to", pg_database)["rows"]
    assert (copied["batches"], copied["serials"], copied["units"]) == (1, 5, 2)
    with pytest.raises(StateError, match="copy only into an empty one"):
        run_json(ws, "db", "copy", "--to", pg_database)  # never merged into a database in use
    status = run_json(ws, "--db", pg_database, "db", "status")
    assert status["engine"] == "postgresql" and status["schema_version"] == status["tagsmith_schema_version"]
    assert [b["id"] for b in run_json(ws, "--db", pg_database, "batch", "list")] == [batch]
    with open_store(Workspace(ws), url=pg_database) as line:  # numbering and serials go on after the copy
        unit = line.allocate_unit(batch, bytes.fromhex("04AABBCCDDEEFF"), "st-2")
        assert unit.id == 3 and unit.serial == product.serial.sequential(3)
        assert line.create_batch(product.id, 2).id != batch
        assert [u.serial for u in line.units(batch)] == product.serial.sequential_range(1, 3)


def test_db_init_and_migrate_on_a_database_named_by_the_environment(tmp_path, pg_database, monkeypatch):
    monkeypatch.setenv("TAGSMITH_DB", pg_database)
    made = run_json(tmp_path / "ws", "db", "init")
    assert made["engine"] == "postgresql" and made["schema_version"] >= 1
    assert run_json(tmp_path / "ws", "db", "migrate") == made
    assert not (tmp_path / "ws" / "tagsmith.db").exists()  # the workspace's own file is not used


def test_a_password_on_the_command_line_is_refused(tmp_path):
    result = invoke(tmp_path / "ws", "--db", "postgresql://line:secret@localhost/line1", "db", "status")
    assert isinstance(result.exception, ConfigError) and ".pgpass" in str(result.exception)
