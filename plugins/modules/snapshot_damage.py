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
    file names, ransomware file extensions, a client folder that vanished, changed files whose content (sampled)
    looks encrypted or random, and changed files (and the client's declared ledgers) that fail
    their format's validator (SQLite, CSV ledger, PDF, OOXML, OLE2, Access, JPEG, PNG) while the older version passed.
  - A snapshot in which the client's folder is absent is never clean (it cannot be this client's restore point).
  - Damage persists. Each candidate is compared with the newest snapshot known to be clean, not only with its
    predecessor, so the snapshots that still carry damage which arrived earlier (the same encrypted or corrupt files,
    the same missing folder) are damaged too. With O(mode=until_clean) the walk goes on O(lookback) snapshots past
    the first one that looks clean against its predecessor, to find damage that arrived earlier.
  - Uses C(restic snapshots --json), C(restic ls --json), C(restic diff --json) and, per snapshot, one
    C(restic restore --include ...) into a private temporary folder that fetches every file the assessment reads (the
    sampled files, the files to validate; C(restic dump) only when that restore fails). It is read-only and never
    changes the repository.
  - The connection settings (repository, password, backend credentials) resolve on the controller like the other
    restic modules (task options, then C(ledgerguard_repository), C(ledgerguard_password_file),
    C(ledgerguard_s3_credentials_file), then the controller environment).
author: ledgerguard contributors (@ledgerguard)
extends_documentation_fragment:
  - ledgerguard.recovery.restic
