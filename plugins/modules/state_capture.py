#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: state_capture
short_description: Record a host's system state for an incident's evidence, with other programs' secrets masked
version_added: "0.1.0"
description:
  - Writes into I(dest) the files of the state bundle C(mounts.txt) (the mount table), C(df.txt) (disk and inode
    usage), C(services.txt) (systemd services), C(journal.txt) (the last I(journal_lines) journal lines),
    C(processes.txt) (every process with its command line) and C(uname.txt) (kernel, time, uptime), each mode 0600.
  - "Other programs' secrets are masked with C(***) before anything is written: command lines are read from
    C(/proc/<pid>/cmdline) as argv and masked argument by argument (C(--password=x), C(--password x), C(PGPASSWORD=x),
    C(token=x), MySQL's C(-px), C(user:secret@) in URLs, ...); journal lines and the other files are masked as text
    with the same rules (module_utils C(redact), built on the freeze's C(writers.mask_cmdline))."
  - Hosts without systemd get a one-line note in C(services.txt) and C(journal.txt).
  - With O(manifest_paths), each path that is a directory (not a symlink) is hashed into
    C(manifest-<index><path with / as _>.jsonl) in the same folder (the JSON-lines format of
    M(ledgerguard.recovery.file_manifest)); a path that is missing, a symlink or not a directory is listed in
    RV(manifest_skipped) instead.
  - With O(record), that mapping is written as C(pre-restore-snapshot.json). With O(archive), every file of the folder
    is then packed into that C(.tar.gz) (mode 0600), ready to be fetched into the evidence folder.
  - I(dest) is created (mode 0700, parents too) when it is missing; an existing I(dest) must be a folder, not a
    symlink.
  - With O(evidence_dir) (and O(archive)), the action plugin then files the bundle on the controller in the same task.
    It reads O(archive) from the host, writes it as C(state-bundle.tar.gz) and every file in it into O(evidence_dir)
    (folder 0700, files 0600; an archive holding anything but flat regular files is refused), then writes that
    folder's C(SHA256SUMS). In check mode nothing is read or written and RV(msg) says what would be collected.
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Writes nothing and reports the files it would write.
  diff_mode:
    support: none
    description: The files are a new record each time; there is no diff.
  platform:
    support: full
    platforms: posix
    description: Linux hosts (C(/proc), C(ps), C(df); systemd optional).
options:
  dest:
    description:
      - Folder (root-only) that receives the files, created when missing (0700); files of an earlier run are replaced,
        and only this run's files go into O(archive). A folder another user owns, or group or others can write, is
        refused.
    type: path
    required: true
  journal_lines:
    description: How many of the most recent journal lines to keep.
    type: int
    default: 2000
  manifest_paths:
    description: Affected paths to hash into the bundle, one manifest per path.
    type: list
    elements: path
    default: []
  record:
    description: A mapping written as C(pre-restore-snapshot.json) in the bundle (the pre-restore snapshot's ID, paths).
    type: dict
  archive:
    description: A C(.tar.gz) to pack the bundle's files into (replaced on every run).
    type: path
  evidence_dir:
    description:
      - A folder on the controller (the incident's C(hosts/<host>/) evidence folder) to file the bundle in; needs
        O(archive). Handled by the action plugin on the controller; the module on the host does not use it.
    type: path
  return_archive:
    description:
      - Also return the packed O(archive)'s bytes (base64) as RV(archive_content). The action plugin sets it when it
        files the bundle in O(evidence_dir), so the bundle comes back with the module's own result (issue 19 - no
        second module run to read it); it removes RV(archive_content) from the task's result.
    type: bool
    default: false
notes:
  - The state is recorded anew on every run, so the module always reports C(changed) (in check mode too, where
    nothing is written).
"""

EXAMPLES = r"""
- name: Record the host's state into the incident's bundle folder
  ledgerguard.recovery.state_capture:
    dest: /var/lib/ledgerguard/incidents/INC-20261126-001/state
    journal_lines: 500

- name: Record the state, hash the client folders and pack the bundle for the evidence folder
  ledgerguard.recovery.state_capture:
    dest: /var/lib/ledgerguard/incidents/INC-20261126-001/state
    manifest_paths: [/srv/books/杭州示例贸易有限公司]
    record: {snapshot_id: 4b4622035c1e9bd0a9f5e4b3c2a1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3}
    archive: /var/lib/ledgerguard/incidents/INC-20261126-001/state.tar.gz
    evidence_dir: /var/lib/ledgerguard/evidence/INC-20261126-001/hosts/books01
"""

RETURN = r"""
files:
  description: The files written (names inside I(dest)); in check mode the state files it would write (the manifests
    and C(pre-restore-snapshot.json) not named).
  returned: always
  type: list
  elements: str
  sample: [mounts.txt, df.txt, services.txt, journal.txt, processes.txt, uname.txt]
masked_lines:
  description: How many lines had a secret masked, per file.
  returned: success, not in check mode
  type: dict
  sample: {"processes.txt": 2, "journal.txt": 1}
dest:
  description: The folder written to.
  returned: always
  type: str
  sample: /var/lib/ledgerguard/incidents/INC-20261126-001/state
manifests:
  description: Per hashed path, the manifest file's name, its sha256 and the counts of the walk.
  returned: success, not in check mode
  type: list
  elements: dict
  sample: [{"path": "/srv/books/c001", "name": "manifest-0_srv_books_c001.jsonl", "files": 12, "errors": 0}]
manifest_skipped:
  description: The O(manifest_paths) not hashed, each with the reason (missing, a symlink, not a directory).
  returned: success, not in check mode
  type: list
  elements: dict
  sample: [{"path": "/srv/books/c002", "reason": "missing"}]
archive:
  description: The C(.tar.gz) written (O(archive)).
  returned: when O(archive) is given
  type: str
  sample: /var/lib/ledgerguard/incidents/INC-20261126-001/state.tar.gz
archive_content:
  description: The packed O(archive)'s bytes, base64 (read back from the file written).
  returned: when O(return_archive) is set and O(archive) is given, not in check mode
  type: str
evidence_dir:
  description: The controller folder the bundle was filed in (O(evidence_dir)).
  returned: when O(evidence_dir) is given
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/hosts/books01
evidence_files:
  description: The files written into O(evidence_dir), C(state-bundle.tar.gz) first.
  returned: when O(evidence_dir) is given, not in check mode
  type: list
  elements: str
  sample: [state-bundle.tar.gz, mounts.txt, df.txt, services.txt, journal.txt, processes.txt, uname.txt]
evidence_sums:
  description: The C(SHA256SUMS) of O(evidence_dir), rewritten after the bundle was filed.
  returned: when O(evidence_dir) is given, not in check mode
  type: str
  sample: /var/lib/ledgerguard/evidence/INC-20261126-001/hosts/books01/SHA256SUMS
msg:
  description: In check mode with O(evidence_dir), what the bundle would hold and where it would be filed.
  returned: when O(evidence_dir) is given in check mode
  type: str
"""

import base64  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import json  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import re  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import shlex  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import stat  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import tarfile  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest as mf  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.redact import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    mask_argv,
    mask_secrets,
)

FILES = ("mounts.txt", "df.txt", "services.txt", "journal.txt", "processes.txt", "uname.txt")
PS_COLUMNS = "pid,ppid,user,lstart,stat,args"
# pid ppid user lstart(Www Mmm dd hh:mm:ss yyyy) stat | args
_PS_LINE = re.compile(r"^(\s*(\d+)\s+\d+\s+\S+\s+\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4}\s+\S+\s)(.*)$")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def run_text(module: AnsibleModule, argv: list[str]) -> str:
    """stdout and stderr of a command as text (never raises; a missing command is a line saying so)."""
    binary = module.get_bin_path(argv[0])
    if binary is None:
        return f"{argv[0]}: not installed on this host\n"
    rc, out, err = module.run_command([binary, *argv[1:]], encoding=None, environ_update={"LC_ALL": "C"})
    text = _text(out or b"") + _text(err or b"")
    if rc != 0:
        text += f"({shlex.join(argv)} exited {rc})\n"
    return text


def masked_text(text: str) -> tuple[str, int]:
    lines = text.splitlines(keepends=True)
    out = [mask_secrets(line) for line in lines]
    return "".join(out), sum(1 for a, b in zip(lines, out, strict=True) if a != b)


def proc_argv(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    if not raw:
        return None
    return [os.fsdecode(a) for a in raw.rstrip(b"\0").split(b"\0")]


def processes(module: AnsibleModule) -> tuple[str, int]:
    """The ps listing with each command line replaced by its masked argv from /proc (ps joins argv with spaces,
    which would hide where an argument ends)."""
    listing = run_text(module, ["ps", "-eo", PS_COLUMNS, "--sort=pid"])
    out, masked = [], 0
    for line in listing.splitlines():
        m = _PS_LINE.match(line)
        argv = proc_argv(m.group(2)) if m else None
        if argv is not None:
            safe = mask_argv(argv)
            new = m.group(1) + shlex.join(safe)
            masked += safe != argv
        else:
            new = mask_secrets(line)
            masked += new != line
        out.append(new)
    return "\n".join(out) + "\n", masked


def capture(module: AnsibleModule, journal_lines: int) -> dict[str, tuple[str, int]]:
    systemd = os.path.isdir("/run/systemd/system") and module.get_bin_path("systemctl") is not None
    try:
        with open("/proc/self/mountinfo", "rb") as handle:
            mounts = _text(handle.read())
    except OSError as exc:
        mounts = f"/proc/self/mountinfo: {exc.strerror}\n"
    df = run_text(module, ["df", "-P", "-T", "-h"]) + "\n" + run_text(module, ["df", "-P", "-i"])
    if systemd:
        services = run_text(
            module, ["systemctl", "list-units", "--type=service", "--all", "--no-pager", "--plain", "--no-legend"]
        )
        journal = run_text(module, ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(journal_lines)])
    else:
        services = "systemd is not running on this host\n"
        journal = "no systemd journal on this host\n"
    uname = run_text(module, ["uname", "-a"]) + run_text(module, ["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"])
    uname += run_text(module, ["uptime"])
    return {
        "mounts.txt": masked_text(mounts),
        "df.txt": masked_text(df),
        "services.txt": masked_text(services),
        "journal.txt": masked_text(journal),
        "processes.txt": processes(module),
        "uname.txt": masked_text(uname),
    }


def write_file(folder: str, name: str, text: str) -> None:
    path = os.path.join(folder, name)
    tmp = os.path.join(folder, f".{name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8", "surrogateescape"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def manifest_name(index: int, path: str) -> str:
    return f"manifest-{index}{path.replace('/', '_')}.jsonl"


def hash_paths(dest: str, paths: list[str]) -> tuple[list[dict], list[dict]]:
    """One manifest per directory of ``paths`` (never through a symlink); the others with the reason."""
    done, skipped = [], []
    for index, path in enumerate(paths):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            skipped.append({"path": path, "reason": "missing"})
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            skipped.append({"path": path, "reason": "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"})
            continue
        name = manifest_name(index, path)
        counts = mf.write_manifest(os.fsencode(path), os.path.join(dest, name), mode=0o600)
        done.append({"path": path, "name": name, **counts})
    return done, skipped


def pack(dest: str, archive: str, names: list[str]) -> None:
    """The files ``names`` of ``dest`` (this run's: a file an earlier run left there is not evidence of this one; no
    link followed) into ``archive``, written beside it and renamed."""
    tmp = os.path.join(os.path.dirname(archive), f".{os.path.basename(archive)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name in sorted(names):
            full = os.path.join(dest, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                tar.add(full, arcname=name, recursive=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, archive)


def read_archive(archive: str) -> str:
    """The archive just written, base64 (opened without following a link: the file pack() renamed into place)."""
    fd = os.open(archive, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def make_dest(module: AnsibleModule, dest: str, result: dict) -> None:
    if not os.path.lexists(dest) and not module.check_mode:
        try:
            os.makedirs(dest, mode=0o700)
        except OSError as exc:
            module.fail_json(msg=f"dest {dest} cannot be created: {exc.strerror}. Check its parent folder.", **result)
    if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest)):
        module.fail_json(msg=f"dest {dest} is not a folder (or is a symlink): move it away and run again.", **result)
    if os.path.isdir(dest) and not os.path.islink(dest):
        st = os.lstat(dest)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            module.fail_json(
                msg=f"dest {dest} is not this user's private folder (owner uid {st.st_uid}, mode "
                f"{stat.S_IMODE(st.st_mode):04o}): others could change the bundle; 'chown' and 'chmod 700' it, or "
                "give another dest.",
                **result,
            )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "journal_lines": {"type": "int", "default": 2000},
            "manifest_paths": {"type": "list", "elements": "path", "default": []},
            "record": {"type": "dict"},
            "archive": {"type": "path"},
            "evidence_dir": {"type": "path"},
            "return_archive": {"type": "bool", "default": False},
        },
        required_by={"evidence_dir": "archive"},
        supports_check_mode=True,
    )
    p = module.params
    dest = p["dest"]
    lines = p["journal_lines"]
    result = {"changed": True, "dest": dest, "files": list(FILES)}
    if lines < 0:
        module.fail_json(msg=f"journal_lines {lines} is negative: give 0 or more lines to keep.", **result)
    make_dest(module, dest, result)
    if module.check_mode:
        module.exit_json(**result)
    files = capture(module, lines)
    if p["record"] is not None:
        files["pre-restore-snapshot.json"] = (json.dumps(p["record"], indent=2, ensure_ascii=False) + "\n", 0)
    try:
        for name, (text, _count) in files.items():
            write_file(dest, name, text)
        result["manifests"], result["manifest_skipped"] = hash_paths(dest, p["manifest_paths"])
        if p["archive"]:
            pack(dest, p["archive"], list(files) + [m["name"] for m in result["manifests"]])
            result["archive"] = p["archive"]
            if p["return_archive"]:
                result["archive_content"] = read_archive(p["archive"])
    except OSError as exc:
        module.fail_json(msg=f"Writing the state bundle into {dest} failed: {exc}. Check its space.", **result)
    result["files"] = list(files) + [m["name"] for m in result["manifests"]]
    result["masked_lines"] = {name: count for name, (_text, count) in files.items() if count}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
