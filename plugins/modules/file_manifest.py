#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_manifest
short_description: Build a sha256 manifest of a directory tree, or compare two manifests
version_added: "0.1.0"
description:
  - C(operation=create) walks O(path) without following symlinks and records, for every entry, its path relative
    to O(path), type, size, mode, uid, gid, mtime (nanoseconds; not for directories), the sha256 of regular files
    and the target of symlinks. Files are hashed in parallel (worker processes by default).
  - With O(dest) the manifest is streamed to that file, so memory does not grow with the number of files (it is
    bounded by the largest single directory listing and a fixed window of in-flight hashing work). The file is only
    replaced when its content changes, so writing the same manifest again reports C(changed=false).
  - C(operation=compare) compares O(reference) with O(candidate) (a manifest file) or with the live tree at O(path),
    by a sorted streaming merge, and reports missing, changed and extra entries (counts, bounded lists, and the full
    lists in O(report)).
  - "JSON lines format (O(format=json)): a header line C({\"ledgerguard_manifest\": 1, ...}) then one object per
    entry with keys C(path), C(type) (file, dir, symlink, other), C(size), C(mode) (octal string), C(uid), C(gid),
    C(mtime_ns), C(sha256) (files), C(target) (symlinks), C(error) (entry could not be read). Entries are sorted
    by path components, compared as raw bytes."
  - "Paths are stored as text: UTF-8 where the name is valid printable UTF-8; a backslash is written C(\\\\\\\\) and any
    other byte (invalid UTF-8, control characters) C(\\\\xNN), so names that are not UTF-8 survive a round trip."
  - "O(format=sha256sum) writes GNU coreutils C(sha256sum) lines for regular files only (no metadata); C(sha256sum -c)
    run in O(path) accepts it. Both formats are accepted as O(reference) and O(candidate); a C(sha256sum) file in any
    order is sorted on disk (bounded memory) before the merge. When either side is a C(sha256sum) file, only
    regular files are compared."
  - "C(operation=compare_backup) compares a tree restored from restic O(snapshot) into O(path) (landing rule of
    restic_restore: C(/a/b) lands at C(<path>/a/b)) with that snapshot's B(backup-time manifest), recorded at backup
    time by restic_backup C(manifest=true) or C(ledgerguard manifest record) and stored in the same repository as a
    stdin snapshot tagged C(ledgerguard-manifest-for=<snapshot ID>). The manifest is read with C(restic dump); only
    its entries under O(include_paths) are compared. Each regular file of the manifest is C(identical) (same sha256),
    C(changed_since_manifest) (sha256 differs and so do size or mtime: it changed between the backup and the
    manifest; also a manifest file the snapshot does not hold), C(differing) (sha256 differs while size and mtime
    are equal: the restored copy is not what was backed up) or C(missing) (the snapshot holds it but the restore
    lacks it). Restored files the manifest lacks are C(not_in_manifest). Without a manifest C(backup_manifest.found)
    is V(false) and nothing is compared. The restic connection options follow the collection's secrets contract
    (action plugin); they are used by this operation only."
author: ledgerguard contributors (@ledgerguard)
attributes:
  check_mode:
    support: full
    description:
      - Nothing is written in check mode; the manifest is computed and its digest compared with O(dest).
      - V(compare_backup) only reads (the repository and the tree) and runs the same in check mode.