options:
  paths:
    description:
      - The client's data paths (absolute, as backed up). Only changes under them count.
      - One of O(paths) (one client) and O(clients) (several) is required.
    type: list
    elements: path
  clients:
    description:
      - Several clients assessed in one run, each exactly as a run with its own options (O(paths), O(ledger),
        O(ledger_paths), O(snapshot_paths), O(snapshot) or O(before)) and the shared ones (O(host), O(exclude_tags),
        O(mode), O(lookback), O(validate), O(thresholds), O(unusable), the patterns) would assess it, returned in
        RV(clients) by client id.
      - The clients share the snapshot list, ONE search (C(restic find)) for all their paths, one listing of the
        top of each snapshot's tree, ONE recursive C(restic ls) per snapshot of all their folders and each
        C(restic diff); a client costs the restore of its files to validate. When the shared search or listing
        fails (the repository lost a tree one client's folder needs), each client searches or lists its own
        folders, as alone.
      - A client whose assessment fails (snapshot not found, restic error) is returned with C(failed=true) and
        C(msg); the others are assessed.
      - Mutually exclusive with O(paths).
    type: list
    elements: dict
    suboptions:
      id:
        description: The client's id (the key of RV(clients)).
        type: str
        required: true
      paths:
        description: The client's data paths, as O(paths).
        type: list
        elements: path
        required: true
      ledger:
        description: The client's declared books, as O(ledger).
        type: dict
        default: {}
      ledger_paths:
        description: The client's ledger files or folders, as O(ledger_paths).
        type: list
        elements: path
        default: []
      snapshot_paths:
        description: The client's pins, as O(snapshot_paths).
        type: dict
        default: {}
      snapshot:
        description: Assess only this snapshot for the client, as O(snapshot).
        type: str
      before:
        description: The client's cutoff, as O(before) (default O(before)).
        type: str
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
    description:
      - Assess only this snapshot ID (or unique prefix), e.g. one an operator pinned or a drill restores. It is
        compared like any candidate (with the newest clean snapshot before it when older damage persists), and
        returned alone.
    type: str
  mode:
    description:
      - C(until_clean) stops at the newest clean candidate (fast); C(all) assesses every candidate.
    type: str
    choices: [until_clean, all]
    default: until_clean
  lookback:
    description:
      - With O(mode=until_clean), how many older snapshots are assessed past the first candidate that looks clean
        against its predecessor, to find damage that arrived earlier and persists (a deletion or an encryption seen
        days later). V(0) trusts the predecessor comparison alone.
    type: int
    default: 7
  validate:
    description:
      - Run the file validators (module_utils/validators.py) on the changed files of each candidate (and on the
        older version of a file that fails) and on the client's declared ledgers. The files of one snapshot are
        fetched with one C(restic restore) into a private temporary folder (removed after each snapshot); a verdict
        is cached per file version (path, size, mtime, ctime), so a file unchanged across snapshots is validated once.
        At most C(validate_files) (O(thresholds)) files per snapshot and only files up to C(validate_max_bytes)
        (O(thresholds)) bytes.
    type: bool
    default: true
  ledger:
    description:
      - "The client's declared books (C(ledgerguard_clients[].ledger)) used by the CSV and SQLite validators, e.g.
        C({csv: {columns: {...}, encoding: gbk, delimiter: ';'}, sqlite: {table: ..., columns: {...},
        amount_scale: 2}})."
    type: dict
    default: {}
  ledger_paths:
    description:
      - The client's ledger files or folders (absolute, as backed up; the client's C(csv) and C(sqlite) entries).
        Files under them are validated in every candidate, changed or not (a snapshot whose ledgers fail is not
        clean); a verdict is cached per file version, so an unchanged ledger is read once.
    type: list
    elements: path
    default: []
  snapshot_paths:
    description:
      - Pins, from live path to the path inside the snapshot, for layouts the mapping cannot work out, for example
        C(/srv/ledgers/C001) to C(/old-share/C001) (the roles fill it from C(ledgerguard_clients[].snapshot_path)).
      - Without a pin each live path in O(paths) is mapped to where each snapshot stores it (a relative or C(.)
        backup stores C(/srv/ledgers/C001) as C(/ledgers/C001) or C(/C001)), as
        M(ledgerguard.recovery.restic_restore) does. A snapshot that does not hold a client path (nor its pin) has
        that client folder missing, and is never clean.
    type: dict
    default: {}
  thresholds:
    description:
      - Overrides of the detection thresholds C(max_file_drop) (0.3), C(max_bytes_drop) (0.5),
        C(max_modified_ratio) (0.5), C(min_files) (4), C(entropy_bits) (7.2), C(sample_files) (4),
        C(sample_bytes) (65536), C(entropy_ratio) (0.5), C(validate_files) (32), C(validate_max_bytes)
        (67108864).
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
  listing_dir:
    description:
      - "With O(clients), a folder on the host (absolute; created mode 0700 when missing, its parent must exist)
        where each recursive listing of the clients' folders in a snapshot is kept, one file (0600) per repository
        and full snapshot ID, for M(ledgerguard.recovery.restic_restore)'s
        O(ledgerguard.recovery.restic_restore#module:listing_dir): the listing of a snapshot named by its full ID
        never changes, so the restore of the chosen snapshot does not list it again (each C(restic) run that opens
        the repository pays its key derivation). M(ledgerguard.recovery.restore_clients) uses
        C(<marker_dir>/listings)."
      - An existing folder must be a folder (not a link) owned by the user the module runs as, mode 0700; when it is
        not, or a listing cannot be written, nothing is kept and the module warns. Nothing is kept in check mode.
      - Empty (the default) keeps nothing.
    type: str
    default: ''
attributes:
  check_mode:
    support: full
    description: Read-only (only O(listing_dir) is written, never in check mode); runs the same in check mode.
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

- name: Two clients of one host in one run (c002 pinned to a snapshot)
  ledgerguard.recovery.snapshot_damage:
    host: books01
    before: "2026-11-26T09:00:00+08:00"
    clients:
      - id: c001
        paths: [/srv/books/c001]
        ledger_paths: [/srv/books/c001/账簿/总账.sqlite]
      - id: c002
        paths: [/srv/books/c002]
        snapshot: 4f1e2a9c
  register: damage
"""

RETURN = r"""
snapshots:
  description: The snapshots of the client's paths, newest first, with their assessment.
  returned: with O(paths)
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
      description:
        - Whether the snapshot was judged - compared with its predecessor, or found unusable (O(unusable), lost packs)
          without being read; false for a snapshot taken at or after O(before).
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
      description:
        - Files and bytes under the paths, files added/removed/modified against the snapshot it was compared with
          (C(predecessor), the newest clean one when damage persists, see C(compared_with)), sampled files,
          validated files.
      type: dict
      returned: always
    validated:
      description: The files validated in this snapshot, each with C(path), C(status), C(reason) and C(checker).
      type: list
      elements: dict
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
  returned: with O(paths)
  type: list
  elements: str
clients:
  description:
    - With O(clients), per client id C(failed) and either C(snapshots) and C(clean) (as RV(snapshots) and RV(clean)
      of a run for that client alone) or C(msg) (why its assessment failed, and C(error_kind) for a restic error).
  returned: with O(clients)
  type: dict
  sample: {"c001": {"failed": false, "snapshots": [], "clean": []},
           "c002": {"failed": true, "msg": "snapshot_damage: snapshot '4f1e2a9c' was not found ..."}}
manifest_tags:
  description:
    - With O(clients), the tags of the backup-time manifest snapshots in the snapshot list the clients were assessed
      from (see M(ledgerguard.recovery.restic_snapshots)'s C(include_manifests)), so a caller sees whether a restore
      point's manifest was recorded without listing the snapshots again. A manifest recorded after that list was read
      is not in it.
  returned: with O(clients), when the snapshot list was read
  type: list
  elements: str
  sample:
    - ledgerguard-manifest
    - ledgerguard-manifest-for=9e3556b60f7f1177cd26a96c4a0e32c5ee50c7f6091216a4b61fed84040e0878
"""

import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import posixpath  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.damage import (  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
    DEFAULT_THRESHOLDS,
    RANSOM_EXTENSIONS,
    RANSOM_NOTE_PATTERNS,
    assess,
    diff_summary,
    ls_summary,
    pick_samples,
    read_sample,
    shannon_entropy,
    under,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import (  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
    Restic,
    norm_path,
    path_join,
    path_under,
    restic_pattern,
    snapshot_pins,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import PathNotInSnapshot, ResticError  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    report_removed_locks,
    restic_argument_spec,
    stale_lock_age,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import (  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
    is_manifest_snapshot,
    iso_utc,
    iter_json_lines,
    parse_json_lines,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import PasswordFile  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import parse_time  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils import validators  # noqa: E402


# Thresholds of the content validation (accepted in ``thresholds`` beside damage.DEFAULT_THRESHOLDS).
VALIDATION_THRESHOLDS = {"validate_files": 32, "validate_max_bytes": 64 * 1024 * 1024}


MAX_SAMPLE_FILE = 8 * 1024 * 1024

# The shared listings (O(clients)) held at once, in characters of restic's JSON (about 400 per file).
SHARED_LISTING_CHARS = 256 * 1024 * 1024

# Paths per ``restic restore --include`` run when a snapshot's files are fetched for validation and sampling.
FETCH_BATCH = 256


def dump_sample(module: AnsibleModule, restic: Restic, snapshot_id: str, path: str, size: int) -> bytes | None:
    """The first ``size`` bytes of ``path`` (the path inside the snapshot, see ``Assessor.stored_path``) in a snapshot
    (binary-safe; None when restic cannot dump it).

    Only files up to MAX_SAMPLE_FILE are sampled (the caller checks): ``restic dump`` has no range option.
    """
    rc, out, _err = module.run_command(
        restic.argv("dump", "--", snapshot_id, path),
        environ_update=dict(restic.env),
        binary_data=True,
        encoding=None,
    )
    if rc != 0:
        return None
    return out[:size]


class Shared:
    """What the assessments of several clients in one run (O(clients)) share, so that a client costs no restic run of
    its own for them: the snapshot list, the top of each snapshot's tree (``Restic.layout``, asked once for every
    client path), ONE recursive ``restic ls`` per snapshot of every client's folders (each client keeps only the nodes
    under its own paths, exactly as its own listing would hold) and each ``restic diff`` (the whole trees' diff, the
    same for every client). When the shared listing cannot be made (the repository lost a tree one client's folder
    needs), each client lists its own folders as alone, so one client's lost data never marks another's unusable."""

    def __init__(self, restic: Restic, keep_dir: str = "", warn=None):
        """``keep_dir``: the folder each recursive listing is kept in for restic_restore (O(listing_dir), "" keeps
        none); ``warn``: how a listing that cannot be kept is reported (module.warn)."""
        self.restic = restic
        self.keep_dir = keep_dir
        self.warn = warn
        self.assessors: list[Assessor] = []
        self._snapshots: list | None = None
        self.manifest_tags: list[str] | None = None
        self._warmed: set[str] = set()
        self._listings: dict[str, str | None] = {}
        self._diffs: dict[tuple[str, str], str] = {}
        self._covered: dict[tuple[str, ...], dict[tuple[str, str | None], dict[str, str]]] = {}

    def snapshots(self) -> list:
        if self._snapshots is None:
            every = self.restic.snapshots(manifests=True)
            # the backup-time manifests the list holds (RV(manifest_tags)): restore_clients asks restic no more for
            # a restore point's manifest this list already shows
            self.manifest_tags = sorted({t for s in every if is_manifest_snapshot(s.tags) for t in s.tags})
            self._snapshots = [s for s in every if not is_manifest_snapshot(s.tags)]
        return self._snapshots

    def covering(self, module: AnsibleModule, selected: list, assessor: Assessor) -> list[dict[str, str]]:
        """The module's ``covering`` of each of the assessor's paths, from ONE ``restic find`` for every client path
        of the run (Restic.covering_many, made for the first client); when that search fails, each path is searched
        on its own, as when assessed alone (so the error, or the warning, is the client's own)."""
        key = tuple(s.id for s in selected)
        if key not in self._covered:
            pairs = list(dict.fromkeys((p, a.pins.get(p)) for a in self.assessors for p in a.paths))
            try:
                # a lost pack fails the search at once: each path is then searched, and each snapshot walked, alone
                found = (
                    self.restic.covering_many(selected, pairs, give_up_on_gone=True)
                    if selected
                    else [{} for _pair in pairs]
                )
                self._covered[key] = dict(zip(pairs, found, strict=True))
            except ResticError:
                self._covered[key] = {}
        got = self._covered[key]
        return [
            got[(p, assessor.pins.get(p))]
            if (p, assessor.pins.get(p)) in got
            else covering(module, self.restic, selected, p, assessor.pins.get(p))
            for p in assessor.paths
        ]

    def warm(self, snapshot_id: str) -> None:
        """One ``restic ls`` of the top of the snapshot's tree for every client path (and pin) of the run."""
        if snapshot_id in self._warmed:
            return
        self._warmed.add(snapshot_id)
        forms = [a.pins.get(p) or p for a in self.assessors for p in a.paths]
        try:
            self.restic.layout(snapshot_id, list(dict.fromkeys(forms)))
        except ResticError:
            pass  # each client's own mapping meets (and reports) the error as when assessed alone

    def listing(self, snapshot_id: str) -> str | None:
        """``restic ls --json --recursive`` of every client folder the snapshot holds (its stdout), None when it
        cannot be made."""
        if snapshot_id not in self._listings:
            text = None
            try:
                roots = [r for a in self.assessors for r in a.mapped_roots(snapshot_id).values()]
                if roots:
                    text = self.restic.must(
                        "ls", "--json", "--recursive", "--", snapshot_id, *dict.fromkeys(roots),
                        action="list the snapshot's files", snapshot=snapshot_id,
                    ).stdout  # fmt: skip
            except ResticError:
                text = None
            if text is not None:
                self.keep(snapshot_id, list(dict.fromkeys(roots)), text)
            # bounded: the oldest listings go first (one asked for again is listed again, for every client again)
            while self._listings and sum(len(t or "") for t in self._listings.values()) + len(text or "") > (
                SHARED_LISTING_CHARS
            ):
                self._listings.pop(next(iter(self._listings)))
            self._listings[snapshot_id] = text
        return self._listings[snapshot_id]

    def keep(self, snapshot_id: str, roots: list[str], text: str) -> None:
        """Keep the listing for restic_restore (Restic.keep_listing); a listing that cannot be kept is only a restic
        run restic_restore makes again, so it warns once and keeps no more."""
        if not self.keep_dir:
            return
        try:
            self.restic.keep_listing(self.keep_dir, snapshot_id, roots, text)
        except (OSError, ValueError) as exc:
            if self.warn is not None:
                self.warn(
                    f"snapshot_damage: listing_dir {self.keep_dir}: the listing of snapshot {snapshot_id[:8]} could "
                    f"not be kept ({exc}); the restore lists the snapshot again. Give a folder of the module's user "
                    "alone (mode 0700, not a link) whose parent exists."
                )
            self.keep_dir = ""

    def diff(self, older: str, newer: str) -> str:
        key = (older, newer)
        if key not in self._diffs:
            res = self.restic.must("diff", "--json", older, newer, action="compare two snapshots", snapshot=newer)
            self._diffs[key] = res.stdout
        return self._diffs[key]


class ClientError(Exception):
    """A client's assessment cannot be made (the message names the input and what to do)."""


class Assessor:
    def __init__(self, module: AnsibleModule, restic: Restic, params: dict | None = None, shared: Shared | None = None):
        """``params``: the module's (the default) or, for one client of O(clients), the module's with that client's
        options; ``shared``: what the clients of one run share (see Shared)."""
        params = module.params if params is None else params
        self.module = module
        self.restic = restic
        self.shared = shared
        self.paths = [norm_path(p) for p in params["paths"]]
        self.pins = snapshot_pins(params.get("snapshot_paths"))
        self.limits = {**DEFAULT_THRESHOLDS, **VALIDATION_THRESHOLDS}
        self.limits.update(params["thresholds"] or {})
        self.patterns = tuple(RANSOM_NOTE_PATTERNS) + tuple(params["ransom_note_patterns"])
        self.extensions = tuple(RANSOM_EXTENSIONS) + tuple(e.lower() for e in params["ransom_extensions"])
        self._ls_cache: dict[str, dict] = {}
        self.unreadable: dict[str, ResticError] = {}
        self.known_unusable: dict[str, dict] = {}
        self.validate = bool(params.get("validate", True))
        self.ledger = params.get("ledger") or {}
        self.ledger_paths = [p.rstrip("/") or "/" for p in params.get("ledger_paths") or []]
        self._verdicts: dict[tuple, validators.Verdict] = {}
        self._tmpdir: str | None = None
        self._fetch_dirs: list[str] = []
        self._fetched: dict[tuple[str, str], str] = {}
        self._mapped: dict[str, dict[str, str]] = {}
        for item in params["unusable"] or []:
            if isinstance(item, dict) and item.get("id"):
                self.known_unusable[str(item["id"])] = item

    def summary(self, snapshot_id: str) -> dict:
        if snapshot_id in self.unreadable:
            raise self.unreadable[snapshot_id]
        if snapshot_id not in self._ls_cache:
            try:
                # The layout is read from the snapshot (issue 17): each live client path is mapped to where this
                # snapshot stores it (a relative or '.' backup stores /srv/books/C001 as /books/C001 or /C001).
                mapped = self.mapped_roots(snapshot_id)
                nodes = []
                if mapped:
                    text = self.shared.listing(snapshot_id) if self.shared is not None else None
                    if text is None:
                        text = self.restic.must(
                            "ls", "--json", "--recursive", "--", snapshot_id, *dict.fromkeys(mapped.values()),
                            action="list the snapshot's files", snapshot=snapshot_id,
                        ).stdout  # fmt: skip
                    nodes = self.live_nodes(snapshot_id, iter_json_lines(text))
            except ResticError as exc:
                if exc.kind == "repository_damaged":
                    self.unreadable[snapshot_id] = exc  # a lost tree pack: restic retries for ~45 s, only once
                raise
            summary = ls_summary(nodes, self.paths)
            # a client path the snapshot does not hold is missing (unmapped, or mapped but absent from the listing); a
            # root stored as the snapshot's whole tree ('restic backup .') has no node of its own
            missing = {r for r in summary["roots_missing"] if mapped.get(r) != "/"} | (set(self.paths) - set(mapped))
            summary["roots_missing"] = sorted(missing)
            summary["roots_present"] = sorted(set(self.paths) - missing)
            self._ls_cache[snapshot_id] = summary
        return self._ls_cache[snapshot_id]

    def mapped_roots(self, snapshot_id: str) -> dict[str, str]:
        """{live client path: path inside the snapshot} for the client paths the snapshot holds (cached). A path it
        does not hold (PathNotInSnapshot) is left out: that client folder is missing from the snapshot."""
        if snapshot_id not in self._mapped:
            if self.shared is not None:
                self.shared.warm(snapshot_id)
            mapped = {}
            for path in self.paths:
                try:
                    mapped[path] = self.restic.map_path(snapshot_id, path, self.pins.get(path))
                except PathNotInSnapshot:
                    continue
            self._mapped[snapshot_id] = mapped
        return self._mapped[snapshot_id]

    def live_of(self, snapshot_id: str, stored: str) -> str | None:
        """The live path of a path read from the snapshot (``ls``/``diff`` output), None when under no client path."""
        return self.restic.live_path(snapshot_id, stored, self.paths, self.pins)

    def live_nodes(self, snapshot_id: str, nodes) -> list[dict]:
        out = []
        for node in nodes:
            if node.get("struct_type") != "node":
                continue
            live = self.live_of(snapshot_id, node.get("path", ""))
            if live is not None:
                out.append({**node, "path": live})
        return out

    def stored_path(self, snapshot_id: str, live: str) -> str:
        """The path inside the snapshot of a live file under a client path (for ``restic dump``)."""
        for root, inside in self.mapped_roots(snapshot_id).items():
            rest = path_under(live, root)
            if rest is not None:
                return path_join(inside, rest)
        return live

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
        if self.shared is not None:
            text = self.shared.diff(older, newer)
        else:
            text = self.restic.must(
                "diff", "--json", older, newer, action="compare two snapshots", snapshot=newer
            ).stdout
        changes = []
        for item in parse_json_lines(text):
            if item.get("message_type") != "change":
                continue
            stored = item.get("path", "")
            # paths as the newer snapshot stores them (a removed one as the older did, when the layout moved)
            live = self.live_of(newer, stored)
            if live is None and "-" in item.get("modifier", ""):
                live = self.live_of(older, stored)
            if live is None:
                continue
            if stored.endswith("/") and not live.endswith("/"):
                live += "/"
            changes.append({**item, "path": live})
        return diff_summary(changes, self.paths)

    # -- content validation ---------------------------------------------------------------------------------------
    #
    # Every file a snapshot's assessment reads (the entropy samples, the changed files and the declared ledgers to
    # validate, and the older versions of the files that fail) comes out of the repository in ONE ``restic restore
    # --include ...`` per snapshot (``prefetch``) into a private folder, not one ``restic dump`` per file: each restic
    # run opens the repository and loads its index, which costs far more than validating a file. A verdict is cached
    # per file version (``verdict_key``), so a file unchanged across snapshots is read and validated once.

    def cleanup(self) -> None:
        self.release()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def is_ledger(self, path: str) -> bool:
        return bool(self.ledger_paths) and under(path, self.ledger_paths)

    @staticmethod
    def verdict_key(path: str, node: dict) -> tuple:
        """One file version: its path, size, mtime and ctime (restic keeps all three; content written back with
        the old mtime still moves the ctime)."""
        return (path, node.get("size"), node.get("mtime"), node.get("ctime"))

    def private_dir(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="ledgerguard-validate-")
            os.chmod(self._tmpdir, 0o700)
        return self._tmpdir

    def prefetch(self, snapshot_id: str, wanted: dict[str, dict]) -> None:
        """Restore the files ``wanted`` ({live path: its ``ls`` node}) of one snapshot into a fresh private folder,
        FETCH_BATCH paths per ``restic restore`` (one run for a night's changes). Files restored whole (restic
        exited 0, the size is the listing's) are found by ``local_copy`` until ``release``; a file not restored so
        is read later with ``restic dump``, as before (its verdict then says when restic could not read it)."""
        todo = [p for p in wanted if (snapshot_id, p) not in self._fetched]
        for start in range(0, len(todo), FETCH_BATCH):
            batch = todo[start : start + FETCH_BATCH]
            dest = tempfile.mkdtemp(prefix="r", dir=self.private_dir())
            self._fetch_dirs.append(dest)
            stored = {path: self.stored_path(snapshot_id, path) for path in batch}
            args = ["restore", "--target", dest]
            for inside in stored.values():
                args += ["--include", restic_pattern(inside)]
            try:
                res = self.restic.run(*args, "--", snapshot_id)
            except (OSError, ResticError):
                continue
            if res.rc != 0:
                continue  # a partly restored file could look corrupt: read each one with restic dump instead
            for path, inside in stored.items():
                local = os.path.join(dest, inside.lstrip("/"))
                try:
                    st = os.lstat(local)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_size == int(wanted[path].get("size") or 0):
                    os.chmod(local, 0o600)  # restic restores the file's own mode; only this process reads it
                    self._fetched[(snapshot_id, path)] = local

    def local_copy(self, snapshot_id: str, path: str) -> str | None:
        return self._fetched.get((snapshot_id, path))

    def release(self) -> None:
        """Remove the restored copies (their verdicts and samples are kept)."""
        for folder in self._fetch_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._fetch_dirs.clear()
        self._fetched.clear()

    def sample(self, snapshot_id: str, path: str) -> bytes | None:
        """The first ``sample_bytes`` bytes of a file of a snapshot, for the entropy test."""
        size = int(self.limits["sample_bytes"])
        local = self.local_copy(snapshot_id, path)
        if local is not None:
            return read_sample(local, size)
        return dump_sample(self.module, self.restic, snapshot_id, self.stored_path(snapshot_id, path), size)

    def sample_paths(self, current: dict, diff: dict | None) -> list[str]:
        """The changed files sampled for the entropy test (see damage.pick_samples), within the sample sizes."""
        if diff is None:
            return []
        listing = current.get("listing", {})
        out = []
        for path in pick_samples(diff, int(self.limits["sample_files"])):
            size = int(listing.get(path, {}).get("size", 0))
            if 64 <= size <= MAX_SAMPLE_FILE:  # too small to judge, or too large to read just for a sample
                out.append(path)
        return out

    def validation_targets(self, current: dict, diff: dict | None) -> list[str]:
        """The files of a snapshot to validate: its declared ledgers (changed or not) and its changed files (added or
        modified against the snapshot it is compared with) of a known format, within ``validate_files`` and the
        byte limits ``validate_max_bytes`` (per file) and 4 x that (the changed files of one snapshot)."""
        if not self.validate:
            return []
        listing = current.get("listing", {})
        limit = int(self.limits["validate_files"])
        max_bytes = int(self.limits["validate_max_bytes"])
        ledgers = [p for p in sorted(listing) if self.is_ledger(p)]
        changed = []
        if diff is not None:
            changed = [
                p
                for p in list(diff.get("modified", [])) + list(diff.get("added", []))
                if p in listing and (validators.formats_for(p) or self.is_ledger(p))
            ]
        out = []
        budget = 4 * max_bytes  # bytes read for this snapshot's changed files, at most
        for path in list(dict.fromkeys(ledgers + changed))[: max(limit, len(ledgers))]:
            size = int(listing[path].get("size") or 0)
            if size > max_bytes or (size > budget and not self.is_ledger(path)):
                continue
            budget -= size
            out.append(path)
        return out

    def verdict_of(self, snapshot_id: str, path: str, node: dict) -> validators.Verdict:
        """The validator's verdict on one file of a snapshot (cached per file version): read from the copy
        ``prefetch`` restored, else with ``restic dump`` into the private folder."""
        key = self.verdict_key(path, node)
        if key in self._verdicts:
            return self._verdicts[key]
        # the client's declared format applies to its ledgers only (another CSV is checked as plain CSV)
        ledger = self.ledger if self.is_ledger(path) else None
        local = self.local_copy(snapshot_id, path)
        if local is not None:
            verdict = validators.validate(local, ledger)
        else:
            verdict = self.dump_and_validate(snapshot_id, path, ledger)
        self._verdicts[key] = verdict
        return verdict

    def dump_and_validate(self, snapshot_id: str, path: str, ledger: dict | None) -> validators.Verdict:
        dest = os.path.join(self.private_dir(), "f" + os.path.splitext(posixpath.basename(path))[1])
        try:
            with open(dest, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                res = subprocess.run(  # noqa: S603 (argv built by Restic.argv, no shell)
                    self.restic.argv("dump", "--", snapshot_id, self.stored_path(snapshot_id, path)),
                    env=self.restic.env,
                    stdout=handle,
                    stderr=subprocess.PIPE,
                    timeout=self.restic.timeout or 600,
                    check=False,
                )
            if res.returncode != 0:
                return validators.Verdict(validators.UNKNOWN, "restic dump could not read it", "restic dump")
            return validators.validate(dest, ledger)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return validators.Verdict(validators.UNKNOWN, f"could not be read for validation ({exc})", "restic dump")
        finally:
            try:
                os.unlink(dest)
            except OSError:
                pass

    def content_signs(self, snap, reference, current: dict, previous: dict | None, diff: dict | None):
        """Validator findings: (reasons, validated entries) for the changed files and the declared ledgers."""
        if not self.validate:
            return [], []
        listing = current.get("listing", {})
        old_listing = (previous or {}).get("listing", {})
        max_bytes = int(self.limits["validate_max_bytes"])
        checked = []
        for path in self.validation_targets(current, diff):
            node = listing[path]
            checked.append((path, node, self.verdict_of(snap.id, path, node)))
        # the older version of each file that fails: was it valid in the snapshot compared with?
        older: dict[str, dict] = {}
        for path, node, verdict in checked:
            old = old_listing.get(path)
            if verdict.status != validators.INVALID or old is None or reference is None:
                continue
            if int(old.get("size") or 0) > max_bytes:
                continue
            same = path not in (diff or {}).get("modified", []) and (old.get("size"), old.get("mtime")) == (
                node.get("size"),
                node.get("mtime"),
            )
            older[path] = {"node": old, "same": same}
        needed = {
            p: o["node"]
            for p, o in older.items()
            if not o["same"] and self.verdict_key(p, o["node"]) not in self._verdicts
        }
        if needed:
            self.prefetch(reference.id, needed)
        reasons, validated = [], []
        for path, _node, verdict in checked:
            validated.append({"path": path, **verdict.as_dict()})
            if verdict.status != validators.INVALID:
                continue
            old_verdict = None
            if path in older:
                old_verdict = (
                    verdict if older[path]["same"] else self.verdict_of(reference.id, path, older[path]["node"])
                )
            if old_verdict is not None and old_verdict.status == validators.VALID:
                reasons.append(
                    f"{path} fails validation in this snapshot: {verdict.reason} ({verdict.checker}); "
                    f"it passed in snapshot {reference.short_id}"
                )
            elif self.is_ledger(path):
                reasons.append(f"ledger {path} fails validation in this snapshot: {verdict.reason} ({verdict.checker})")
        return reasons, validated

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

    def assess(self, snap, predecessor, carried_from=None) -> dict:
        """Assess ``snap`` against ``predecessor`` (its predecessor, or the newest clean snapshot before it when
        ``carried_from``, the first damaged snapshot since that one, is given)."""
        current = self.summary(snap.id)
        previous = self.summary(predecessor.id) if predecessor is not None else None
        diff = self.diff(predecessor.id, snap.id) if predecessor is not None else None
        listing = current.get("listing", {})
        samples = self.sample_paths(current, diff)
        # one restic run reads what this assessment needs: the samples and the file versions not validated yet
        wanted = {p: listing[p] for p in samples if p in listing}
        for path in self.validation_targets(current, diff):
            if self.verdict_key(path, listing[path]) not in self._verdicts:
                wanted[path] = listing[path]
        try:
            if wanted:
                self.prefetch(snap.id, wanted)
            entropy = {}
            for path in samples:
                data = self.sample(snap.id, path)
                if data:
                    entropy[path] = round(shannon_entropy(data), 3)
            clean, reasons = assess(previous, current, diff, entropy, self.limits, self.patterns, self.extensions)
            for root in current.get("roots_missing", []):
                if not any(r.startswith(f"client folder {root} vanished") for r in reasons):
                    reasons.append(
                        f"client folder {root} is missing from this snapshot (it cannot be this client's restore point)"
                    )
            found, validated = self.content_signs(snap, predecessor, current, previous, diff)
            reasons.extend(found)
        finally:
            self.release()
        if reasons and carried_from is not None and predecessor is not None:
            reasons.append(
                f"still carries the damage first seen in snapshot {carried_from.short_id} (compared with "
                f"{predecessor.short_id}, the newest clean snapshot before it)"
            )
        clean = not reasons
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
            "validated": len(validated),
            "invalid": sum(1 for v in validated if v["status"] == validators.INVALID),
            "compared_with": "newest_clean" if carried_from is not None else "predecessor",
        }
        item = snapshot_item(snap, reasons, clean=clean, stats=stats)
        item["validated"] = validated
        return item


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
        "validated": [],
    }


