"""The simulator's internal way to end a command with a status word."""

from __future__ import annotations


class ChipStatus(Exception):
    """Raised inside the simulated chip to answer the current APDU with ``sw`` and no data.

    Never leaves :class:`~tagsmith.encoders.simulator.SimulatedNtag424`: ``transceive`` turns it
    into ``(b"", sw)``, as a real chip answers an error with a bare status word (DS §9.1.9).
    """

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = int(sw)
