#!/usr/bin/python
# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A root-only work folder (staging, quarantine) in a folder users can write, never one someone else planted."""

from __future__ import annotations

DOCUMENTATION = r"""
module: work_dir
short_description: Create or check a root-only work folder that no one else can have planted
version_added: "0.1.0"
description:
  - The restore keeps its staging and quarantine in a work folder beside the client's folder (same filesystem), whose
    parent users can write and whose name is predictable (C(.ledgerguard-<incident id>)). A folder or link someone
    else put there first would let them read the staged books or steer where root writes.
  - The folder is created with an exclusive C(mkdir), mode C(0700), and checked with C(lstat) and C(fstat) - a folder,
    not a symbolic link, owned by the user the module runs as (root), mode C(0700). An existing folder passes only
    when it is exactly that (a re-run of the same incident); otherwise the module fails, naming the path, what is
    wrong with it and what to do, and changes nothing.
  - No symbolic link is followed on the way to O(path) (give the real path). O(subdirs) are created and checked the
    same way, each level of them.
  - O(read) returns the text of the files in O(path) whose names match, in the same run (the restore reads its
    markers of an earlier run this way, issue 19 - one module run instead of C(file), C(find) and a C(slurp) per
    marker). Only regular files are read (a link, FIFO or folder of a matching name is left out), each opened
    relative to the checked folder without following a link.
author: ledgerguard contributors (@ledgerguard)
options:
  path:
    description: The work folder (absolute). Its parent must exist unless O(parents) is set.
    type: path
    required: true
  parents:
    description:
      - Create the missing folders above O(path) first (mode C(0755), like C(mkdir -p)), without following a symbolic
        link; only O(path) and O(subdirs) are checked as root's own. Nothing is created in check mode.
    type: bool
    default: false
  read:
    description:
      - Shell patterns (C(fnmatch), e.g. C(*.done.json)) of file names in O(path) whose text (UTF-8) to return in
        RV(files). Read in check mode too; a folder that does not exist yet has none.
    type: list
    elements: str
    default: []
  subdirs:
    description: Folders to create inside O(path) (relative, C(/)-separated, no C(..)), each level checked like O(path).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Checks what exists and reports what would be created; creates nothing.
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Linux (C(O_NOFOLLOW), C(O_DIRECTORY), C(mkdirat) relative to an open folder).
notes:
  - Run as root (C(become)); a folder owned by anyone else is refused.
"""

EXAMPLES = r"""
- name: Create the incident's work folder and this run's staging folder
  ledgerguard.recovery.work_dir:
    path: /srv/books/.ledgerguard-INC-20261126-001
    subdirs:
      - staging/c001/20261126T093000Z-1a2b3c
      - quarantine/c001

- name: Create the folder of the incident's restore markers and read the markers of an earlier run
  ledgerguard.recovery.work_dir:
    path: /var/lib/ledgerguard/incidents/INC-20261126-001/restore
    parents: true
    read:
      - "*.done.json"
"""

RETURN = r"""
path:
  description: The work folder.
  returned: always
  type: str
  sample: /srv/books/.ledgerguard-INC-20261126-001
created:
  description: Folders created by this run (in check mode, the ones that would be).
  returned: always
  type: list
  elements: str
files:
  description: The text of each regular file in O(path) that matches O(read), by file name (empty without O(read)).
  returned: always
  type: dict
  sample: {"c001.done.json": "{\"id\": \"c001\", \"status\": \"restored\"}"}
"""

import fnmatch  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import typing as t  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import stat  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils import safe_fs  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)


def _refuse(module: AnsibleModule, path: str, why: str, created: list[str]) -> t.NoReturn:
    module.fail_json(
        msg=f"work_dir: {path} exists but is not ledgerguard's own folder: {why} (expected a folder owned by root, "
        f"mode 0700, not a link); someone may have planted it - move it aside for inspection "
        f"(mv '{path}' '{path}.suspect') and re-run",
        path=path,
        created=created,
    )


