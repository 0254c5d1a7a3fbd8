# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistent database captures for the backup role (the host's backup lock: ``backup_lock``).

SQLite. A live ledger copied byte by byte while its program writes is torn. ``capture_sqlite`` takes a consistent
copy with SQLite's online backup API (``sqlite3.Connection.backup``, all pages in one step, so the copy is the
database as of one committed transaction) into a private 0700 folder, and checks it (``PRAGMA integrity_check``).

Putting the copy back at the ledger's own path inside the snapshot. restic 0.14 cannot rewrite paths, and the
incident path chooses a client's snapshots by the client's declared paths, so the copy must be backed up AS the
ledger, in the same snapshot as the rest of the client's folder. ``private_mount_namespace`` moves the calling
process into a mount namespace of its own (``unshare(CLONE_NEWNS)``, every mount made private), and ``bind_file``
then bind-mounts each copy over its live ledger there. restic, run from this process, reads the client's folder
with the copies in place of the live files; no other process on the host sees the bind mounts, and they vanish
with the process (nothing to undo, even after a crash). The live ledger's ``-wal``, ``-shm`` and ``-journal``
files are excluded from the snapshot: restored beside the copy they would be replayed into it.
"""

from __future__ import annotations

import ctypes
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from typing import Any
from urllib.parse import quote

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import DUMP_ROOT

CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
SQLITE_MAGIC = b"SQLite format 3\x00"


class CaptureError(Exception):
    """A database could not be captured consistently; the message says what to do."""


# ------------------------------------------------------------------------------------------------- patterns


def restic_pattern(path: str) -> str:
    """An absolute path as a restic exclude pattern matching exactly it (filepath.Match metacharacters escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


def fnmatch_pattern(path: str) -> str:
    """A path as an fnmatch pattern matching exactly it (the manifest's exclusion)."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def owning_root(path: str, roots: list[str]) -> str | None:
    """The entry of ``roots`` that ``path`` is inside (not equal to), or None."""
    clean = os.path.normpath(path)
    for root in roots:
        base = os.path.normpath(root)
        if clean.startswith(base.rstrip("/") + "/"):
            return base
    return None


def ledger_excludes(ledgers: list[str], roots: list[str]) -> tuple[list[str], list[str]]:
    """(restic patterns, manifest patterns) that leave out each ledger's -wal/-shm/-journal files."""
    restic: list[str] = []
    manifest: list[str] = []
    for ledger in ledgers:
        root = owning_root(ledger, roots)
        for suffix in SQLITE_COMPANIONS:
            restic.append(restic_pattern(ledger + suffix))
            if root is not None:
                manifest.append(fnmatch_pattern(os.path.relpath(ledger + suffix, root)))
    return restic, manifest


# ------------------------------------------------------------------------------------------------- SQLite


def is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def capture_sqlite(source: str, dest: str, check: str = "integrity", busy_timeout: float = 60.0) -> dict[str, Any]:
    """Copy the SQLite database ``source`` to ``dest`` (which must not exist) with the online backup API.

    The copy gets the live file's owner and mode. ``check``: ``integrity`` (PRAGMA integrity_check), ``quick``
    (quick_check) or ``none``. Raises CaptureError with an operator's message.
    """
    try:
        st = os.stat(source)
    except OSError as exc:
        raise CaptureError(f"SQLite ledger {source} cannot be read: {exc.strerror}") from None
    if not is_sqlite(source):
        raise CaptureError(
            f"{source} is declared as a SQLite ledger but is not a SQLite 3 database (its header differs); fix the "
            "client's sqlite list or the file"
        )
    started = time.monotonic()
    src = dst = None
    try:
        src = sqlite3.connect(f"file:{quote(source)}?mode=ro", uri=True, timeout=busy_timeout)
        dst = sqlite3.connect(dest)
        src.backup(dst)  # pages=-1: every page in one step, under one read transaction
        dst.commit()
        journal = dst.execute("PRAGMA journal_mode").fetchone()[0]
        pages = dst.execute("PRAGMA page_count").fetchone()[0]
    except sqlite3.Error as exc:
        raise CaptureError(
            f"the online backup of SQLite ledger {source} failed ({exc}); the ledger may be locked by a long write "
            "or damaged: retry, or check it with 'sqlite3 <file> \"PRAGMA integrity_check\"'"
        ) from None
    finally:
        for conn in (src, dst):
            if conn is not None:
                conn.close()
    result = "not checked"
    if check != "none":
        pragma = "integrity_check" if check == "integrity" else "quick_check"
        conn = sqlite3.connect(f"file:{quote(dest)}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
        finally:
            conn.close()
        result = "ok" if rows == ["ok"] else "; ".join(str(r) for r in rows[:5])
        if result != "ok":
            raise CaptureError(
                f"the consistent copy of SQLite ledger {source} fails PRAGMA {pragma}: {result}. The live ledger is "
                "damaged: nothing of this client was backed up, so the last good snapshot stays the newest; "
                "repair the ledger (or restore it) before the next backup"
            )
    for suffix in SQLITE_COMPANIONS:
        if os.path.exists(dest + suffix):
            os.unlink(dest + suffix)
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, st.st_mode & 0o7777)
    return {
        "path": source,
        "bytes": os.path.getsize(dest),
        "pages": pages,
        "journal_mode": journal,
        "check": result,
        "seconds": round(time.monotonic() - started, 3),
    }


# ------------------------------------------------------------------------------------------------- mounts


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def private_mount_namespace() -> None:
    """Move this process (and the processes it starts from now on) into a private mount namespace."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise CaptureError(
            f"cannot create a private mount namespace for the consistent SQLite copies ({os.strerror(err)}); the "
            "backup must run as root (become: true) on a Linux host that allows unshare(CLONE_NEWNS)"
        )
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise CaptureError(f"cannot make the mounts of the private namespace private ({os.strerror(err)})")


def bind_file(source: str, target: str) -> None:
    """Bind-mount the file ``source`` over the file ``target`` (call inside ``private_mount_namespace``)."""
    if _libc().mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise CaptureError(f"cannot put the consistent copy in place of {target} for the backup ({os.strerror(err)})")


# ------------------------------------------------------------------------------------------------- SQL dumps


def dump_path(engine: str, database: str) -> str:
    """The dump's path inside its stdin snapshot (no leading /)."""
    return f"{DUMP_ROOT}/{engine}/{database}.{'dump' if engine == 'postgresql' else 'sql'}"


def dump_tag(engine: str, database: str) -> str:
    """The tag every dump snapshot of ``database`` carries (db_dump_backup adds it; backup_copy copies by it, db_restore
    names it, the backup role's YAML gets it through the filter ledgerguard.recovery.db_dump_tag)."""
    return f"db-{engine}-{database}"


def clean_connection(engine: str, connection: dict[str, Any] | None) -> dict[str, Any]:
    """The connection settings given (empty ones dropped); ValueError for a key the clients do not take, a password
    (never on a command line) or an option file for PostgreSQL. Used by the dumps and by dbrestore."""
    conn = {k: v for k, v in (connection or {}).items() if v not in (None, "")}
    unknown = set(conn) - {"host", "port", "user", "socket", "defaults_extra_file"}
    if unknown or "password" in conn:
        raise ValueError(
            f"connection keys {sorted(unknown)} are not supported; give passwords through dump_env "
            "(PGPASSWORD/PGPASSFILE, MYSQL_PWD) or a defaults_extra_file, never on the command line"
        )
    if engine == "postgresql" and "defaults_extra_file" in conn:
        # libpq reads its service / password files from the environment; no option file on the command line
        raise ValueError("defaults_extra_file is for MariaDB; give PostgreSQL a PGPASSFILE through dump_env")
    return conn


def dump_argv(
    engine: str, binary: str, database: str, connection: dict[str, Any], schema_only: bool = False
) -> list[str]:
    """argv of the dump program; credentials never appear here (environment or option files only).

    PostgreSQL: ``pg_dump -Fc`` (custom format, compressed, restorable table by table with pg_restore).
    MariaDB: ``mariadb-dump --single-transaction`` (one consistent read view for InnoDB, no table locks), with
    routines, triggers and events."""
    conn = clean_connection(engine, connection)
    if engine == "postgresql":
        argv = [binary]
        argv += [f"--host={conn['host']}"] if "host" in conn else []
        argv += [f"--port={conn['port']}"] if "port" in conn else []
        argv += [f"--username={conn['user']}"] if "user" in conn else []
        argv += ["--no-password", "--format=custom"]
        argv += ["--schema-only"] if schema_only else []
        return argv + [f"--dbname={database}"]
    argv = [binary]
    if "defaults_extra_file" in conn:  # must be the first option
        argv.append(f"--defaults-extra-file={conn['defaults_extra_file']}")
    argv += [f"--host={conn['host']}"] if "host" in conn else []
    argv += [f"--port={conn['port']}"] if "port" in conn else []
    argv += [f"--socket={conn['socket']}"] if "socket" in conn else []
    argv += [f"--user={conn['user']}"] if "user" in conn else []
    argv += ["--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob"]
    argv += ["--no-data"] if schema_only else []
    return argv + ["--databases", database]


def stream_dump(argv: list[str], env: dict[str, str], consume: Any) -> tuple[int, str, Any]:
    """Run the dump program ``argv`` with its stdout on a pipe handed to ``consume(pipe)`` (restic backup --stdin);
    the dump never touches the disk. Returns (dump exit code, dump stderr, what ``consume`` returned).

    The dump's messages go to an anonymous temporary file, not a pipe: a pipe nobody reads while restic reads the
    dump would fill (about 64 KiB of warnings) and stop the dump, and restic with it, for ever."""
    with tempfile.TemporaryFile() as messages:
        dump = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=messages)
        try:
            result = consume(dump.stdout)
        finally:
            dump.stdout.close()
            dump.wait()
        messages.seek(0)
        err = messages.read().decode("utf-8", "replace")
    return dump.returncode, err, result
