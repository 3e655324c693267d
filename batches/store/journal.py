"""One unit's personalisation steps, held in memory and committed with the placement's outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagsmith import ConfigError

if TYPE_CHECKING:
    from .units import UnitQueries


class StepJournal:
    """One unit's personalisation steps, held in memory and committed with the placement's outcome.

    A commit per APDU was most of the station's SQL time, and a step journaled is an audit fact,
    not what resume relies on: resume reads the chip (key 0's version, then each slot's). So the
    steps ride on the transaction that ends the placement (``Store.mark_encoded``), or
    :meth:`flush` commits them when it ends otherwise (a tear, a failure, Ctrl-C). A station
    killed outright loses only the steps of the tag in its field; that unit stays recorded as
    encoding, and its resume journals each key it finds already changed (``found``).
    """

    def __init__(self, store: UnitQueries, unit_id: int, station: str) -> None:
        self.store, self.unit_id, self.station = store, unit_id, station
        self._pending: list[tuple[str, bool, str]] = []

    def add(self, step: str, *, found: bool = False) -> None:
        """A step the chip confirmed (``found``: seen done on the chip, by an earlier placement)."""
        if not step or len(step) > 64:
            raise ConfigError("step name must be 1-64 characters")
        self._pending.append((step, found, self.store._now()))

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of the steps not committed yet."""
        return tuple(step for step, _found, _at in self._pending)

    def flush(self) -> None:
        """Commit the pending steps now, in one transaction (a StateError if the unit is not encoding)."""
        if self._pending:
            with self.store._write():
                inserted = self._insert_within(self.unit_id, guarded=True)
            self._committed(inserted)

    def _insert_within(self, unit_id: int, guarded: bool) -> int:
        """Insert the pending steps in the store's open transaction; how many (see :meth:`_committed`)."""
        if unit_id != self.unit_id:
            raise ValueError("a step journal commits only with its own unit")
        if self._pending:
            self.store._insert_steps(unit_id, self._pending, self.station, guarded)
        return len(self._pending)

    def _committed(self, count: int) -> None:
        """The transaction holding the first ``count`` pending steps committed: forget them."""
        del self._pending[:count]