def walk(assessor: Assessor, history: list, candidates: list[int], mode: str, lookback: int) -> list[dict]:
    """Assess the candidate snapshots (indices into ``history``, oldest first); the items newest first.

    Each candidate is first compared with its readable predecessor (``pairwise``). Damage persists: once a snapshot
    is damaged, the newer ones are compared with the newest snapshot known to be clean before it (``resolve``), so
    a snapshot that still carries the damage (the same encrypted or corrupt files, the same missing folder) is not
    clean either. With ``until_clean`` the newest-first walk stops ``lookback`` snapshots past the first candidate
    that looks clean against its predecessor (more when that candidate turns out to carry older damage).
    """
    pairwise: dict[int, dict] = {}

    def pair(index: int) -> dict:
        if index not in pairwise:
            pairwise[index] = assessor.assess_or_unusable(history, index)
        return pairwise[index]

    def resolve(window: list[int]) -> dict[int, dict]:
        resolved: dict[int, dict] = {}
        reference = None  # the newest clean snapshot; before any, the one before the window (or else the oldest)
        first_damaged = None
        for index in window:
            predecessor = assessor.readable_predecessor(history, index)
            if reference is None and predecessor is not None:
                reference = predecessor
            item = pair(index)
            if (
                not item.get("unusable")
                and first_damaged is not None
                and reference is not None
                and predecessor is not None
                and predecessor.id != reference.id
            ):
                item = assessor.assess(history[index], reference, carried_from=first_damaged)
            resolved[index] = item
            if item.get("unusable"):
                continue
            if item["clean"]:
                reference, first_damaged = history[index], None
            elif first_damaged is None:
                first_damaged = history[index]
        return resolved

    if mode == "all":
        resolved = resolve(candidates)
        return [resolved[i] for i in reversed(candidates)]
    walked: list[int] = []  # newest first
    position = len(candidates) - 1
    while True:
        first_clean = None
        while position >= 0:
            index = candidates[position]
            position -= 1
            walked.append(index)
            item = pair(index)
            if item["clean"] and first_clean is None:
                first_clean = len(walked) - 1
            if first_clean is not None and len(walked) - 1 - first_clean >= lookback:
                break
        window = list(reversed(walked))
        resolved = resolve(window)
        out, found = [], False
        for index in walked:
            out.append(resolved[index])
            if resolved[index]["clean"]:
                found = True
                break
        if found or position < 0:
            return out