def _parents(module: AnsibleModule, path: str) -> list[str]:
    """Create the missing folders above ``path`` (mode 0755, no link followed); returns the ones created (in check
    mode the ones that would be, up to the first missing one's subtree)."""
    made: list[str] = []
    missing = []
    cur = os.path.dirname(path)
    while cur != "/" and not os.path.lexists(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    if not missing:
        return made
    if module.check_mode:
        return sorted(missing)
    try:
        os.close(safe_fs.open_path(cur))
        for folder in reversed(missing):
            fd = safe_fs.open_path(os.path.dirname(folder))
            try:
                nfd, created = safe_fs.make_dir(os.path.basename(folder), fd, 0o755)
                os.close(nfd)
            finally:
                os.close(fd)
            if created:
                made.append(folder)
    except OSError as exc:
        module.fail_json(
            msg=f"work_dir: cannot create the folders above {path}: {exc.filename or cur}: {exc.strerror or exc}; "
            "each must be a folder reached without symbolic links",
            path=path,
            created=made,
        )
    return made


def _read(module: AnsibleModule, fd: int, path: str, patterns: list[str], created: list[str]) -> dict[str, str]:
    """The text of the regular files in the folder ``fd`` (``path``) whose names match ``patterns``."""
    out: dict[str, str] = {}
    for name in sorted(os.listdir(fd)):
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        try:
            ffd, _st = safe_fs.open_regular(name, fd)
        except safe_fs.NotRegularFile:
            continue
        except FileNotFoundError:
            continue  # removed since the listing
        except OSError as exc:
            module.fail_json(
                msg=f"work_dir: cannot read {os.path.join(path, name)}: {exc.strerror or exc}", created=created
            )
        with os.fdopen(ffd, "rb") as handle:
            data = handle.read()
        try:
            out[name] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            module.fail_json(
                msg=f"work_dir: {os.path.join(path, name)} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                "move it aside for inspection and re-run",
                created=created,
            )
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "subdirs": {"type": "list", "elements": "str", "default": []},
            "parents": {"type": "bool", "default": False},
            "read": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    path = os.path.normpath(module.params["path"])
    if not os.path.isabs(path) or path == "/":
        module.fail_json(msg=f"work_dir: path {path!r} is not an absolute folder path; give one like /srv/books/.lg-1")
    subdirs = []
    for sub in module.params["subdirs"]:
        parts = [p for p in sub.split("/") if p]
        if not parts or sub.startswith("/") or any(p in (".", "..") for p in parts):
            module.fail_json(msg=f"work_dir: subdir {sub!r} must be a relative path inside {path} without '..'")
        subdirs.append(parts)
    check = module.check_mode
    created: list[str] = _parents(module, path) if module.params["parents"] else []
    files: dict[str, str] = {}
    try:
        # in check mode, a folder whose parent would be created does not exist yet either
        fd, made = (None, False) if check and created else safe_fs.private_dir(path, create=not check)
    except safe_fs.NotPrivate as exc:
        _refuse(module, path, exc.strerror, created)
    except OSError as exc:
        module.fail_json(
            msg=f"work_dir: cannot create or open {exc.filename or path}: {exc.strerror or exc}; the parent must be an "
            "existing folder reached without symbolic links"
        )
    if made or fd is None:
        created.append(path)
    try:
        if fd is not None and module.params["read"]:
            files = _read(module, fd, path, module.params["read"], created)
        for parts in subdirs:
            cur_fd, cur = (os.dup(fd) if fd is not None else None), path
            try:
                for part in parts:
                    cur = os.path.join(cur, part)
                    st = safe_fs.lstat(part, cur_fd) if cur_fd is not None else None
                    if st is None:
                        if check:
                            if cur not in created:
                                created.append(cur)
                            if cur_fd is not None:
                                os.close(cur_fd)
                            cur_fd = None
                            continue
                        os.mkdir(part, 0o700, dir_fd=cur_fd)
                        created.append(cur)
                        nfd = safe_fs.open_dir(part, cur_fd)
                        os.fchmod(nfd, 0o700)
                    else:
                        nfd = safe_fs.open_dir(part, cur_fd) if stat.S_ISDIR(st.st_mode) else None
                    why = safe_fs.why_not_private(os.fstat(nfd) if nfd is not None else st)
                    if why:
                        if nfd is not None:
                            os.close(nfd)
                        _refuse(module, cur, why, created)
                    os.close(cur_fd)
                    cur_fd = nfd
            finally:
                if cur_fd is not None:
                    os.close(cur_fd)
    except OSError as exc:
        module.fail_json(msg=f"work_dir: cannot create {exc.filename or path}: {exc.strerror or exc}", created=created)
    finally:
        if fd is not None:
            os.close(fd)
    module.exit_json(changed=bool(created), path=path, created=created, files=files)


if __name__ == "__main__":
    main()
