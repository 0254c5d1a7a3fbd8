#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite's own integrity check on every SQLite file of a tree (the drill's restored clients), read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sqlite_integrity
short_description: Run PRAGMA integrity_check on every SQLite file of a folder tree, read-only
version_added: "0.1.0"
description:
  - Walks the folder O(path) with directory file descriptors (each subfolder opened from its parent's descriptor),
    following no symbolic link, and runs SQLite's C(PRAGMA integrity_check) on every regular file whose name matches
    one of O(patterns).
  - Each file is opened by this module as a regular file only (a symbolic link, FIFO or device with a matching name is
    skipped, never opened), and SQLite reads it through that file descriptor with C(mode=ro&immutable=1), so no
    journal or WAL file is created beside it and nothing in the tree changes.
  - The drill role runs it on each client's restored tree in the sandbox; it took a C(find) task and a script run
    before (issue 19).
  - A file SQLite cannot open or read, an empty (0-byte) file, which SQLite would read as a valid empty database, and
    a folder that cannot be listed make RV(ok) false (the check claims only what it read).
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same checks in check mode.
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Linux (files are handed to SQLite as C(/proc/self/fd/N)).
options:
  path:
    description: The folder to search (absolute). It must be a folder itself, not a symbolic link to one.
    type: path
    required: true
  patterns:
    description:
      - Shell patterns (C(fnmatch), case-sensitive) matched against each file's name, as C(ansible.builtin.find)'s
        O(patterns) without regular expressions.
    type: list
    elements: str
    default: ["*.db", "*.sqlite", "*.sqlite3"]
"""

EXAMPLES = r"""
- name: Check the SQLite ledgers of a restored client
  ledgerguard.recovery.sqlite_integrity:
    path: /var/tmp/ledgerguard-drill/drill-20261206T020000/c001
    patterns: ["*.db", "*.sqlite"]
  register: sqlite_check

- name: Fail on a damaged one
  ansible.builtin.assert:
    that: sqlite_check.ok
    fail_msg: "{{ sqlite_check.files | rejectattr('ok') | map(attribute='path') | list }}"
"""

RETURN = r"""
ok:
  description: True when every matching file passed and every folder could be listed (also when no file matched).
  returned: always
  type: bool
  sample: true
matched:
  description: How many files matched O(patterns) and were checked.
  returned: always
  type: int
  sample: 2
files:
  description:
    - One entry per checked file, in walk order. RV(files[].path) is the full path; bytes that are not UTF-8 (a GBK
      name) are written as C(\\xNN) and a backslash as C(\\\\).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    ok:
      description: Whether C(PRAGMA integrity_check) answered C(ok).
      type: bool
    result:
      description: C(ok), the first 20 problems SQLite reported (joined by C(; )), or why it could not be checked.
      type: str
  sample:
    - {path: /var/tmp/ledgerguard-drill/d1/c001/srv/books/c001/账簿/ledger.sqlite, ok: true, result: ok}
    - {path: /var/tmp/ledgerguard-drill/d1/c001/srv/books/c001/notes.db, ok: false,
       result: "cannot check: file is not a database"}
unreadable:
  description: Folders that could not be listed (their files were not checked), with the system's reason.
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/tmp/ledgerguard-drill/d1/c001/locked, error: "Permission denied"}]
problems:
  description:
    - One line per file that failed (its path, a colon, RV(files[].result)) and per folder that could not be listed;
      empty when RV(ok) is true.
  returned: always
  type: list
  elements: str
  sample: ["/var/tmp/ledgerguard-drill/d1/c001/srv/books/c001/notes.db: cannot check: file is not a database"]