def covering(module: AnsibleModule, restic: Restic, snapshots: list, live: str, pin: str | None) -> dict[str, str]:
    """restic.covering, or {} (the recorded paths alone then decide) when the repository lost data the search needs:
    such snapshots are reported unusable one by one by the walk."""
    if not snapshots:
        return {}
    try:
        return restic.covering(snapshots, live, pin, give_up_on_gone=True)
    except ResticError as exc:
        if exc.kind != "repository_damaged":
            raise
        module.warn(
            f"snapshot_damage: could not search the snapshots for {live} ({exc.message}); using their recorded paths"
        )
        return {}


def recorded_under(live: str, recorded: list[str]) -> bool:
    """``live`` (or its real path on this host) is one of the snapshot's recorded paths or below one."""
    forms = dict.fromkeys((norm_path(live), os.path.realpath(norm_path(live))))
    reals = [norm_path(r) for r in recorded] + [os.path.realpath(norm_path(r)) for r in recorded]
    return any(under(f, reals) for f in forms)


def client_params(params: dict, client: dict) -> dict:
    """The module's options with one client's of O(clients) (its paths, books, pins, snapshot or cutoff)."""
    merged = dict(params)
    for key in ("paths", "ledger", "ledger_paths", "snapshot_paths", "snapshot"):
        merged[key] = client.get(key)
    merged["before"] = client.get("before") or params["before"]
    merged["ledger"] = merged["ledger"] or {}
    merged["ledger_paths"] = merged["ledger_paths"] or []
    merged["snapshot_paths"] = merged["snapshot_paths"] or {}
    return merged


