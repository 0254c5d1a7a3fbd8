# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Damage detection: does a snapshot (or a file) already hold the damage of an incident?

Pure functions over restic's JSON output (``ls --json``, ``diff --json``) and over byte samples, so unit tests can
feed them captured data. The module ``snapshot_damage`` runs restic and calls these; the module ``restore_swap`` uses
:func:`file_damage` to tell damaged files from ones that were legitimately changed after the snapshot.
"""

from __future__ import annotations

import fnmatch
import math
import os
import posixpath
from collections.abc import Iterable
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.safe_fs import open_regular

# Names ransomware leaves behind (matched case-insensitively against the file name).
RANSOM_NOTE_PATTERNS: tuple[str, ...] = (
    "*readme*decrypt*",
    "*decrypt*instruction*",
    "*how_to_decrypt*",
    "*how-to-decrypt*",
    "*how_to_recover*",
    "*how_to_restore*",
    "*restore_files*",
    "*restore-my-files*",
    "*recover*files*.txt",
    "*your_files*",
    "*!!!*read*",
    "*_readme.txt",
    "*ransom*",
    "*decrypt*.html",
    "*decrypt*.hta",
    "*decrypt*.txt",
    "恢复文件*",
    "*解密*",
)

# Extensions ransomware appends (lower case, with the dot).
RANSOM_EXTENSIONS: tuple[str, ...] = (
    ".locked",
    ".lock",
    ".encrypted",
    ".enc",
    ".crypt",
    ".crypted",
    ".cry",
    ".crypz",
    ".lockbit",
    ".ryk",
    ".ryuk",
    ".wncry",
    ".wcry",
    ".wannacry",
    ".cerber",
    ".locky",
    ".zepto",
    ".conti",
    ".phobos",
    ".makop",
    ".stop",
    ".djvu",
    ".hive",
    ".blackcat",
    ".akira",
    ".babyk",
    ".pay",
    ".ransom",
)

# Formats that are compressed or encrypted by nature: high entropy there says nothing.
HIGH_ENTROPY_FORMATS: tuple[str, ...] = (
    ".zip",
    ".gz",
    ".tgz",
    ".bz2",
    ".xz",
    ".zst",
    ".7z",
    ".rar",
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".mp3",
    ".mp4",
    ".xlsx",
    ".docx",
    ".pptx",
    ".ofd",
    ".gpg",
    ".pgp",
    ".p12",
    ".pfx",
)

# Magic bytes of formats bookkeeping data uses: a file that lost its magic is damaged.
MAGIC: dict[str, bytes] = {
    ".sqlite": b"SQLite format 3\x00",
    ".sqlite3": b"SQLite format 3\x00",
    ".db": b"SQLite format 3\x00",
    ".pdf": b"%PDF-",
    ".zip": b"PK",
    ".xlsx": b"PK",
    ".docx": b"PK",
    ".png": b"\x89PNG",
    ".jpg": b"\xff\xd8\xff",
    ".jpeg": b"\xff\xd8\xff",
    ".gz": b"\x1f\x8b",
}

DEFAULT_THRESHOLDS: dict[str, Any] = {
    # A fall of this fraction (or more) in file count or bytes against the predecessor is damage.
    "max_file_drop": 0.3,
    "max_bytes_drop": 0.5,
    # This fraction (or more) of the predecessor's files modified at once is damage ...
    "max_modified_ratio": 0.5,
    # ... when at least this many files changed (small trees change wholesale legitimately).
    "min_files": 4,
    # Shannon entropy (bits per byte) above which sampled content counts as encrypted/random.
    "entropy_bits": 7.2,
    # How many added/modified files to sample with `restic dump`, and how many bytes of each.
    "sample_files": 4,
    "sample_bytes": 65536,
    # Fraction of sampled files with high entropy that makes the snapshot damaged.
    "entropy_ratio": 0.5,
}


def normalise_root(path: str) -> str:
    path = posixpath.normpath("/" + path.lstrip("/"))
    return path.rstrip("/") or "/"


def under(path: str, roots: list[str]) -> bool:
    """True when ``path`` is one of ``roots`` or inside one of them."""
    clean = normalise_root(path)
    for root in roots:
        root = normalise_root(root)
        if root == "/" or clean == root or clean.startswith(root + "/"):
            return True
    return False


def ls_summary(nodes: Iterable[dict[str, Any]], roots: list[str]) -> dict[str, Any]:
    """Count files and bytes under ``roots`` in a ``restic ls --json`` listing; note which roots exist."""
    files = 0
    size = 0
    dirs = 0
    present = set()
    norm_roots = [normalise_root(r) for r in roots]
    listing: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if node.get("struct_type") != "node":
            continue
        path = node.get("path", "")
        clean = normalise_root(path)
        if clean in norm_roots:
            present.add(clean)
        if not under(path, roots):
            continue
        if node.get("type") == "file":
            files += 1
            size += int(node.get("size", 0) or 0)
            listing[clean] = {
                "size": int(node.get("size", 0) or 0),
                "mode": node.get("mode"),
                "mtime": node.get("mtime"),
            }
        elif node.get("type") == "dir":
            dirs += 1
    return {
        "files": files,
        "bytes": size,
        "dirs": dirs,
        "roots_present": sorted(present),
        "roots_missing": sorted(set(norm_roots) - present),
        "listing": listing,
    }


def diff_summary(changes: list[dict[str, Any]], roots: list[str]) -> dict[str, Any]:
    """Split a ``restic diff --json`` stream into added / removed / modified files under ``roots``."""
    added: list[str] = []
    removed: list[str] = []
    modified: list[str] = []
    removed_dirs: list[str] = []
    for item in changes:
        if item.get("message_type") != "change":
            continue
        path = item.get("path", "")
        if not under(path, roots):
            continue
        modifier = item.get("modifier", "")
        is_dir = path.endswith("/")
        if is_dir:
            if "-" in modifier:
                removed_dirs.append(normalise_root(path))
            continue
        if modifier == "+":
            added.append(path)
        elif modifier == "-":
            removed.append(path)
        elif "M" in modifier or "T" in modifier:
            modified.append(path)
    return {"added": added, "removed": removed, "modified": modified, "removed_dirs": removed_dirs}


def shannon_entropy(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte (0.0 for empty input)."""
    if not data:
        return 0.0
    counts = [0] * 256
    for byte in data:
        counts[byte] += 1
    total = len(data)
    entropy = 0.0
    for count in counts:
        if count:
            p = count / total
            entropy -= p * math.log2(p)
    return entropy


