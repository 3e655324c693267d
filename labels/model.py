"""What a label shows about one unit: the record the CLI or the station hands to the labels layer."""

from __future__ import annotations

from dataclasses import dataclass

from tagsmith import ConfigError

TEXT_FIELDS = ("url", "serial", "model", "gtin", "name", "lot", "extra_text")


@dataclass(frozen=True)
class LabelData:
    """One unit's label content.

    ``url`` is the unit's GS1 Digital Link URL as minted by batches (it is what the QR encodes);
    the other fields are printed in human-readable form by the layout's text lines.
    """

    url: str
    serial: str
    model: str
    gtin: str
    name: str
    lot: str | None = None
    extra_text: str | None = None

    def __post_init__(self) -> None:
        if not self.url.lower().startswith(("https://", "http://")):
            raise ConfigError(f"label for serial {self.serial!r}: URL must start with https:// ({self.url!r})")
        if not self.serial:
            raise ConfigError(f"label for {self.url}: empty serial")

    def field(self, name: str) -> str | None:
        """The value of a text field by name (None when the unit has no such value)."""
        value = getattr(self, name)
        return value if value not in (None, "") else None
