"""What one placement at a station came to: a vocabulary of its own, so the command line can name the
results without loading the station's protocol code."""

from __future__ import annotations

from enum import StrEnum


class TagResult(StrEnum):
    """What one placement at a station came to."""

    ENCODED = "encoded"  # a fresh chip personalised and verified
    RESUMED = "resumed"  # an interrupted chip finished and verified
    VERIFIED = "verified"  # a unit already encoded, verified again
    REFUSED = "refused"  # set aside without being written
    FAILED = "failed"  # the chip or a check failed this placement
    TORN = "torn"  # the tag left the field mid-way; it resumes when placed again
