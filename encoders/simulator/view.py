"""A read-only view of a simulated chip's state, for tests, benches and the tools around the chip.

Everything it returns is a copy or immutable: the chip changes only through APDUs, the field
(``place``/``remove``) and ``restore``. RF answers follow ``docs/reference/ntag424.md`` §12
(Random ID: a random 4-byte UID and ATQA 0304 from the next power-up).
"""

from __future__ import annotations

from .core import ChipCore
from .files import FileSettings


class ChipView:
    """The stored (NVM) and volatile (this placement) state of one simulated chip, live."""

    __slots__ = ("_chip",)

    def __init__(self, chip: ChipCore) -> None:
        self._chip = chip

    # --- stored state

    @property
    def key_versions(self) -> tuple[int, ...]:
        return tuple(self._chip.nv.key_versions)

    def key(self, key_no: int) -> bytes:
        """A key's current value (test introspection; treat as secret)."""
        return self._chip.nv.keys[key_no]

    @property
    def read_counter(self) -> int:
        """SDMReadCtr of file 02."""
        return self._chip.nv.sdm_read_ctr

    @property
    def random_id(self) -> bool:
        return self._chip.nv.random_id

    @property
    def lrp(self) -> bool:
        """LRP mode switched on (SetConfiguration option 05): stored, for good."""
        return self._chip.nv.lrp

    @property
    def tot_fail_counters(self) -> tuple[int, ...]:
        return tuple(self._chip.nv.tot_fail_ctr)

    @property
    def consecutive_failures(self) -> tuple[int, ...]:
        return tuple(self._chip.nv.consecutive_failures)

    def file_settings(self, file_no: int) -> FileSettings:
        return self._chip.nv.settings[file_no]

    def file_settings_bytes(self, file_no: int) -> bytes:
        """The GetFileSettings response body for ``file_no``."""
        return self._chip.nv.settings[file_no].get_body()

    def file_contents(self, file_no: int) -> bytes:
        """The static contents of a file (no SDM mirroring)."""
        return bytes(self._chip.nv.contents[file_no])

    # --- field and volatile state

    @property
    def in_field(self) -> bool:
        return self._chip.in_field

    @property
    def apdu_count(self) -> int:
        """APDUs received during the current placement."""
        return self._chip.vol.apdu_count

    @property
    def apdu_total(self) -> int:
        """APDUs received over the chip's life."""
        return self._chip.apdu_total

    @property
    def authenticated_key(self) -> int | None:
        """Key number of the running authentication, or None."""
        session = self._chip.vol.session
        return session.key_no if session is not None else None

    @property
    def secure_messaging(self) -> str | None:
        """``"aes"`` or ``"lrp"``: the running authentication's secure messaging, or None."""
        session = self._chip.vol.session
        return session.mode if session is not None else None

    @property
    def cmd_ctr(self) -> int | None:
        """CmdCtr of the running authentication, or None."""
        session = self._chip.vol.session
        return session.cmd_ctr if session is not None else None

    @property
    def selected(self) -> str:
        """Selected level: ``"picc"`` (MF) or ``"app"`` (the NDEF application DF)."""
        return self._chip.vol.level.value

    @property
    def selected_file(self) -> int | None:
        """FileNo of the ISO-selected elementary file, if any."""
        return self._chip.vol.selected_file

    @property
    def atqa(self) -> bytes:
        return bytes.fromhex("0304" if self._chip.vol.random_id else "0344")

    @property
    def anticollision_uid(self) -> bytes:
        """The UID the reader sees at anticollision: 4 random bytes (08 ...) per activation with Random ID."""
        return self._chip.vol.anticollision_uid
