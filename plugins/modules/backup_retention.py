#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_retention
short_description: Apply the retention policy per client - permanent year-end tags, forget, prune
description:
  - O(operation=tag_permanent) adds the O(permanent_tag) tag (C(restic tag --add)) to each client's year-end
    snapshots - for every fiscal year and every date of O(permanent_dates) that has passed, the newest snapshot of the
    year up to that date, separately for each set of backed-up paths (the client's files, each database dump) - and
    to the snapshots named in O(snapshots). restic gives a re-tagged snapshot a new ID, so
    its backup-time manifest snapshot is re-tagged to point at the new ID and tagged permanent as well.
  - O(operation=forget) lints O(policy) against the accounting-archive retention periods (the same lint
    C(backup_verify) runs, module_utils/retention.py), refuses a failing policy when O(require_compliant=true), then
    per client runs C(restic forget --dry-run --tag <client> --host <host>) with the policy's C(--keep-*) options and
    C(--keep-tag <permanent_tag>), reports what would be forgotten, and unless O(dry_run=true) forgets it for real.
    Manifest snapshots whose data snapshot is gone are forgotten with it. Never prunes.
  - O(operation=prune) runs C(restic prune) (repository-wide). restic itself refuses while any other restic process
    (a drill's or an incident's restore) holds a lock on the repository.
version_added: 0.2.0
author: ledgerguard contributors (@ledgerguard)
options:
  operation:
    description: What to do.
    type: str
    choices: [tag_permanent, forget, prune]
    required: true
  clients:
    description: Client IDs (the snapshot tag of each client). Required for V(tag_permanent) and V(forget).
    type: list
    elements: str
    default: []
  host:
    description: Snapshot host name of the clients' snapshots (as the backup recorded it).
    type: str
    default: ""
  policy:
    description:
      - The restic forget policy (keys as restic's flags, C(keep_daily) or C(keep-daily), C(keep_tag) a list). The
        same value C(backup_verify) lints, C(ledgerguard_backup_policy.retention) as the filter
        P(ledgerguard.recovery.retention_policy#filter) gives it with C(forget=true). V(null) forgets nothing.
    type: dict
  record_classes:
    description: Record classes for the lint (C(backup_verify_record_classes)); empty means the built-in table.
    type: list
    elements: dict
    default: []
  require_compliant:
    description: Refuse to forget anything when the lint of O(policy) FAILs.
    type: bool
    default: true
  dry_run:
    description: For V(forget) and V(prune), only show what would be removed.
    type: bool
    default: true
  permanent_tag:
    description: Tag of snapshots kept for ever (always added to the policy's C(keep_tag)).
    type: str
    default: permanent
  permanent_dates:
    description: C(MM-DD) days; per year the newest snapshot up to each of them is tagged permanent.
    type: list
    elements: str
    default: ["12-31"]
  snapshots:
    description:
      - IDs (or unique prefixes) of further snapshots to tag permanent (V(tag_permanent)), each one of a snapshot of
        O(clients) on O(host). One that matches several fails the task before anything is tagged; one that matches
        none is not tagged, with a warning, and listed in RV(unmatched_snapshots).
    type: list
    elements: str
    default: []
  fiscal_utc_offset:
    description: UTC offset in which fiscal years are counted.
    type: str
    default: "+08:00"
  max_unused:
    description: restic prune C(--max-unused) (for example C(5%)); empty keeps restic's default.
    type: str
    default: ""
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: In check mode nothing is tagged, forgotten or pruned; what would be is reported.
"""

EXAMPLES = r"""
- name: Show what the policy would forget, per client
  ledgerguard.recovery.backup_retention:
    operation: forget
    clients: [c001, c002]
    host: books-hz01
    policy: {keep_daily: 14, keep_monthly: 24, keep_yearly: 31, keep_tag: [permanent]}
    # the lint passes only when the permanent classes name the tag that keeps them (docs/backup.md)
    record_classes: "{{ backup_verify_record_classes }}"
    dry_run: true
"""

RETURN = r"""
unmatched_snapshots:
  description: The O(snapshots) that match no snapshot of O(clients) on O(host), so were not tagged (V(tag_permanent)).
  returned: when O(operation=tag_permanent)
  type: list
  elements: str
  sample: [0badc0de]
clients:
  description:
    - Per client - C(client), and for V(tag_permanent) C(tagged) (snapshots newly tagged, with C(year) and C(date)),
      for V(forget) C(keep) and C(remove) (snapshots, each C(id), C(short_id), C(time), C(tags); a kept one also
      C(reasons), the policy rules that keep it as restic words them, for example C(daily snapshot) or
      C(has tags [permanent])) and C(removed) (true when they were really forgotten).
  returned: success
  type: list
  elements: dict
lint:
  description: The retention lint of O(policy) (C(status), C(reason), C(classes)); V(forget) only.
  returned: when O(operation=forget)
  type: dict
options:
  description: The restic forget options applied.
  returned: when O(operation=forget)
  type: list
  elements: str
orphan_manifests:
  description:
    - Manifest snapshots forgotten because their data snapshot is gone. Looked for only when forgetting for real - in
      a dry run (O(dry_run)) or in check mode it is always empty, even when such snapshots exist. Also empty when
      no O(policy) is given.
  returned: when O(operation=forget)
  type: list
  elements: str
prune:
  description: restic prune's output (last lines) for V(prune).
  returned: when O(operation=prune)
  type: str
"""

import json  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_policy import (  # noqa: E402
    MANIFEST_FOR,
    MANIFEST_TAG,
    client_snapshots,
    forget_options,
    forget_summary,
    orphan_manifests,
    parse_offset,
    year_end_snapshots,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.retention import lint_policy  # noqa: E402


def raw_snapshots(restic) -> list[dict]:
    return json.loads(restic.must("snapshots", "--json", action="list the snapshots").stdout or "[]") or []


def tag_permanent(module, restic) -> dict:
    p = module.params
    tz = parse_offset(p["fiscal_utc_offset"])
    snaps = raw_snapshots(restic)
    now = datetime.now(timezone.utc)  # noqa: UP017
    out, changed = [], False
    wanted_extra = [s.lower() for s in p["snapshots"]]
    known = {s["id"] for s in snaps}  # the IDs before this run tagged anything
    theirs = [s for cid in p["clients"] for s in client_snapshots(snaps, cid, p["host"])]
    matches = {w: len([s for s in theirs if s["id"].startswith(w)]) for w in wanted_extra}
    where = f"of clients {', '.join(p['clients'])} on host {p['host']}"
    several = [w for w, n in matches.items() if n > 1]
    if several:
        module.fail_json(
            msg=f"snapshots: {', '.join(several)} match several snapshots {where}; give each one's full ID from "
            "'restic snapshots'. Nothing was tagged."
        )
    # a named snapshot that is not tagged must not look as if it were kept for ever (another client's, when the run
    # selects some clients, is tagged by the run that selects it)
    unmatched = [w for w, n in matches.items() if n == 0]
    for w in unmatched:
        module.warn(f"snapshots: {w} matches no snapshot {where}: not tagged {p['permanent_tag']} by this run")
    for cid in p["clients"]:
        mine = client_snapshots(snaps, cid, p["host"])
        picks = []
        for paths in sorted({tuple(s.get("paths") or []) for s in mine}):  # files and each database dump apart
            group = [s for s in mine if tuple(s.get("paths") or []) == paths]
            picks += year_end_snapshots(group, now, p["permanent_dates"], tz)
        for extra in wanted_extra:
            hit = [s for s in mine if s["id"].startswith(extra)]
            if len(hit) == 1:
                picks.append({"id": hit[0]["id"], "time": hit[0]["time"], "year": None, "date": "named"})
        by_id = {s["id"]: s for s in mine}
        todo = [x for x in picks if p["permanent_tag"] not in (by_id[x["id"]].get("tags") or [])]
        tagged = []
        for pick in todo:
            tagged.append(pick)
            if module.check_mode:
                continue
            restic.must("tag", "--add", p["permanent_tag"], "--", pick["id"], action="tag a year-end snapshot")
            changed = True
            fresh = raw_snapshots(restic)
            # restic tag writes a new snapshot whose "original" is the first ID it ever had (a snapshot tagged or
            # copied before keeps that one): the new snapshot is the one with that original that did not exist before
            first = by_id[pick["id"]].get("original") or pick["id"]
            new_id = next((s["id"] for s in fresh if s.get("original") == first and s["id"] not in known), "")
            pick["new_id"] = new_id
            names = {MANIFEST_FOR + pick["id"], MANIFEST_FOR + first}  # its manifest names it by either ID
            for manifest in (s for s in fresh if names.intersection(s.get("tags") or [])):
                if new_id:
                    restic.must(
                        "tag",
                        "--set",
                        MANIFEST_TAG,
                        "--set",
                        MANIFEST_FOR + new_id,
                        "--set",
                        p["permanent_tag"],
                        "--",
                        manifest["id"],
                        action="re-tag the manifest of a year-end snapshot",
                    )
        out.append({"client": cid, "tagged": tagged})
    return {
        "changed": changed or (module.check_mode and any(c["tagged"] for c in out)),
        "clients": out,
        "unmatched_snapshots": unmatched,
    }


def forget(module, restic) -> dict:
    p = module.params
    lint = lint_policy(p["policy"], p["record_classes"] or None)
    if p["policy"] is None:
        return {"changed": False, "clients": [], "lint": lint, "options": [], "orphan_manifests": []}
    options = forget_options(p["policy"], p["permanent_tag"])
    if lint["status"] == "FAIL" and p["require_compliant"]:
        failing = "; ".join(f"{c['id']}: {c['reason']}" for c in lint["classes"] if c["status"] == "FAIL")
        raise ValueError(
            f"the retention policy fails the 会计档案管理办法 lint ({lint['reason']}: {failing}); nothing was "
            "forgotten. Fix the policy (the same one backup_verify lints) or set require_compliant=false."
        )
    apply = not (p["dry_run"] or module.check_mode)
    out, changed = [], False
    for cid in p["clients"]:
        scope = ["--json", f"--tag={cid}", f"--host={p['host']}", "--group-by=host,paths", *options]
        res = restic.must("forget", "--dry-run", *scope, action=f"dry-run forget for client {cid}")
        summary = forget_summary(json.loads(res.stdout or "[]"))
        entry = {"client": cid, **summary, "removed": False}
        if apply and summary["remove"]:
            restic.must("forget", *scope, action=f"forget for client {cid}")
            entry["removed"] = True
            changed = True
        out.append(entry)
    orphans = orphan_manifests(raw_snapshots(restic), p["host"]) if apply else []
    if orphans:
        restic.must("forget", "--", *[s["id"] for s in orphans], action="forget orphaned manifest snapshots")
    return {
        "changed": changed or (module.check_mode and any(c["remove"] for c in out)),
        "clients": out,
        "lint": lint,
        "options": options,
        "orphan_manifests": [s["id"] for s in orphans],
    }


def prune(module, restic) -> dict:
    p = module.params
    opts = [f"--max-unused={p['max_unused']}"] if p["max_unused"] else []
    if p["dry_run"] or module.check_mode:
        opts.append("--dry-run")
    res = restic.must("prune", *opts, action="prune the repository")
    text = (res.stdout + "\n" + res.stderr).strip().splitlines()
    return {"changed": "--dry-run" not in opts, "clients": [], "prune": "\n".join(text[-20:])}


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        operation={"type": "str", "choices": ["tag_permanent", "forget", "prune"], "required": True},
        clients={"type": "list", "elements": "str", "default": []},
        host={"type": "str", "default": ""},
        policy={"type": "dict"},
        record_classes={"type": "list", "elements": "dict", "default": []},
        require_compliant={"type": "bool", "default": True},
        dry_run={"type": "bool", "default": True},
        permanent_tag={"type": "str", "default": "permanent"},
        permanent_dates={"type": "list", "elements": "str", "default": ["12-31"]},
        snapshots={"type": "list", "elements": "str", "default": []},
        fiscal_utc_offset={"type": "str", "default": "+08:00"},
        max_unused={"type": "str", "default": ""},
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    p = module.params
    if p["operation"] in ("tag_permanent", "forget") and (not p["clients"] or not p["host"]):
        module.fail_json(msg=f"operation={p['operation']} needs clients (client IDs) and host (the snapshots' host)")
    ops = {"tag_permanent": tag_permanent, "forget": forget, "prune": prune}
    run_module(module, lambda restic: ops[p["operation"]](module, restic))


if __name__ == "__main__":
    main()
