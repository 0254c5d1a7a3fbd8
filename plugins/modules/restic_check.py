#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_check
short_description: Check a restic repository for errors, optionally reading a subset of the data
description:
  - Runs C(restic check), which verifies the repository's structure (indexes, snapshots, trees), and with
    O(read_data) or O(read_data_subset) also downloads and verifies pack files.
  - C(restic check) takes an exclusive lock, so it fails (with a message naming the lock holder) while a backup runs.
  - "Every failure is diagnosed (RV(diagnosis)): C(data_lost) (packs snapshots need are gone: which snapshots and
    files), C(index_incomplete) (the data is there but the index misses it: repairable with C(restic rebuild-index)
    on restic 0.14 / C(restic repair index) on 0.16+), C(unused_data_missing) and C(unindexed_data) (harmless), and
    restic's notice that it could not create its temporary cache (C(cache_warning), never counted as an error)."
  - Never changes the repository, except the opt-in index repair (O(repair_index)), which runs only after a copy of
    the index was written to O(index_backup_dir); then the task reports a change.
version_added: 0.1.0
author: ledgerguard contributors (@ledgerguard)
options:
  read_data:
    description:
      - Read and verify all data (expensive on large repositories). Mutually exclusive with O(read_data_subset).
    type: bool
    default: false
  read_data_subset:
    description:
      - Read and verify only a subset of the pack files, one of
      - "V(n/t): part n of t (rolling; e.g. V(1/7) on Mondays, V(2/7) on Tuesdays covers everything in a week);"
      - "V(x%) or V(x.y%): a random percentage of the packs, above 0 and at most 100;"
      - "a size such as V(500M) or V(2G) (suffixes k, m, g, t): random packs up to that much data."
    type: str
  fail_on_error:
    description:
      - Fail the task when the check finds errors. With V(false) the task succeeds and returns RV(ok=false) and
        RV(errors), so a role can record the result before deciding.
      - Failures to run the check at all (wrong password, lock, unreachable backend) always fail the task.
    type: bool
    default: true
  locate_snapshots:
    description:
      - Whenever the check reports pack files missing or damaged, the module asks restic which snapshots need them
        (C(restic find --json --pack <id>) per pack, which works from the index even when the pack file is gone, and
        the snapshots whose root tree restic could not load) and returns them in RV(damaged_snapshots), whatever
        this option says - the answer decides between C(data_lost) and C(unused_data_missing).
      - With V(true), RV(damaged_snapshots), RV(located) and RV(locate_errors) are returned on a clean check too
        (empty lists and RV(located=true)); with V(false) they are left out when the check found no lost pack.
      - Read-only. A failure of this search is returned in RV(locate_errors) and never fails the task.
    type: bool
    default: false
  repair_index:
    description:
      - When the check finds an incomplete index or missing unused packs (and no lost data), rebuild the index from
        the pack files (C(restic rebuild-index) or C(restic repair index), by restic version), then check again
        (RV(repair)). Requires O(index_backup_dir). Never done when data is lost, never in check mode.
    type: bool
    default: false
  index_backup_dir:
    description:
      - Where the copy of the index is written before a repair (created 0700), each index file as restic decrypts
        it (C(index-<id>.json)) and, for a local repository, the raw index files (C(raw-index/), put back as they
        are to undo the repair).
    type: path
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: C(restic check) is read-only, so it runs the same in check mode.
"""

EXAMPLES = r"""
- name: Weekly rolling data check, one seventh per day
  ledgerguard.recovery.restic_check:
    read_data_subset: "{{ ansible_date_time.weekday_number | int % 7 + 1 }}/7"

- name: Check structure and 5 % of the data, record the outcome without failing
  ledgerguard.recovery.restic_check:
    read_data_subset: 5%
    fail_on_error: false
  register: check
"""

RETURN = r"""
ok:
  description: Whether restic found no errors.
  returned: success
  type: bool
  sample: true
errors:
  description: The lines in which restic reported problems (empty when RV(ok)).
  returned: success
  type: list
  elements: str
  sample: []
read_data:
  description: "What was read: V(none), V(all), or the subset given."
  returned: success
  type: str
  sample: 1/7
