"""Voiding a unit whose chip is lost: its serial is burnt, never handed out again."""

from __future__ import annotations

from typing import Any

from tagsmith import StateError
from tagsmith.batches.records import DONE, IN_PROGRESS


def void_lost_unit(store: Any, serial: str, reason: str, by: str, *, encoded: bool) -> Any:
    """Void the unit; an encoded one (its chip holds live keys) only when ``encoded`` says its chip is gone."""
    unit = store.find_unit(serial)
    if unit.state in DONE and not encoded:
        raise StateError(f"unit {unit.serial} is {unit.state}: its chip holds live keys. Rework a chip you hold "
                         "with tagsmith tag reset; void a lost encoded chip with --encoded")
    return store.void_unit(unit.id, reason, by=by, states=IN_PROGRESS + (DONE if encoded else ()))
