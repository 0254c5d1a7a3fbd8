# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sha256 manifests of a directory tree, streamed, hashed in parallel, and compared by a sorted merge.

Order. Entries are produced by a depth-first walk that sorts each directory's names by their raw bytes. The sort
key of an entry is the tuple of its path components (``path.split(b"/")``), which is exactly that walk order, so
two manifests can be compared by a streaming merge. Memory is bounded by the largest single directory (its sorted
name list) plus a bounded window of in-flight hashing work, never by the number of files in the tree.

Paths. Paths are raw bytes relative to the root. In text form (``escape_path``) they are UTF-8 where the bytes are
valid UTF-8 and printable; a backslash is written ``\\\\``, and every byte that is not valid UTF-8, a control
character or DEL is written ``\\xNN``. ``unescape_path`` is its exact inverse.

Formats. ``json``: one header line ``{"ledgerguard_manifest": 1, ...}``, then one JSON object per entry (see
``ENTRY_FIELDS``). ``sha256sum``: the GNU coreutils format (``<hex>  <path>``), regular files only; a line whose
path holds a backslash, newline or carriage return starts with ``\\`` and escapes them as ``sha256sum`` does, so
``sha256sum -c`` accepts the file.
"""

from __future__ import annotations

import collections
import concurrent.futures
import fnmatch
import hashlib
import heapq
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

# One helper opens files for reading everywhere (safe_fs.open_regular: lstat, O_NOFOLLOW|O_NONBLOCK, fstat).
from ansible_collections.ledgerguard.recovery.plugins.module_utils.safe_fs import NotRegularFile, open_regular

# file_kind is re-exported for file_manifest's special_paths (one definition, in safe_fs).
from ansible_collections.ledgerguard.recovery.plugins.module_utils.safe_fs import file_kind  # noqa: F401  # pylint: disable=unused-import

MANIFEST_VERSION = 1
ENTRY_FIELDS = ("path", "type", "size", "mode", "uid", "gid", "mtime_ns", "sha256", "target", "error")
DEFAULT_COMPARE_FIELDS = ("type", "size", "sha256", "target")
COMPARABLE_FIELDS = ("type", "size", "mode", "uid", "gid", "mtime_ns", "sha256", "target")
CHUNK = 1 << 20
SMALL_FILE = 1 << 20
# Small files are hashed in batches so that one task carries enough work to be worth a round trip to a worker.
BATCH_FILES = 256
BATCH_BYTES = 16 << 20
_ESCAPE_RE = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


# --------------------------------------------------------------------------------------------------- path text


def escape_path(raw: bytes) -> str:
    """The reversible text form of a raw path (see the module docstring)."""
    text = raw.decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif not ch.isprintable():
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


def unescape_path(text: str) -> bytes:
    """Inverse of ``escape_path``."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE_RE.finditer(text):
        out += text[pos : match.start()].encode("utf-8", "surrogateescape")
        escape = match.group(1)
        out += b"\\" if escape == "\\" else bytes([int(escape[1:], 16)])
        pos = match.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def sort_key(raw: bytes) -> tuple[bytes, ...]:
    """The merge order of a raw relative path: component-wise bytes order (= the walk order)."""
    return tuple(raw.split(b"/"))


# --------------------------------------------------------------------------------------------------- hashing


def _err(exc: OSError) -> str:
    if isinstance(exc, NotRegularFile):
        return exc.strerror
    return f"{exc.strerror} (errno {exc.errno})"


def hash_file(path: bytes) -> tuple[Any, ...]:
    """Stat and hash one regular file through a single descriptor (``open_regular``).

    Returns (sha256 hex, size, mode, uid, gid, mtime_ns) or (None, error text). Anything but a regular file (a FIFO,
    device node, socket or symlink, also one swapped in after the walk) is never opened and is reported as an error.
    """
    try:
        fd, st = open_regular(path, noatime=True)
    except OSError as exc:
        return None, _err(exc)
    try:
        with os.fdopen(fd, "rb", buffering=0) as handle:
            digest = _digest_fd(handle, st.st_size)
            return digest, st.st_size, f"{stat.S_IMODE(st.st_mode):04o}", st.st_uid, st.st_gid, st.st_mtime_ns
    except OSError as exc:
        return None, _err(exc)


