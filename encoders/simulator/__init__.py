"""A simulated NXP NTAG 424 DNA chip (PICC side), usable wherever a Connection is expected.

Written from the data-sheet facts in ``docs/reference/ntag424.md`` and independent of the
reader-side protocol in ``encoders.ntag424``. See :class:`SimulatedNtag424`.
"""

from .chip import SimulatedNtag424
from .files import FileSettings, SdmSettings
from .signing import SIMULATOR_PUBLIC_KEY, sign_uid
from .state import NvState
from .view import ChipView

__all__ = ["ChipView", "FileSettings", "NvState", "SIMULATOR_PUBLIC_KEY", "SdmSettings", "SimulatedNtag424", "sign_uid"]
