#!/usr/bin/python
# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assess restic snapshots for damage an incident already put into them."""

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot_damage
short_description: Tell clean restic snapshots from ones that already hold the damage
version_added: "0.1.0"
description:
  - For the snapshots of one client's paths (optionally of one host, taken before a time), compares each candidate
    with its predecessor and flags signs of damage, newest first.
  - Signs of damage are a sharp fall in file count or data size, a mass of modified or replaced files, ransom-note
    file names, ransomware file extensions, a client folder that vanished, and changed files whose content (sampled
    with C(restic dump)) looks encrypted or random.
  - Uses C(restic snapshots --json), C(restic ls --json), C(restic diff --json) and C(restic dump). It is read-only
    and never changes the repository.
  - The connection settings (repository, password, backend credentials) resolve on the controller like the other
    restic modules (task options, then C(ledgerguard_repository), C(ledgerguard_password_file),
    C(ledgerguard_s3_credentials_file), then the controller environment).
author: ledgerguard contributors (@ledgerguard)
extends_documentation_fragment:
  - ledgerguard.recovery.restic
options:
  paths:
    description: The client's data paths (absolute, as backed up). Only changes under them count.
    type: list
    elements: path
    required: true
  host:
    description: Only snapshots of this host name. Default is every host.
    type: str
  before:
    description:
      - Only snapshots taken strictly before this time (RFC 3339 with timezone) are candidates; newer ones are
        returned with RV(snapshots[].after_cutoff=true) and not assessed.
    type: str
  exclude_tags:
    description: Snapshots carrying any of these tags are ignored (the incident's own C(pre-restore) snapshots).
    type: list
    elements: str
    default: [pre-restore]
  snapshot:
    description: Assess only this snapshot ID (or unique prefix), e.g. one an operator pinned.
    type: str
  mode:
    description:
      - C(until_clean) stops at the newest clean candidate (fast); C(all) assesses every candidate.
    type: str
    choices: [until_clean, all]
    default: until_clean
  thresholds:
    description:
      - Overrides of the detection thresholds C(max_file_drop) (0.3), C(max_bytes_drop) (0.5),
        C(max_modified_ratio) (0.5), C(min_files) (4), C(entropy_bits) (7.2), C(sample_files) (4),
        C(sample_bytes) (65536), C(entropy_ratio) (0.5).
    type: dict
    default: {}
  ransom_note_patterns:
    description: Extra shell patterns of ransom-note file names (case-insensitive), added to the built-in list.
    type: list
    elements: str
    default: []
  ransom_extensions:
    description: Extra ransomware file extensions (with the dot), added to the built-in list.
    type: list
    elements: str
    default: []
  unusable:
    description:
      - Snapshots already known to be unusable, e.g. because they need a pack file the repository lost (the
        RV(ledgerguard.recovery.restic_check#module:damaged_snapshots) of a check with
        O(ledgerguard.recovery.restic_check#module:locate_snapshots)). Each is a dict with C(id) and C(reasons).
      - They are returned with RV(snapshots[].clean=false), RV(snapshots[].unusable=true) and those reasons, without
        being read, so the search goes on to older snapshots.
      - A snapshot whose file listing fails because the repository lost a pack it needs is treated the same way
        (its reason is restic's error), and its successor is compared with the next older readable snapshot.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
"""

EXAMPLES = r"""
- name: Which snapshots of client c001 before the loss are clean?
  ledgerguard.recovery.snapshot_damage:
    paths: [/srv/books/c001]
    host: books01
    before: "2026-11-26T09:00:00+08:00"
  register: damage

- name: Assess a pinned snapshot only
  ledgerguard.recovery.snapshot_damage:
    paths: [/srv/books/c001]
    snapshot: 4f1e2a9c
"""

RETURN = r"""
snapshots:
  description: The snapshots of the client's paths, newest first, with their assessment.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Full snapshot ID.
      type: str
      returned: always
    short_id:
      description: Short snapshot ID.
      type: str
      returned: always
    time:
      description: Snapshot time in UTC (RFC 3339).
      type: str
      returned: always
    assessed:
      description: Whether the snapshot was compared with its predecessor.
      type: bool
      returned: always
    after_cutoff:
      description: Taken at or after O(before), so not a candidate.
      type: bool
      returned: always
    clean:
      description: No sign of damage (null when not assessed).
      type: bool
      returned: always
    reasons:
      description: Each sign of damage found, one sentence each.
      type: list
      elements: str
      returned: always
    stats:
      description: Files and bytes under the paths, files added/removed/modified against the predecessor, sampled files.
      type: dict
      returned: always
    unusable:
      description: The repository lost data this snapshot needs (given in O(unusable), or its listing failed so).
      type: bool
      returned: always
    lost_packs:
      description: The lost packs an unusable snapshot needs, when known.
      type: list
      elements: str
      returned: always
  sample:
    - id: 9e3556b60f7f1177cd26a96c4a0e32c5ee50c7f6091216a4b61fed84040e0878
      short_id: 9e3556b6
      time: "2026-11-26T02:00:00Z"
      assessed: true
      after_cutoff: false
      clean: false
      reasons:
        - "ransom note present: README_DECRYPT.txt"
        - "12 of 12 files (100%) modified or replaced since the previous snapshot"
      stats: {files: 13, bytes: 40960, added: 13, removed: 12, modified: 0, sampled: 8, predecessor: 2210d446}
clean:
  description: IDs of the assessed snapshots found clean, newest first.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.damage import (  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
    DEFAULT_THRESHOLDS,
    RANSOM_EXTENSIONS,
    RANSOM_NOTE_PATTERNS,
    assess,
    diff_summary,
    ls_summary,
    pick_samples,
    shannon_entropy,
    under,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import (  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
    iter_json_lines,
    parse_json_lines,
    RESTIC_MUTUALLY_EXCLUSIVE,
    PasswordFile,
    Restic,
    ResticError,
    iso_utc,
    parse_time,
    restic_argument_spec,
)


MAX_SAMPLE_FILE = 8 * 1024 * 1024


def dump_sample(module: AnsibleModule, restic: Restic, snapshot_id: str, path: str, size: int) -> bytes | None:
    """The first ``size`` bytes of ``path`` in a snapshot (binary-safe; None when restic cannot dump it).

    Only files up to MAX_SAMPLE_FILE are sampled (the caller checks): ``restic dump`` has no range option.
    """
    rc, out, _err = module.run_command(
        restic.argv("dump", snapshot_id, path),
        environ_update=dict(restic.env),
        binary_data=True,
        encoding=None,
    )
    if rc != 0:
        return None
    return out[:size]


class Assessor:
    def __init__(self, module: AnsibleModule, restic: Restic):
        self.module = module
        self.restic = restic
        self.paths = [p.rstrip("/") or "/" for p in module.params["paths"]]
        self.limits = dict(DEFAULT_THRESHOLDS)
        self.limits.update(module.params["thresholds"] or {})
        self.patterns = tuple(RANSOM_NOTE_PATTERNS) + tuple(module.params["ransom_note_patterns"])
        self.extensions = tuple(RANSOM_EXTENSIONS) + tuple(e.lower() for e in module.params["ransom_extensions"])
        self._ls_cache: dict[str, dict] = {}
        self.unreadable: dict[str, ResticError] = {}
        self.known_unusable: dict[str, dict] = {}
        for item in module.params["unusable"] or []:
            if isinstance(item, dict) and item.get("id"):
                self.known_unusable[str(item["id"])] = item

    def summary(self, snapshot_id: str) -> dict:
        if snapshot_id in self.unreadable:
            raise self.unreadable[snapshot_id]
        if snapshot_id not in self._ls_cache:
            try:
                listing = self.restic.must(
                    "ls",
                    "--json",
                    "--recursive",
                    snapshot_id,
                    *self.paths,
                    action="list the snapshot's files",
                    snapshot=snapshot_id,
                )
            except ResticError as exc:
                if exc.kind == "repository_damaged":
                    self.unreadable[snapshot_id] = exc  # a lost tree pack: restic retries for ~45 s, only once
                raise
            self._ls_cache[snapshot_id] = ls_summary(iter_json_lines(listing.stdout), self.paths)
        return self._ls_cache[snapshot_id]

    def forget(self, snapshot_id: str) -> None:
        """Drop a listing no later assessment needs (they go from newest to oldest, each against an older one), so
        at most two listings are held however many snapshots are examined."""
        self._ls_cache.pop(snapshot_id, None)

    def readable_predecessor(self, history: list, index: int):
        """The newest snapshot older than history[index] whose listing works (None when there is none)."""
        for older in range(index - 1, -1, -1):
            candidate = history[older]
            try:
                self.summary(candidate.id)
            except ResticError as exc:
                if exc.kind != "repository_damaged":
                    raise
                continue
            return candidate
        return None

    def diff(self, older: str, newer: str) -> dict:
        res = self.restic.must("diff", "--json", older, newer, action="compare two snapshots", snapshot=newer)
        return diff_summary(parse_json_lines(res.stdout), self.paths)

    def unusable_item(self, snap, reasons: list[str], packs: list[str]) -> dict:
        return snapshot_item(snap, reasons, clean=False, unusable=True, lost_packs=packs)

    def assess_or_unusable(self, history: list, index: int) -> dict:
        """The assessment of history[index], or an unusable item when the repository lost data it needs."""
        snap = history[index]
        known = self.known_unusable.get(snap.id)
        if known is not None:
            reasons = [str(r) for r in known.get("reasons") or []] or ["the repository lost data this snapshot needs"]
            return self.unusable_item(snap, reasons, [str(p) for p in known.get("packs") or []])
        try:
            self.summary(snap.id)
            return self.assess(snap, self.readable_predecessor(history, index))
        except ResticError as exc:
            if exc.kind != "repository_damaged":
                raise
            return self.unusable_item(snap, [exc.message], list(exc.details.get("packs") or []))

    def assess(self, snap, predecessor) -> dict:
        current = self.summary(snap.id)
        previous = self.summary(predecessor.id) if predecessor is not None else None
        diff = self.diff(predecessor.id, snap.id) if predecessor is not None else None
        entropy = {}
        if diff is not None:
            listing = current.get("listing", {})
            for path in pick_samples(diff, int(self.limits["sample_files"])):
                size = int(listing.get(path, {}).get("size", 0))
                if size < 64 or size > MAX_SAMPLE_FILE:
                    continue  # too small to judge, or too large to dump just for a sample
                data = dump_sample(self.module, self.restic, snap.id, path, int(self.limits["sample_bytes"]))
                if data:
                    entropy[path] = round(shannon_entropy(data), 3)
        clean, reasons = assess(previous, current, diff, entropy, self.limits, self.patterns, self.extensions)
        stats = {
            "files": current["files"],
            "bytes": current["bytes"],
            "predecessor": predecessor.short_id if predecessor is not None else None,
            "added": len(diff["added"]) if diff else None,
            "removed": len(diff["removed"]) if diff else None,
            "modified": len(diff["modified"]) if diff else None,
            "sampled": len(entropy),
            "max_entropy": max(entropy.values()) if entropy else None,
            "roots_missing": current["roots_missing"],
        }
        return snapshot_item(snap, reasons, clean=clean, stats=stats)


def snapshot_item(
    snap,
    reasons: list[str],
    clean: bool | None,
    assessed: bool = True,
    after_cutoff: bool = False,
    unusable: bool = False,
    lost_packs: list[str] | None = None,
    stats: dict | None = None,
) -> dict:
    """One entry of the returned ``snapshots`` list (see RETURN)."""
    return {
        "id": snap.id,
        "short_id": snap.short_id,
        "time": iso_utc(snap.time),
        "hostname": snap.hostname,
        "tags": list(snap.tags),
        "assessed": assessed,
        "after_cutoff": after_cutoff,
        "clean": clean,
        "unusable": unusable,
        "lost_packs": lost_packs or [],
        "reasons": reasons,
        "stats": stats or {},
    }


def run_module(module: AnsibleModule) -> dict:
    params = module.params
    before = None
    if params["before"]:
        try:
            before = parse_time(params["before"], "before")
        except ValueError as exc:
            module.fail_json(msg=f"snapshot_damage: {exc}")
    binary = params["restic_binary"] or module.get_bin_path("restic", required=True)
    if not params.get("password") and not params.get("password_file"):
        module.fail_json(
            msg="snapshot_damage: no restic password: set ledgerguard_password_file (controller) or password_file"
        )
    with PasswordFile(password=params.get("password"), path=params.get("password_file")) as pwfile:
        restic = Restic(
            binary,
            params["repository"],
            pwfile.path,
            env=params["env"],
            cache_dir=params["cache_dir"],
            timeout=params["timeout"],
        )
        assessor = Assessor(module, restic)
        excluded = set(params["exclude_tags"])
        history = [
            s
            for s in restic.snapshots()
            if (not params["host"] or s.hostname == params["host"])
            and not excluded.intersection(s.tags)
            and all(under(p, s.paths) for p in assessor.paths)
        ]
        out = []
        if params["snapshot"]:
            wanted = params["snapshot"].lower()
            matches = [i for i, s in enumerate(history) if s.id.startswith(wanted)]
            if len(matches) != 1:
                state = "is ambiguous" if matches else "was not found"
                where = f" on host {params['host']}" if params["host"] else ""
                module.fail_json(
                    msg=f"snapshot_damage: snapshot {params['snapshot']!r} {state} among the {len(history)} snapshots "
                    f"of {', '.join(assessor.paths)}{where}; list them with ledgerguard.recovery.restic_snapshots and "
                    "pin an existing ID"
                )
            out.append(assessor.assess_or_unusable(history, matches[0]))
            return {"snapshots": out, "clean": [s["id"] for s in out if s["clean"]]}
        for index in range(len(history) - 1, -1, -1):
            snap = history[index]
            if before is not None and not snap.time < before:
                out.append(
                    snapshot_item(
                        snap,
                        [f"taken at {iso_utc(snap.time)}, not before {iso_utc(before)}"],
                        clean=None,
                        assessed=False,
                        after_cutoff=True,
                    )
                )
                continue
            item = assessor.assess_or_unusable(history, index)
            assessor.forget(snap.id)
            out.append(item)
            if item["clean"] and params["mode"] == "until_clean":
                break
    return {"snapshots": out, "clean": [s["id"] for s in out if s["clean"]]}


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        {
            "paths": {"type": "list", "elements": "path", "required": True},
            "host": {"type": "str"},
            "before": {"type": "str"},
            "exclude_tags": {"type": "list", "elements": "str", "default": ["pre-restore"]},
            "snapshot": {"type": "str"},
            "mode": {"type": "str", "choices": ["until_clean", "all"], "default": "until_clean"},
            "thresholds": {"type": "dict", "default": {}},
            "ransom_note_patterns": {"type": "list", "elements": "str", "default": []},
            "ransom_extensions": {"type": "list", "elements": "str", "default": []},
            "unusable": {"type": "list", "elements": "dict", "default": []},
        }
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    unknown = set(module.params["thresholds"] or {}) - set(DEFAULT_THRESHOLDS)
    if unknown:
        module.fail_json(
            msg="snapshot_damage: unknown threshold(s) {}; known: {}".format(
                ", ".join(sorted(unknown)), ", ".join(sorted(DEFAULT_THRESHOLDS))
            )
        )
    try:
        result = run_module(module)
    except ResticError as exc:
        module.fail_json(msg=exc.message, error_kind=exc.kind)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
