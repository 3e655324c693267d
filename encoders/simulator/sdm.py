"""Secure Dynamic Messaging: what the chip mirrors into file 02 on an unauthenticated read.

From ``docs/reference/ntag424.md`` §10: PICCData (plain ASCII or AES-encrypted with the
SDMMetaRead key), SDM session keys from the SDMFileRead key (SV1 C33C / SV2 3CC3),
SDMENCFileData, and the SDMMAC over the ASCII window [SDMMACInputOffset, SDMMACOffset).
In LRP mode (``docs/reference/lrp.md`` §6; NT4H2421Gx §9.3.4.2, §9.3.6.2, §9.3.9.2) the PICC data
is PICCRand || LRICB of the same plaintext, and one LRP session master key gives the MAC and
ENC keys. Mirrors are upper-case ASCII hex.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .files import CTR_NOT_MIRRORED, FREE, NEVER, SdmSettings
from .lrp import Lrp
from .sm import AesKey


def _ascii(data: bytes) -> bytes:
    return data.hex().upper().encode("ascii")


def _mirrored_identity(sdm: SdmSettings, uid: bytes, ctr: int) -> bytes:
    """The UID and SDMReadCtr (LSB first) a session vector takes: only what is mirrored (docs/reference/ntag424.md §10.3)."""
    out = b""
    if sdm.uid_enabled and sdm.meta_read != NEVER:
        out += uid
    if sdm.ctr_enabled and (sdm.meta_read <= 4 or (sdm.meta_read == FREE and sdm.ctr_offset != CTR_NOT_MIRRORED)):
        out += ctr.to_bytes(3, "little")
    return out


def sdm_session_keys(file_read_key: bytes, sdm: SdmSettings, uid: bytes, ctr: int) -> tuple[bytes, bytes]:
    """(KSesSDMFileReadENC, KSesSDMFileReadMAC), docs/reference/ntag424.md §10.3."""
    file_read = AesKey(file_read_key)
    sv1 = b"\xC3\x3C\x00\x01\x00\x80" + uid + ctr.to_bytes(3, "little")
    sv2 = b"\x3C\xC3\x00\x01\x00\x80" + _mirrored_identity(sdm, uid, ctr)
    sv2 += bytes(-len(sv2) % 16)
    return file_read.cmac(sv1), file_read.cmac(sv2)


def lrp_sdm_session_keys(file_read_key: bytes, sdm: SdmSettings, uid: bytes, ctr: int) -> tuple[Lrp, Lrp]:
    """(MAC, ENC) LRP keys of one tap: updated keys 0 and 1 of SesSDMFileReadMasterKey.

    ``SV = 00 01 00 80 || [UID] || [SDMReadCtr] || zero padding || 1E E1``, a whole number of
    blocks; the master key is CMAC_LRP(K_SDMFileRead, SV) (NT4H2421Gx §9.3.9.2).
    """
    sv = b"\x00\x01\x00\x80" + _mirrored_identity(sdm, uid, ctr)
    sv += bytes(-(len(sv) + 2) % 16) + b"\x1E\xE1"
    return Lrp.pair(Lrp(file_read_key, 0).cmac(sv))


def picc_data_plaintext(sdm: SdmSettings, uid: bytes, ctr: int, random: Callable[[int], bytes]) -> bytes:
    """PICCDataTag || [UID] || [SDMReadCtr LE] || random padding to 16 bytes (docs/reference/ntag424.md §10.2)."""
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
           random: Callable[[int], bytes], lrp: bool = False) -> bytes:
    """The file image an unauthenticated read returns: the static file with every mirror filled in.

    ``lrp``: the chip is in LRP mode, and every cryptographic mirror is LRP's.
    """
    image = bytearray(static)

    def put(offset: int, text: bytes) -> None:
        image[offset:offset + len(text)] = text

    if sdm.meta_read == FREE:
        if sdm.uid_enabled and sdm.uid_offset is not None:
            put(sdm.uid_offset, _ascii(uid))
        if sdm.ctr_enabled and sdm.ctr_offset is not None and sdm.ctr_offset != CTR_NOT_MIRRORED:
            put(sdm.ctr_offset, _ascii(ctr.to_bytes(3, "big")))  # plain counter: MSB first
    elif sdm.meta_read <= 4 and sdm.picc_offset is not None:
        put(sdm.picc_offset, _ascii(_picc_data(sdm, uid, ctr, keys[sdm.meta_read], random, lrp)))
    if sdm.file_read != NEVER:
        assert sdm.mac_input_offset is not None and sdm.mac_offset is not None
        mac, enc = _file_read_ciphers(keys[sdm.file_read], sdm, uid, ctr, lrp)
        if sdm.enc_enabled:
            assert sdm.enc_offset is not None and sdm.enc_length is not None
            plain = bytes(static[sdm.enc_offset:sdm.enc_offset + sdm.enc_length // 2])
            put(sdm.enc_offset, _ascii(enc(plain)))
        put(sdm.mac_offset, _ascii(mac(bytes(image[sdm.mac_input_offset:sdm.mac_offset]))))
    return bytes(image)


def _picc_data(sdm: SdmSettings, uid: bytes, ctr: int, meta_read_key: bytes, random: Callable[[int], bytes],
               lrp: bool) -> bytes:
    """Encrypted PICC data: AES-CBC, or PICCRand || LRICB under K'_0 from counter PICCRand (docs/reference/ntag424.md §10.2)."""
    if not lrp:
        return AesKey(meta_read_key).cbc_encrypt(picc_data_plaintext(sdm, uid, ctr, random))
    picc_rand = random(8)
    if len(picc_rand) != 8:
        raise ValueError("random source returned the wrong number of bytes")
    encrypted, _ = Lrp(meta_read_key, 0).encrypt(picc_data_plaintext(sdm, uid, ctr, random), picc_rand)
    return picc_rand + encrypted


def _file_read_ciphers(file_read_key: bytes, sdm: SdmSettings, uid: bytes, ctr: int,
                       lrp: bool) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    """(SDMMAC over a window, SDMENCFileData of a plaintext) for one tap (docs/reference/ntag424.md §10.3, §10.4)."""
    ctr_le = ctr.to_bytes(3, "little")
    if lrp:  # LRICB under updated key 1, counter SDMReadCtr || 000000, no padding (NT4H2421Gx §9.3.6.2)
        lrp_mac, lrp_enc = lrp_sdm_session_keys(file_read_key, sdm, uid, ctr)
        return lrp_mac.mact, lambda plain: lrp_enc.encrypt(plain, ctr_le + bytes(3))[0]
    k_enc, k_mac = sdm_session_keys(file_read_key, sdm, uid, ctr)

    def encrypt(plain: bytes) -> bytes:
        enc = AesKey(k_enc)  # per-tap key: used for one IV and one encryption
        return enc.cbc_encrypt(plain, enc.encrypt_block(ctr_le + bytes(13)))

    return AesKey(k_mac).mact, encrypt