def _digest_fd(handle: IO[bytes], size: int) -> str:
    """sha256 of an open file. Small files are read in one call; large ones through one reused buffer."""
    if size <= SMALL_FILE:
        data = handle.read(size + 1)
        h = hashlib.sha256(data)
        if len(data) > size:  # the file grew while we read it
            while chunk := handle.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := handle.readinto(buf):
        h.update(view[:n])
    return h.hexdigest()


def hash_batch(paths: list[bytes]) -> list[tuple[Any, ...]]:
    """Hash a batch of files (runs in a worker process or thread)."""
    return [hash_file(p) for p in paths]


class _SerialExecutor:
    """The executor interface, running each task at submit time (parallel = none)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True) -> None:
        return None


def make_executor(parallel: str, workers: int):
    """A process pool (fork), a thread pool, or a serial stand-in."""
    if parallel == "none" or workers <= 1 and parallel != "thread":
        return _SerialExecutor()
    if parallel == "thread":
        return concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    # fork: the module runs from an AnsiballZ payload that a spawned interpreter could not re-import. multiprocessing
    # (and the pickle it loads) is imported here, only for a process pool (issue 19: module start-up).
    import multiprocessing

    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------- walking


def _entry_record(rel: bytes, st: os.stat_result, full: bytes) -> dict[str, Any]:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        kind = "dir"
    elif stat.S_ISLNK(mode):
        kind = "symlink"
    else:
        kind = "other"
    rec: dict[str, Any] = {
        "path": rel,
        "type": kind,
        "size": st.st_size if kind in ("file", "symlink") else 0,
        "mode": f"{stat.S_IMODE(mode):04o}",
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    if kind != "dir":
        # A directory's mtime moves whenever an entry is added or removed (a manifest written inside the tree):
        # it is not recorded, so re-running over an unchanged tree yields the same bytes.
        rec["mtime_ns"] = st.st_mtime_ns
    if kind == "symlink":
        try:
            rec["target"] = escape_path(os.readlink(full))
        except OSError as exc:
            rec["error"] = f"{exc.strerror} (errno {exc.errno})"
    return rec


def _excluded(rel: bytes, patterns: list[str]) -> bool:
    if not patterns:
        return False
    text = rel.decode("utf-8", "surrogateescape")
    base = text.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(text, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def walk(
    root: bytes, exclude: Iterable[str] = (), skip: Iterable[bytes] = (), stat_files: bool = True
) -> Iterator[dict[str, Any]]:
    """Yield entry records in merge order (depth first, names sorted by bytes); never follows symlinks.

    ``skip`` holds absolute paths (e.g. the manifest being written) to leave out. Unreadable directories yield a
    record with an ``error`` instead of raising. With ``stat_files=False`` regular files (known from the directory
    entry type) are yielded as ``{"path", "type": "file"}`` only, for a hashing worker to stat through the file
    descriptor it hashes from (``hash_file``): the walking process then does no per-file system call.
    """
    patterns = list(exclude)
    skipped = {os.path.abspath(s) for s in skip}

    def listing(full: bytes) -> tuple[list[os.DirEntry], str | None]:
        try:
            with os.scandir(full) as it:
                return sorted(it, key=lambda e: e.name), None
        except OSError as exc:
            return [], _err(exc)

    entries, err = listing(root)
    if err:
        raise OSError(f"cannot list {escape_path(root)}: {err}")
    stack: list[tuple[bytes, Iterator[os.DirEntry]]] = [(b"", iter(entries))]
    while stack:
        rel_dir, entries_iter = stack[-1]
        entry = next(entries_iter, None)
        if entry is None:
            stack.pop()
            continue
        rel = rel_dir + b"/" + entry.name if rel_dir else entry.name
        full = entry.path
        if (skipped and full in skipped) or (patterns and _excluded(rel, patterns)):
            continue
        try:
            is_file = entry.is_file(follow_symlinks=False)
        except OSError:
            is_file = False
        if is_file and not stat_files:
            yield {"path": rel, "type": "file"}
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield {"path": rel, "type": "other", "error": _err(exc)}
            continue
        rec = _entry_record(rel, st, full)
        if rec["type"] == "dir":
            children, err = listing(full)
            if err:
                rec["error"] = err
            yield rec
            stack.append((rel, iter(children)))
        else:
            yield rec


def _needs_hash(rec: dict[str, Any]) -> bool:
    return rec["type"] == "file" and "error" not in rec and "sha256" not in rec


def hashed_entries(
    root: bytes,
    exclude: Iterable[str] = (),
    skip: Iterable[bytes] = (),
    parallel: str = "process",
    workers: int = 0,
    window: int = 0,
) -> Iterator[dict[str, Any]]:
    """``walk`` with the sha256 of every regular file filled in, in walk order, hashing in parallel.

    At most ``window`` batches are in flight; output order is the walk order, so memory stays bounded.
    """
    workers = workers or default_workers()
    window = window or max(4, workers * 4)
    executor = make_executor(parallel, workers)
    pending: collections.deque = collections.deque()
    batch: list[dict[str, Any]] = []
    batch_files = 0
    batch_bytes = 0

    def flush() -> None:
        nonlocal batch, batch_files, batch_bytes
        if batch:
            paths = [os.path.join(root, r["path"]) for r in batch if _needs_hash(r)]
            future = executor.submit(hash_batch, paths) if paths else None
            pending.append((future, batch))
            batch, batch_files, batch_bytes = [], 0, 0

    def drain(until: int) -> Iterator[dict[str, Any]]:
        while len(pending) > until:
            future, recs = pending.popleft()
            results = iter(future.result() if future is not None else ())
            for rec in recs:
                if _needs_hash(rec):
                    got = next(results, (None, "the hashing worker returned no result for this file"))
                    if got[0] is not None:
                        rec["size"], rec["mode"], rec["uid"], rec["gid"], rec["mtime_ns"] = got[1:]
                        rec["sha256"] = got[0]
                    else:
                        rec["error"] = got[1]
                        rec.setdefault("size", 0)
                yield rec

    try:
        # The walk stats every entry (cheap next to reading it) so batches can be bounded in bytes: large files
        # then spread over the workers. The worker re-reads the metadata with fstat on the descriptor it hashes.
        for rec in walk(root, exclude, skip):
            batch.append(rec)
            if _needs_hash(rec):
                batch_files += 1
                batch_bytes += rec["size"]
            if batch_files >= BATCH_FILES or batch_bytes >= BATCH_BYTES or len(batch) >= 4 * BATCH_FILES:
                flush()
                yield from drain(window)
        flush()
        yield from drain(0)
    finally:
        for future, _recs in pending:
            if future is not None:
                future.cancel()
        executor.shutdown(wait=True)


def write_manifest(root: bytes, dest: str, mode: int = 0o600, check_mode: bool = False) -> dict[str, Any]:
    """The JSON-lines manifest of the tree ``root`` streamed to ``dest``; its sha256, whether it changed, and the
    counts of entries and of entries that could not be read."""
    writer = DigestWriter(dest, check_mode)
    counts = {"files": 0, "errors": 0}

    def counted(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for rec in records:
            counts["files"] += rec["type"] == "file"
            counts["errors"] += "error" in rec
            yield rec

    try:
        skip = [os.fsencode(os.path.abspath(name)) for name in (dest, writer.tmp_path) if name]
        for chunk in serialize(counted(hashed_entries(root, skip=skip)), "json"):
            writer.write(chunk)
        changed = writer.finish(mode)
    except BaseException:
        writer.abort()
        raise
    return {"sha256": writer.digest.hexdigest(), "changed": changed, **counts}


# --------------------------------------------------------------------------------------------------- formats


def header_line(fields_note: str = "json") -> str:
    return json.dumps({"ledgerguard_manifest": MANIFEST_VERSION, "format": fields_note, "order": "components"}) + "\n"


_INT_FIELDS = ("size", "uid", "gid", "mtime_ns")
_TEXT = json.JSONEncoder(ensure_ascii=False).encode


def json_line(rec: dict[str, Any]) -> str:
    """One manifest line: the compact JSON of the record's ENTRY_FIELDS, in that order.

    Built by hand (about twice as fast as json.dumps of a dict, which matters at a million files) and equal byte
    for byte to ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``.
    """
    parts = ['{"path":', _TEXT(escape_path(rec["path"]))]
    for key in ENTRY_FIELDS[1:]:
        if key not in rec:
            continue
        value = rec[key]
        if key in _INT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            parts.append(f',"{key}":{value}')
        else:
            parts.append(f',"{key}":{_TEXT(value)}')
    parts.append("}\n")
    return "".join(parts)


def sha256sum_line(rec: dict[str, Any]) -> bytes | None:
    """GNU ``sha256sum`` text for a regular file record (None for other types and unreadable files)."""
    if rec.get("type") != "file" or "sha256" not in rec:
        return None
    raw: bytes = rec["path"]
    if b"\\" in raw or b"\n" in raw or b"\r" in raw:
        esc = raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + rec["sha256"].encode() + b"  " + esc + b"\n"
    return rec["sha256"].encode() + b"  " + raw + b"\n"


def serialize(records: Iterable[dict[str, Any]], fmt: str) -> Iterator[bytes]:
    """Manifest bytes, chunk by chunk, for ``fmt`` json or sha256sum."""
    if fmt == "json":
        yield header_line().encode()
        for rec in records:
            yield json_line(rec).encode("utf-8", "surrogateescape")
    elif fmt == "sha256sum":
        for rec in records:
            line = sha256sum_line(rec)
            if line is not None:
                yield line
    else:
        raise ValueError(f"unknown manifest format {fmt!r}")


def _unescape_sha256sum(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i : i + 1]
        if c == b"\\" and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            out += {b"\\": b"\\", b"n": b"\n", b"r": b"\r"}.get(nxt, b"\\" + nxt)
            i += 2
        else:
            out += c
            i += 1
    return bytes(out)


_SUM_RE = re.compile(rb"^(\\?)([0-9a-fA-F]{64}) [ *](.*)$", re.S)


def read_manifest(path: str | bytes) -> Iterator[dict[str, Any]]:
    """Stream the records of a manifest file in either format (detected from the first line)."""
    with open(path, "rb") as handle:
        first = handle.readline()
        if first.startswith(b"{") and b"ledgerguard_manifest" in first:
            for lineno, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line.decode("utf-8", "surrogateescape"))
                    obj["path"] = unescape_path(obj["path"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{_p(path)} line {lineno}: not a manifest entry ({exc})") from exc
                yield obj
            return
        lineno = 0
        for line in _chain_first(first, handle):
            lineno += 1
            body = line[:-1] if line.endswith(b"\n") else line
            if not body:
                continue
            m = _SUM_RE.match(body)
            if not m:
                raise ValueError(
                    f"{_p(path)} line {lineno}: neither a ledgerguard JSON manifest nor sha256sum output "
                    f"(expected '<64 hex>  <path>')"
                )
            name = _unescape_sha256sum(m.group(3)) if m.group(1) else m.group(3)
            if name.startswith(b"./"):
                name = name[2:]
            yield {"path": name, "type": "file", "sha256": m.group(2).decode().lower()}


def _chain_first(first: bytes, handle: IO[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from handle


def _p(path: str | bytes) -> str:
    return escape_path(os.fsencode(path))


# --------------------------------------------------------------------------------------------------- writing


class DigestWriter:
    """Stream bytes to a temporary file next to ``dest`` (or nowhere in check mode), hashing them as they pass."""

    def __init__(self, dest: str | None, check_mode: bool) -> None:
        self.dest = dest
        self.digest = hashlib.sha256()
        self.size = 0
        self.tmp_path: str | None = None
        self._fh: IO[bytes] | None = None
        if dest and not check_mode:
            fd, self.tmp_path = tempfile.mkstemp(prefix=".manifest-", dir=os.path.dirname(os.path.abspath(dest)))
            self._fh = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        if self._fh is not None:
            self._fh.write(data)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.tmp_path and os.path.exists(self.tmp_path):
            os.unlink(self.tmp_path)

    def finish(self, mode: int = 0o644) -> bool:
        """Install the temporary file at ``dest`` if its content differs; return whether ``dest`` changed."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        same = self.dest is not None and file_sha256(self.dest) == self.digest.hexdigest()
        if self.tmp_path is None:
            return not same
        if same:
            os.unlink(self.tmp_path)
            return False
        os.chmod(self.tmp_path, mode)
        os.replace(self.tmp_path, self.dest)
        return True


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------------------------------- sort & compare


