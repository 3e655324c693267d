"""Several reader heads at one station: simulated heads in-process, a head that fails while the others
finish, and two vpcd readers through the real pcscd fed by one `sim serve` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from tagsmith.encoders.connection import ReaderUnavailableError
from tagsmith.provision.heads import Head, HeadEvent, HeadFailed, HeadsSummary, run_heads
from tagsmith.provision.station import SimulatedSource

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase", "COLUMNS": "200"}


def tagsmith(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TAGSMITH, "--home", str(home), *args], capture_output=True, text=True,
                          env={**os.environ, **ENV}, stdin=subprocess.DEVNULL, timeout=timeout)


def new_batch(home: Path, quantity: int) -> str:
    made = tagsmith(home, "batch", "create", "--product", "aurora-dw600", "--quantity", str(quantity), "--json")
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)["id"]


def check_batch(home: Path, batch: str, quantity: int) -> None:
    units = json.loads(tagsmith(home, "batch", "units", batch, "--json").stdout)
    assert len(units) == quantity
    assert len({u["serial"] for u in units}) == len({u["uid"] for u in units}) == quantity
    assert {u["state"] for u in units} == {"encoded"}


def test_three_simulated_heads_share_one_batch(tmp_path, make_demo_home):
    home = make_demo_home(tmp_path)
    batch = new_batch(home, 24)
    run = tagsmith(home, "station", "run", "--batch", batch, "--sim", "--heads", "3", "--sim-tear-rate", "0.2",
                   "--seed", "5", "--json")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    tags, summary = lines[:-1], lines[-1]
    assert {line["head"] for line in tags} == {"sim-1", "sim-2", "sim-3"}
    assert summary["batch_complete"] == {"done": 24, "quantity": 24} and summary["failed_heads"] == {}
    assert summary["done"] == sum(head["done"] for head in summary["heads"].values()) == 24
    assert summary["tags"] == len(tags) == sum(head["tags"] for head in summary["heads"].values())
    check_batch(home, batch, 24)


class UnpluggedAfter(SimulatedSource):
    """Simulated placements until the k-th, then the reader is gone (as a pulled USB cable)."""

    def __init__(self, k: int, **options) -> None:
        super().__init__(100, **options)
        self.left = k

    def next_tag(self):
        if self.left == 0:
            raise ReaderUnavailableError("reader 'head-b' was unplugged")
        self.left -= 1
        return super().next_tag()


def test_a_failing_head_is_reported_and_the_others_finish(world):
    def head(name: str, source_factory) -> Head:
        @contextmanager
        def open_source(ctx, stop: threading.Event):
            yield source_factory()
        return Head(name, open_source)

    batch = world.new_batch(12)
    heads = [head("head-a", lambda: SimulatedSource(100, seed=1, latency_ms=5)),  # slower: head-b fails first
             head("head-b", lambda: UnpluggedAfter(2, seed=2))]
    contexts = []

    def make_context():
        from tagsmith.batches.store import open_store

        contexts.append(world.context(batch_id=batch, store=open_store(world.workspace)))
        return contexts[-1]

    events = list(run_heads(make_context, heads))
    summary = events[-1]
    assert isinstance(summary, HeadsSummary)
    failed = [e for e in events if isinstance(e, HeadFailed)]
    assert [(f.head, f.reason) for f in failed] == [("head-b", "reader 'head-b' was unplugged")]
    assert failed[0].to_dict() == {"event": "head", "head": "head-b", "state": "failed",
                                   "reason": "reader 'head-b' was unplugged"}
    by_head = {name: sum(1 for e in events if isinstance(e, HeadEvent) and e.head == name) for name in ("head-a", "head-b")}
    assert by_head == {"head-a": 10, "head-b": 2} and summary.done == 12 and summary.complete == (12, 12)
    assert summary.failed == {"head-b": "reader 'head-b' was unplugged"}


def test_ctrl_c_reports_every_tag_the_heads_finish_before_the_summary(world):
    def head(name: str, seed: int) -> Head:
        @contextmanager
        def open_source(ctx, stop: threading.Event):
            yield SimulatedSource(1000, seed=seed, latency_ms=1)
        return Head(name, open_source)

    def make_context():
        from tagsmith.batches.store import open_store

        return world.context(store=open_store(world.workspace))

    events = run_heads(make_context, [head("a", 1), head("b", 2), head("c", 3)])
    seen = [next(events) for _ in range(5)]
    item = events.throw(KeyboardInterrupt)  # as the CLI passes Ctrl-C in (commands/station.py)
    while not isinstance(item, HeadsSummary):
        seen.append(item)
        item = next(events)
    tags = [e for e in seen if isinstance(e, HeadEvent)]
    assert item.interrupted and item.tags == len(tags) == sum(h.tags for h in item.heads.values())
    assert len({e.event.serial for e in tags}) == len(tags)


@pytest.mark.pcscd
def test_two_vpcd_reader_heads_fed_by_one_sim_serve(pcscd, tmp_path, make_demo_home):
    with pcscd.slot_lock:
        slots = [pcscd.free_slots.pop(0), pcscd.free_slots.pop(0)]
    try:
        home = make_demo_home(tmp_path)
        batch = new_batch(home, 6)
        serve = subprocess.Popen([TAGSMITH, "sim", "serve", "--port", str(slots[0].port), "--port", str(slots[1].port),
                                  "--count", "3", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, **ENV})
        try:
            run = tagsmith(home, "station", "run", "--batch", batch, "--reader", slots[0].reader, "--reader",
                           slots[1].reader, "--wait", "30", "--allow-simulator-signature", "--json", timeout=180)
        finally:
            serve.terminate()
            served, _ = serve.communicate(timeout=30)
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert {line["head"] for line in lines[:-1]} == {slots[0].reader, slots[1].reader}
        assert lines[-1]["batch_complete"] == {"done": 6, "quantity": 6}, lines
        assert {json.loads(line)["port"] for line in served.splitlines()} == {slots[0].port, slots[1].port}
        check_batch(home, batch, 6)
    finally:
        with pcscd.slot_lock:
            pcscd.free_slots.extend(slots)


def test_a_station_whose_every_head_failed_exits_non_zero(world):
    from tagsmith import TagsmithError
    from tagsmith.commands.station import session_exit

    def head(name: str) -> Head:
        @contextmanager
        def open_source(ctx, stop: threading.Event):
            yield UnpluggedAfter(0)
        return Head(name, open_source)

    def make_context():
        from tagsmith.batches.store import open_store

        return world.context(store=open_store(world.workspace))

    summary = list(run_heads(make_context, [head("a"), head("b")]))[-1]
    assert summary.done == 0 and set(summary.failed) == {"a", "b"}
    with pytest.raises(TagsmithError, match="every reader head failed"):
        session_exit(summary)

    @contextmanager
    def no_chips(ctx, stop: threading.Event):
        yield SimulatedSource(0)

    one_ended = list(run_heads(make_context, [head("a"), Head("b", no_chips)]))[-1]
    assert set(one_ended.failed) == {"a"}
    session_exit(one_ended)  # one head failed, the other ran dry: not every head failed, no error
