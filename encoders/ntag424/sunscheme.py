"""What a SUN's cryptography depends on the secure-messaging mode (docs/reference/ntag424.md §9.3, §10.2-§10.5).

A resolver's steps are the same in every mode: decrypt PICCData (its plaintext layout is common),
derive the tap's SDM session keys from UID and SDMReadCtr, check SDMMAC, decrypt SDMENCFileData.
A :class:`SunScheme` supplies the mode's part of each step and the PICCData mirror length;
:data:`AES_SUN` is AES mode's (NT4H2421Gx §9.3.3-§9.3.9.1, AN12196 §4). The verifier and the URL
templates take a scheme, so a second mode is a second implementation of this protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tagsmith import fastaes

from . import crypto
from .channel import SecureMessaging


class SdmFileKey(Protocol):
    """One SDMFileRead key, expanded once: the per-tap SDMMAC and SDMENCFileData under it."""

    def mac(self, mirrored: bytes, message: bytes) -> bytes:
        """SDMMAC (8 bytes) of ``message``; ``mirrored`` is UID(7) || SDMReadCtr(3, LE), each only if mirrored."""
        ...

    def decrypt_file_data(self, uid: bytes, read_ctr: int, data: bytes) -> bytes:
        """The plaintext of SDMENCFileData (whole blocks) of a tap with this UID and counter."""
        ...


class SunScheme(Protocol):
    """One mode's SUN cryptography."""

    @property
    def mode(self) -> SecureMessaging:
        """The secure-messaging mode whose SUNs this scheme reads."""
        ...

    @property
    def picc_data_chars(self) -> int:
        """Length of the encrypted PICCData mirror in ASCII hex characters (§9.3)."""
        ...

    def picc_decryptor(self, meta_key: bytes) -> Callable[[bytes], bytes]:
        """Under the SDMMetaRead key: encrypted PICCData -> its 16-byte plaintext (tag, UID, counter, padding)."""
        ...

    def file_key(self, key: bytes) -> SdmFileKey:
        """The SDMFileRead key, expanded for the many taps it will check."""
        ...

    def one_tap_file_key(self, key: bytes) -> SdmFileKey:
        """A per-chip SDMFileRead key for the one tap at hand."""
        ...


class _AesSdm:
    """SDMMAC and SDMENCFileData in AES mode (§10.3-§10.5), given CMAC(K_SDMFileRead, SV) for a 16-byte SV."""

    __slots__ = ()

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"{type(self).__name__}()"

    def _session_key(self, sv: bytes) -> bytes:
        raise NotImplementedError

    def mac(self, mirrored: bytes, message: bytes) -> bytes:
        """MACt(KSesSDMFileReadMAC, message); SV2 = 3CC3 00010080 || mirrored, zero-padded to a block."""
        sv2 = (crypto.SV_SDM_MAC + mirrored).ljust(crypto.BLOCK, b"\x00")
        return fastaes.cmac_once(self._session_key(sv2), message)[1::2]

    def decrypt_file_data(self, uid: bytes, read_ctr: int, data: bytes) -> bytes:
        """AES-CBC under KSesSDMFileReadENC with IVe = E(key, SDMReadCtr(LE) || 0^13) (§10.5)."""
        ctr = read_ctr.to_bytes(3, "little")
        enc_key = crypto.AesKey(self._session_key(crypto.SV_SDM_ENC + uid + ctr))
        return enc_key.cbc_decrypt(data, enc_key.ecb_encrypt(ctr + bytes(13)))


class AesSdmFileKey(_AesSdm):
    """An SDMFileRead key expanded for many taps: SV1 and SV2 are each one whole block, so their CMAC
    is E(K, SV xor K1) with K1 computed once; a tap then costs one block for its session key and a CMAC."""

    __slots__ = ("_block", "_k1")

    def __init__(self, key: bytes) -> None:
        self._block = fastaes.block_key(key)
        self._k1 = fastaes.double(int.from_bytes(self._block.encrypt(crypto.ZERO_BLOCK), "big"))

    def _session_key(self, sv: bytes) -> bytes:
        return self._block.encrypt((int.from_bytes(sv, "big") ^ self._k1).to_bytes(crypto.BLOCK, "big"))


class AesOneTapFileKey(_AesSdm):
    """A per-chip SDMFileRead key used for one tap: one-shot CMACs, cheaper than expanding the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _session_key(self, sv: bytes) -> bytes:
        return fastaes.cmac_once(self._key, sv)


class AesSun:
    """SUN in AES mode: PICCData is one AES block under SDMMetaRead (32 hex characters, §10.2)."""

    mode = SecureMessaging.AES
    picc_data_chars = 2 * crypto.BLOCK

    def picc_decryptor(self, meta_key: bytes) -> Callable[[bytes], bytes]:
        """AES-CBC with a zero IV over one block, which is ECB."""
        return fastaes.block_key(meta_key).decrypt

    def file_key(self, key: bytes) -> AesSdmFileKey:
        """The SDMFileRead key with its CMAC subkey K1."""
        return AesSdmFileKey(key)

    def one_tap_file_key(self, key: bytes) -> AesOneTapFileKey:
        """The SDMFileRead key as it is: two one-shot CMACs cost less than expanding it."""
        return AesOneTapFileKey(key)


AES_SUN = AesSun()
