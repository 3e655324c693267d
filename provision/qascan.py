"""A QA station's scan loop: tap a sample unit's chip, scan its door label, until the plan decides.

The loop runs on a reader (an inspector taps each sample unit) or on the workspace's simulated chips;
label lines come from a handheld scanner (one line per label, bounded) or a file. What the
inspector is told is the caller's to show, through :class:`ScanPrompts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Protocol

from tagsmith import ConfigError
from tagsmith.encoders.connection import TagRemovedError
from tagsmith.limits import LABEL_SCAN_CHARS
from tagsmith.provision.qa import QaSession, UnitInspection, scan_simulated
from tagsmith.workspace import Workspace


class ScanPrompts(Protocol):
    """What the inspector is told during a reader scan."""

    def tap(self, reader_name: str, pending: list[str]) -> None:
        """Waiting for the next sample unit on the reader."""

    def lifted(self, error: TagRemovedError) -> None:
        """The tag left the field before it was read: tap it again."""

    def remove(self) -> None:
        """The unit is inspected: take it off the reader."""


def label_lines(source: IO[str], ask: Callable[[], None] | None = None) -> Callable[[], str | None]:
    """The next scanned label line from ``source`` (None at its end), bounded; ``ask`` prompts for each."""

    def next_line() -> str | None:
        if ask is not None:
            ask()
        line = source.readline(LABEL_SCAN_CHARS + 1)  # bounded: a label URL is ~100 characters
        if len(line) > LABEL_SCAN_CHARS:
            raise ConfigError(f"a scanned label line is longer than {LABEL_SCAN_CHARS} characters: not a label URL")
        return line.strip() if line else None

    return next_line


def scan_on_reader(session: QaSession, reader: str | None, wait: float | None,
                   next_label: Callable[[], str | None], prompts: ScanPrompts) -> Iterator[UnitInspection]:
    """Inspect sample units tapped on ``reader`` with their labels until the plan decides or the labels end."""
    from tagsmith.encoders.reader import open_reader

    with open_reader(reader) as device:
        while not session.decision and session.pending:
            prompts.tap(device.name, session.pending)
            connection = device.wait_for_tag(wait)
            try:
                reading = session.read(connection)
            except TagRemovedError as exc:
                prompts.lifted(exc)
                continue
            finally:
                connection.close()
            label = next_label()
            if label is None:
                break
            yield session.inspect_reading(reading, label)
            prompts.remove()
            device.wait_for_removal(wait)


def scan_sample(session: QaSession, workspace: Workspace, *, sim: bool, reader: str | None, wait: float | None,
                next_label: Callable[[], str | None], prompts: ScanPrompts) -> Iterator[UnitInspection]:
    """Inspect sample units from the workspace's simulated chips (``sim``) or tapped on ``reader``."""
    if not sim:
        return scan_on_reader(session, reader, wait, next_label, prompts)
    from tagsmith.provision.simpool import sim_pool

    return scan_simulated(session, sim_pool(workspace), iter(next_label, None))

