"""Guard: the suite must pass on any day. Batch ids carry the UTC day they were made, so a test that
names one literally passes only on that day; ids come from what the test created, and the id
scheme itself is tested with a clock injected through open_store."""

from __future__ import annotations

import re
from pathlib import Path

from tagsmith.batches.product import load_product
from tagsmith.batches.store import open_store
from tagsmith.workspace import Workspace

TESTS = Path(__file__).resolve().parent
DISHWASHER = TESTS.parent / "batches" / "products" / "dishwasher.toml"
DAY_BATCH_ID = re.compile(r"""["'](19|20)\d{6}-\d{3}["']""")


def test_no_test_names_a_day_stamped_batch_id():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if DAY_BATCH_ID.search(line):
                offenders.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert not offenders, "batch ids depend on the date; take them from what the test created:\n" + "\n".join(offenders)


def test_batch_ids_follow_the_injected_clock(tmp_path):
    now = ["1999-12-31T23:59:59.999Z"]
    with open_store(Workspace(tmp_path), clock=lambda: now[0]) as store:
        store.add_product(load_product(DISHWASHER))
        first = store.create_batch("aurora-dw600", 2).id
        second = store.create_batch("aurora-dw600", 2).id
        assert (first, second) == ("19991231-001", "19991231-002")
        now[0] = "2000-01-01T00:00:00.000Z"  # past midnight: the day's count starts again
        assert store.create_batch("aurora-dw600", 2).id == "20000101-001"