options:
  operation:
    description:
      - Build a manifest (V(create)), compare two (V(compare)), or compare a restored tree with the backup-time
        manifest of the restic snapshot it came from (V(compare_backup)).
    type: str
    choices: [create, compare, compare_backup]
    default: create
  path:
    description:
      - The tree to walk. Required for V(create). For V(compare), the live tree used as candidate when O(candidate)
        is not given. For V(compare_backup), the restore target the snapshot was restored into.
    type: path
  snapshot:
    description: V(compare_backup) only. Full ID (or a unique prefix of at least 8 characters) of the restored data
      snapshot.
    type: str
  include_paths:
    description:
      - V(compare_backup) only. Absolute paths that were restored, as the backed-up host named them (the snapshot's
        C(paths), which the manifest records; for a relative backup restic stores them elsewhere in the snapshot and
        the module finds them there); only the manifest entries under them are compared. Default is every path the
        snapshot backed up.
    type: list
    elements: path
    default: []
  dest:
    description:
      - File to stream the manifest to (V(create)). It is excluded from the walk when it lies inside O(path).
      - Without O(dest) the entries are returned in RV(entries), at most O(max_list) of them.
    type: path
  trees:
    description:
      - V(create) only. Several trees, each written to its own manifest in this one module run (the restore hashes
        every restored client folder of a host in one run), instead of O(path) and O(dest).
      - Each is built exactly as a run with that O(path) and O(dest) and the other options would build it; the
        results are returned in RV(trees), in the same order. A tree that cannot be hashed (not a directory, an
        unwritable O(dest)) is returned with C(failed=true) and C(msg); the others are built.
    type: list
    elements: dict
    suboptions:
      path:
        description: The tree to walk, as O(path).
        type: path
        required: true
      dest:
        description: The file to stream its manifest to, as O(dest).
        type: path
        required: true
  format:
    description: Manifest format written to O(dest).
    type: str
    choices: [json, sha256sum]
    default: json
  exclude:
    description: Shell patterns matched against the relative path and against the base name; matches are skipped.
    type: list
    elements: str
    default: []
  parallel:
    description:
      - How files are hashed. V(process) (default) uses forked worker processes, fastest here for many small
        files (see docs/benchmarks.md); V(thread) uses threads (hashlib releases the GIL on large buffers);
        V(none) hashes in the module process.
    type: str
    choices: [process, thread, none]
    default: process
  workers:
    description: Number of hashing workers; V(0) means one per CPU available to the module.
    type: int
    default: 0
  reference:
    description:
      - The expected manifest file (V(compare)), e.g. taken from the source before a backup.
      - With V(create) (and O(path)), the new manifest is also compared with it when it exists, as V(compare) with
        O(candidate) set to the manifest just written (in check mode, with O(path) hashed again), with the same
        O(compare_fields), O(max_list) and O(fail_on_differences); RV(reference_compare) holds the result. A
        reference that does not exist is no error (C(found) is false in RV(reference_compare)) - one task instead of a
        C(stat) and a V(compare).
    type: path
  candidates:
    description:
      - For V(compare_backup), manifests already written (V(create), json format) of the restored tree, one per
        O(include_paths) entry in the same order, each of O(path) joined with that entry. The restored files are then
        read from them instead of being hashed a second time. Without them the tree is hashed.
    type: list
    elements: path
    default: []
  candidate:
    description: The manifest file to check against O(reference) (V(compare)). If omitted, O(path) is hashed live.
    type: path
  compare_fields:
    description: Fields whose difference makes an entry C(changed). Fields absent from either side are not compared.
    type: list
    elements: str
    choices: [type, size, mode, uid, gid, mtime_ns, sha256, target]
    default: [type, size, sha256, target]
  report:
    description:
      - 'File that receives every difference (V(compare)) as JSON lines C({"status": "missing|changed|extra",
        "path": ..., "fields": [...]}), replaced only when its content changes.'
    type: path
  max_list:
    description: Most paths returned in each list of the result (the counts are always exact).
    type: int
    default: 100
  fail_on_differences:
    description:
      - Fail the task when V(compare) finds any difference (the result still carries them).
      - With V(compare_backup), fail when a file is C(differing) or C(missing) (C(changed_since_manifest) and
        C(not_in_manifest) never fail); the message names the snapshot, the manifest, the target and up to
        O(max_list) paths.
    type: bool
    default: false
  file_mode:
    description: Mode of the files written (O(dest), O(report)).
    type: raw
    default: "0640"
extends_documentation_fragment:
  - ledgerguard.recovery.restic
notes:
  - Directory mtimes are not recorded (they move whenever an entry is added or removed).
  - Memory is bounded by the largest single directory of the tree (its sorted name list), not by the tree size.
"""

EXAMPLES = r"""
- name: Record the manifest of a client's restored tree
  ledgerguard.recovery.file_manifest:
    path: /srv/restore/c001
    dest: /var/lib/ledgerguard/manifests/c001.restored.jsonl

- name: Compare it with the manifest taken from production before the backup
  ledgerguard.recovery.file_manifest:
    operation: compare
    reference: /var/lib/ledgerguard/manifests/c001.source.jsonl
    candidate: /var/lib/ledgerguard/manifests/c001.restored.jsonl
    report: /var/lib/ledgerguard/manifests/c001.diff.jsonl
    fail_on_differences: true