packs_read:
  description: Number of pack files read in a subset check, when restic reports it.
  returned: when restic reports it
  type: int
packs_total:
  description: Number of pack files in the repository, when restic reports it.
  returned: when restic reports it
  type: int
repository:
  description: The repository checked (any credentials in the URL redacted).
  returned: success
  type: str
seconds:
  description: Wall-clock duration of the check.
  returned: success
  type: float
restic_version:
  description: The version of the restic binary used.
  returned: success
  type: str
  sample: 0.14.0
lost_packs:
  description:
    - The pack files the check reported missing or damaged, each with its C(id) (as restic printed it), restic's
      C(reason) and the C(trees) restic could not load from it. A pack only "not referenced in any index" is not
      listed (no snapshot needs its data).
  returned: success
  type: list
  elements: dict
  sample:
    - id: 88338adcb6eb2e7e59a1f178cd2fdc2af3cc3a607c212fa4911d001289dbca47
      reason: "pack 88338adcb6eb2e7e59a1f178cd2fdc2af3cc3a607c212fa4911d001289dbca47: does not exist"
      trees: []
notices:
  description: restic notices that are not repository problems (its temporary cache could not be created).
  returned: success
  type: list
  elements: str
diagnosis:
  description:
    - One finding per kind of problem, each with C(kind) (C(data_lost), C(index_incomplete),
      C(unused_data_missing), C(unindexed_data), C(cache_warning)), C(severity), C(harmless), C(repairable),
      C(summary), C(what_to_do), and where known C(packs), C(trees), C(snapshots), C(repair_command).
  returned: success
  type: list
  elements: dict
harmless:
  description:
    - True when restic reported errors, every finding is harmless and at least one harmless finding (not the cache
      notice) accounts for them (the task then does not fail). Errors no finding explains are never harmless.
  returned: success
  type: bool
repair:
  description:
    - With O(repair_index), what was done - C(command), C(ran), C(reason) when it did not run, C(index_backup)
      (C(dir), C(index_files), C(decrypted), C(raw)), C(ok_after), C(errors_after), C(diagnosis_after).
  returned: when O(repair_index) is set
  type: dict
damaged_snapshots:
  description:
    - The snapshots that need a lost pack, oldest first, each with C(id), C(short_id), C(time), C(packs) (the lost
      packs it needs), C(paths) (up to 20 files that need them) and C(reasons) (one sentence naming the pack and what
      restic said).
  returned: success, when the check found lost packs or with O(locate_snapshots)
  type: list
  elements: dict
located:
  description: Whether restic could tell, for every lost pack, which snapshots need it.
  returned: success, when the check found lost packs or with O(locate_snapshots)
  type: bool
locate_errors:
  description: Why the search for the snapshots that need a lost pack failed, if it did.
  returned: success, when the check found lost packs or with O(locate_snapshots)
  type: list
  elements: str
error_kind:
  description:
    - On failure, the class of the failure; C(check_failed) when the check ran and found errors.
  returned: failure
  type: str
