"""Secure Dynamic Messaging: what the chip mirrors into file 02 on an unauthenticated read.

From ``docs/reference/ntag424.md`` §10: PICCData (plain ASCII or AES-encrypted with the
SDMMetaRead key), SDM session keys from the SDMFileRead key (SV1 C33C / SV2 3CC3),
SDMENCFileData, and the SDMMAC over the ASCII window [SDMMACInputOffset, SDMMACOffset).
Mirrors are upper-case ASCII hex.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .files import CTR_NOT_MIRRORED, FREE, NEVER, SdmSettings
from .sm import AesKey


def _ascii(data: bytes) -> bytes:
    return data.hex().upper().encode("ascii")


def sdm_session_keys(file_read_key: bytes, sdm: SdmSettings, uid: bytes, ctr: int) -> tuple[bytes, bytes]:
    """(KSesSDMFileReadENC, KSesSDMFileReadMAC), ref §10.3."""
    file_read = AesKey(file_read_key)
    ctr_le = ctr.to_bytes(3, "little")
    sv1 = b"\xC3\x3C\x00\x01\x00\x80" + uid + ctr_le
    sv2 = b"\x3C\xC3\x00\x01\x00\x80"  # then only what is mirrored (ref §10.3)
    if sdm.uid_enabled and sdm.meta_read != NEVER:
        sv2 += uid
    if sdm.ctr_enabled and (sdm.meta_read <= 4 or (sdm.meta_read == FREE and sdm.ctr_offset != CTR_NOT_MIRRORED)):
        sv2 += ctr_le
    sv2 += bytes(-len(sv2) % 16)
    return file_read.cmac(sv1), file_read.cmac(sv2)


def picc_data_plaintext(sdm: SdmSettings, uid: bytes, ctr: int, random: Callable[[int], bytes]) -> bytes:
    """PICCDataTag || [UID] || [SDMReadCtr LE] || random padding to 16 bytes (ref §10.2)."""
    tag = (0x80 | len(uid) if sdm.uid_enabled else 0) | (0x40 if sdm.ctr_enabled else 0)
    plain = bytes([tag])
    if sdm.uid_enabled:
        plain += uid
    if sdm.ctr_enabled:
        plain += ctr.to_bytes(3, "little")
    padding = random(16 - len(plain))
    if len(padding) != 16 - len(plain):
        raise ValueError("random source returned the wrong number of bytes")
    return plain + padding


def mirror(static: bytes, sdm: SdmSettings, *, uid: bytes, ctr: int, keys: Sequence[bytes],
           random: Callable[[int], bytes]) -> bytes:
    """The file image an unauthenticated read returns: the static file with every mirror filled in."""
    image = bytearray(static)

    def put(offset: int, text: bytes) -> None:
        image[offset:offset + len(text)] = text

    if sdm.meta_read == FREE:
        if sdm.uid_enabled and sdm.uid_offset is not None:
            put(sdm.uid_offset, _ascii(uid))
        if sdm.ctr_enabled and sdm.ctr_offset is not None and sdm.ctr_offset != CTR_NOT_MIRRORED:
            put(sdm.ctr_offset, _ascii(ctr.to_bytes(3, "big")))  # plain counter: MSB first
    elif sdm.meta_read <= 4 and sdm.picc_offset is not None:
        plain = picc_data_plaintext(sdm, uid, ctr, random)
        put(sdm.picc_offset, _ascii(AesKey(keys[sdm.meta_read]).cbc_encrypt(plain)))
    if sdm.file_read != NEVER:
        assert sdm.mac_input_offset is not None and sdm.mac_offset is not None
        k_enc, k_mac = sdm_session_keys(keys[sdm.file_read], sdm, uid, ctr)
        if sdm.enc_enabled:
            assert sdm.enc_offset is not None and sdm.enc_length is not None
            plain = bytes(static[sdm.enc_offset:sdm.enc_offset + sdm.enc_length // 2])
            enc = AesKey(k_enc)  # per-tap key: used for one IV and one encryption
            iv = enc.encrypt_block(ctr.to_bytes(3, "little") + bytes(13))
            put(sdm.enc_offset, _ascii(enc.cbc_encrypt(plain, iv)))
        window = bytes(image[sdm.mac_input_offset:sdm.mac_offset])
        put(sdm.mac_offset, _ascii(AesKey(k_mac).mact(window)))
    return bytes(image)
