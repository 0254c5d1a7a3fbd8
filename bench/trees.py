"""Deterministic test trees for the benchmarks."""

from __future__ import annotations

import os
import random
from pathlib import Path


def make_mixed_tree(root: Path, small: int, large: int, large_mib: int, per_dir: int = 500, seed: int = 8) -> dict:
    """``small`` files of 512 B..64 KiB (log-uniform) in directories of ``per_dir``, plus ``large`` files of
    ``large_mib`` MiB. Returns {'files', 'bytes'}. Content is pseudo-random so nothing compresses or dedups."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    total = 0
    pool = os.urandom(1 << 20)
    for i in range(small):
        d = root / f"client{(i // per_dir):04d}"
        if i % per_dir == 0:
            d.mkdir(exist_ok=True)
        size = int(2 ** rng.uniform(9, 16))
        off = rng.randrange(0, len(pool) - size)
        (d / f"凭证-{i:07d}.bin").write_bytes(i.to_bytes(8, "little") + pool[off : off + size - 8])
        total += size
    big = root / "archives"
    big.mkdir(exist_ok=True)
    for j in range(large):
        with open(big / f"ledger-{j}.tar", "wb") as fh:
            for _ in range(large_mib):
                fh.write(os.urandom(1 << 20))
        total += large_mib << 20
    return {"files": small + large, "bytes": total}


def make_count_tree(root: Path, files: int, per_dir: int = 1000) -> dict:
    """``files`` tiny files (about 100 bytes) in directories of ``per_dir``: the cost is per file, not per byte."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        d = root / f"d{(i // per_dir):05d}"
        if i % per_dir == 0:
            d.mkdir(exist_ok=True)
        (d / f"f{i:07d}.csv").write_bytes(b"%d,2024-03,1001,100.00,0.00\n" % i * 3)
    return {"files": files, "bytes": None}