"""

import json  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import re  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import shutil  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import Restic  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    ResticError,
    classify_error,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    CHECK_CACHE_WARNING_RE,
    diagnose_check,
    index_repair_command,
    iso_utc,
    lost_packs_from_check,
    parse_check,
    parse_find_objects,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    ResticResult,
    validate_read_data_subset,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    backend_of,
    redact_repository,
)


MAX_PACKS_LOCATED = 20


def _without_cache_warning(res: ResticResult) -> ResticResult:
    """restic's output without its "unable to create temporary directory for cache" notice (a local TMPDIR matter,
    whose "permission denied" must not be read as a repository error)."""

    def strip(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if not CHECK_CACHE_WARNING_RE.search(line))

    return ResticResult(res.argv, res.rc, strip(res.stdout), strip(res.stderr), res.seconds, res.timed_out)


def save_index(restic: Restic, directory: str) -> dict:
    """A copy of the repository's index before a repair, in ``directory`` (created 0700): every index file as restic
    decrypts it (``restic cat index <id>``, JSON naming which pack holds which blob) and, for a local repository, the
    raw index files themselves (put back as they are to undo the repair)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    listed = restic.must("list", "index", action="list the index files before the repair")
    ids = [line.strip() for line in listed.stdout.splitlines() if re.fullmatch(r"[0-9a-f]{64}", line.strip())]
    saved = []
    for index_id in ids:
        res = restic.must("cat", "index", index_id, action=f"copy index file {index_id[:8]} before the repair")
        path = os.path.join(directory, f"index-{index_id}.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            handle.write(res.stdout)
        saved.append(path)
    raw = []
    if backend_of(restic.repository) == "local" and os.path.isdir(os.path.join(restic.repository, "index")):
        dest = os.path.join(directory, "raw-index")
        os.makedirs(dest, mode=0o700, exist_ok=True)
        for root, _dirs, files in os.walk(os.path.join(restic.repository, "index")):
            for name in files:
                shutil.copy2(os.path.join(root, name), os.path.join(dest, name))
                raw.append(os.path.join(dest, name))
    return {"dir": directory, "index_files": len(ids), "decrypted": saved, "raw": raw}


def find_by_index(restic: Restic, pack_id: str) -> dict[str, list[str]] | None:
    """{snapshot id: [paths]} of the blobs the index places in ``pack_id``, found with ``restic find --blob/--tree``:
    the way to locate a pack whose file is there but unreadable (truncated: ``restic find --pack`` reads the pack's
    header and stops with "file is too short"). None when the index or the search cannot be read."""
    listed = restic.run("list", "index")
    if listed.rc != 0 or listed.timed_out:
        return None
    blobs: dict[str, list[str]] = {"data": [], "tree": []}
    for index_id in re.findall(r"^[0-9a-f]{64}$", listed.stdout, re.M):
        res = restic.run("cat", "index", index_id)
        try:
            doc = json.loads(res.stdout) if res.rc == 0 else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return None
        for pack in doc.get("packs") or []:
            if pack.get("id") == pack_id:
                for blob in pack.get("blobs") or []:
                    blobs["tree" if blob.get("type") == "tree" else "data"].append(blob["id"])
    found: dict[str, list[str]] = {}
    for kind, ids in blobs.items():
        if not ids:
            continue
        res = restic.run("find", "--json", "--blob" if kind == "data" else "--tree", "--", *ids)
        try:
            part = parse_find_objects(res.stdout) if res.rc == 0 else None
        except ValueError:
            part = None
        if part is None:
            return None
        for snapshot_id, paths in part.items():
            found.setdefault(snapshot_id, []).extend(p for p in paths if p not in found[snapshot_id])
    return found


def locate(restic: Restic, lost: list[dict]) -> tuple[bool, list[str], list[dict], list[str]]:
    """Which snapshots need the lost packs: (every pack located, errors, snapshots oldest first, the packs that could
    not be searched: never to be called unused)."""
    if not lost:
        return True, [], [], []
    errors: list[str] = []
    unlocated: list[str] = []
    needs: dict[str, dict] = {}

    def note(snapshot_id: str, pack: dict, paths: list[str], what: str) -> None:
        entry = needs.setdefault(snapshot_id, {"packs": [], "paths": [], "reasons": []})
        if pack["id"] not in entry["packs"]:
            entry["packs"].append(pack["id"])
            entry["reasons"].append(
                f"needs pack {pack['id']}, which the repository lost ({what}; restic check: {pack['reason']})"
            )
        entry["paths"] += [p for p in paths if p not in entry["paths"]][: 20 - len(entry["paths"])]

    for pack in lost[:MAX_PACKS_LOCATED]:
        # restic find --pack takes a full ID, or the 8-character short form of a pack file that still exists.
        res = restic.run("find", "--json", "--pack", "--", pack["id"] if len(pack["id"]) == 64 else pack["id"][:8])
        found = None
        if res.rc != 0 or res.timed_out:
            # a pack file that is there but unreadable (truncated): search the blobs the index places in it
            found = find_by_index(restic, pack["id"]) if len(pack["id"]) == 64 else None
            if found is None:
                err = classify_error(
                    res, restic.repository, restic.features, action=f"find the snapshots needing pack {pack['id']}"
                )
                errors.append(err.message)
                unlocated.append(pack["id"])
                continue
        if found is None:
            try:
                found = parse_find_objects(res.stdout)
            except ValueError as exc:
                errors.append(f"restic find --pack {pack['id']} gave output that is not JSON: {exc}")
                unlocated.append(pack["id"])
                continue
        for snapshot_id, paths in found.items():
            count = len(paths)
            note(
                snapshot_id, pack, paths, f"{count} file(s) of it hold data from that pack, e.g. {', '.join(paths[:3])}"
            )
    if len(lost) > MAX_PACKS_LOCATED:
        errors.append(f"only the first {MAX_PACKS_LOCATED} of {len(lost)} lost packs were searched")
        # the packs beyond the search are not known to be unused: never harmless
        unlocated += [pack["id"] for pack in lost[MAX_PACKS_LOCATED:]]
    try:
        snapshots = restic.snapshots()
    except ResticError as exc:
        errors.append(exc.message)
        snapshots = []
    by_id = {s.id: s for s in snapshots}
    for pack in lost:
        for tree in pack.get("trees") or []:
            for snap in snapshots:
                if snap.tree.startswith(tree):
                    note(snap.id, pack, [], f"its root tree {tree} is in that pack")
    out = []
    for snapshot_id, entry in needs.items():
        snap = by_id.get(snapshot_id)
        out.append(
            {
                "id": snapshot_id,
                "short_id": snap.short_id if snap else snapshot_id[:8],
                "time": iso_utc(snap.time) if snap else "",
                "packs": entry["packs"],
                "paths": entry["paths"],
                "reasons": entry["reasons"],
            }
        )
    out.sort(key=lambda s: (s["time"], s["id"]))
    # A lost tree that is no snapshot's root tree cannot be traced to its snapshots here (restic find --pack matches
    # file data only); such a snapshot fails when it is listed or restored, and the restore role moves past it.
    untraced = [
        f"{tree} (pack {pack['id'][:12]})"
        for pack in lost
        for tree in pack.get("trees") or []
        if not any(snap.tree.startswith(tree) for snap in snapshots)
    ]
    if untraced:
        errors.append(
            "restic cannot tell which snapshots need the lost tree(s) "
            + ", ".join(untraced[:10])
            + "; a snapshot that needs one fails when it is listed or restored"
        )
    return not errors, errors, out, unlocated


def repair(module, restic: Restic, params: dict, result: dict, check_args: list[str]) -> dict:
    """The opt-in index repair: only for an incomplete index or missing unused packs, only after a copy of the
    index, then a second check. Never with data lost (a rebuilt index would hide which packs are gone)."""
    kinds = {f["kind"] for f in result["diagnosis"]}
    command = index_repair_command(restic.features.version)
    out: dict = {"command": "restic " + " ".join(command), "ran": False}
    if result["ok"]:
        out["reason"] = "the check found no errors; nothing to repair"
        return out
    if "data_lost" in kinds:
        out["reason"] = (
            "not repaired: the check found data lost (packs snapshots need are gone or damaged); rebuilding the index "
            "would hide which; restore from unaffected snapshots or another copy first"
        )
        module.warn(out["reason"])
        return out
    if not kinds & {"index_incomplete", "unused_data_missing"}:
        out["reason"] = "nothing the index repair fixes was found"
        return out
    if module.check_mode:
        out["reason"] = "check mode: the repair would run"
        return out
    out["index_backup"] = save_index(restic, params["index_backup_dir"])
    res = restic.run(*command)
    out.update(ran=True, rc=res.rc, seconds=round(res.seconds, 3))
    if res.rc != 0 or res.timed_out:
        raise classify_error(
            _without_cache_warning(res), restic.repository, restic.features, action="rebuild the repository index"
        )
    again = restic.run(*check_args)
    parsed = parse_check(again)
    out.update(ok_after=parsed["ok"], errors_after=parsed["errors"])
    out["diagnosis_after"] = diagnose_check(parsed, again.stdout + "\n" + again.stderr, [], restic.features.version)
    result["changed"] = True
    return out


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        read_data={"type": "bool", "default": False},
        read_data_subset={"type": "str"},
        fail_on_error={"type": "bool", "default": True},
        locate_snapshots={"type": "bool", "default": False},
        repair_index={"type": "bool", "default": False},
        index_backup_dir={"type": "path"},
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE + [("read_data", "read_data_subset")],
        required_if=[("repair_index", True, ("index_backup_dir",))],
        supports_check_mode=True,
    )
    params = module.params

    def body(restic):
        args = ["check"]
        read = "none"
        if params["read_data_subset"]:
            read = validate_read_data_subset(params["read_data_subset"])
            if not restic.features.check_read_data_subset:
                raise ValueError(
                    f"restic {restic.features.version_string} has no 'check --read-data-subset'; "
                    "use read_data: true or upgrade restic"
                )
            args += ["--read-data-subset", read]
        elif params["read_data"]:
            args.append("--read-data")
            read = "all"
        res = restic.run(*args)
        parsed = parse_check(res)
        # A run that could not even start (password, lock, backend, timeout) is a failure of its own kind.
        if res.rc != 0 or res.timed_out:
            plain = _without_cache_warning(res)
            err = classify_error(plain, restic.repository, restic.features, action="check the repository")
            if err.kind not in ("failed", "repository_damaged"):
                raise err
            if not parsed["errors"]:
                parsed["errors"] = [line.strip() for line in plain.stderr.splitlines() if line.strip()][-10:]
        result = {
            "changed": False,
            "ok": parsed["ok"],
            "errors": parsed["errors"],
            "read_data": read,
            "repository": redact_repository(restic.repository),
            "seconds": round(res.seconds, 3),
            "restic_version": restic.features.version_string,
        }
        for key in ("packs_read", "packs_total"):
            if key in parsed:
                result[key] = parsed[key]
        result["lost_packs"] = lost_packs_from_check(parsed["errors"]) if not parsed["ok"] else []
        # not "warnings": Ansible merges module.warn() messages into a result key of that name
        result["notices"] = parsed.get("warnings") or []
        for warning in result["notices"]:
            module.warn(f"restic check: {warning} (not a repository problem)")
        snapshots: list = []
        unlocated: list = []
        if params["locate_snapshots"] or result["lost_packs"]:
            # which snapshots need a missing pack decides between "data lost" and "unused data missing"
            located, errors, snapshots, unlocated = locate(restic, result["lost_packs"])
            result.update(located=located, locate_errors=errors, damaged_snapshots=snapshots)
        text = res.stdout + "\n" + res.stderr
        result["diagnosis"] = diagnose_check(parsed, text, snapshots, restic.features.version, unlocated)
        real = [f for f in result["diagnosis"] if not f["harmless"]]
        # harmless only when a harmless finding explains the failure: errors nothing classified never pass as harmless
        explained = [f for f in result["diagnosis"] if f["harmless"] and f["kind"] != "cache_warning"]
        result["harmless"] = not parsed["ok"] and not real and bool(explained)
        if params["repair_index"]:
            result["repair"] = repair(module, restic, params, result, args)
            if result["repair"].get("ok_after"):
                parsed = dict(parsed, ok=True)
        if not parsed["ok"] and not params["fail_on_error"]:
            packs = ", ".join(p["id"] for p in result["lost_packs"][:5]) or "none named"
            module.warn(
                f"restic check found {len(parsed['errors'])} problem(s) in repository "
                f"{redact_repository(restic.repository)} (lost or damaged packs: {packs}): "
                f"{'; '.join(parsed['errors'][:3])}"
            )
        if not parsed["ok"] and params["fail_on_error"] and not result["harmless"]:
            said = "; ".join(f"{f['kind']}: {f['summary']}. {f['what_to_do']}" for f in real) or "; ".join(
                parsed["errors"][:5]
            )
            raise ResticError(
                "check_failed",
                f"restic check found {len(parsed['errors'])} problem(s) in repository "
                f"{redact_repository(restic.repository)}: {said} (restic said: {'; '.join(parsed['errors'][:5])})",
                {"errors": parsed["errors"], "read_data": read, "diagnosis": result["diagnosis"]},
                res,
            )
        return result

    run_module(module, body)


if __name__ == "__main__":
    main()