def is_sorted(records: Iterable[dict[str, Any]]) -> bool:
    prev: tuple[bytes, ...] | None = None
    for rec in records:
        key = sort_key(rec["path"])
        if prev is not None and key <= prev:
            return False
        prev = key
    return True


def _dump_record(rec: dict[str, Any]) -> str:
    out = dict(rec)
    out["path"] = rec["path"].decode("latin-1")
    return json.dumps(out, separators=(",", ":")) + "\n"


def _load_record(line: str) -> dict[str, Any]:
    obj = json.loads(line)
    obj["path"] = obj["path"].encode("latin-1")
    return obj


def external_sort(records: Iterable[dict[str, Any]], tmpdir: str, run_size: int = 100_000) -> Iterator[dict[str, Any]]:
    """Sort records by ``sort_key`` with sorted runs of ``run_size`` spilled to ``tmpdir`` and a k-way merge."""
    runs: list[str] = []
    buf: list[dict[str, Any]] = []

    def spill() -> None:
        buf.sort(key=lambda r: sort_key(r["path"]))
        fd, name = tempfile.mkstemp(prefix="run-", dir=tmpdir)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.writelines(_dump_record(r) for r in buf)
        runs.append(name)
        buf.clear()

    for rec in records:
        buf.append(rec)
        if len(buf) >= run_size:
            spill()
    if not runs:
        buf.sort(key=lambda r: sort_key(r["path"]))
        yield from buf
        return
    if buf:
        spill()
    handles = [open(name, encoding="ascii") for name in runs]  # noqa: SIM115 - closed in finally
    try:
        streams = [(_load_record(line) for line in h) for h in handles]
        yield from heapq.merge(*streams, key=lambda r: sort_key(r["path"]))
    finally:
        for h in handles:
            h.close()
        for name in runs:
            os.unlink(name)


