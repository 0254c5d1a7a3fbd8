# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.pre_restore_snapshot: the damaged state of an incident's affected paths kept
in restic once, in one task (before: a probe task, two includes for the two password sources, a snapshot lookup and
the backup). On the host, in order: one shell command that says which paths exist (no module, no per-path stat),
restic_snapshots for this incident's pre-restore snapshot of an earlier run, and restic_backup of the existing paths
when there is none. The connection is resolved on the controller as for every restic module
(plugin_utils/restic_action.py); ``password_file`` is the forensic repository's controller password file, used in
place of ledgerguard_password_file.

With ``bundle`` the same task then collects the host's state bundle as ledgerguard.recovery.state_capture does (the
module on the host, the bundle filed in the evidence folder on the controller: plugin_utils/evidence_files.py
``capture_state``), hashing the paths that exist and noting the snapshot; ``backup: false`` collects only the bundle.
With ``publish`` the snapshot's fields are also the result's own, so the result registered as ``state_snapshot_result``
is the state_snapshot role's result (registered, also when the bundle fails after the backup; not a fact, which a
persistent fact cache would carry into a later run): the role's backup, its result and its bundle take one task where
they took three (issue 19).

Documentation: plugins/modules/pre_restore_snapshot.py.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import ResticActionBase

COLLECTION = "ledgerguard.recovery."
SPEC: dict[str, Any] = {
    "paths": {"type": "list", "elements": "path", "required": True},
    "incident": {"type": "str", "required": True},
    "tags": {"type": "list", "elements": "str", "default": []},
    "host": {"type": "str", "required": True},
    "repository": {"type": "str"},
    "password_file": {"type": "path"},
    "backup": {"type": "bool", "default": True},
    "bundle": {
        "type": "dict",
        "options": {
            "dest": {"type": "path", "required": True},
            "archive": {"type": "path", "required": True},
            "evidence_dir": {"type": "path", "required": True},
            "journal_lines": {"type": "int", "default": 2000},
            "manifest": {"type": "bool", "default": True},
        },
    },
    "publish": {"type": "bool", "default": False},
}
# Prints the index of each argument that exists (a broken symlink counts, as stat without follow says).
PROBE = 'i=0; for p; do if [ -e "$p" ] || [ -L "$p" ]; then echo $i; fi; i=$((i+1)); done'


def probe_command(paths: list[str]) -> str:
    """The shell command that prints the index of every path of ``paths`` that exists."""
    return " ".join(shlex.quote(a) for a in ["/bin/sh", "-c", PROBE, "pre_restore_snapshot", *paths])


def existing_paths(paths: list[str], stdout: str) -> list[str]:
    """The paths whose index the probe printed, in their given order."""
    found = {int(line) for line in stdout.split() if line.isdigit()}
    return [p for i, p in enumerate(paths) if i in found]


def kept_earlier(existing: list[str], earlier: list[dict]) -> dict[str, str]:
    """The existing paths an earlier run's pre-restore snapshot already holds: {path: that snapshot's short ID}
    (the newest holding it). Only these may be reused; the damaged state of any other path is backed up now."""
    held: dict[str, str] = {}
    for snap in earlier:
        for path in snap.get("paths") or []:
            held[path] = snap.get("short_id") or str(snap.get("id", ""))[:8]
    return {p: held[p] for p in existing if p in held}


def published(args: dict[str, Any], existing: list[str], earlier: list[dict], backup: dict | None) -> dict[str, Any]:
    """The role's state_snapshot_result: the snapshot made now, else the newest of an earlier run, else none; with
    ``paths_in_earlier`` when an earlier run's snapshot holds some of the paths and this one the others."""
    newest = earlier[-1] if earlier else {}
    made = backup or {}
    out = {
        "snapshot_id": made.get("snapshot_id", newest.get("id", "")),
        "short_id": made.get("short_id", newest.get("short_id", "")),
        "reused": backup is None and bool(earlier),
        "paths": existing,
        "missing_paths": [p for p in args["paths"] if p not in existing],
        "repository": "forensic" if args["repository"] else "same",
        "tags": [args["incident"], "pre-restore", *args["tags"]],
    }
    before = kept_earlier(existing, earlier)
    if backup is not None and before:
        out["paths_in_earlier"] = before
    return out


