# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes and durations as messages and progress lines show them."""

from __future__ import annotations

import math


def human_size(size: float) -> str:
    """1288490188 -> '1.2 GiB' (binary units; whole bytes below 1 KiB: '512 B')."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_eta(seconds: float) -> str:
    """Seconds still to go, rounded up: '40 s', '3 min', '2 h 05 min'."""
    seconds = max(0, int(math.ceil(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = int(math.ceil(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