- name: Before the swap, compare a client's staging tree with the snapshot's backup-time manifest
  ledgerguard.recovery.file_manifest:
    operation: compare_backup
    snapshot: "{{ chosen_snapshot_id }}"
    path: /srv/books/.ledgerguard-INC-20260301-001/staging/c001
    include_paths: [/srv/books/c001]
    fail_on_differences: true
  register: backup_check

- name: Check a restored tree directly against a sha256sum file
  ledgerguard.recovery.file_manifest:
    operation: compare
    reference: /srv/backup-evidence/SHA256SUMS
    path: /srv/restore/c001
    compare_fields: [sha256]
  register: drift
"""

RETURN = r"""
operation:
  description: The operation run.
  returned: always
  type: str
  sample: create
dest:
  description: The manifest file (V(create) with O(dest)).
  returned: when O(dest) is set
  type: str
  sample: /var/lib/ledgerguard/manifests/c001.jsonl
format:
  description: Manifest format.
  returned: O(operation=create)
  type: str
  sample: json
digest:
  description: sha256 of the manifest bytes (what is, or in check mode would be, in O(dest)).
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: str
  sample: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
manifest_bytes:
  description: Size of the manifest in bytes.
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 10240
files:
  description: Regular files recorded.
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 20000
dirs:
  description: Directories recorded.
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 40
symlinks:
  description: Symlinks recorded.
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 2
others:
  description:
    - Other entries (fifos, sockets, devices) recorded. They are never opened or hashed (a FIFO would block, a
      device could be acted on); each is listed in RV(special_paths).
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 0
special_paths:
  description:
    - Escaped paths of the fifos, sockets and device nodes found (not hashed, never opened), at most O(max_list).
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: list
  elements: dict
  sample: [{"path": "c001/pipe", "kind": "fifo"}]
total_bytes:
  description: Sum of the sizes of the regular files.
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 1073741824
errors:
  description: Entries that could not be read (listed in RV(error_paths) and marked with C(error) in the manifest).
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: int
  sample: 0
error_paths:
  description: Escaped paths of unreadable entries with the error, at most O(max_list).
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees))
  type: list
  elements: dict
  sample: [{"path": "c001/locked.csv", "error": "Permission denied (errno 13)"}]
entries:
  description: The entries (as in the JSON format), when no O(dest) is given; at most O(max_list).
  returned: O(operation=create) without O(dest)
  type: list
  elements: dict
  sample: [{"path": "凭证/2024-03.csv", "type": "file", "size": 120, "sha256": "9f86d0..."}]
entries_truncated:
  description: Whether RV(entries) was cut at O(max_list).
  returned: O(operation=create) without O(dest)
  type: bool
  sample: false
seconds:
  description: Wall time of the walk, hashing and comparison.
  returned: O(operation=create) with O(path) (with O(trees), in each entry of RV(trees)) and O(operation=compare)
  type: float
  sample: 1.84
workers:
  description: Hashing workers used.
  returned: when a tree was hashed
  type: int
  sample: 2
parallel:
  description: Hashing mode used.
  returned: when a tree was hashed
  type: str
  sample: process
reference_compare:
  description:
    - With V(create) and O(reference), the comparison with the reference - C(reference) (its path), C(found) (false
      when the file does not exist; nothing else is returned then), and C(matched), C(counts), C(differences),
      C(truncated), C(seconds) as V(compare) returns them.
  returned: O(operation=create) with O(reference)
  type: dict
  sample: {"reference": "/var/lib/ledgerguard/manifests/c001.source.jsonl", "found": true, "matched": false,
           "counts": {"reference": 120, "candidate": 119, "missing": 1, "changed": 0, "extra": 0},
           "differences": {"missing": ["凭证/2024-02.csv"], "changed": [], "extra": []}, "truncated": false,
           "seconds": 0.02}
matched:
  description: True when V(compare) found no difference; with V(compare_backup), when a backup-time manifest was
    compared and nothing is missing or differing (false without a manifest - see RV(backup_manifest) C(found)).
  returned: O(operation=compare) and O(operation=compare_backup)
  type: bool
  sample: false
