"""SUN verification pieces for a chip in LRP mode (docs/reference/lrp.md, NT4H2421Gx §9.3).

An LRP chip mirrors PICC data as 24 bytes (48 hex characters): an 8-byte random PICCRand in plain,
then the 16-byte PICCDataTag || UID || SDMReadCtr || random padding, LRICB-encrypted under the
SDM meta-read key's updated key 0 with PICCRand as the counter (NT4H2421Gx §9.3.4.2). The per-tap session
key is SesSDMMasterKey = CMAC_LRP(K_SDMFileRead, SV) with ``SV = 00 01 00 80 [UID] [SDMReadCtr]
[zero padding] 1E E1`` (NT4H2421Gx §9.3.9.2); SDMMAC is CMAC_LRP under its updated key 0, truncated, and
SDMENCFileData is LRICB under its updated key 1 from the counter ``SDMReadCtr || 00 00 00``,
without padding (NT4H2421Gx §9.3.6.2). :data:`LRP_SUN` is LRP mode's :class:`~.sunscheme.SunScheme`.
"""

from __future__ import annotations

from collections.abc import Callable

from tagsmith import VerificationError

from . import crypto
from .channel import SecureMessaging
from .lrp import Lrp

PICC_RAND_LEN = 8
PICC_DATA_LEN = PICC_RAND_LEN + crypto.BLOCK  # 24 bytes, 48 hex characters in the URL
SV_PREFIX = bytes.fromhex("00010080")
SV_SUFFIX = bytes.fromhex("1EE1")


def session_vector(mirrored: bytes) -> bytes:
    """SV of the SDM session key: ``mirrored`` is UID || SDMReadCtr (LE), each only if mirrored; zero-padded
    so that SV with its 1E E1 suffix fills whole blocks."""
    body = SV_PREFIX + mirrored
    return body + bytes(-(len(body) + len(SV_SUFFIX)) % crypto.BLOCK) + SV_SUFFIX


def decrypt_picc_data(meta_read: Lrp, picc: bytes) -> bytes:
    """The 16-byte plaintext of 24-byte LRP PICC data; ``meta_read`` is the meta-read key's LRP under updated key 0."""
    if len(picc) != PICC_DATA_LEN:
        raise VerificationError(f"LRP PICC data must be {PICC_DATA_LEN} bytes, got {len(picc)}")
    return meta_read.decrypt(picc[PICC_RAND_LEN:], picc[:PICC_RAND_LEN], pad=False)[0]


class LrpSdmFileKey:
    """SDMFileRead in LRP mode, with what depends on the key alone made once.

    A tap's session master key is CMAC_LRP over one block, ``EvalLRP(SV xor K1)``, and SV's first four
    bytes never change: the file key's tables, K1 and the evaluation state after those bytes are made
    here, so a tap evaluates 12 bytes instead of 16. The tap's own keys (the master key's tables and
    CMAC subkeys) are new per tap by design; the last tap's are kept, because its SDMMAC and its
    SDMENCFileData need the same ones.
    """

    __slots__ = ("_file_read", "_k1", "_sv_head", "_last")

    def __init__(self, key: bytes) -> None:
        self._file_read = Lrp.from_key(key, 0)
        self._k1 = self._file_read.cmac_subkeys()[0]
        head = int.from_bytes(SV_PREFIX, "big") ^ self._k1 >> 8 * (crypto.BLOCK - len(SV_PREFIX))
        self._sv_head = self._file_read.evaluate(head.to_bytes(len(SV_PREFIX), "big"), final=False)
        self._last: tuple[bytes, tuple[Lrp, Lrp]] | None = None

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return "LrpSdmFileKey()"

    def session_master_key(self, mirrored: bytes) -> bytes:
        """SesSDMMasterKey = CMAC_LRP(K_SDMFileRead, SV): SV is one whole block, so EvalLRP(SV xor K1)."""
        masked = (int.from_bytes(session_vector(mirrored), "big") ^ self._k1).to_bytes(crypto.BLOCK, "big")
        return self._file_read.evaluate(masked[len(SV_PREFIX):], start=self._sv_head)

    def _session(self, mirrored: bytes) -> tuple[Lrp, Lrp]:
        """The tap's LRP under the session master key's updated keys 0 (MAC) and 1 (ENC)."""
        last = self._last  # one read: another thread may replace it, never half-way
        if last is not None and last[0] == mirrored:
            return last[1]
        session = Lrp.pair(self.session_master_key(mirrored))
        self._last = (mirrored, session)
        return session

    def mac(self, mirrored: bytes, message: bytes) -> bytes:
        """SDMMAC: truncated CMAC_LRP of ``message`` under the session master key's updated key 0."""
        return self._session(mirrored)[0].mac_t(message)

    def decrypt_file_data(self, uid: bytes, read_ctr: int, data: bytes) -> bytes:
        """LRICB under the session master key's updated key 1 from ``SDMReadCtr (LE) || 000000``, no padding."""
        if not data or len(data) % crypto.BLOCK:
            raise VerificationError(f"SDMENCFileData of {len(data)} bytes is not whole 16-byte blocks")
        ctr = read_ctr.to_bytes(3, "little")
        return self._session(uid + ctr)[1].decrypt(data, ctr + bytes(3), pad=False)[0]


class LrpSun:
    """SUN in LRP mode: PICCData is PICCRand || 16 encrypted bytes (48 hex characters)."""

    mode = SecureMessaging.LRP
    picc_data_chars = 2 * PICC_DATA_LEN

    def picc_decryptor(self, meta_key: bytes) -> Callable[[bytes], bytes]:
        """LRICB under the SDMMetaRead key's updated key 0, PICCRand as the counter."""
        meta_read = Lrp.from_key(meta_key, 0)
        return lambda picc: decrypt_picc_data(meta_read, picc)

    def file_key(self, key: bytes) -> LrpSdmFileKey:
        """The SDMFileRead key with its LRP tables."""
        return LrpSdmFileKey(key)

    def one_tap_file_key(self, key: bytes) -> LrpSdmFileKey:
        """A per-chip key for one tap: the same object, since what it makes up front a single tap needs anyway."""
        return LrpSdmFileKey(key)


LRP_SUN = LrpSun()
