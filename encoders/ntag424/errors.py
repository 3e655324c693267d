"""Status words of NTAG 424 DNA as exceptions: each status word maps to one class (docs/reference/ntag424.md §2.2).

Messages are one plain-English line naming the command and the status; they never carry key
bytes or secure-messaging plaintext.
"""

from __future__ import annotations

from tagsmith import ChipError, ConfigError, StateError
from tagsmith.encoders.apdu import SW


class ChipStatusError(ChipError):
    """The chip answered a command with an error status word; ``sw`` keeps the number."""

    meaning = "unexpected status"

    def __init__(self, command: str, sw: int) -> None:
        self.command = command
        self.sw = sw
        super().__init__(f"{command} failed: status {sw:04X} ({self.meaning})")


class AuthenticationError(ChipStatusError):
    meaning = "authentication error: wrong key, or the command needs another authenticated key"


class PermissionDeniedError(ChipStatusError):
    meaning = "permission denied by the file or configuration"


class LrpModeError(PermissionDeniedError):
    """AES authentication answered 919D: the chip runs LRP secure messaging (SetConfiguration option 05
    was applied, perhaps by a run torn right after it), so it must be finished over LRP (docs/reference/lrp.md §7)."""

    meaning = "AES authentication refused: the chip runs LRP secure messaging"


class IntegrityError(ChipStatusError):
    meaning = "integrity error: MAC, CRC or padding wrong (session out of step or wrong old key)"


class AuthenticationDelayError(ChipStatusError):
    meaning = "authentication delay: too many failed authentications on this key"


class LengthError(ChipStatusError):
    meaning = "wrong command length"


class ParameterError(ChipStatusError):
    meaning = "parameter error: invalid value or combination"


class BoundaryError(ChipStatusError):
    meaning = "boundary error: access beyond the end of the file"


class NoSuchKeyError(ChipStatusError):
    meaning = "no such key"


class ChipFileNotFoundError(ChipStatusError):
    meaning = "file or application not found"


class ChipMemoryError(ChipStatusError):
    meaning = "chip memory failure"


class CommandAbortedError(ChipStatusError):
    meaning = "command aborted: a previous multi-frame command was not finished"


class ConditionsOfUseError(ChipStatusError):
    meaning = "conditions of use not satisfied: no file selected or a command is ongoing"


class IllegalCommandError(ChipStatusError):
    meaning = "command or class not supported"


class SecurityStatusError(ChipStatusError):
    meaning = "security status not satisfied (refused in this authentication state)"


class WrongParametersError(ChipStatusError):
    meaning = "wrong P1/P2 parameters"


class ResponseError(ChipError):
    """A success status whose response fails its checks: bad MAC, padding, length or RndA'."""


class NotNtag424Error(ChipError):
    """GetVersion identifies a chip that is not an NTAG 424 DNA."""


class NotAuthenticatedError(StateError):
    """The command needs an authenticated session and there is none (or it ended)."""


class IrreversibleOperationError(ConfigError):
    """A permanent chip change (Random ID, LRP) was requested without explicit confirmation."""


_BY_SW: dict[int, type[ChipStatusError]] = {
    SW.AUTHENTICATION_ERROR: AuthenticationError,
    SW.PERMISSION_DENIED: PermissionDeniedError,
    SW.INTEGRITY_ERROR: IntegrityError,
    SW.AUTHENTICATION_DELAY: AuthenticationDelayError,
    SW.LENGTH_ERROR: LengthError,
    SW.ISO_WRONG_LENGTH: LengthError,
    SW.ISO_LC_INCONSISTENT: LengthError,
    SW.PARAMETER_ERROR: ParameterError,
    SW.BOUNDARY_ERROR: BoundaryError,
    SW.NO_SUCH_KEY: NoSuchKeyError,
    SW.FILE_NOT_FOUND: ChipFileNotFoundError,
    SW.ISO_FILE_NOT_FOUND: ChipFileNotFoundError,
    SW.MEMORY_ERROR: ChipMemoryError,
    SW.ISO_MEMORY_FAILURE: ChipMemoryError,
    SW.COMMAND_ABORTED: CommandAbortedError,
    SW.ISO_CONDITIONS: ConditionsOfUseError,
    SW.ILLEGAL_COMMAND_CODE: IllegalCommandError,
    SW.ISO_INS_NOT_SUPPORTED: IllegalCommandError,
    SW.ISO_CLA_NOT_SUPPORTED: IllegalCommandError,
    SW.ISO_SECURITY_STATUS: SecurityStatusError,
    SW.ISO_WRONG_P1P2: WrongParametersError,
}


def error_for(command: str, sw: int) -> ChipStatusError:
    """Build the exception for a failing status word; unknown words keep their number."""
    return _BY_SW.get(sw, ChipStatusError)(command, sw)