def differing_fields(a: dict[str, Any], b: dict[str, Any], fields: Iterable[str]) -> list[str]:
    """Fields present in both records whose values differ."""
    return [f for f in fields if f in a and f in b and a[f] != b[f]]


def ordered(records: Iterable[dict[str, Any]], name: str) -> Iterator[dict[str, Any]]:
    """Pass records through, raising ValueError if they are not strictly in merge order."""
    prev: tuple[bytes, ...] | None = None
    for rec in records:
        key = sort_key(rec["path"])
        if prev is not None and key <= prev:
            raise ValueError(f"{name} is not in manifest order at {escape_path(rec['path'])!r} (duplicate or unsorted)")
        prev = key
        yield rec


def merge_compare(
    reference: Iterable[dict[str, Any]], candidate: Iterable[dict[str, Any]], fields: Iterable[str]
) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """Yield ('missing'|'extra'|'changed', record, differing fields) from two sorted record streams."""
    fields = list(fields)
    ref_it, cand_it = iter(reference), iter(candidate)
    ref, cand = next(ref_it, None), next(cand_it, None)
    while ref is not None or cand is not None:
        if cand is None or (ref is not None and sort_key(ref["path"]) < sort_key(cand["path"])):
            yield "missing", ref, []
            ref = next(ref_it, None)
        elif ref is None or sort_key(cand["path"]) < sort_key(ref["path"]):
            yield "extra", cand, []
            cand = next(cand_it, None)
        else:
            diff = differing_fields(ref, cand, fields)
            if diff:
                yield "changed", cand, diff
            ref, cand = next(ref_it, None), next(cand_it, None)
