"""A Ctrl-C while the station waits for an overlapped WAL sync must not put the replies out of step:
a later wait would otherwise take the interrupted one's reply as its own and return before its own
sync is on disk (the barrier before a chip's first key change)."""

from __future__ import annotations

import time

import pytest

from tagsmith.batches.walsync import WalSync


class InterruptedOnce:
    """The helper's stdout, whose first readline is cut by a KeyboardInterrupt (the reply stays in the pipe)."""

    def __init__(self, inner) -> None:
        self.inner, self.first = inner, True

    def readline(self) -> bytes:
        if self.first:
            self.first = False
            raise KeyboardInterrupt
        return self.inner.readline()

    def close(self) -> None:
        self.inner.close()


def test_an_interrupted_wait_leaves_its_reply_for_the_next_wait(tmp_path, sync_helper):
    log = sync_helper(delay=0.2)
    (tmp_path / "line.db-wal").write_bytes(b"")
    sync = WalSync(tmp_path / "line.db")
    try:
        sync.start()
        sync._helper.stdout = InterruptedOnce(sync._helper.stdout)
        with pytest.raises(KeyboardInterrupt):
            sync.wait()
        sync.wait()  # the interrupted sync's reply is taken here
        sync.start()
        sync.wait()  # so this one waits for its own
        returned = time.monotonic()
        synced = log()
        assert len(synced) == 2 and synced[1][1] <= returned
    finally:
        sync.close()
