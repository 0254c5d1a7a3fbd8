#!/usr/bin/python
# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Swap a restored tree from staging into place: damaged files to quarantine, nothing deleted."""

from __future__ import annotations

DOCUMENTATION = r"""
module: restore_swap
short_description: Put files restored into a staging directory in place, quarantining the damaged ones
version_added: "0.1.0"
description:
  - Compares each client path (the live tree) with the same path under O(staging), where a snapshot was restored
    (restic lands C(/srv/books/c001/a.csv) at C(<staging>/srv/books/c001/a.csv)).
  - A file missing from the live tree is put back. A live file whose content differs and that looks damaged
    (ransom-note name, ransomware extension, lost file header, encrypted-looking content, truncated, no longer text,
    or changed without a newer modification time) is moved to O(quarantine) (same relative path) and replaced.
  - A live file changed after O(snapshot_time) that does not look damaged is kept and listed in RV(kept_changed); a
    live file that is not in the snapshot and does not look damaged is kept and listed in RV(kept_new). Damaged new
    files (ransom notes, encrypted copies) go to quarantine.
  - Restored files are hard links to the staged files (same filesystem), so owner, group, mode and times restic
    restored stay intact, no data is copied, and the staging tree stays complete (a second run changes nothing).
  - Nothing is ever deleted. Quarantine moves are renames on the same filesystem (a copy and unlink only when the
    quarantine is on another filesystem).
  - When the live paths are behind a read-only bind mount (the C(readonly_bind) write freeze), the module detaches
    those mounts in its own private mount namespace only (root), so its writes go to the real directory while
    every other process keeps the read-only view until the thaw.
author: ledgerguard contributors (@ledgerguard)
options:
  paths:
    description: Absolute live paths (client folders) to swap.
    type: list
    elements: path
    required: true
  staging:
    description: The directory the snapshot was restored into (the live paths appear under it with their full path).
    type: path
    required: true
  quarantine:
    description: Where damaged live files are moved, keeping their full path below it. Created C(0700).
    type: path
    required: true
  snapshot_time:
    description: Time of the restored snapshot (RFC 3339). Live files changed after it may be legitimate new work.
    type: str
    required: true
  sample_bytes:
    description: Bytes read from each differing file to judge damage.
    type: int
    default: 65536
  entropy_bits:
    description: Entropy (bits per byte) above which content counts as encrypted or random.
    type: float
    default: 7.2
  detach_readonly_mounts:
    description: Detach read-only mounts on the live paths in a private mount namespace before writing (root only).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: In check mode the plan is computed and returned; nothing is moved or linked.
  diff_mode:
    support: none
    description: No diff is produced.
notes:
  - Staging and live paths must be on the same filesystem (hard links).
"""

EXAMPLES = r"""
- name: Swap the restored books of client c001 into place
  ledgerguard.recovery.restore_swap:
    paths: [/srv/books/c001]
    staging: /srv/books/.ledgerguard/INC-20261126-001/staging/c001
    quarantine: /srv/books/.ledgerguard/INC-20261126-001/quarantine/c001
    snapshot_time: "2026-11-24T02:00:00Z"
"""

RETURN = r"""
restored:
  description: Files that were missing and were put back.
  returned: always
  type: list
  elements: str
replaced:
  description: Damaged files moved to quarantine and replaced by the snapshot's version.
  returned: always
  type: list
  elements: str
quarantined:
  description: Every file moved to quarantine, with why and its sha256.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /srv/books/c001/a.csv.locked
      to: /q/srv/books/c001/a.csv.locked
      reason: ransomware extension .locked
      sha256: ab12...
      size: 10
kept_changed:
  description: Files changed after the snapshot that do not look damaged; kept, the snapshot's version is in staging.
  returned: always
  type: list
  elements: dict
kept_new:
  description: Files created after the snapshot that do not look damaged; kept for review.
  returned: always
  type: list
  elements: dict
unchanged:
  description: Number of files already identical to the snapshot.
  returned: always
  type: int
bytes:
  description: Bytes put in place (restored plus replaced).
  returned: always
  type: int
detached_mounts:
  description: Read-only mounts detached in the module's private namespace.
  returned: always
  type: list
  elements: str
verified:
  description: After the swap, every restored or replaced file has the snapshot's sha256 (always true in check mode).
  returned: always
  type: bool
"""

import ctypes  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import datetime  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import re  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import errno  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import hashlib  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import shutil  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import stat  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.damage import file_damage, read_sample  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.manifest import escape_path  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