def cutoff(params: dict):
    if not params["before"]:
        return None
    try:
        return parse_time(params["before"], "before")
    except ValueError as exc:
        raise ClientError(f"snapshot_damage: {exc}") from None


def run_module(module: AnsibleModule) -> dict:
    params = module.params
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
            stale_lock_age=stale_lock_age(params),
            sftp_identity_file=params.get("sftp_identity_file"),
            sftp_known_hosts_file=params.get("sftp_known_hosts_file"),
        )
        if params["clients"]:
            return report_removed_locks(module, restic, assess_clients(module, restic))
        try:
            before = cutoff(params)
            assessor = Assessor(module, restic)
        except ClientError as exc:
            module.fail_json(msg=str(exc))
            raise
        except ValueError as exc:
            module.fail_json(msg=f"snapshot_damage: {exc}")
            raise
        try:
            assessed = assess_history(restic.snapshots(), restic, assessor, params, before)
            return report_removed_locks(module, restic, assessed)
        except ClientError as exc:
            module.fail_json(msg=str(exc))
        finally:
            assessor.cleanup()


def assess_clients(module: AnsibleModule, restic: Restic) -> dict:
    """Each client of O(clients), assessed as a run with its options alone would assess it, in one module run that
    shares the snapshot list, the layouts, the listings and the diffs (Shared). A client whose assessment fails is
    reported failed with the reason (and restic's error kind); the others go on."""
    params = module.params
    keep_dir = "" if module.check_mode else params["listing_dir"]
    if keep_dir and not os.path.isabs(keep_dir):
        module.fail_json(
            msg=f"snapshot_damage: listing_dir {keep_dir!r} is not an absolute path; give the folder on the host, "
            "e.g. /var/lib/ledgerguard/incidents/<incident>/restore/listings, or leave it empty"
        )
    shared = Shared(restic, keep_dir, module.warn)
    todo: list[tuple[str, dict, Assessor]] = []
    out: dict[str, dict] = {}
    for client in params["clients"]:
        cid = str(client["id"])
        if cid in out or any(cid == t[0] for t in todo):
            module.fail_json(msg=f"snapshot_damage: clients: id {cid!r} is given twice; give each client once.")
        merged = client_params(params, client)
        try:
            assessor = Assessor(module, restic, merged, shared)
        except ValueError as exc:
            out[cid] = {"failed": True, "msg": f"snapshot_damage: client {cid}: {exc}"}
            continue
        shared.assessors.append(assessor)
        todo.append((cid, merged, assessor))
    for cid, merged, assessor in todo:
        try:
            before = cutoff(merged)
            out[cid] = assess_history(shared.snapshots(), restic, assessor, merged, before)
            out[cid]["failed"] = False
        except ClientError as exc:
            out[cid] = {"failed": True, "msg": str(exc)}
        except ResticError as exc:
            out[cid] = {"failed": True, "msg": exc.message, "error_kind": exc.kind}
        finally:
            assessor.cleanup()
    result: dict = {"clients": {str(c["id"]): out[str(c["id"])] for c in params["clients"]}}
    if shared.manifest_tags is not None:
        result["manifest_tags"] = shared.manifest_tags
    return result


