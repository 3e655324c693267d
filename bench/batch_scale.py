"""Scale check: mint 1,000,000 serials, then export and verify a signed 1,000,000-unit manifest.

Each step runs in its own forked process so its peak memory (ru_maxrss from wait4) is its own.
Target: mint + export + verify under 20 s in all, each under 300 MB.

    .venv/bin/python bench/batch_scale.py [--units N] [--dir DIR] [--format jsonl|csv]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tagsmith.batches.manifest import export_manifest
from tagsmith.batches.product import load_product
from tagsmith.batches.store import open_store
from tagsmith.batches.verify import verify_manifest
from tagsmith.keystore import DIVERSIFICATION_SCHEME
from tagsmith.keystore.signing import MANIFEST_VERIFIER, ed25519_signer, generate_ed25519
from tagsmith.provision.catalog import create_batch, register_product
from tagsmith.provision.demo import example_product_path
from tagsmith.workspace import Workspace

PRODUCT = example_product_path()


def in_child(name: str, step: Callable[[], object]) -> tuple[float, float, object]:
    """Run ``step`` in a forked child; return (seconds, peak MB, its JSON-able result)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        start = time.perf_counter()
        result = step()
        os.write(write, json.dumps({"seconds": time.perf_counter() - start, "result": result}).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0 or not data:
        sys.exit(f"step {name} failed (status {status})")
    out = json.loads(data)
    return out["seconds"], usage.ru_maxrss / 1024, out["result"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--format", default="jsonl", choices=["jsonl", "csv"])
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="tagsmith-bench-"))
    workspace, manifest = Workspace(work), work / f"manifest.{args.format}"
    private, public = generate_ed25519()
    n = args.units

    def setup() -> str:
        with open_store(workspace) as store:
            register_product(store, load_product(PRODUCT))
        return "ok"

    def mint() -> str:
        with open_store(workspace) as store:
            return create_batch(store, "aurora-dw600", n, lot="BENCH", batch_id="bench").id

    def encode() -> int:
        chips = ((bytes([4]) + i.to_bytes(6, "big"), {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, i % 1000) for i in range(n))
        with open_store(workspace) as store:
            return store.bulk_encoded("bench", chips, "bench-station")

    def export() -> int:
        signer, pem = ed25519_signer(private)
        with open_store(workspace) as store:
            return export_manifest(store, "bench", manifest, signer=signer, public_key_pem=pem, fmt=args.format,
                                   diversification=DIVERSIFICATION_SCHEME).units

    def verify() -> int:
        return verify_manifest(manifest, public, verifier=MANIFEST_VERIFIER).units

    print(f"tagsmith batch scale: {n:,} units in {work}")
    in_child("setup", setup)
    total = 0.0
    for name, step, counted in (("mint serials", mint, True), ("bulk-insert encoded units (setup)", encode, False),
                                ("export + sign manifest", export, True), ("verify manifest", verify, True)):
        seconds, peak, result = in_child(name, step)
        total += seconds if counted else 0
        print(f"{name:36s} {seconds:7.2f} s   peak {peak:6.1f} MB   -> {result}")
    size = manifest.stat().st_size / 1e6
    print(f"{'mint + export + verify':36s} {total:7.2f} s   (manifest {size:.0f} MB)   target < 20 s, < 300 MB each")


if __name__ == "__main__":
    main()