"""

import fnmatch  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import sqlite3  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils import safe_fs  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.manifest import escape_path  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

MAX_PROBLEMS = 20


def check_fd(fd: int) -> tuple[bool, str]:
    """(ok, result) of ``PRAGMA integrity_check`` on the open file ``fd``, read-only and immutable."""
    try:
        conn = sqlite3.connect(f"file:/proc/self/fd/{fd}?mode=ro&immutable=1", uri=True)
        try:
            lines = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"cannot check: {exc}"
    return lines == ["ok"], "; ".join(lines[:MAX_PROBLEMS])


def check_file(name: bytes, dir_fd: int) -> tuple[bool, str] | None:
    """The check of the regular file ``name`` in the folder ``dir_fd``; None when it is not a regular file."""
    try:
        fd, st = safe_fs.open_regular(name, dir_fd=dir_fd)
    except safe_fs.NotRegularFile:
        return None
    except OSError as exc:
        return False, f"cannot check: cannot open it: {exc.strerror or exc}"
    try:
        if st.st_size == 0:
            # SQLite reads an empty file as a valid empty database; a ledger cut to nothing is damage
            return False, "empty file (0 bytes): no database in it"
        return check_fd(fd)
    finally:
        os.close(fd)


def folders(path: bytes, fd: int, failed):
    """``(folder, names of its entries that are not folders, its fd)`` for the folder open as ``fd`` and every folder
    below it, depth first, names sorted; each subfolder opened from its parent's descriptor without following a link.
    A folder that cannot be listed or opened goes to ``failed(path, error)``."""
    try:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
    except OSError as exc:
        failed(path, exc)
        return
    yield path, [os.fsencode(e.name) for e in entries if not e.is_dir(follow_symlinks=False)], fd
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        child = os.path.join(path, os.fsencode(entry.name))
        try:
            child_fd = safe_fs.open_dir(entry.name, fd)
        except OSError as exc:
            failed(child, exc)
            continue
        try:
            yield from folders(child, child_fd, failed)
        finally:
            os.close(child_fd)


def scan(root: str, patterns: list[str]) -> dict:
    """Every matching regular file under ``root`` checked; folders that could not be listed."""
    wanted = [os.fsencode(p) for p in patterns]
    files: list[dict] = []
    unreadable: list[dict] = []

    def failed(path: bytes, exc: OSError) -> None:
        unreadable.append({"path": escape_path(path), "error": exc.strerror or str(exc)})

    top = os.fsencode(root)
    try:
        top_fd = safe_fs.open_dir(top)
    except OSError as exc:
        failed(top, exc)
        top_fd = None
    if top_fd is not None:
        try:
            for folder, names, fd in folders(top, top_fd, failed):
                for name in names:
                    if not any(fnmatch.fnmatchcase(name, p) for p in wanted):
                        continue
                    checked = check_file(name, fd)
                    if checked is not None:
                        path = escape_path(os.path.join(folder, name))
                        files.append({"path": path, "ok": checked[0], "result": checked[1]})
        finally:
            os.close(top_fd)
    problems = [f"{f['path']}: {f['result']}" for f in files if not f["ok"]]
    problems += [f"{u['path']}: cannot list this folder: {u['error']}" for u in unreadable]
    return {"ok": not problems, "matched": len(files), "files": files, "unreadable": unreadable, "problems": problems}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "patterns": {"type": "list", "elements": "str", "default": ["*.db", "*.sqlite", "*.sqlite3"]},
        },
        supports_check_mode=True,
    )
    root = module.params["path"]
    if not os.path.isabs(root):
        module.fail_json(msg=f"sqlite_integrity: path must be absolute, got {root!r}")
    try:
        kind = safe_fs.file_kind(os.lstat(root).st_mode)
    except OSError as exc:
        module.fail_json(msg=f"sqlite_integrity: cannot read the folder {root!r}: {exc.strerror or exc}")
    if kind != "directory":
        module.fail_json(
            msg=f"sqlite_integrity: path {root!r} is a {kind}, not a folder (a symbolic link is not followed); give "
            "the folder itself"
        )
    module.exit_json(changed=False, **scan(root, module.params["patterns"]))


if __name__ == "__main__":
    main()