class ActionModule(ResticActionBase):
    _VALID_ARGS = frozenset(SPEC)

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super(ResticActionBase, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=SPEC)
        snapshot = None
        if args["backup"]:
            result.update(self._backup(args, task_vars))
            if result.get("failed"):
                return result
            snapshot = result["snapshot"]
            if args["publish"]:
                result.update(snapshot)
        if args["bundle"]:
            bundle = self._bundle(args["bundle"], snapshot, task_vars)
            failed = bundle.pop("failed", False)
            result.update(
                changed=bool(result.get("changed")) or bool(bundle.get("changed")),
                bundle={k: v for k, v in bundle.items() if k not in ("invocation", "changed", "msg")},
            )
            if failed or "msg" in bundle:
                result.update(msg=bundle.get("msg", "state_capture failed"))
            if failed:
                # the snapshot stays in the (registered) result; the message names it too, for the person reading it
                short_id = (snapshot or {}).get("short_id")
                kept = f"{result['msg'].rstrip('.')}. The damaged state is kept in snapshot {short_id}."
                result.update(failed=True, step="state_capture", msg=kept if short_id else result["msg"])
                return result
        return result

    def _bundle(self, bundle: dict[str, Any], snapshot: dict[str, Any] | None, task_vars: dict[str, Any]) -> dict:
        """The state_capture module on the host (the paths that exist hashed when ``manifest``, the snapshot noted),
        the bundle filed in the evidence folder."""
        module_args = {
            "dest": bundle["dest"],
            "journal_lines": bundle["journal_lines"],
            "manifest_paths": list((snapshot or {}).get("paths") or []) if bundle["manifest"] else [],
            "record": snapshot or {},
            "archive": bundle["archive"],
        }

        def execute(args: dict[str, Any]) -> dict[str, Any]:
            return self._execute_module(COLLECTION + "state_capture", module_args=args, task_vars=task_vars)

        return ef.capture_state(
            execute, module_args, bundle["evidence_dir"], self._task.check_mode, owner="pre_restore_snapshot"
        )

    def _backup(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """The paths that exist, this incident's pre-restore snapshot of an earlier run, else a backup of them."""
        paths = list(args["paths"])
        probe = self._low_level_execute_command(probe_command(paths), sudoable=True)
        if probe.get("rc") != 0:
            msg = (
                f"pre_restore_snapshot: could not see which affected paths exist on the host (rc {probe.get('rc')}: "
                f"{(probe.get('stderr') or '').strip()[-300:]}). Check the connection and run again."
            )
            return {"failed": True, "msg": msg}
        existing = existing_paths(paths, probe.get("stdout") or "")
        if args["password_file"]:
            task_vars = {**task_vars, "ledgerguard_password_file": args["password_file"]}
        connection = {"repository": args["repository"]} if args["repository"] else {}
        tags = [args["incident"], "pre-restore"]
        try:
            lookup = self._restic_module_args({**connection, "hosts": [args["host"]], "tags": tags}, task_vars)
        except AnsibleActionFail as exc:
            return {"failed": True, "msg": exc.message}
        earlier = self._execute_module(COLLECTION + "restic_snapshots", module_args=lookup, task_vars=task_vars)
        if earlier.get("failed"):
            return {"failed": True, "msg": earlier.get("msg", "restic_snapshots failed"), "step": "restic_snapshots"}
        snapshots = earlier.get("snapshots") or []
        backup = None
        # an earlier run kept the damaged state of the paths it saw; a path it did not see is backed up now
        todo = [p for p in existing if p not in kept_earlier(existing, snapshots)]
        if todo:
            extra = {"paths": todo, "tags": [*tags, *args["tags"]], "host": args["host"]}
            module_args = self._restic_module_args({**connection, **extra}, task_vars)
            backup = self._execute_module(COLLECTION + "restic_backup", module_args=module_args, task_vars=task_vars)
            if backup.get("failed"):
                return {"failed": True, "msg": backup.get("msg", "restic_backup failed"), "step": "restic_backup"}
        return {
            "changed": bool(backup and backup.get("changed")),
            "snapshot": published(args, existing, snapshots, backup),
            "backup": {k: v for k, v in (backup or {}).items() if k not in ("invocation", "changed", "failed")},
        }
