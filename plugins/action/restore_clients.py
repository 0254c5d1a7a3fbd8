# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.restore_clients: the per-client restore of one host, in one task.

Per host, for every client of the incident in the incident queue's order (nearest filing deadline first, then
priority, then id: plugin_utils/filing.py): choose the restore point (snapshot_damage), restore it
into a fresh staging folder of this run (restic_restore; clients restored from the same snapshot into the same work
folder share one restic restore), compare the restored tree with the snapshot's listing and its backup-time manifest
(file_manifest), check the books in staging (ledger_verify), re-scan the frozen folders for writers right before the
client's swap (write_freeze's rescan, run by restore_swap itself), swap (restore_swap, whose run records the swap right
after it), check the books in place (ledger_verify) and record the finished client. One client's failure does not stop
the others; its entry names the step that failed (the names the role's YAML tasks had) and why. In check mode only the
plan is made.

Module runs per host, not per client (each run pays Ansible's payload start-up, issue 19): the assessment of every
client is one snapshot_damage run (clients=), the hashing one file_manifest run (trees=), the book checks one
ledger_verify run each, the finished markers one run, and the swaps one restore_swap run (clients=): inside it, client
by client, the rescan for writers right before that client's swap (rescan=, module_utils/writers.rescan, the code of
write_freeze state=rescan), then the swap and its record.

The decisions (messages, batching, result entries) live in plugin_utils/restore_clients.py; this file runs modules.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import time
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.filter.restore_point import clean_restore_point
from ansible_collections.ledgerguard.recovery.plugins.module_utils.backup_manifest import manifest_tags
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import filing
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import freeze_record as fr
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import restore_clients as rc
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import ResticActionBase
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restore_clients import Step, StepFailed

COLLECTION = "ledgerguard.recovery."

ARGUMENT_SPEC = {
    "clients": {"type": "list", "elements": "dict", "required": True},
    "loss_started": {"type": "str", "default": ""},
    "cutoff": {"type": "str", "required": True},
    "detected_at": {"type": "str", "default": ""},
    "filing_calendar": {"type": "str", "default": ""},
    "pins": {"type": "dict", "default": {}},
    "snapshot_host": {"type": "str", "required": True},
    "exclude_tags": {"type": "list", "elements": "str", "default": ["pre-restore"]},
    "unusable": {"type": "list", "elements": "dict", "default": []},
    "detect_damage": {"type": "bool", "default": True},
    "damage_mode": {"type": "str", "default": "until_clean", "choices": ["until_clean", "all"]},
    "damage_thresholds": {"type": "dict", "default": {}},
    "work_name": {"type": "str", "required": True},
    "marker_dir": {"type": "str", "required": True},
    "verify": {"type": "bool", "default": True},
    "swap": {"type": "bool", "default": True},
    "ledger_verify": {"type": "bool", "default": True},
    "ledger_fail_on_findings": {"type": "bool", "default": True},
    "ledger_check_before_swap": {"type": "bool", "default": True},
    "fallback_on_damaged_repository": {"type": "bool", "default": True},
    "backup_manifest": {"type": "bool", "default": True},
    "backup_manifest_max_list": {"type": "int", "default": 20},
    "batch": {"type": "bool", "default": True},
    "rescan": {
        "type": "dict",
        "default": {},
        "options": {
            "enabled": {"type": "bool", "default": False},
            "incident": {"type": "str", "default": ""},
            "state_dir": {"type": "str", "default": "/var/lib/ledgerguard"},
            "containment": {"type": "str", "default": "stop"},
            "allow": {"type": "list", "elements": "str", "default": []},
            "evidence": {"type": "bool", "default": True},
            "evidence_dir": {"type": "str", "default": ""},
        },
    },
}


class ActionModule(ResticActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    # -- running one module ------------------------------------------------------------------------------------------
    def _module(self, name: str, args: dict[str, Any], step: str, clients: list[str], restic: bool = False):
        """Run one module; record the step (for the timeline) and return its result."""
        begun = time.monotonic()
        try:
            if restic:
                args = self._restic_module_args(dict(args), self._vars)
            res = self._execute_module(module_name=name, module_args=args, task_vars=self._vars)
        except AnsibleActionFail as exc:
            res = {"failed": True, "msg": exc.message}
        status = "failed" if res.get("failed") else "skipped" if res.get("skipped") else "ok"
        self._changed = self._changed or bool(res.get("changed"))
        record = {
            "task": step,
            "clients": clients,
            "status": status,
            "changed": bool(res.get("changed")),
            "duration": round(time.monotonic() - begun, 3),
        }
        if status == "failed":
            record["msg"] = str(res.get("msg", ""))[:500]
        self._steps.append(record)
        return res

    def _must(self, name, args, step, clients, restic=False):
        res = self._module(name, args, step, clients, restic)
        if res.get("failed"):
            raise StepFailed(step, str(res.get("msg") or "failed"))
        return res

    # -- the steps ---------------------------------------------------------------------------------------------------
    def _damage_args(self) -> dict:
        """snapshot_damage's options shared by every client of the host."""
        a = self._args
        return {
            "host": a["snapshot_host"],
            "exclude_tags": a["exclude_tags"],
            "unusable": a["unusable"],
            "mode": a["damage_mode"] if a["detect_damage"] else "until_clean",
            "thresholds": a["damage_thresholds"] if a["detect_damage"] else rc.NO_DAMAGE_THRESHOLDS,
            "validate": a["detect_damage"],
        }

    def _damage_client(self, client: dict, before: str | None = None) -> dict:
        """snapshot_damage's options of one client: its paths, books and pins, and its pinned snapshot or cutoff."""
        a, cid = self._args, client["id"]
        pin = "" if before else str(a["pins"].get(cid) or "")
        args = {
            "paths": client["declared_paths"],
            "ledger": client.get("ledger") or {},
            "ledger_paths": rc.ledger_paths(client),
            # the client's snapshot_path pin: without it a layout the mapping cannot work out (a --stdin snapshot) is
            # never the client's restore point, although the restore below would use the pin (issue 17)
            "snapshot_paths": rc.snapshot_pins(client),
        }
        if before:
            args["before"] = before
        elif pin:
            args["snapshot"] = pin
        else:
            args["before"] = a["cutoff"]
        return args

    def _assess(self, client: dict, before: str | None = None, step: str = "") -> dict:
        """snapshot_damage for one client, then the restore point (pin, loss start) as clean_restore_point picks it."""
        a, cid = self._args, client["id"]
        pin = "" if before else str(a["pins"].get(cid) or "")
        args = {**self._damage_args(), **self._damage_client(client, before)}
        step = step or Step.ASSESS.format(cid=cid)
        damage = self._must(COLLECTION + "snapshot_damage", args, step, [cid], restic=True)
        return clean_restore_point(damage.get("snapshots") or [], a["loss_started"], pin)

    def _assess_all(self, clients: list[dict]) -> dict[str, dict | StepFailed]:
        """snapshot_damage for all the clients in ONE module run (snapshot_damage clients=: one snapshot list, one
        listing per snapshot and one diff shared by the clients), then each client's restore point as _assess picks
        it. {client id: restore point, or StepFailed under the client's own step name}."""
        a, out = self._args, {}
        if not clients:
            return out
        ids = [c["id"] for c in clients]
        payload = [{"id": c["id"], **self._damage_client(c)} for c in clients]
        args = {**self._damage_args(), "clients": payload}
        if not self._task.check_mode:
            args["listing_dir"] = self._listing_dir()
        res = self._module(
            COLLECTION + "snapshot_damage",
            args,
            Step.ASSESS.format(cid=",".join(ids)),
            ids,
            restic=True,
        )
        if not res.get("failed") and isinstance(res.get("manifest_tags"), list):
            self._listed_manifests = {str(t) for t in res["manifest_tags"]}
        for client in clients:
            cid = client["id"]
            got = (res.get("clients") or {}).get(cid) if not res.get("failed") else None
            if got is None or got.get("failed"):
                msg = (got or {}).get("msg") if got else res.get("msg")
                out[cid] = StepFailed(Step.ASSESS.format(cid=cid), str(msg or "failed"))
                continue
            pin = str(a["pins"].get(cid) or "")
            out[cid] = clean_restore_point(got.get("snapshots") or [], a["loss_started"], pin)
        return out

    def _listing_dir(self) -> str:
        """Where snapshot_damage keeps each listing it made for restic_restore (their listing_dir): the listing of a
        snapshot named by its full ID never changes, so the restore does not list it again (issue 19). A folder of
        this incident's restore state (root's, 0700), never a client folder."""
        return f"{self._args['marker_dir'].rstrip('/')}/listings"

    def _work_dir(self, work: str, subdir: str, ids: list[str], step: str = Step.WORK_DIR) -> None:
        self._must(COLLECTION + "work_dir", {"path": work, "subdirs": [subdir] if subdir else []}, step, ids)

    def _restic_restore(self, snapshot: str, staging: str, clients: list[dict], step: str) -> dict:
        include = [p for c in clients for p in c["restore_paths"]]
        pins = rc.snapshot_pins(clients[0]) if len(clients) == 1 else {}
        args = {
            "snapshot": snapshot,
            "target": staging,
            "include_paths": include,
            "verify": self._args["verify"],
            # Whatever the snapshot's layout, the client's paths land at <staging>/<live path> (issue 17).
            "landing": "live",
            "snapshot_paths": pins,
            "listing_dir": self._listing_dir(),
        }
        return self._module(COLLECTION + "restic_restore", args, step, [c["id"] for c in clients], restic=True)

    def _ledger(self, clients: list[dict], staging: dict[str, str] | None, fail_on_findings: bool, step: str):
        """ledger_verify for several clients in one call; on a failure of the call, each client alone (one client's
        bad declaration does not fail the others). Returns {client id: per-client entry or StepFailed}."""
        out: dict[str, Any] = {}
        if not clients:
            return out

        def payload(c):
            return {**c, "restored_under": staging[c["id"]]} if staging else c

        ids = [c["id"] for c in clients]
        res = self._module(
            COLLECTION + "ledger_verify",
            {"clients": [payload(c) for c in clients], "fail_on_findings": False},
            step.format(cid=",".join(ids)),
            ids,
        )
        if res.get("failed") and len(clients) > 1:
            for c in clients:
                out.update(self._ledger([c], staging, fail_on_findings, step))
            return out
        for c in clients:
            name = step.format(cid=c["id"])
            if res.get("failed"):
                out[c["id"]] = StepFailed(name, str(res.get("msg") or "failed"))
                continue
            entry = (res.get("clients") or {}).get(c["id"]) or {}
            if fail_on_findings and int(entry.get("findings_count") or 0) > 0:
                # The module's own failure message, as a one-client run with fail_on_findings names the findings.
                single = self._module(
                    COLLECTION + "ledger_verify", {"clients": [payload(c)], "fail_on_findings": True}, name, [c["id"]]
                )
                if single.get("failed"):
                    out[c["id"]] = StepFailed(name, str(single.get("msg") or "failed"))
                    continue
                entry = (single.get("clients") or {}).get(c["id"]) or entry
            out[c["id"]] = entry
        return out

    def _write_markers(self, markers: dict[str, dict], step: str, ids: list[str]) -> dict:
        args = {
            "argv": ["/bin/sh", "-c", rc.markers_script(), "restore_clients"],
            "stdin": rc.markers_stdin(markers),
        }
        return self._module("ansible.legacy.command", args, step, ids)

    def _rescan_options(self) -> dict:
        """write_freeze's rescan options, as the write_freeze role's rescan entry point gives them."""
        r = self._args["rescan"]
        return {k: r[k] for k in ("incident", "state_dir", "containment", "allow")}

    def _rescan(self, cid: str) -> dict:
        """write_freeze state=rescan on its own (no swap follows: swap=false), label before_swap."""
        res = self._module(
            COLLECTION + "write_freeze", {**self._rescan_options(), "state": "rescan"}, Step.RESCAN, [cid]
        )
        return self._record_rescan(res)

    def _record_rescan(self, res: dict) -> dict:
        """A before_swap rescan's result (write_freeze's, or the one restore_swap ran right before a client's swap):
        kept for write_freeze_rescans, recorded in the evidence when it found writers, StepFailed when it failed."""
        scan = {k: v for k, v in res.items() if not k.startswith("_ansible")}
        scan["label"] = "before_swap"
        self._rescans.append(scan)
        if self._args["rescan"]["evidence"] and res.get("writers") and not self._task.check_mode:
            self._rescan_evidence(res)
        if res.get("failed"):
            raise StepFailed(Step.RESCAN_STOP, str(res.get("msg") or "failed"))
        return res

    def _rescan_evidence(self, res: dict) -> None:
        """The rescan's record in the incident's evidence folder on the controller, as write_freeze's action writes
        its rescan records (plugin_utils/freeze_record: the same fields; folder 0700, file 0600, atomic)."""
        r = self._args["rescan"]
        folder = os.path.join(r["evidence_dir"], r["incident"], "hosts", self._host)
        path = os.path.join(folder, fr.record_name("rescan", "before_swap"))
        ef.write_private(path, ef.nice_json(fr.record(self._host, r["incident"], res)))

    # -- the run -----------------------------------------------------------------------------------------------------
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = ActionBase.run(self, tmp, task_vars)
        del tmp
        valid, args = self.validate_argument_spec(ARGUMENT_SPEC)
        del valid
        self._args, self._vars = args, task_vars
        self._host = str(task_vars.get("inventory_hostname"))
        self._steps: list[dict] = []
        self._rescans: list[dict] = []
        self._changed = False
        self._markers_failed: StepFailed | None = None
        # the manifest tags in snapshot_damage's snapshot list (its manifest_tags), None until it has run
        self._listed_manifests: set[str] | None = None
        for client in args["clients"]:
            for key in ("id", "name", "declared_paths", "restore_paths"):
                if not client.get(key):
                    raise AnsibleActionFail(
                        f"restore_clients: client {client.get('id', '?')} has no {key}; the clients come from the "
                        "incident's selection (ledgerguard.recovery.incident validate), which sets it."
                    )
        args["clients"] = self._order(args["clients"])
        earlier = self._earlier_results()
        if self._task.check_mode:
            entries = self._plan(earlier)
        else:
            entries = self._restore(earlier)
        previous = self._templar.template(task_vars.get("write_freeze_rescans") or [])
        result.update(
            changed=self._changed,
            clients=entries,
            rescans=list(previous) + self._rescans,
            ledgerguard_steps=self._steps,
            msg=", ".join(f"{e['id']} {e['status']}" for e in entries) or "no clients",
        )
        return result

    def _order(self, clients: list[dict]) -> list[dict]:
        """The clients in the incident queue's order (filing.order_key: the same on every host), each annotated with
        its next filing deadline. A calendar that cannot be read leaves the priority order and says why per client."""
        a = self._args
        after = a["detected_at"] or a["cutoff"] or fr.utc_now()
        try:
            calendar = filing.load_calendar(a["filing_calendar"] or None)
        except filing.CalendarError as exc:
            calendar = {"deadlines": []}
            clients = [{**c, "filing_warnings": [f"restore order by priority only: {exc}"]} for c in clients]
        try:
            return filing.order_clients(clients, calendar, after)
        except ValueError as exc:
            raise AnsibleActionFail(f"restore_clients: detected_at / cutoff {after!r}: {exc}") from exc

    def _earlier_results(self) -> dict[str, dict]:
        """The finished clients of an earlier run of this incident (<marker_dir>/<client>.done.json). The marker folder
        is created (root's own, 0700; not in a dry run) and its markers read in ONE work_dir run (issue 19: it was a
        file, a find and a slurp per marker)."""
        a = self._args
        ids = [c["id"] for c in a["clients"]]
        res = self._module(
            COLLECTION + "work_dir",
            {"path": a["marker_dir"], "parents": True, "read": ["*.done.json"]},
            Step.MARKERS,
            ids,
        )
        if res.get("failed"):
            if not self._task.check_mode:
                self._markers_failed = StepFailed(Step.MARKERS, str(res.get("msg") or "failed"))
            return {}
        files = res.get("files") or {}
        out = {}
        for cid in ids:
            text = files.get(os.path.basename(rc.marker_path(a["marker_dir"], cid, "done")))
            if text:
                out[cid] = json.loads(text)
        return out

    # -- dry run -----------------------------------------------------------------------------------------------------
    def _plan(self, earlier: dict[str, dict]) -> list[dict]:
        a, checked = self._args, {}
        outcome: dict[str, dict | StepFailed] = {}
        todo = []
        for client in a["clients"]:
            cid = client["id"]
            work = rc.work_folder(client, a["work_name"])
            if cid in earlier:
                continue
            # In check mode nothing is created: a folder or link someone else planted is found (once per folder).
            if work not in checked:
                res = self._module(COLLECTION + "work_dir", {"path": work}, Step.WORK_DIR_PLAN.format(cid=cid), [cid])
                checked[work] = res
            if checked[work].get("failed"):
                msg = str(checked[work].get("msg") or "failed")
                outcome[cid] = StepFailed(Step.WORK_DIR_PLAN.format(cid=cid), msg)
            else:
                todo.append(client)
        outcome.update(self._assess_all(todo))
        entries = []
        for client in a["clients"]:
            cid = client["id"]
            work = rc.work_folder(client, a["work_name"])
            quarantine = f"{work}/quarantine/{cid}"
            if cid in earlier:
                e = earlier[cid]
                entries.append(
                    rc.plan_entry(
                        client,
                        self._host,
                        work,
                        quarantine,
                        status="planned",
                        action="keep the earlier run's restore",
                        snapshot=e.get("snapshot") or {},
                        why=e.get("why") or "",
                        skipped=e.get("skipped") or [],
                        warnings=[],
                    )
                )
            elif isinstance(outcome[cid], StepFailed):
                exc = outcome[cid]
                entries.append(
                    rc.plan_entry(
                        client,
                        self._host,
                        work,
                        quarantine,
                        status="failed",
                        action="none: the plan failed",
                        failed_task=exc.task,
                        msg=exc.msg,
                        snapshot={},
                        skipped=[],
                        why="",
                        warnings=[],
                    )
                )
            else:
                entries.append(rc.planned_from_point(client, self._host, work, quarantine, outcome[cid]))
        return entries

    # -- real run ----------------------------------------------------------------------------------------------------
    def _restore(self, earlier: dict[str, dict]) -> list[dict]:
        a = self._args
        run_id = f"{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}-{secrets.randbelow(16777216):06x}"
        states: dict[str, dict] = {}
        entries: dict[str, dict] = {}
        failed: dict[str, StepFailed] = {}
        by_id = {c["id"]: c for c in a["clients"]}

        def fail(cid: str, exc: StepFailed) -> None:
            failed.setdefault(cid, exc)

        def alive() -> list[dict]:
            return [c for c in a["clients"] if c["id"] in states and c["id"] not in failed and c["id"] not in entries]

        for client in a["clients"]:
            cid = client["id"]
            work = rc.work_folder(client, a["work_name"])
            states[cid] = {
                "started": fr.utc_now(),
                "started_epoch": time.time(),
                "work": work,
                "staging": f"{work}/staging/{cid}/{run_id}",
                "quarantine": f"{work}/quarantine/{cid}",
            }
            if self._markers_failed:
                fail(cid, self._markers_failed)
            elif cid in earlier:
                entries[cid] = {**earlier[cid], "resumed": True}

        # Choose: each client's restore point (one snapshot_damage run for all the clients).
        points = self._assess_all(alive())
        for client in alive():
            cid, point = client["id"], points[client["id"]]
            if isinstance(point, StepFailed):
                fail(cid, point)
                continue
            states[cid]["point"] = point
            if not point.get("found"):
                fail(cid, StepFailed(Step.NO_POINT, rc.no_point_msg(client, self._host, point)))

        # Restore: one restic restore per snapshot and work folder (batched clients share a staging folder).
        groups: dict[tuple, list[dict]] = {}
        for client in alive():
            cid = client["id"]
            key = rc.batch_key(client, states[cid]["point"], a["work_name"], bool(a["pins"].get(cid)))
            if not a["batch"]:
                key = ("single", cid)
            groups.setdefault(key, []).append(client)
        for members in groups.values():
            self._restore_group(members, states, run_id, fail)

        # Compare: the restored tree (hashed for every client in one file_manifest run) against the snapshot's
        # listing and its backup-time manifest.
        hashed = self._hash_all(alive(), states)
        manifests = self._manifest_tags(alive(), states)
        for client in alive():
            try:
                got = hashed[client["id"]]
                if isinstance(got, StepFailed):
                    raise got
                states[client["id"]]["manifests"] = got
                self._compare(client, states[client["id"]], manifests)
            except StepFailed as exc:
                fail(client["id"], exc)

        # The books in staging, before anything live is touched.
        if a["ledger_check_before_swap"]:
            books = [c for c in alive() if rc.has_ledger(c)]
            checked = self._ledger(
                books, {c["id"]: states[c["id"]]["staging"] for c in books}, False, Step.LEDGER_STAGING
            )
            for client in books:
                cid, entry = client["id"], checked.get(client["id"])
                if isinstance(entry, StepFailed):
                    fail(cid, entry)
                elif entry and int(entry.get("findings_count") or 0) > 0:
                    short = states[cid]["point"]["chosen"].get("short_id")
                    msg = rc.ledger_staging_msg(client, self._host, short, states[cid]["staging"], entry)
                    fail(cid, StepFailed(Step.LEDGER_STAGING_STOP, msg))

        # Swap, each client right after its own rescan for writers (both in one restore_swap run); the swap is
        # recorded at once.
        self._swap_all(alive(), states, run_id, fail)

        # The books in place, after the swap.
        if a["ledger_verify"]:
            books = [c for c in alive() if rc.has_ledger(c)]
            checked = self._ledger(books, None, a["ledger_fail_on_findings"], Step.LEDGER)
            for client in books:
                entry = checked.get(client["id"])
                if isinstance(entry, StepFailed):
                    fail(client["id"], entry)
                elif entry is not None:
                    states[client["id"]]["ledger"] = {
                        "ok": bool(entry.get("ok")),
                        "findings_count": int(entry.get("findings_count") or 0),
                    }

        # Done: the results, and the markers a re-run keeps them by.
        finished = {}
        for client in alive():
            finished[client["id"]] = rc.ok_entry(client, self._host, states[client["id"]], fr.utc_now(), time.time())
        if a["swap"] and finished:
            markers = {rc.marker_path(a["marker_dir"], cid, "done"): e for cid, e in finished.items()}
            res = self._write_markers(markers, Step.DONE.format(cid=",".join(finished)), list(finished))
            if res.get("failed"):
                for cid in finished:
                    fail(cid, StepFailed(Step.DONE.format(cid=cid), str(res.get("msg") or "failed")))
        entries.update({cid: e for cid, e in finished.items() if cid not in failed})
        for cid, exc in failed.items():
            entries[cid] = rc.failed_entry(by_id[cid], self._host, states[cid], exc, fr.utc_now())
        return [entries[c["id"]] for c in a["clients"]]

    def _restore_group(self, members: list[dict], states: dict, run_id: str, fail) -> None:
        a = self._args
        ids = [c["id"] for c in members]
        first = states[ids[0]]
        chosen = first["point"]["chosen"]
        name = rc.staging_name(ids)
        staging = f"{first['work']}/staging/{name}/{run_id}"
        for cid in ids:
            states[cid]["staging"] = staging
        try:
            self._work_dir(first["work"], f"staging/{name}/{run_id}", ids)
        except StepFailed as exc:
            for cid in ids:
                fail(cid, exc)
            return
        res = self._restic_restore(chosen["id"], staging, members, Step.RESTORE.format(short=chosen.get("short_id")))
        if not res.get("failed"):
            for cid in ids:
                states[cid]["restic"] = res
                states[cid]["batch"] = len(ids) > 1
            return
        pinned = any(a["pins"].get(cid) for cid in ids)
        if res.get("error_kind") != "repository_damaged" or not a["fallback_on_damaged_repository"] or pinned:
            for cid in ids:
                fail(cid, StepFailed(Step.RESTORE_FAILED, str(res.get("msg") or "the restore failed")))
            return
        # Issue 7: the repository lost data the chosen snapshot needs: the newest older clean snapshot instead.
        self._module("ansible.legacy.file", {"path": staging, "state": "absent"}, Step.CLEAR_STAGING, ids)
        for client in members:
            try:
                self._fallback(client, states[client["id"]], chosen, str(res.get("msg") or ""), run_id)
            except StepFailed as exc:
                fail(client["id"], exc)

    def _fallback(self, client: dict, state: dict, chosen: dict, reason: str, run_id: str) -> None:
        cid = client["id"]
        unusable = {"id": chosen["id"], "short_id": chosen.get("short_id"), "time": chosen.get("time")}
        unusable["reasons"] = [reason]
        step = Step.ASSESS_OLDER.format(short=chosen.get("short_id"))
        older = self._assess(client, before=chosen.get("time"), step=step)
        point = rc.fallback_point(state["point"], older, unusable)
        state["point"] = point
        if not point.get("found"):
            raise StepFailed(Step.NO_OLDER, rc.no_older_msg(client, self._host, unusable, point))
        state["staging"] = f"{state['work']}/staging/{cid}/{run_id}"
        self._work_dir(state["work"], f"staging/{cid}/{run_id}", [cid], Step.WORK_DIR_OLDER)
        new = point["chosen"]
        res = self._restic_restore(
            new["id"], state["staging"], [client], Step.RESTORE_OLDER.format(short=new.get("short_id"))
        )
        if res.get("failed"):
            raise StepFailed(Step.RESTORE_OLDER.format(short=new.get("short_id")), str(res.get("msg") or "failed"))
        state["restic"] = res
        state["batch"] = False

    def _manifest_tags(self, clients: list[dict], states: dict) -> set[str] | None:
        """The tags of the repository's backup-time manifest snapshots (one listing for every client), or None when
        they cannot be listed (then each client's compare looks for its manifest itself). When snapshot_damage's
        snapshot list already showed the manifest of every client's restore point, that list answers (issue 19:
        one restic run and one module run fewer); a manifest it did not show may have been recorded since, so then
        the snapshots are listed again."""
        if not self._args["backup_manifest"] or not clients:
            return None
        listed = self._listed_manifests
        if listed is not None and all(
            manifest_tags(states[c["id"]]["point"]["chosen"]["id"])[1] in listed for c in clients
        ):
            return listed
        res = self._module(
            COLLECTION + "restic_snapshots",
            {"tags": [manifest_tags("0" * 64)[0]], "include_manifests": True},
            Step.MANIFESTS,
            [c["id"] for c in clients],
            restic=True,
        )
        if res.get("failed"):
            return None
        return {t for s in res.get("snapshots") or [] for t in s.get("tags") or []}

    def _hash_all(self, clients: list[dict], states: dict) -> dict[str, list[dict] | StepFailed]:
        """The manifest of each restored client path, every client's in ONE file_manifest run (trees=):
        {client id: its manifests in the order of its restore_paths, or StepFailed}."""
        trees, owner = [], []
        for client in clients:
            cid, state = client["id"], states[client["id"]]
            staging = state["staging"]
            for idx, path in enumerate(client["restore_paths"]):
                dest = (
                    f"{staging}.{cid}.restored-{idx}.jsonl" if state.get("batch") else f"{staging}.restored-{idx}.jsonl"
                )
                trees.append({"path": f"{staging}{path}", "dest": dest})
                owner.append(cid)
        out: dict[str, list[dict] | StepFailed] = {c["id"]: [] for c in clients}
        if not trees:
            return out
        res = self._module(
            COLLECTION + "file_manifest", {"trees": trees, "file_mode": "0600"}, Step.HASH, [c["id"] for c in clients]
        )
        got = res.get("trees") or []
        for index, cid in enumerate(owner):
            if isinstance(out[cid], StepFailed):
                continue
            tree = got[index] if not res.get("failed") and index < len(got) else {"failed": True, "msg": res.get("msg")}
            if tree.get("failed"):
                out[cid] = StepFailed(Step.HASH, str(tree.get("msg") or "failed"))
            else:
                out[cid].append(tree)
        return out

    def _compare(self, client: dict, state: dict, recorded: set[str] | None = None) -> None:
        """The client's restored tree (state["manifests"], from _hash_all) against the snapshot's listing and its
        backup-time manifest."""
        a, cid = self._args, client["id"]
        staging, chosen = state["staging"], state["point"]["chosen"]
        manifests = state["manifests"]
        if state.get("batch"):
            # One restic restore served several clients: the client's own counts are what its manifests hold.
            restic = dict(state["restic"])
            restic["files"] = sum(int(m.get("files") or 0) for m in manifests)
            restic["bytes"] = sum(int(m.get("total_bytes") or 0) for m in manifests)
            state["restic"] = restic
        if client["restore_paths"] == client["declared_paths"]:
            problem = rc.listing_problem(client, staging, chosen, manifests)
            if problem:
                raise StepFailed(Step.LISTING, problem)
        if a["backup_manifest"] and recorded is not None and manifest_tags(chosen["id"])[1] not in recorded:
            # No manifest was recorded for this snapshot: what compare_backup would say, without asking restic again.
            state["backup_manifest"] = {"found": False, "snapshot": chosen["id"], "compared": False}
        elif a["backup_manifest"]:
            res = self._must(
                COLLECTION + "file_manifest",
                {
                    "operation": "compare_backup",
                    "snapshot": chosen["id"],
                    "path": staging,
                    "include_paths": client["restore_paths"],
                    # The manifests just written: the restored files are not read a second time.
                    "candidates": [m.get("dest") for m in manifests],
                    "max_list": a["backup_manifest_max_list"],
                },
                Step.BACKUP_MANIFEST.format(cid=cid),
                [cid],
                restic=True,
            )
            state["backup_manifest"] = res.get("backup_manifest") or {"found": False, "compared": False}
            if res.get("problem"):
                msg = rc.backup_manifest_msg(client, self._host, str(res["problem"]), staging)
                raise StepFailed(Step.BACKUP_MANIFEST_STOP, msg)

    def _late_writers(self, client: dict, state: dict) -> None:
        """The writers every before_swap rescan of this run so far found under the client's folders (issue 14): a
        client whose folder one touched is not verified."""
        previous = self._templar.template(self._vars.get("write_freeze_rescans") or [])
        state["late_writers"] = rc.late_writers(list(previous) + self._rescans, client["restore_paths"])

    def _swap_all(self, clients: list[dict], states: dict, run_id: str, fail) -> None:
        """Every client's swap in ONE restore_swap run (clients=), in order, each right after its own write_freeze
        rescan inside that run (rescan=, issue 14): a writer that appeared since the freeze is contained right before
        the client's swap, and a client whose rescan fails is not swapped while the others go on."""
        a = self._args
        if not clients:
            return
        if not a["swap"]:
            if a["rescan"]["enabled"]:
                for client in clients:
                    try:
                        self._rescan(client["id"])
                        self._late_writers(client, states[client["id"]])
                    except StepFailed as exc:
                        fail(client["id"], exc)
            return
        payload = []
        for client in clients:
            cid, state = client["id"], states[client["id"]]
            chosen = state["point"]["chosen"]
            # From the moment of the swap the live tree holds this run's files, whatever fails later: restore_swap
            # records it (<marker_dir>/<client>.swapped.json) right after the client's swap, so a re-run restores
            # into a fresh staging folder and keeps the users' edits.
            record = {
                "id": cid,
                "run": run_id,
                "snapshot": chosen["id"],
                "staging": state["staging"],
                "quarantine": state["quarantine"],
            }
            payload.append(
                {
                    "id": cid,
                    "paths": client["restore_paths"],
                    "staging": state["staging"],
                    "quarantine": state["quarantine"],
                    "snapshot_time": chosen.get("time"),
                    # Files changed after the snapshot are validated as the client's own books (issue 18).
                    "ledger": client.get("ledger") or {},
                    "marker": {"path": rc.marker_path(a["marker_dir"], cid, "swapped"), "record": record},
                }
            )
        args: dict[str, Any] = {"clients": payload}
        if a["rescan"]["enabled"]:
            args["rescan"] = self._rescan_options()
        ids = [c["id"] for c in clients]
        res = self._module(COLLECTION + "restore_swap", args, Step.SWAP, ids)
        got = {} if res.get("failed") else {e.get("id"): e for e in res.get("clients") or []}
        for client in clients:
            cid, state = client["id"], states[client["id"]]
            entry = got.get(cid)
            try:
                if entry is None:
                    raise StepFailed(Step.SWAP, str(res.get("msg") or "failed"))
                if "rescan" in entry:
                    self._record_rescan(entry["rescan"])
                    self._late_writers(client, state)
                swap = {k: v for k, v in entry.items() if k not in ("id", "rescan", "stage")}
                state["swap"] = swap
                if swap.get("failed"):
                    raise StepFailed(Step.SWAP, str(swap.get("msg") or "failed"))
                if swap.get("marker_failed"):
                    raise StepFailed(Step.SWAPPED.format(cid=cid), str(swap["marker_failed"]))
            except StepFailed as exc:
                fail(cid, exc)
