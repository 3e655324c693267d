"""tagsmith: provision NTAG 424 DNA chips, serials and QR door labels on the production line.

This module holds definitions only (pytest imports it a second time under the checkout's
folder name, so it must have no side effects and import no subpackage).
"""

__version__ = "0.1.0"


class TagsmithError(Exception):
    """Base of every error tagsmith expects; the CLI prints it as one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(TagsmithError, ValueError):
    """Bad input from a user or a file: a GTIN, a template, a product file, an option."""

    exit_code = 2


class ChipError(TagsmithError):
    """The chip answered with an error status or a response that fails its checks."""

    exit_code = 3


class ReaderError(TagsmithError):
    """The reader side failed: no service, no reader, tag lifted from the field."""

    exit_code = 4


class KeystoreError(TagsmithError):
    """The keystore cannot be opened or used: wrong passphrase, damaged file, unknown key."""

    exit_code = 5


class VerificationError(TagsmithError):
    """Something was checked and found wrong: a SUN MAC, a manifest signature, a unit."""

    exit_code = 6


class StateError(TagsmithError):
    """The request does not fit the current state: a closed batch, a foreign tag, a used serial."""

    exit_code = 7


class NotFoundError(TagsmithError, LookupError):
    """A named thing does not exist: batch, product, key set, reader."""

    exit_code = 8
