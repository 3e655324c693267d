"""A Ctrl-C that lands just after a transaction's BEGIN leaves nothing open: the next write works.

KeyboardInterrupt can arrive between any two Python bytecodes; the station's journal is flushed on the
way out (provision/encode.py), so a transaction left open by the interrupt made that flush fail with
"cannot start a transaction within a transaction" and the station exit 1 instead of 130.
"""

from __future__ import annotations

import pytest


def _interrupt_after(store, method: str, monkeypatch) -> None:
    original = getattr(store, method)

    def begin_then_interrupted(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(store, method, begin_then_interrupted)


def test_an_interrupt_right_after_begin_rolls_the_write_back(store, monkeypatch):
    batch = store.create_batch("aurora-dw600", 3)
    with monkeypatch.context() as patch:
        _interrupt_after(store, "_begin_write", patch)
        with pytest.raises(KeyboardInterrupt):
            store.allocate_unit(batch.id, bytes.fromhex("04112233445566"), "st1")
    unit = store.allocate_unit(batch.id, bytes.fromhex("04112233445577"), "st1")  # the next write goes through
    assert unit.state == "allocated"
    assert store.batch(batch.id).allocated == 1


def test_an_interrupt_right_after_a_snapshot_begins_ends_it(store, monkeypatch):
    batch = store.create_batch("aurora-dw600", 3)
    original = store._exec

    def exec_then_interrupted(sql, *args):
        result = original(sql, *args)
        if sql == "BEGIN" or sql.startswith("BEGIN ISOLATION"):  # a snapshot's, not a write's BEGIN IMMEDIATE
            raise KeyboardInterrupt
        return result

    with monkeypatch.context() as patch:
        patch.setattr(store, "_exec", exec_then_interrupted)
        with pytest.raises(KeyboardInterrupt), store.snapshot():
            pass
    assert store.allocate_unit(batch.id, bytes.fromhex("04112233445588"), "st1").state == "allocated"