CLONE_NEWNS = 0x00020000
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_time(text: str) -> float:
    text = text.strip().replace("Z", "+00:00")
    # restic prints nanoseconds; Python takes microseconds.
    if "." in text:
        head, rest = text.split(".", 1)
        frac = re.match(r"\d*", rest).group(0)
        tz = rest[len(frac) :]
        text = f"{head}.{frac[:6]}{tz}"
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _readonly_mounts(paths: list[str]) -> list[str]:
    """Mount points at or under ``paths`` that are mounted read-only (deepest first)."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 6:
                    continue
                mount_point = fields[4].encode("utf-8").decode("unicode_escape")
                options = fields[5].split(",")
                if "ro" not in options:
                    continue
                for path in paths:
                    if mount_point == path or mount_point.startswith(path.rstrip("/") + "/"):
                        found.append(mount_point)
    except OSError:
        return []
    return sorted(set(found), key=len, reverse=True)


def _detach(mounts: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --make-rprivate /: {os.strerror(err)}")
    for mount_point in mounts:
        # A path may carry several stacked read-only mounts; detach until it is writable.
        for _attempt in range(8):
            if mount_point not in _readonly_mounts([mount_point]):
                break
            if libc.umount2(mount_point.encode("utf-8"), MNT_DETACH) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"umount2({mount_point}): {os.strerror(err)}")


class Swapper:
    def __init__(self, module: AnsibleModule):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.snapshot_ts = _parse_time(self.params["snapshot_time"])
        self.result = {
            "restored": [],
            "replaced": [],
            "quarantined": [],
            "kept_changed": [],
            "kept_new": [],
            "unchanged": 0,
            "bytes": 0,
            "detached_mounts": [],
            "verified": True,
        }
        self.placed: list[tuple[str, str]] = []

    # -- helpers -------------------------------------------------------------------------------------------------
    def staged(self, live: str) -> str:
        return os.path.join(self.params["staging"], live.lstrip("/"))

    def quarantine_path(self, live: str) -> str:
        return os.path.join(self.params["quarantine"], live.lstrip("/"))

    def ensure_dirs(self, live_dir: str) -> None:
        """Create missing live directories, copying mode/owner from staging."""
        missing = []
        cur = live_dir
        while not os.path.lexists(cur):
            missing.append(cur)
            cur = os.path.dirname(cur)
        for path in reversed(missing):
            if self.check:
                continue
            os.mkdir(path, 0o700)
            source = self.staged(path)
            if os.path.isdir(source):
                st = os.stat(source)
                os.chown(path, st.st_uid, st.st_gid)
                os.chmod(path, stat.S_IMODE(st.st_mode))

    def move_to_quarantine(self, live: str, reason: str) -> None:
        target = self.quarantine_path(live)
        entry = {"path": live, "to": target, "reason": reason}
        if os.path.isfile(live) and not os.path.islink(live):
            entry["sha256"] = _sha256(live)
            entry["size"] = os.path.getsize(live)
        if not self.check:
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            if os.path.lexists(target):
                target = f"{target}.{int(os.path.getmtime(live))}"
                entry["to"] = target
            try:
                os.rename(live, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.move(live, target)
        self.result["quarantined"].append(entry)

    def place(self, live: str, source: str) -> None:
        if not self.check:
            self.ensure_dirs(os.path.dirname(live))
            try:
                os.link(source, live, follow_symlinks=False)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Staging on another filesystem: copy, keeping owner and mode.
                shutil.copy2(source, live, follow_symlinks=False)
                st = os.lstat(source)
                os.lchown(live, st.st_uid, st.st_gid)
        else:
            self.ensure_dirs(os.path.dirname(live))
        self.placed.append((live, source))
        if not os.path.islink(source):
            self.result["bytes"] += os.path.getsize(source)

    # -- the walk ------------------------------------------------------------------------------------------------
    def swap_path(self, root: str) -> None:
        staged_root = self.staged(root)
        if not os.path.isdir(staged_root):
            self.module.fail_json(
                msg=f"restore_swap: {root} was not found in staging ({staged_root}): the snapshot does not hold this "
                "client path; "
                "restore the snapshot into staging first or check the client's paths",
                **self.result,
            )
        snapshot_files = set()
        for dirpath, dirnames, filenames in os.walk(staged_root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, staged_root)
            live_dir = root if rel_dir == "." else os.path.join(root, rel_dir)
            if os.path.islink(live_dir):
                # Never write through a link: it may point out of the client's folder (e.g. to /etc).
                self.move_to_quarantine(live_dir, "a symbolic link stands where the snapshot has a directory")
            elif os.path.lexists(live_dir) and not os.path.isdir(live_dir):
                self.move_to_quarantine(live_dir, "a file stands where the snapshot has a directory")
            names = list(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            for name in sorted(names):
                source = os.path.join(dirpath, name)
                live = os.path.join(live_dir, name)
                snapshot_files.add(live)
                self.swap_file(live, source)
        self.sweep_new(root, snapshot_files)

    def swap_file(self, live: str, source: str) -> None:
        if not os.path.lexists(live):
            self.place(live, source)
            self.result["restored"].append(live)
            return
        if os.path.islink(source) or os.path.islink(live):
            if os.path.islink(source) and os.path.islink(live) and os.readlink(source) == os.readlink(live):
                self.result["unchanged"] += 1
                return
            self.move_to_quarantine(live, "differs from the snapshot's symbolic link")
            self.place(live, source)
            self.result["replaced"].append(live)
            return
        if os.path.isdir(live):
            self.move_to_quarantine(live, "a directory stands where the snapshot has a file")
            self.place(live, source)
            self.result["replaced"].append(live)
            return
        if os.path.samefile(live, source) or _sha256(live) == _sha256(source):
            self.result["unchanged"] += 1
            return
        size = self.params["sample_bytes"]
        reason = file_damage(live, read_sample(live, size), read_sample(source, size), self.params["entropy_bits"])
        if reason is None and os.path.getmtime(live) <= self.snapshot_ts:
            reason = "content differs from the snapshot but the file was not modified after it (silent corruption)"
        if reason is None:
            self.result["kept_changed"].append(
                {
                    "path": live,
                    "mtime": _iso(os.path.getmtime(live)),
                    "snapshot_version": source,
                    "sha256": _sha256(live),
                }
            )
            return
        self.move_to_quarantine(live, reason)
        self.place(live, source)
        self.result["replaced"].append(live)

    def sweep_new(self, root: str, snapshot_files: set[str]) -> None:
        if not os.path.isdir(root):
            return
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                live = os.path.join(dirpath, name)
                if live in snapshot_files or any(live == q["path"] for q in self.result["quarantined"]):
                    continue
                reason = file_damage(
                    live, read_sample(live, self.params["sample_bytes"]), None, self.params["entropy_bits"]
                )
                if reason:
                    self.move_to_quarantine(live, reason)
                else:
                    self.result["kept_new"].append(
                        {"path": live, "mtime": _iso(os.path.getmtime(live)), "size": os.path.getsize(live)}
                    )

    def verify(self) -> None:
        if self.check:
            return
        for live, source in self.placed:
            if os.path.islink(source):
                ok = os.path.islink(live) and os.readlink(live) == os.readlink(source)
            else:
                ok = os.path.isfile(live) and _sha256(live) == _sha256(source)
            if not ok:
                self.result["verified"] = False
                self.module.fail_json(
                    msg="restore_swap: {} does not match the snapshot's version {} after the swap; the damaged "
                    "original is in {}".format(live, source, self.params["quarantine"]),
                    **self.result,
                )


def _text(value):
    """Ansible results must be valid UTF-8: a non-UTF-8 file name is returned in file_manifest's reversible escaped
    form (each undecodable byte as \\xNN), so the swap of such files is reported instead of failing the task."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return escape_path(os.fsencode(value))
        return value
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


