#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_restore
short_description: Restore a restic snapshot, or chosen paths of it, into a target directory
description:
  - Restores the whole snapshot, or only O(include_paths), into O(target) with C(restic restore), verified with
    C(--verify) when the restic binary offers it (0.14 and later do).
  - "B(Where files land:) a file or directory stored in the snapshot as C(/a/b/c) always lands at
    C(<target>/a/b/c). Restoring O(include_paths=[/srv/ledgers/C001]) from a snapshot of C(/srv/ledgers) into
    C(/restore) gives C(/restore/srv/ledgers/C001/...): the path as stored in the snapshot, once, under the target;
    never C(/restore/srv/ledgers/srv/ledgers/C001) and never C(/restore/C001). RV(restored_paths) lists where each
    selected path landed."
  - "B(The layout is read from the snapshot, not from its recorded paths:) restic records every backed-up path
    absolute, but stores the tree as the path was given. C(cd /srv && restic backup ledgers) stores
    C(/ledgers/C001/...), C(restic backup .) stores the folder's contents at the top of the tree. One C(restic ls) of
    the top of the tree maps each O(include_paths) entry (the client's folder on its host) to the path inside the
    snapshot (C(/srv/ledgers/C001) -> C(/ledgers/C001), landing at C(<target>/ledgers/C001)); absolute backups,
    several paths in one snapshot, a parent folder holding many clients and paths backed up through a symlink are
    mapped the same way. A path that cannot be mapped fails the task with what the snapshot holds at its top and how
    to pin it (O(snapshot_paths))."
  - "B(Idempotent:) before restoring, the target is compared with the selected part of the snapshot: every
    directory, file and symlink must exist with the same type and size, and then every file must have the same
    sha256 as in the snapshot (read with C(restic dump), nothing is written). When all match, nothing is restored and
    the task's C(changed) is V(false)."
  - Files in the target that are not in the snapshot are left alone (they are not deleted).
  - "Before restic writes, the target is created and probed for write access, and the space still to write is
    compared with the free space. With a full snapshot ID and an empty or absent target there is nothing to compare:
    the restore starts at once and the listing runs alongside it; a full disk is then reported from restic's own
    error."
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  snapshot:
    description:
      - Snapshot ID (full, or a unique prefix of at least 8 hexadecimal characters) or V(latest). Anything else
        (a value starting with C(-) in particular) is refused before restic runs.
      - With V(latest), O(hosts) and O(tags) choose among the snapshots.
    type: str
    required: true
  target:
    description:
      - Absolute path of the directory to restore into; created when missing. See the landing rule above.
      - C(/) and system directories (C(/etc), C(/usr), C(/proc), ... and C(/var), C(/srv), C(/home) themselves) are
        refused before anything is written.
    type: path
    required: true
  include_paths:
    description:
      - Absolute paths of the client folders (or files) as they are on the host that was backed up, to restore
        (directories are restored with everything below them). Default is the whole snapshot.
      - Each is mapped to the path inside the snapshot (see the layout rule above) and must exist there, otherwise
        the task fails and says what the snapshot holds.
    type: list
    elements: path
    default: []
    aliases: [paths]
  snapshot_paths:
    description:
      - Pins, from live path to the path inside the snapshot, for layouts the mapping cannot work out, for example
        C(/srv/ledgers/C001) to C(/old-share/C001) (the roles fill it from C(ledgerguard_clients[].snapshot_path)).
      - A pinned path must exist in the snapshot.
    type: dict
    default: {}
  landing:
    description:
      - "V(snapshot) (default): a path lands where the snapshot stores it, C(<target>/<path inside the snapshot>)
        (C(<target>/ledgers/C001) for a relative backup of C(/srv/ledgers))."
      - "V(live): every selected path lands at C(<target>/<live path>) (C(<target>/srv/ledgers/C001)) whatever the
        snapshot's layout, so later steps (hashing, the swap) find it where the live tree has it. restic restores
        into a hidden folder of the target, which is then renamed into place (same filesystem)."
    type: str
    choices: [snapshot, live]
    default: snapshot
  hosts:
    description: With O(snapshot=latest), only consider snapshots of these hosts.
    type: list
    elements: str
    default: []
  tags:
    description: With O(snapshot=latest), only consider snapshots carrying every one of these tags.
    type: list
    elements: str
    default: []
  verify:
    description:
      - Let restic read back and verify every restored file (C(restore --verify)) when the binary supports it.
      - When it does not, a warning says so and RV(verified) is V(false).
    type: bool
    default: true
  compare_content:
    description:
      - When the target already holds every file with the right size, compare sha256 of every file with the
        snapshot before deciding whether to restore.
      - V(false) trusts type and size only (faster on large targets, but a same-size corruption goes unnoticed).
    type: bool
    default: true
  listing_dir:
    description:
      - A folder on the host where M(ledgerguard.recovery.snapshot_damage) kept its listings
        (O(ledgerguard.recovery.snapshot_damage#module:listing_dir)). With a full snapshot ID whose listing is kept
        there and covers O(include_paths), the top of the tree and the selected files are read from it instead of
        two C(restic ls) runs (each opens the repository and pays its key derivation); the listing of a snapshot
        named by its full ID never changes.
      - A kept listing is used only from a folder (not a link) owned by the user the module runs as, mode 0700, as a
        regular file of that user that no one else may write, naming the same repository and snapshot; otherwise
        the snapshot is listed as without this option. Nothing is written there.
      - Empty (the default) lists the snapshot with restic.
    type: str
    default: ''
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description:
      - In check mode nothing is written (the target directory is not even created); the task's C(changed) says
        whether a restore would happen and RV(comparison) why.
"""

EXAMPLES = r"""
- name: Restore client C001 from the chosen snapshot into staging
  ledgerguard.recovery.restic_restore:
    snapshot: "{{ restore_point.id }}"
    target: /srv/staging/INC-2026-0042
    include_paths:
      - /srv/ledgers/C001
  register: restored
  # lands in /srv/staging/INC-2026-0042/srv/ledgers/C001

- name: Restore the newest snapshot of web01 completely
  ledgerguard.recovery.restic_restore:
    snapshot: latest
    hosts: [web01]
    target: /srv/drill/sandbox
"""

RETURN = r"""
snapshot_id:
  description: Full ID of the snapshot restored (V(latest) resolved).
  returned: success
  type: str
  sample: e5c57c8f2ab3b24032535430b2c1c6285b94a638368d329057f35a89aea232f4
snapshot_time:
  description: When that snapshot was taken (as restic recorded it).
  returned: success
  type: str
  sample: "2026-11-26T18:01:25.106570565Z"
snapshot_paths:
  description: The paths the snapshot holds.
  returned: success
  type: list
  elements: str
target:
  description: The target directory.
  returned: success
  type: str
  sample: /srv/staging
include_paths:
  description: The paths selected, as given (empty means the whole snapshot).
  returned: success
  type: list
  elements: str
snapshot_include_paths:
  description: The same paths inside the snapshot's tree (the mapping of RV(include_paths)).
  returned: success
  type: list
  elements: str
snapshot_layout:
  description:
    - What the top of the snapshot's tree holds (C(top)), where each recorded path is stored (C(roots), each with
      C(recorded), C(snapshot_path), C(type)) and whether it is a C(--stdin) snapshot (C(stdin)).
  returned: success
  type: dict
restored_paths:
  description:
    - For each selected path (or each snapshot path for a whole restore), its path inside the snapshot
      (C(snapshot_path)) and where it lands under the target (C(restored_to)).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/srv/ledgers/C001", "snapshot_path": "/ledgers/C001", "restored_to": "/srv/staging/ledgers/C001"}]
files:
  description: Number of regular files in the selection (restored, or already in place).
  returned: success
  type: int
  sample: 20000
bytes:
  description: Total size in bytes of those files.
  returned: success
  type: int
  sample: 1073741824
seconds:
  description: Wall-clock seconds of the C(restic restore) command (0 when nothing was restored).
  returned: success
  type: float
  sample: 12.5
verified:
  description: Whether restic verified the restored files (C(--verify)) and found them correct.
  returned: success
  type: bool
comparison:
  description:
    - "How the target compared with the snapshot before the task: C(matches), C(content_checked), C(files_compared)
      and the counts C(missing), C(wrong_type), C(wrong_size), C(wrong_content), with up to 20 C(examples)."
  returned: success
  type: dict
restic_version:
  description: The version of the restic binary used.
  returned: success
  type: str
  sample: 0.14.0
error_kind:
  description:
    - On failure, the class of the failure, for example C(snapshot_not_found), C(permission_denied), C(no_space),
      C(wrong_password), C(locked), C(unreachable), C(repo_missing), C(repository_damaged) (a pack the snapshot
      needs is lost or damaged), C(path_not_in_snapshot) (an include path the snapshot does not hold; the message
      says what it holds at its top and how to pin the path).
  returned: failure
  type: str
"""

import os  # noqa: E402
import shutil  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import tempfile  # noqa: E402
from dataclasses import replace as dc_replace  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import threading  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    norm_path,
    path_join,
    path_under,
    restic_pattern,
    snapshot_pins,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    PathNotInSnapshot,
    ResticError,
    classify_error,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    FULL_SNAPSHOT_ID_RE as FULL_ID,
    ResticResult,
    validate_snapshot_id,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import redact_repository  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic_compare import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    Comparison,
    compare_content,
    compare_metadata,
    hash_raw_stream,
    hash_tar_stream,
    landing_path,
    selection_roots,
    within,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.units import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    human_size as _human,
)


# The restore target may never be one of these, nor lie below the ones in SYSTEM_TREES (a restore there would
# overwrite the operating system).
SYSTEM_DIRS = ("/", "/home", "/opt", "/srv", "/var", "/var/lib", "/mnt", "/media", "/tmp", "/root")  # noqa: S108
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin")
SYSTEM_TREES += ("/sys", "/usr")


def _system_target(target: str) -> bool:
    """True when target is / or a system directory (or lies below /etc, /usr, /proc, ...)."""
    return target in SYSTEM_DIRS or any(target == t or target.startswith(t + "/") for t in SYSTEM_TREES)


def _space_needed(target: str, files) -> tuple[int, int]:
    """(bytes the restore still has to write, bytes free on the target's filesystem) for the selected files."""
    needed = 0
    for node in files:
        try:
            have = os.lstat(landing_path(target, node.path)).st_size
        except OSError:
            have = 0
        needed += max(node.size - have, 0)
    probe = target
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    st = os.statvfs(probe)
    return needed, st.f_bavail * st.f_frsize


def _empty_or_absent(target: str) -> bool:
    """True when the target does not exist yet or is an empty directory (not a symlink)."""
    if not os.path.lexists(target):
        return True
    if os.path.islink(target) or not os.path.isdir(target):
        return False
    with os.scandir(target) as entries:
        return next(entries, None) is None


def _prepare_target(target: str, repository: str, features) -> None:
    """Create the target and prove it is writable, so a denied target fails before restic starts."""
    try:
        os.makedirs(target, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".lg-probe-", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        path = exc.filename or target
        fake = ResticResult([], 1, "", f"open {path}: {reason}")
        if exc.errno is not None and exc.errno == 28:
            fake = ResticResult([], 1, "", f"write {path}: no space left on device")
        raise classify_error(fake, repository, features, target=target, action="restore") from None


def _merge_move(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` on the same filesystem: a rename when ``dst`` is absent, else entry by entry
    (files replace files, as restic's own restore does)."""
    if not os.path.lexists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        return
    if os.path.isdir(src) and not os.path.islink(src) and os.path.isdir(dst) and not os.path.islink(dst):
        for entry in os.listdir(src):
            _merge_move(os.path.join(src, entry), os.path.join(dst, entry))
        os.rmdir(src)
        return
    if os.path.isdir(dst) and not os.path.islink(dst):
        raise ValueError(f"cannot put the restored {src} at {dst}: a directory is in the way")
    os.replace(src, dst)


def _land_moved(work: str, target: str, pairs: list) -> None:
    """landing: live - move each restored root from where the snapshot stores it (under ``work``) to
    <target>/<live path>, then remove ``work``."""
    for stored, live in pairs:
        src = work if stored == "/" else os.path.join(work, stored.lstrip("/"))
        if not os.path.lexists(src):
            continue
        dst = os.path.join(target, live.lstrip("/"))
        if src == work:
            os.makedirs(dst, exist_ok=True)
            for entry in os.listdir(work):
                _merge_move(os.path.join(work, entry), os.path.join(dst, entry))
        else:
            _merge_move(src, dst)
    shutil.rmtree(work, ignore_errors=True)


def _check_selected(listing, includes: list[str], snapshot_of: dict[str, str], layout) -> None:
    """Every selected in-snapshot path is in the listing; else a message naming the live path, where it maps, and what
    the snapshot holds."""
    held = {n.path for n in listing.nodes}
    absent = [p for p in includes if p != "/" and p not in held]
    if absent:
        pairs = ", ".join(
            f"{snapshot_of.get(p, p)}" + (f" (in the snapshot: {p})" if snapshot_of.get(p, p) != p else "")
            for p in absent
        )
        raise PathNotInSnapshot(
            f"include_paths {pairs} not in {layout.describe()}. Pin the path inside the snapshot with "
            "snapshot_paths (ledgerguard_clients[].snapshot_path), or choose a snapshot that holds it.",
            {"absent": [snapshot_of.get(p, p) for p in absent], "snapshot_paths": absent},
        )


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        snapshot={"type": "str", "required": True},
        target={"type": "path", "required": True},
        include_paths={"type": "list", "elements": "path", "default": [], "aliases": ["paths"]},
        hosts={"type": "list", "elements": "str", "default": []},
        tags={"type": "list", "elements": "str", "default": []},
        verify={"type": "bool", "default": True},
        compare_content={"type": "bool", "default": True},
        snapshot_paths={"type": "dict", "default": {}},
        landing={"type": "str", "default": "snapshot", "choices": ["snapshot", "live"]},
        listing_dir={"type": "str", "default": ""},
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    params = module.params

    def body(restic):
        target = params["target"]
        if not os.path.isabs(target):
            raise ValueError(f"target {target!r} is not an absolute path; give the full path of the restore directory")
        target = os.path.normpath(target)
        if _system_target(target):
            raise ValueError(
                f"target {target} is the root or a system directory; restoring there could overwrite the operating "
                "system or other data. Nothing was restored. Give an empty directory of its own, e.g. "
                "/srv/restore/<incident>"
            )
        includes = []
        for path in params["include_paths"]:
            if not path.startswith("/"):
                raise ValueError(
                    f"include_paths entry {path!r} is not absolute; give the client's folder as it is on the host "
                    "that was backed up, e.g. /srv/ledgers/C001"
                )
            includes.append(os.path.normpath(path))
        wanted = validate_snapshot_id(params["snapshot"])
        pins = snapshot_pins(params["snapshot_paths"])
        # The layout is read from the snapshot itself, not from its recorded paths: one 'restic ls' of the top of
        # its tree maps each live include path to where the snapshot stores it (restic_snapshots, backup_manifest
        # and the roles use the same Restic.map_path).
        if FULL_ID.match(wanted) and params["listing_dir"]:
            restic.load_listing(params["listing_dir"], wanted)  # snapshot_damage's listing, when one can be trusted
        if FULL_ID.match(wanted):
            layout = restic.layout(wanted, includes)
        else:
            layout = restic.layout(restic.resolve_snapshot(wanted, params["hosts"], params["tags"]), includes)
        live_includes = includes
        includes = [restic.map_path(layout.snapshot, p, pins.get(norm_path(p))) for p in live_includes]
        snapshot_of = {includes[i]: live for i, live in enumerate(live_includes)}
        mapped_includes = includes
        if "/" in includes:  # a live folder stored as the whole tree ('restic backup .'): restore all of it
            includes = []
        features = restic.features
        verify = params["verify"] and features.restore_verify
        if params["verify"] and not features.restore_verify:
            module.warn(f"restic {features.version_string} has no 'restore --verify'; the restore is not verified")

        # landing: live -> every selected path lands at <target>/<live path>, whatever the snapshot's own layout
        if live_includes:
            pairs = [(mapped_includes[i], norm_path(live)) for i, live in enumerate(live_includes)]
        else:
            pairs = [(r.stored, r.recorded) for r in layout.roots if r.stored and r.type != "symlink"]
        relocating = params["landing"] == "live" and any(stored != live for stored, live in pairs)

        def relocate(path: str) -> str:
            if relocating:
                for stored, live in pairs:
                    rest = path_under(path, stored)
                    if rest is not None:
                        return path_join(live, rest)
            return path

        def land(path: str) -> str:
            return os.path.normpath(landing_path(target, relocate(path)))

        def shifted(items):
            return [dc_replace(n, path=relocate(n.path)) for n in items] if relocating else list(items)

        def restore_args(snapshot_id: str, dest: str) -> list[str]:
            args = ["restore", "--target", dest]
            for path in includes:
                args += ["--include", restic_pattern(path)]
            return args + (["--verify"] if verify else []) + ["--", snapshot_id]

        # An empty (or absent) target needs no comparison: with a full snapshot ID restic starts at once and the
        # listing (files, bytes, the landing check) runs alongside it, so its repository open costs no wall time.
        fast = bool(FULL_ID.match(wanted)) and not module.check_mode and _empty_or_absent(target)
        wanted = layout.snapshot.id
        fast_res = None
        if fast:
            _prepare_target(target, restic.repository, features)
            box: dict = {}
            dest = tempfile.mkdtemp(prefix=".lg-landing-", dir=target) if relocating else target
            worker = threading.Thread(target=lambda: box.update(res=restic.run(*restore_args(wanted, dest))))
            worker.start()
            listed: object
            try:
                listed = restic.ls(wanted, includes)
                _check_selected(listed, includes, snapshot_of, layout)
            except ResticError as exc:
                listed = exc
            finally:
                worker.join()
            fast_res = box["res"]
            if fast_res.rc != 0 or fast_res.timed_out:
                error = classify_error(
                    fast_res,
                    restic.repository,
                    features,
                    target=target,
                    snapshot=wanted,
                    action=f"restore into {target}",
                )
                if error.kind == "no_space" and not isinstance(listed, ResticError):
                    size = sum(n.size for n in listed.files)
                    st = os.statvfs(target)
                    error.message += (
                        f" The selection holds {size} bytes ({_human(size)}); the target's filesystem has "
                        f"{_human(st.f_blocks * st.f_frsize)} in all. The files restored so far are still in {target}."
                    )
                    error.details.update(needed_bytes=size, total_bytes=st.f_blocks * st.f_frsize)
                raise error
            if isinstance(listed, ResticError):
                raise listed
            listing = listed
            if relocating:
                _land_moved(dest, target, pairs)
        else:
            listing = restic.ls(wanted, includes)
            _check_selected(listing, includes, snapshot_of, layout)
        snap = listing.snapshot
        roots = selection_roots(listing, includes) if includes else []
        root_paths = [r.path for r in roots]
        nodes = [n for n in listing.nodes if not includes or within(n.path, root_paths)]
        files = [n for n in nodes if n.type == "file"]
        if includes:
            shown = root_paths
            live_of = {p: snapshot_of.get(p, p) for p in root_paths}
        elif "/" in mapped_includes:
            shown = ["/"]
            live_of = {"/": snapshot_of["/"]}
        else:
            shown = [r.stored for r in layout.roots if r.stored and r.type != "symlink"]
            live_of = {r.stored: r.recorded for r in layout.roots if r.stored}
        base = {
            "snapshot_id": snap.id,
            "snapshot_time": snap.raw_time,
            "snapshot_paths": list(snap.paths),
            "target": target,
            "include_paths": live_includes,
            "snapshot_include_paths": mapped_includes,
            "snapshot_layout": layout.as_dict(),
            "restored_paths": [
                {
                    "path": live_of.get(p, p),
                    "snapshot_path": p,
                    "restored_to": land(p),
                }
                for p in shown
            ],
            "files": len(files),
            "bytes": sum(n.size for n in files),
            "restic_version": features.version_string,
        }

        if fast_res is not None:
            absent = [p for p in shown if not os.path.lexists(land(p))]
            if absent:
                raise ResticError(
                    "restore_incomplete",
                    f"restic restored snapshot {snap.short_id} from {redact_repository(restic.repository)} into "
                    f"{target} without error, but {absent} did not land at "
                    f"{[land(p) for p in absent]}. Inspect the target and the snapshot with "
                    "'restic ls'.",
                    {"absent": absent},
                    fast_res,
                )
            before = Comparison(missing=[n.path for n in nodes])
            return dict(
                base,
                comparison=before.as_dict(),
                changed=True,
                seconds=round(fast_res.seconds, 3),
                verified=bool(verify),
            )

        # 1. compare: sizes and types first, then sha256 of every file against the snapshot (restic dump)
        comparison = compare_metadata(listing, target, shifted(nodes))
        if comparison.matches and files and params["compare_content"]:
            expected: dict[str, str] = {}
            for root in roots or [None]:
                if root is not None and root.type == "file":
                    args, consume = ("dump", "--", snap.id, root.path), hash_raw_stream
                else:
                    args = ("dump", "--archive", "tar", "--", snap.id, root.path if root else "/")
                    consume = hash_tar_stream
                value, res = restic.stream(*args, consume=consume)
                if res.rc != 0 or res.timed_out:
                    raise classify_error(res, restic.repository, features, snapshot=snap.id, action="read the snapshot")
                if root is not None and root.type == "file":
                    expected[root.path] = value
                else:
                    expected.update(value)
            if relocating:
                expected = {relocate(k): v for k, v in expected.items()}
            compare_content(comparison, expected, shifted(files), target)
        needed = not comparison.matches
        result = dict(base, comparison=comparison.as_dict(), changed=needed, seconds=0.0, verified=False)
        if not needed or module.check_mode:
            return result

        # 2. restore
        if comparison.wrong_type:
            raise ResticError(
                "target_conflict",
                f"The restore target {target} holds something of another type where snapshot {snap.short_id} has "
                f"{comparison.wrong_type[:5]} (for example a directory where the snapshot has a file). Nothing was "
                "restored. Move those entries away, or restore into an empty target.",
                {"paths": comparison.wrong_type[:50]},
            )
        needed, free = _space_needed(target, shifted(files))
        if needed > free:
            raise ResticError(
                "no_space",
                f"Out of space on the restore target {target} while trying to restore into {target} from restic "
                f"repository {redact_repository(restic.repository)} (no space left on device: snapshot "
                f"{snap.short_id} needs {needed} bytes ({_human(needed)}) there but the filesystem has {free} bytes "
                f"({_human(free)}) free). Nothing was restored. Free at least {_human(needed - free)} there or choose "
                "a target on a larger filesystem, then retry.",
                {"target": target, "needed_bytes": needed, "free_bytes": free},
            )
        _prepare_target(target, restic.repository, features)
        # restic 0.14 cannot replace an existing symlink ("file exists"); a symlink holds no data, so it is recreated
        for node in nodes:
            if node.type == "symlink" and os.path.islink(land(node.path)):
                os.unlink(land(node.path))
        dest = tempfile.mkdtemp(prefix=".lg-landing-", dir=target) if relocating else target
        res = restic.run(*restore_args(snap.id, dest))
        if res.rc != 0 or res.timed_out:
            error = classify_error(
                res, restic.repository, features, target=target, snapshot=snap.id, action=f"restore into {target}"
            )
            if error.kind == "no_space":
                error.message += f" The restore needed {needed} bytes ({_human(needed)}); {_human(free)} were free."
                error.details.update(needed_bytes=needed, free_bytes=free)
            raise error
        if relocating:
            _land_moved(dest, target, pairs)
        # 3. re-read: every selected path must be where the landing rule says
        absent = [p for p in shown if not os.path.lexists(land(p))]
        if absent:
            raise ResticError(
                "restore_incomplete",
                f"restic restored snapshot {snap.short_id} from {redact_repository(restic.repository)} into {target} "
                f"without error, but {absent} did not land at {[land(p) for p in absent]}. "
                "Inspect the target and the snapshot with 'restic ls'.",
                {"absent": absent},
                res,
            )
        result.update(changed=True, seconds=round(res.seconds, 3), verified=bool(verify))
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
