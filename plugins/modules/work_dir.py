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
author: ledgerguard contributors (@ledgerguard)
options:
  path:
    description: The work folder (absolute). Its parent must exist.
    type: path
    required: true
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
"""

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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "subdirs": {"type": "list", "elements": "str", "default": []},
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
    created: list[str] = []
    try:
        fd, made = safe_fs.private_dir(path, create=not check)
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
    module.exit_json(changed=bool(created), path=path, created=created)


if __name__ == "__main__":
    main()