def is_ransom_note(path: str, patterns: tuple[str, ...] | list[str] = RANSOM_NOTE_PATTERNS) -> bool:
    name = posixpath.basename(path.rstrip("/")).lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns)


def ransom_extension(path: str, extensions: tuple[str, ...] | list[str] = RANSOM_EXTENSIONS) -> str | None:
    """The ransomware extension ``path`` ends with, if any."""
    name = posixpath.basename(path.rstrip("/")).lower()
    for ext in extensions:
        if name.endswith(ext.lower()) and len(name) > len(ext):
            return ext.lower()
    return None


def entropy_exempt(path: str, exempt: tuple[str, ...] | list[str] = HIGH_ENTROPY_FORMATS) -> bool:
    name = posixpath.basename(path).lower()
    return any(name.endswith(ext) for ext in exempt)


def pick_samples(diff: dict[str, Any], limit: int) -> list[str]:
    """Files worth sampling for entropy: modified first, then added; never formats that are compressed by nature."""
    picked: list[str] = []
    for path in list(diff.get("modified", [])) + list(diff.get("added", [])):
        if entropy_exempt(path) or is_ransom_note(path):
            continue
        picked.append(path)
        if len(picked) >= limit:
            break
    return picked


def _pct(value: float) -> str:
    return f"{round(value * 100)}%"


