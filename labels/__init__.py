"""QR door labels: unit records in, PDF sheets and rolls, ZPL, PNG/SVG previews out.

The labels layer never talks to a chip or to the database: callers pass :class:`LabelData`
records in (``tagsmith.labels.model``). This module holds definitions only, so that importing
it stays cheap (segno and reportlab load with the modules that need them).
"""

from __future__ import annotations

from tagsmith import TagsmithError


class MissingToolError(TagsmithError):
    """An external program (pdftoppm, zbarimg) is not installed; the message names its Debian package."""

    exit_code = 1


class PrinterError(TagsmithError):
    """A label printer sink could not be opened or written (unreachable host, missing device)."""

    exit_code = 1
