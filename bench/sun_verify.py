"""Benchmark SUN verification: tagsmith's verifier against a straightforward baseline, same run, same URLs;
then LRP taps beside AES ones.

Run: .venv/bin/python bench/sun_verify.py [--taps N] [--lrp-taps M]
Builds N valid AES SUN URLs (distinct UIDs and counters, encrypted PICC data, empty MAC input),
verifies them all with each implementation and prints verifications per second and µs per tap.
Then builds M LRP URLs the same way (an LRP tap costs about 128 single-use AES keys, so M is
smaller) and prints LRP's µs per tap beside AES's and their ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from urllib.parse import parse_qs, urlsplit

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from tagsmith.encoders.ntag424 import SunVerifier, crypto, verify_sun_url
from tagsmith.encoders.ntag424.lrp import Lrp
from tagsmith.encoders.ntag424.lrp_sun import LRP_SUN

META_KEY, FILE_KEY = bytes.fromhex("A0" * 16), bytes.fromhex("B1" * 16)
BASE = "https://id.example.com/01/09506000134352/21/{serial}?p={picc}&c={mac}"


def build_urls(count: int) -> list[str]:
    """Make ``count`` valid SUN URLs the way a chip would fill them."""
    urls = []
    for n in range(count):
        uid, ctr = b"\x04" + n.to_bytes(3, "big") + os.urandom(3), n + 1
        picc = crypto.cbc_encrypt(META_KEY, b"\xc7" + uid + ctr.to_bytes(3, "little") + os.urandom(5))
        _, mac_key = crypto.sdm_session_keys(FILE_KEY, uid, ctr)
        mac = crypto.mac_t(mac_key, b"")
        urls.append(BASE.format(serial=n, picc=picc.hex().upper(), mac=mac.hex().upper()))
    return urls


def build_lrp_urls(count: int) -> list[str]:
    """Make ``count`` valid LRP SUN URLs: PICCRand || LRICB(PICC data), SDMMAC under the tap's LRP session key."""
    meta, file_key, urls = Lrp.from_key(META_KEY, 0), LRP_SUN.file_key(FILE_KEY), []
    for n in range(count):
        uid, ctr, picc_rand = b"\x04" + n.to_bytes(3, "big") + os.urandom(3), n + 1, os.urandom(8)
        plain = b"\xc7" + uid + ctr.to_bytes(3, "little") + os.urandom(5)
        picc = picc_rand + meta.encrypt(plain, picc_rand, pad=False)[0]
        mac = file_key.mac(uid + ctr.to_bytes(3, "little"), b"")
        urls.append(BASE.format(serial=n, picc=picc.hex().upper(), mac=mac.hex().upper()))
    return urls


def baseline_verify(url: str) -> bool:
    """A straightforward verifier: urllib parsing, AES.new per operation, Crypto.Hash.CMAC objects."""
    query = parse_qs(urlsplit(url).query)
    picc = AES.new(META_KEY, AES.MODE_CBC, iv=bytes(16)).decrypt(bytes.fromhex(query["p"][0]))
    if picc[0] != 0xC7:
        return False
    sv2 = bytes.fromhex("3CC300010080") + picc[1:11]
    mac_key = CMAC.new(FILE_KEY, sv2, ciphermod=AES).digest()
    mac = CMAC.new(mac_key, b"", ciphermod=AES).digest()[1::2]
    return mac == bytes.fromhex(query["c"][0])


def measure(name: str, verify, urls: list[str], rounds: int = 15, slices: int = 10) -> float:
    """Sum over URL slices of the best of ``rounds`` passes (robust on a shared box); return µs per tap."""
    size = max(1, len(urls) // slices)
    best = 0.0
    for at in range(0, len(urls), size):
        part, fastest = urls[at:at + size], float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for url in part:
                verify(url)
            fastest = min(fastest, time.perf_counter() - start)
        best += fastest
    per_tap = best / len(urls) * 1e6
    print(f"{name:<34} {len(urls) / best:>10,.0f} verifications/s  {per_tap:6.2f} µs per tap")
    return per_tap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=10_000)
    parser.add_argument("--lrp-taps", type=int, default=500)
    args = parser.parse_args()
    urls = build_urls(args.taps)
    verifier = SunVerifier(meta_key=META_KEY, file_key=FILE_KEY, picc_param="p", mac_param="c")
    assert all(verifier.verify(u).cmac_valid for u in urls) and all(baseline_verify(u) for u in urls)
    print(f"{len(urls)} distinct SUN URLs")
    base = measure("baseline (urllib + CMAC objects)", baseline_verify, urls, rounds=3)
    fast = measure("SunVerifier.verify", verifier.verify, urls)
    call = measure("verify_sun_url (cached verifier)",
                   lambda u: verify_sun_url(u, meta_key=META_KEY, file_key=FILE_KEY, picc_param="p", mac_param="c"),
                   urls)
    print(f"speed-up: {base / fast:.1f}x (SunVerifier.verify), {base / call:.1f}x (verify_sun_url)")
    lrp_urls = build_lrp_urls(args.lrp_taps)
    lrp_verifier = SunVerifier(meta_key=META_KEY, file_key=FILE_KEY, picc_param="p", mac_param="c", scheme=LRP_SUN)
    assert all(lrp_verifier.verify(u).cmac_valid for u in lrp_urls)
    print(f"{len(lrp_urls)} distinct LRP SUN URLs")
    lrp = measure("SunVerifier.verify (LRP)", lrp_verifier.verify, lrp_urls, rounds=3)
    print(f"LRP beside AES: {lrp:.0f} µs against {fast:.2f} µs per tap, {lrp / fast:.0f}x")


if __name__ == "__main__":
    main()