def assess(
    previous: dict[str, Any] | None,
    current: dict[str, Any],
    diff: dict[str, Any] | None,
    entropy: dict[str, float] | None = None,
    thresholds: dict[str, Any] | None = None,
    ransom_patterns: tuple[str, ...] | list[str] = RANSOM_NOTE_PATTERNS,
    ransom_extensions: tuple[str, ...] | list[str] = RANSOM_EXTENSIONS,
) -> tuple[bool, list[str]]:
    """Decide whether a snapshot holds damage, comparing it with its predecessor.

    ``previous`` and ``current`` are :func:`ls_summary` results (``previous`` is None for the oldest snapshot),
    ``diff`` a :func:`diff_summary` of predecessor -> current, ``entropy`` maps sampled paths to bits per byte.
    Returns ``(clean, reasons)``; each reason is one human sentence.
    """
    limits = dict(DEFAULT_THRESHOLDS)
    limits.update(thresholds or {})
    reasons: list[str] = []
    # Ransom notes and ransomware extensions are judged on the snapshot's own content (also the oldest one).
    notes = sorted(p for p in current.get("listing", {}) if is_ransom_note(p, ransom_patterns))
    if notes:
        reasons.append(
            "ransom note{} present: {}".format(
                "s" if len(notes) > 1 else "", ", ".join(posixpath.basename(n) for n in notes[:3])
            )
        )
    encrypted = sorted(p for p in current.get("listing", {}) if ransom_extension(p, ransom_extensions))
    if encrypted:
        exts = sorted({ransom_extension(p, ransom_extensions) or "" for p in encrypted})
        plural = "s" if len(encrypted) > 1 else ""
        ext_plural = "s" if len(exts) > 1 else ""
        reasons.append(
            f"{len(encrypted)} file{plural} with ransomware extension{ext_plural} {', '.join(exts)} "
            f"(e.g. {posixpath.basename(encrypted[0])})"
        )
    if previous is not None:
        for root in current.get("roots_missing", []):
            if root in previous.get("roots_present", []):
                reasons.append(f"client folder {root} vanished (present in the previous snapshot)")
        prev_files = int(previous.get("files", 0))
        cur_files = int(current.get("files", 0))
        if prev_files >= limits["min_files"] and prev_files > 0:
            drop = (prev_files - cur_files) / prev_files
            if drop >= limits["max_file_drop"]:
                reasons.append(f"file count fell by {_pct(drop)} ({prev_files} -> {cur_files})")
        prev_bytes = int(previous.get("bytes", 0))
        cur_bytes = int(current.get("bytes", 0))
        if prev_files >= limits["min_files"] and prev_bytes > 0:
            drop = (prev_bytes - cur_bytes) / prev_bytes
            if drop >= limits["max_bytes_drop"]:
                reasons.append(f"data size fell by {_pct(drop)} ({prev_bytes} -> {cur_bytes} bytes)")
        if diff is not None and prev_files >= limits["min_files"]:
            touched = len(diff.get("modified", [])) + len(
                [p for p in diff.get("removed", []) if not under(p, diff.get("removed_dirs", []))]
            )
            ratio = touched / prev_files
            if touched >= limits["min_files"] and ratio >= limits["max_modified_ratio"]:
                reasons.append(
                    f"{touched} of {prev_files} files ({_pct(ratio)}) modified or replaced since the previous snapshot"
                )
    if entropy:
        high = sorted(p for p, bits in entropy.items() if bits >= limits["entropy_bits"])
        if high and len(high) / len(entropy) >= limits["entropy_ratio"]:
            reasons.append(
                f"{len(high)} of {len(entropy)} sampled changed files look encrypted or random "
                f"(entropy >= {limits['entropy_bits']:.1f} bits/byte, e.g. {posixpath.basename(high[0])})"
            )
    return (not reasons, reasons)


def file_damage(
    path: str,
    current: bytes | None,
    original: bytes | None,
    entropy_bits: float = DEFAULT_THRESHOLDS["entropy_bits"],
    ransom_patterns: tuple[str, ...] | list[str] = RANSOM_NOTE_PATTERNS,
    ransom_extensions: tuple[str, ...] | list[str] = RANSOM_EXTENSIONS,
) -> str | None:
    """Why the file at ``path`` (sample ``current``) looks damaged compared with ``original``; None if it does not.

    ``original`` is a sample of the snapshot's version (None when the file is new since the snapshot).
    """
    name = posixpath.basename(path)
    if is_ransom_note(path, ransom_patterns):
        return "ransom note name"
    ext = ransom_extension(path, ransom_extensions)
    if ext:
        return f"ransomware extension {ext}"
    if current is None:
        return None
    lower = name.lower()
    for suffix, magic in MAGIC.items():
        if lower.endswith(suffix) and len(current) >= len(magic) and not current.startswith(magic):
            if original is None or original.startswith(magic):
                return "file header is not {} any more".format(suffix.lstrip("."))
    if original is not None and len(original) > 0 and len(current) == 0:
        return "truncated to 0 bytes"
    if entropy_exempt(path):
        return None
    bits = shannon_entropy(current)
    if bits >= entropy_bits:
        if original is None or shannon_entropy(original) < entropy_bits:
            return f"content looks encrypted or random (entropy {bits:.2f} bits/byte)"
    if original is not None and _is_text(original) and not _is_text(current):
        return "text file no longer decodes as text"
    return None


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # A sample may cut a multi-byte character at its end.
        try:
            data[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def read_sample(path: str, size: int) -> bytes | None:
    """The first ``size`` bytes of a local regular file (None if it cannot be read or is not a regular file).

    Opened with ``safe_fs.open_regular``: a FIFO, device node, socket or symlink is never opened (a FIFO would block
    the incident, a device could be acted on); one swapped in after the check neither blocks nor is read.
    """
    try:
        fd, _st = open_regular(path)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb", buffering=0) as handle:
            return handle.read(size)
    except OSError:
        return None


def basename_of(path: str) -> str:
    return os.path.basename(path.rstrip("/"))