def assess_history(snapshots: list, restic: Restic, assessor: Assessor, params: dict, before) -> dict:
    """Select the snapshots of the client's paths and assess them (see :func:`walk`)."""
    module = assessor.module
    excluded = set(params["exclude_tags"])
    selected = [
        s
        for s in snapshots
        if (not params["host"] or s.hostname == params["host"]) and not excluded.intersection(s.tags)
    ]
    # A snapshot is the client's when its tree holds each client path (restic.covering: relative, '.', symlinked
    # and pinned layouts), or when it backed up a folder above the client path; then a client folder absent from
    # its tree is a sign of damage (roots_missing), never a reason to skip the snapshot.
    if assessor.shared is not None:
        covered = assessor.shared.covering(module, selected, assessor)  # one restic find for every client
    else:
        covered = [covering(module, restic, selected, p, assessor.pins.get(p)) for p in assessor.paths]
    history = [
        s
        for s in selected
        if all(s.id in found or recorded_under(p, s.paths) for p, found in zip(assessor.paths, covered, strict=True))
    ]
    out = []
    if params["snapshot"]:
        wanted = params["snapshot"].lower()
        matches = [i for i, s in enumerate(history) if s.id.startswith(wanted)]
        if len(matches) != 1:
            state = "is ambiguous" if matches else "was not found"
            where = f" on host {params['host']}" if params["host"] else ""
            raise ClientError(
                f"snapshot_damage: snapshot {params['snapshot']!r} {state} among the {len(history)} snapshots "
                f"of {', '.join(assessor.paths)}{where}; list them with ledgerguard.recovery.restic_snapshots and "
                "pin an existing ID"
            )
        # Resolved like any candidate (damage that arrived earlier and persists counts), reported alone.
        items = walk(assessor, history, list(range(matches[0] + 1)), "until_clean", int(params["lookback"]))
        out.append(next(i for i in items if i["id"] == history[matches[0]].id))
        return {"snapshots": out, "clean": [s["id"] for s in out if s["clean"]]}
    candidates = []
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
        candidates.append(index)
    candidates.reverse()  # oldest first
    out.extend(walk(assessor, history, candidates, params["mode"], int(params["lookback"])))
    return {"snapshots": out, "clean": [s["id"] for s in out if s["clean"]]}


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        {
            "paths": {"type": "list", "elements": "path"},
            "clients": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "id": {"type": "str", "required": True},
                    "paths": {"type": "list", "elements": "path", "required": True},
                    "ledger": {"type": "dict", "default": {}},
                    "ledger_paths": {"type": "list", "elements": "path", "default": []},
                    "snapshot_paths": {"type": "dict", "default": {}},
                    "snapshot": {"type": "str"},
                    "before": {"type": "str"},
                },
            },
            "host": {"type": "str"},
            "before": {"type": "str"},
            "exclude_tags": {"type": "list", "elements": "str", "default": ["pre-restore"]},
            "snapshot": {"type": "str"},
            "mode": {"type": "str", "choices": ["until_clean", "all"], "default": "until_clean"},
            "thresholds": {"type": "dict", "default": {}},
            "ransom_note_patterns": {"type": "list", "elements": "str", "default": []},
            "ransom_extensions": {"type": "list", "elements": "str", "default": []},
            "unusable": {"type": "list", "elements": "dict", "default": []},
            "lookback": {"type": "int", "default": 7},
            "validate": {"type": "bool", "default": True},
            "ledger": {"type": "dict", "default": {}},
            "ledger_paths": {"type": "list", "elements": "path", "default": []},
            "snapshot_paths": {"type": "dict", "default": {}},
            "listing_dir": {"type": "str", "default": ""},
        }
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[*RESTIC_MUTUALLY_EXCLUSIVE, ("paths", "clients")],
        required_one_of=[("paths", "clients")],
        supports_check_mode=True,
    )
    unknown = set(module.params["thresholds"] or {}) - set(DEFAULT_THRESHOLDS) - set(VALIDATION_THRESHOLDS)
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
