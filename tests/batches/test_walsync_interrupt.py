"""A Ctrl-C while the station waits for an overlapped WAL sync must not put the replies out of step:
a later wait must neither take the interrupted one's reply as its own (and return before its own sync
is on disk: the barrier before a chip's first key change) nor wait for a reply already taken (and hang
the station on its way out)."""

from __future__ import annotations

import threading
import time

import pytest

from tagsmith.batches.walsync import WalSync


class InterruptedOnce:
    """The helper's stdout, whose first readline is cut by a KeyboardInterrupt: before the reply is read
    (it stays in the pipe), or ``after_reading`` it (it is gone)."""

    def __init__(self, inner, after_reading: bool = False) -> None:
        self.inner, self.first, self.after_reading = inner, True, after_reading

    def readline(self) -> bytes:
        if self.first:
            self.first = False
            if self.after_reading:
                self.inner.readline()
            raise KeyboardInterrupt
        return self.inner.readline()

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("after_reading", [False, True])
def test_an_interrupted_wait_leaves_the_next_waits_in_step(tmp_path, sync_helper, after_reading):
    log = sync_helper(delay=0.2)
    (tmp_path / "line.db-wal").write_bytes(b"")
    sync = WalSync(tmp_path / "line.db")
    try:
        sync.start()
        sync._helper.stdout = InterruptedOnce(sync._helper.stdout, after_reading)
        with pytest.raises(KeyboardInterrupt):
            sync.wait()
        waiting = threading.Thread(target=lambda: (sync.wait(), sync.start(), sync.wait()), daemon=True)
        waiting.start()
        waiting.join(10)
        assert not waiting.is_alive(), "a wait hangs for a reply already taken"
        returned = time.monotonic()
        synced = log()
        assert len(synced) == 2 and synced[1][1] <= returned  # the last wait returned after its own sync
    finally:
        sync.close()
