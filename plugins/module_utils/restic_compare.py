# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a restore target already match a snapshot? Sizes first (cheap), then sha256 of every file.

The landing rule (documented in restic_restore and docs/modules.md): a node stored in the snapshot as ``/a/b/c``
lands at ``<target>/a/b/c``, whether the whole snapshot or only ``/a/b`` is restored.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import (
    Listing,
    TreeNode,
)

CHUNK = 1024 * 1024


def landing_path(target: str, snapshot_path: str) -> str:
    """Where a node stored in the snapshot as ``snapshot_path`` lands under ``target``."""
    return os.path.join(target, snapshot_path.lstrip("/"))


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Comparison:
    """How a target differs from the selected part of a snapshot."""

    missing: list[str] = field(default_factory=list)
    wrong_type: list[str] = field(default_factory=list)
    wrong_size: list[str] = field(default_factory=list)
    wrong_content: list[str] = field(default_factory=list)
    files_compared: int = 0
    content_checked: bool = False

    @property
    def matches(self) -> bool:
        return not (self.missing or self.wrong_type or self.wrong_size or self.wrong_content)

    def as_dict(self, limit: int = 20) -> dict[str, Any]:
        return {
            "matches": self.matches,
            "content_checked": self.content_checked,
            "files_compared": self.files_compared,
            "missing": len(self.missing),
            "wrong_type": len(self.wrong_type),
            "wrong_size": len(self.wrong_size),
            "wrong_content": len(self.wrong_content),
            "examples": (self.missing + self.wrong_type + self.wrong_size + self.wrong_content)[:limit],
        }


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def compare_metadata(listing: Listing, target: str, nodes: Iterable[TreeNode] | None = None) -> Comparison:
    """Existence, type and size of every node under ``target`` (no file content read)."""
    comp = Comparison()
    for node in listing.nodes if nodes is None else nodes:
        where = landing_path(target, node.path)
        try:
            st = os.lstat(where)
        except FileNotFoundError:
            comp.missing.append(node.path)
            continue
        except NotADirectoryError:
            comp.wrong_type.append(node.path)
            continue
        if _kind(st.st_mode) != node.type:
            comp.wrong_type.append(node.path)
        elif node.type == "file":
            comp.files_compared += 1
            if st.st_size != node.size:
                comp.wrong_size.append(node.path)
        elif node.type == "symlink" and node.linktarget and os.readlink(where) != node.linktarget:
            comp.wrong_content.append(node.path)
    return comp


def hash_tar_stream(stream: IO[bytes]) -> dict[str, str]:
    """sha256 of every regular file in a tar stream (``restic dump --archive tar``), keyed by absolute path."""
    hashes: dict[str, str] = {}
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            handle = archive.extractfile(member)
            digest = hashlib.sha256()
            if handle is not None:
                for block in iter(lambda h=handle: h.read(CHUNK), b""):
                    digest.update(block)
            hashes["/" + member.name.lstrip("/")] = digest.hexdigest()
    return hashes


def hash_raw_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def compare_content(comp: Comparison, expected: dict[str, str], files: Iterable[TreeNode], target: str) -> Comparison:
    """Fill ``comp.wrong_content`` by hashing each target file against the snapshot's sha256 in ``expected``."""
    for node in files:
        want = expected.get(node.path)
        have = sha256_file(landing_path(target, node.path))
        if want != have:
            comp.wrong_content.append(node.path)
    comp.content_checked = True
    return comp


def selection_roots(listing: Listing, include_paths: Iterable[str]) -> list[TreeNode]:
    """The listing node of each include path; raises ValueError naming the paths the snapshot does not hold."""
    by_path = {n.path: n for n in listing.nodes}
    roots, absent = [], []
    for path in include_paths:
        norm = "/" + path.strip("/") if path.strip("/") else "/"
        if norm in by_path:
            roots.append(by_path[norm])
        else:
            absent.append(path)
    if absent:
        held = ", ".join(listing.snapshot.paths if listing.snapshot else []) or "nothing"
        sid = listing.snapshot.short_id if listing.snapshot else "?"
        raise ValueError(
            f"include_paths {absent} are not in snapshot {sid} (it holds {held}). Give absolute paths as they are "
            "stored in the snapshot (see 'restic ls' or restic_snapshots contains_path)."
        )
    return roots


def within(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