class _Module(AnsibleModule):
    def exit_json(self, **kwargs):
        super().exit_json(**_text(kwargs))

    def fail_json(self, msg, **kwargs):
        super().fail_json(msg=_text(msg), **_text(kwargs))


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def main() -> None:
    module = _Module(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "staging": {"type": "path", "required": True},
            "quarantine": {"type": "path", "required": True},
            "snapshot_time": {"type": "str", "required": True},
            "sample_bytes": {"type": "int", "default": 65536},
            "entropy_bits": {"type": "float", "default": 7.2},
            "detach_readonly_mounts": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    paths = [os.path.normpath(p) for p in module.params["paths"]]
    for path in paths + [module.params["staging"], module.params["quarantine"]]:
        if not os.path.isabs(path):
            module.fail_json(msg=f"restore_swap: {path!r} is not an absolute path; give absolute paths")
    try:
        swapper = Swapper(module)
    except ValueError as exc:
        module.fail_json(
            msg="restore_swap: snapshot_time {!r} is not an RFC 3339 time ({})".format(
                module.params["snapshot_time"], exc
            )
        )
    if module.params["detach_readonly_mounts"] and not module.check_mode:
        mounts = _readonly_mounts(paths)
        if mounts:
            if os.geteuid() != 0:
                module.fail_json(
                    msg="restore_swap: {} is mounted read-only (write freeze?) and detaching it in a private "
                    "namespace needs root; run with become: true or thaw first".format(", ".join(mounts))
                )
            try:
                _detach(mounts)
            except OSError as exc:
                module.fail_json(msg=f"restore_swap: cannot write beneath the read-only freeze of {mounts}: {exc}")
            swapper.result["detached_mounts"] = mounts
    try:
        for path in paths:
            swapper.swap_path(path)
        swapper.verify()
    except OSError as exc:
        module.fail_json(
            msg="restore_swap: {} failed: {}; nothing was deleted, moved files are in {}".format(
                exc.filename or "swap", exc.strerror or exc, module.params["quarantine"]
            ),
            **swapper.result,
        )
    result = swapper.result
    changed = bool(result["restored"] or result["replaced"] or result["quarantined"])
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
