"""Shared fixtures. Helpers that are real parts (simulator, transports) live in the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = Path(__file__).resolve().parent / "vectors"


def load_vectors(name: str) -> dict:
    """Load a published-vector file from tests/vectors/ by file name."""
    return json.loads((VECTORS / name).read_text())


@pytest.fixture
def ntag_vectors() -> dict:
    """AN12196 / AN10922 / data-sheet vectors keyed by id."""
    return {v["id"]: v for v in load_vectors("ntag424.json")["vectors"]}


def pytest_addoption(parser):
    parser.addoption("--reader", action="store", default=None,
                     help="Run tests/device/ against the real PC/SC reader with this name.")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh workspace directory, also exported as TAGSMITH_HOME."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("TAGSMITH_HOME", str(ws))
    return ws
