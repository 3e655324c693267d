"""NTAG 424 DNA protocol core: pure bytes in, bytes out; talks to a chip only through a Connection."""

from .channel import CommMode, SecureChannel, SecureMessaging
from .errors import ChipStatusError, LrpModeError, NotAuthenticatedError, NotNtag424Error, ResponseError, error_for
from .ev2 import Ev2Channel
from .files import KEY_FREE, KEY_NEVER, AccessRights, FileSettings, SdmOptions, SdmSettings
from .originality import OriginalityResult, Signer, verify_originality
from .session import Ntag424Session
from .sun import SunResult, SunVerifier, verify_sun_url
from .template import RenderedTemplate, SunTemplate, compile_template, url_from_ndef_file
from .version import VersionInfo

__all__ = [
    "KEY_FREE", "KEY_NEVER", "AccessRights", "ChipStatusError", "CommMode", "Ev2Channel", "FileSettings",
    "LrpModeError", "NotAuthenticatedError", "NotNtag424Error", "Ntag424Session", "OriginalityResult", "RenderedTemplate",
    "ResponseError", "SdmOptions", "SdmSettings", "SecureChannel", "SecureMessaging", "Signer", "SunResult", "SunTemplate",
    "SunVerifier", "VersionInfo", "compile_template", "error_for", "url_from_ndef_file", "verify_originality", "verify_sun_url",
]