counts:
  description: Exact counts of the comparison (C(reference), C(candidate) entries; C(missing), C(changed), C(extra)).
  returned: O(operation=compare)
  type: dict
  sample: {"reference": 120, "candidate": 119, "missing": 1, "changed": 1, "extra": 0}
differences:
  description:
    - Escaped paths per kind (C(missing), C(extra)), and C(changed) as C({path, fields}), each at most O(max_list).
  returned: O(operation=compare)
  type: dict
  sample: {"missing": ["凭证/2024-02.csv"], "changed": [{"path": "ledger.sqlite", "fields": ["size", "sha256"]}],
           "extra": []}
truncated:
  description: Whether any list in RV(differences) was cut at O(max_list).
  returned: O(operation=compare)
  type: bool
  sample: false
backup_manifest:
  description:
    - The comparison with the backup-time manifest (V(compare_backup)). Paths are absolute, as the backed-up host
      named them (the snapshot's C(paths); the manifest records those live paths).
    - C(found) (a manifest snapshot exists for O(snapshot)), C(snapshot), C(manifest_snapshot), C(manifest_short_id),
      C(manifest_time), C(compared), and when compared the counts C(files) (manifest files under O(include_paths)),
      C(identical), C(changed_since_manifest), C(missing), C(differing), C(not_in_manifest), the lists
      C(changed_since_manifest_paths), C(missing_paths), C(differing_paths), C(not_in_manifest_paths) (at most
      O(max_list) each; C(differing) and C(changed_since_manifest) entries are C({path, why})), C(identical_all)
      (nothing missing or differing) and C(seconds).
  returned: O(operation=compare_backup)
  type: dict
  sample: {"found": true, "compared": true, "snapshot": "e5c57c8f...", "manifest_snapshot": "9b2f5c1a...",
           "files": 62, "identical": 61, "changed_since_manifest": 1, "missing": 0, "differing": 0,
           "not_in_manifest": 0, "identical_all": true,
           "changed_since_manifest_paths": [{"path": "/srv/books/c003/凭证/2026-11.csv",
                                             "why": "size and mtime_ns differ from the manifest"}]}
problem:
  description: One sentence naming the snapshot, the manifest, the target and the differing / missing paths.
  returned: O(operation=compare_backup) when a file is C(differing) or C(missing)
  type: str
trees:
  description:
    - With O(trees), one result per tree in their order, each as a run for that tree alone would return it (C(path),
      C(dest), C(digest), C(files), C(total_bytes), ...) with C(failed=false), or C(path), C(dest), C(failed=true) and
      C(msg).
  returned: O(operation=create) with O(trees)
  type: list
  elements: dict
  sample: [{"path": "/srv/books/.lg/staging/c001/run/srv/books/c001", "dest": "/srv/books/.lg/staging/c001.jsonl",
            "failed": false, "files": 21, "total_bytes": 182311, "digest": "5e8848..."}]
report:
  description: The file holding every difference.
  returned: O(operation=compare) with O(report)
  type: str
  sample: /var/lib/ledgerguard/manifests/c001.diff.jsonl
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest as mf
from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_manifest import (
    compare_with_backup_manifest,
    problem_text,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)


def _mode(module: AnsibleModule) -> int:
    value = module.params["file_mode"]
    try:
        return int(str(value), 8) if not isinstance(value, int) else value
    except ValueError:
        module.fail_json(msg=f'file_mode {value!r} is not an octal mode: give it quoted, e.g. "0640".')
    return 0o640


class TreeError(Exception):
    """A tree cannot be hashed (the message names the input and what to do)."""


def _tree_root(params: dict, name: str = "path") -> bytes:
    path = params[name]
    if not path:
        raise TreeError(f"operation={params['operation']} needs '{name}': the directory tree to hash.")
    if not os.path.isdir(path):
        raise TreeError(f"path {path!r} is not a directory: give the root of the tree to hash.")
    return os.fsencode(os.path.abspath(path))


def _check_parent(params: dict, name: str) -> None:
    target = params[name]
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise TreeError(f"{name} {target!r}: directory {parent!r} does not exist; create it first.")


def _skip_list(*paths: str | None) -> list[bytes]:
    return [os.fsencode(os.path.abspath(p)) for p in paths if p]


def run_create(module: AnsibleModule, p: dict | None = None) -> dict:
    """The manifest of one tree (``p``: the module's options, or one tree's of O(trees)); TreeError when it cannot
    be made."""
    p = module.params if p is None else p
    root = _tree_root(p)
    if p["dest"]:
        _check_parent(p, "dest")
    started = time.monotonic()
    try:
        writer = mf.DigestWriter(p["dest"], module.check_mode)
    except OSError as exc:
        raise TreeError(
            f"dest {p['dest']!r}: the manifest cannot be written there ({exc.strerror or exc}); choose another folder."
        ) from None
    stats = {"files": 0, "dirs": 0, "symlinks": 0, "others": 0, "errors": 0, "total_bytes": 0}
    error_paths: list[dict] = []
    special_paths: list[dict] = []
    entries: list[dict] = []
    truncated = False
    kinds = {"file": "files", "dir": "dirs", "symlink": "symlinks", "other": "others"}

    def counted(records):
        nonlocal truncated
        for rec in records:
            stats[kinds[rec["type"]]] += 1
            if rec["type"] == "file":
                stats["total_bytes"] += rec.get("size", 0)
            if rec["type"] == "other" and len(special_paths) < p["max_list"]:
                try:
                    kind = mf.file_kind(os.lstat(os.path.join(root, rec["path"])).st_mode)
                except OSError:
                    kind = "gone"
                special_paths.append({"path": mf.escape_path(rec["path"]), "kind": kind})
            if "error" in rec:
                stats["errors"] += 1
                if len(error_paths) < p["max_list"]:
                    error_paths.append({"path": mf.escape_path(rec["path"]), "error": rec["error"]})
            if not p["dest"]:
                if len(entries) < p["max_list"]:
                    entries.append(json.loads(mf.json_line(rec)))
                else:
                    truncated = True
            yield rec

    skip = _skip_list(p["dest"], writer.tmp_path)
    try:
        records = mf.hashed_entries(root, p["exclude"], skip, p["parallel"], p["workers"])
        for chunk in mf.serialize(counted(records), p["format"]):
            writer.write(chunk)
        changed = writer.finish(_mode(module)) if p["dest"] else False
    except OSError as exc:
        writer.abort()
        raise TreeError(
            f"Building the manifest of {p['path']!r} failed: {exc}. Check the path and permissions."
        ) from None
    except BaseException:
        writer.abort()
        raise
    result = {
        "changed": changed,
        "operation": "create",
        "format": p["format"],
        "digest": writer.digest.hexdigest(),
        "manifest_bytes": writer.size,
        "seconds": round(time.monotonic() - started, 3),
        "workers": p["workers"] or mf.default_workers(),
        "parallel": p["parallel"],
        "error_paths": error_paths,
        "special_paths": special_paths,
        **stats,
    }
    if p["dest"]:
        result["dest"] = p["dest"]
    else:
        result["entries"] = entries
        result["entries_truncated"] = truncated
    return result


def run_create_and_compare(module: AnsibleModule) -> dict:
    """V(create), then with O(reference) the comparison with it when it exists (RV(reference_compare))."""
    p = module.params
    result = run_create(module)
    if not p["reference"]:
        return result
    if not os.path.lexists(p["reference"]):
        result["reference_compare"] = {"reference": p["reference"], "found": False}
        return result
    written = p["dest"] and not module.check_mode
    # the comparison's options: the manifest just written as the candidate (else the tree hashed again), no report;
    # a failure on differences is raised here, with the create's result beside the comparison's
    compared = run_compare(
        module, dict(p, candidate=p["dest"] if written else None, report=None, fail_on_differences=False)
    )
    # the comparison's own figures; the run's operation, change and hashing workers are the create's
    kept = {k: v for k, v in compared.items() if k not in ("operation", "changed", "workers", "parallel")}
    result["reference_compare"] = dict(kept, reference=p["reference"], found=True)
    if not compared["matched"] and p["fail_on_differences"]:
        module.fail_json(msg=_differences_msg(compared["counts"], p["reference"], None), **result)
    return result


def run_create_trees(module: AnsibleModule) -> dict:
    """O(trees): each tree's manifest as run_create makes it; a tree that fails is reported, the others are built."""
    results = []
    for tree in module.params["trees"]:
        p = {**module.params, "path": tree["path"], "dest": tree["dest"]}
        try:
            results.append({**run_create(module, p), "path": tree["path"], "failed": False})
        except TreeError as exc:
            results.append({"path": tree["path"], "dest": tree["dest"], "failed": True, "msg": str(exc)})
    return {
        "changed": any(r.get("changed") for r in results),
        "operation": "create",
        "format": module.params["format"],
        "trees": results,
    }


def _manifest_stream(module: AnsibleModule, name: str, path: str):
    """(sorted records, format) of the manifest file ``path`` (option ``name``)."""
    if not os.path.isfile(path):
        module.fail_json(msg=f"{name} {path!r} is not a file: give a manifest written by file_manifest or sha256sum.")
    with open(path, "rb") as handle:
        first = handle.readline()
    if first.startswith(b"{") and b"ledgerguard_manifest" in first:
        return mf.ordered(mf.read_manifest(path), f"{name} {path!r}"), "json"
    if mf.is_sorted(mf.read_manifest(path)):
        return mf.read_manifest(path), "sha256sum"
    return mf.external_sort(mf.read_manifest(path), module.tmpdir), "sha256sum"


def _files_only(records):
    """A sha256sum manifest lists regular files only: compare only those on the other side."""
    return (r for r in records if r.get("type") == "file")


def run_compare(module: AnsibleModule, p: dict | None = None) -> dict:
    """V(compare) (``p``: the module's options, or those of the comparison after a V(create))."""
    p = module.params if p is None else p
    if not p["reference"]:
        module.fail_json(msg="operation=compare needs 'reference': the expected manifest file.")
    if p["report"]:
        _check_parent(p, "report")
    started = time.monotonic()
    counts = {"reference": 0, "candidate": 0, "missing": 0, "changed": 0, "extra": 0}
    lists: dict[str, list] = {"missing": [], "changed": [], "extra": []}
    truncated = False
    writer = mf.DigestWriter(p["report"], module.check_mode)
    result: dict = {"operation": "compare"}

    def count(records, side):
        for rec in records:
            counts[side] += 1
            yield rec

    try:
        reference, ref_format = _manifest_stream(module, "reference", p["reference"])
        cand_format = "json"
        if p["candidate"]:
            candidate, cand_format = _manifest_stream(module, "candidate", p["candidate"])
        else:
            root = _tree_root(p)
            skip = _skip_list(p["report"], writer.tmp_path, p["reference"])
            candidate = mf.hashed_entries(root, p["exclude"], skip, p["parallel"], p["workers"])
            result.update(workers=p["workers"] or mf.default_workers(), parallel=p["parallel"])
        if ref_format == "sha256sum":
            candidate = _files_only(candidate)
        if cand_format == "sha256sum":
            reference = _files_only(reference)
        reference, candidate = count(reference, "reference"), count(candidate, "candidate")
        for status, rec, fields in mf.merge_compare(reference, candidate, p["compare_fields"]):
            counts[status] += 1
            path = mf.escape_path(rec["path"])
            line = {"status": status, "path": path}
            if status == "changed":
                line["fields"] = fields
            writer.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape"))
            if len(lists[status]) < p["max_list"]:
                lists[status].append({"path": path, "fields": fields} if status == "changed" else path)
            else:
                truncated = True
        changed = writer.finish(_mode(module)) if p["report"] else False
    except (OSError, ValueError) as exc:
        writer.abort()
        module.fail_json(msg=f"Comparing manifests failed: {exc}. Rebuild the manifest with file_manifest.")
    except BaseException:
        writer.abort()
        raise
    differences = counts["missing"] + counts["changed"] + counts["extra"]
    result.update(
        changed=changed,
        matched=differences == 0,
        counts=counts,
        differences=lists,
        truncated=truncated,
        seconds=round(time.monotonic() - started, 3),
    )
    if p["report"]:
        result["report"] = p["report"]
    if differences and p["fail_on_differences"]:
        result["msg"] = _differences_msg(counts, p["reference"], p["report"])
        module.fail_json(**result)
    return result


def _differences_msg(counts: dict, reference: str, report: str | None) -> str:
    return (
        f"{counts['missing']} missing, {counts['changed']} changed, {counts['extra']} extra entries compared with "
        f"{reference}; see 'differences'" + (f" and the full list in {report}" if report else "")
    )


def run_compare_backup(module: AnsibleModule) -> None:
    p = module.params
    if not p["snapshot"]:
        module.fail_json(msg="operation=compare_backup needs 'snapshot': the full ID of the restored data snapshot.")
    if not p["path"] or not os.path.isdir(p["path"]):
        module.fail_json(
            msg=f"operation=compare_backup: path {p['path']!r} is not a directory; give the target the snapshot was "
            "restored into."
        )
    for inc in p["include_paths"]:
        if not inc.startswith("/"):
            module.fail_json(msg=f"include_paths entry {inc!r} is not absolute; give it as stored in the snapshot.")

    def body(restic) -> dict:
        got = compare_with_backup_manifest(
            restic,
            p["snapshot"].strip().lower(),
            p["path"],
            p["include_paths"],
            p["exclude"],
            p["parallel"],
            p["workers"],
            module.tmpdir,
            p["max_list"],
            p["candidates"],
        )
        result = {"changed": False, "operation": "compare_backup", "backup_manifest": got}
        # matched only when a manifest was compared and nothing differs: no manifest is no evidence of a match
        result["matched"] = bool(got.get("compared")) and bool(got.get("identical_all"))
        problem = problem_text(got, p["path"])
        if problem:
            result["problem"] = problem
        if problem and p["fail_on_differences"]:
            result["msg"] = (
                f"{problem[0].upper()}{problem[1:]} Do not let it replace the originals. Run 'restic check "
                "--read-data' on the repository, then restore an older snapshot, or inspect the manifest with "
                f"'restic dump {got['manifest_short_id']} /ledgerguard-manifest-{got['snapshot'][:8]}.jsonl'."
            )
            module.fail_json(**result)
        return result

    run_module(module, body)


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        {
            "operation": {"type": "str", "choices": ["create", "compare", "compare_backup"], "default": "create"},
            "snapshot": {"type": "str"},
            "include_paths": {"type": "list", "elements": "path", "default": []},
            "path": {"type": "path"},
            "dest": {"type": "path"},
            "trees": {
                "type": "list",
                "elements": "dict",
                "options": {"path": {"type": "path", "required": True}, "dest": {"type": "path", "required": True}},
            },
            "format": {"type": "str", "choices": ["json", "sha256sum"], "default": "json"},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "parallel": {"type": "str", "choices": ["process", "thread", "none"], "default": "process"},
            "workers": {"type": "int", "default": 0},
            "reference": {"type": "path"},
            "candidate": {"type": "path"},
            "candidates": {"type": "list", "elements": "path", "default": []},
            "compare_fields": {
                "type": "list",
                "elements": "str",
                "choices": list(mf.COMPARABLE_FIELDS),
                "default": list(mf.DEFAULT_COMPARE_FIELDS),
            },
            "report": {"type": "path"},
            "max_list": {"type": "int", "default": 100},
            "fail_on_differences": {"type": "bool", "default": False},
            "file_mode": {"type": "raw", "default": "0640"},
        }
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[*RESTIC_MUTUALLY_EXCLUSIVE, ("trees", "path"), ("trees", "dest")],
        supports_check_mode=True,
    )
    if module.params["workers"] < 0:
        module.fail_json(msg=f"workers={module.params['workers']}: give 0 (one per CPU) or a positive number.")
    if module.params["max_list"] < 0:
        module.fail_json(msg=f"max_list={module.params['max_list']}: give 0 or a positive number.")
    if module.params["trees"] is not None and module.params["operation"] != "create":
        module.fail_json(msg=f"trees is for operation=create, not {module.params['operation']}: give path instead.")
    if module.params["trees"] is not None and module.params["reference"]:
        module.fail_json(msg="reference is for one tree (path) with operation=create, not for trees: compare each "
                         "tree's manifest with operation=compare.")  # fmt: skip
    if module.params["operation"] == "compare_backup":
        run_compare_backup(module)
        return
    try:
        if module.params["trees"] is not None:
            module.exit_json(**run_create_trees(module))
        if module.params["operation"] == "create":
            module.exit_json(**run_create_and_compare(module))
        module.exit_json(**run_compare(module))
    except TreeError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
