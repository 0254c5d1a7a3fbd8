# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.incident_record: the one incident object, evidence/<id>/incident.json.

Runs on the controller only (the evidence folder lives there). Documentation: plugins/modules/incident_record.py.
The rules that make the object (which fields a caller may set, what is kept from an earlier run, how times are
normalised) are the pure function ``merge_record``; reading and the locked, atomic write are ``read_record`` and
``write_record``.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import secrets
import stat
import tempfile
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.filter.incident import incident_id_error, parse_time
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc

RECORD_FILE = "incident.json"
VERSION = 1
# Fields a caller may set with state=update, and the Python type each must have.
SETTABLE = {
    "detected_at": str,
    "loss_started": str,
    "cause": str,
    "operator": str,
    "summary": str,
    "hosts": list,
    "clients": dict,
    "pinned": dict,
    "compliance": dict,
}
TIME_FIELDS = ("detected_at", "loss_started")

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["read", "declare", "update"], "default": "read"},
    "evidence_root": {"type": "path", "required": True},
    "incident_id": {"type": "str", "default": ""},
    "record": {"type": "dict", "default": {}},
    "new_run": {"type": "bool", "default": False},
    "folders": {"type": "list", "elements": "str", "default": []},
    "timeline": {"type": "dict", "default": {}},
    "operator": {"type": "str", "default": ""},
    "publish": {"type": "bool", "default": False},
}

# The incident refuses to start without its tamper-evident timeline (the ledgerguard.recovery.timeline callback).
TIMELINE_NOT_WRITTEN = (
    "Incident {incident_id} refused to start, nothing was touched: its tamper-evident timeline {path} is not being "
    "written, because the callback ledgerguard.recovery.timeline is not enabled in this run (or cannot write there). "
    "Enable it and run again: in ansible.cfg, [defaults] callbacks_enabled = ledgerguard.recovery.timeline (this "
    "project's ansible.cfg has it; run from the checkout or copy the line), or export "
    "ANSIBLE_CALLBACKS_ENABLED=ledgerguard.recovery.timeline (AWX: add it to the job template's environment, Settings "
    "> Jobs > Extra Environment Variables), or run `ledgerguard incident`."
)


class RecordError(Exception):
    """A message for the operator: what was wrong, where, and what to do."""


def next_incident_id(evidence_root: str, date: str) -> str:
    """The next free INC-<date>-NNN among the folders of ``evidence_root`` (missing root: the first of the day)."""
    try:
        names = os.listdir(evidence_root)
    except FileNotFoundError:
        names = []
    pattern = re.compile(rf"^INC-{re.escape(date)}-([0-9]{{3}})$")
    numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
    number = max(numbers, default=0) + 1
    if number > 999:
        raise RecordError(
            f"more than 999 incidents on {date} in {evidence_root}; give the incident id (ledgerguard_incident_id)"
        )
    return f"INC-{date}-{number:03d}"


def _normal_time(name: str, value: Any) -> str:
    if value in (None, ""):
        return ""
    try:
        when = parse_time(value, name)
    except ValueError as exc:
        raise RecordError(f"record.{exc}") from exc
    return when.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def merge_record(
    previous: dict[str, Any],
    fields: dict[str, Any],
    incident_id: str,
    evidence_dir: str,
    now: str,
    new_run: bool = False,
) -> dict[str, Any]:
    """The incident object after an update: ``previous`` (the file, or {}) with ``fields`` applied.

    declared_at is the first update's time and never changes; detected_at given empty keeps the earlier value (or
    becomes now); loss_started given empty means unknown; times are normalised to UTC; new_run appends ``now`` to
    runs. Unknown fields and wrong types are refused, naming the field.
    """
    unknown = sorted(set(fields) - set(SETTABLE))
    if unknown:
        raise RecordError(
            "record: unknown field(s) {}; an incident record takes {}".format(", ".join(unknown), ", ".join(SETTABLE))
        )
    for name, value in fields.items():
        if not isinstance(value, SETTABLE[name]):
            raise RecordError(
                f"record.{name} must be a {SETTABLE[name].__name__}, got {type(value).__name__} ({value!r})"
            )
    record = dict(previous)
    record.update(
        {
            "version": VERSION,
            "incident_id": incident_id,
            "evidence_dir": evidence_dir,
            "declared_at": previous.get("declared_at") or now,
            "runs": list(previous.get("runs") or []) + ([now] if new_run else []),
        }
    )
    for name, value in fields.items():
        record[name] = _normal_time(name, value) if name in TIME_FIELDS else value
    if not record.get("detected_at"):
        record["detected_at"] = previous.get("detected_at") or now
    record.setdefault("loss_started", "")
    return record


def render(record: dict[str, Any]) -> str:
    """The file's bytes as text: sorted keys, 4 spaces, UTF-8 kept readable (as to_nice_json writes it)."""
    return json.dumps(record, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def read_record(path: str) -> dict[str, Any] | None:
    """The object in ``path``; None when there is no file. A symlink, a non-file or bad JSON is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordError(
            f"cannot open the incident record {path} ({exc.strerror}); it must be a regular file, not a link: "
            "check the evidence folder"
        ) from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise RecordError(f"the incident record {path} is not a regular file: check the evidence folder")
        data = handle.read()
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(
            f"the incident record {path} is not valid JSON ({exc}); restore it from the evidence hashes "
            "(SHA256SUMS) or move it away to start the record again"
        ) from exc
    if not isinstance(record, dict):
        raise RecordError(f"the incident record {path} holds a {type(record).__name__}, not a JSON object")
    return record


def write_record(evidence_dir: str, fields: dict[str, Any], incident_id: str, now: str, new_run: bool, check: bool):
    """Read, merge and (unless ``check``) write atomically under an exclusive lock on the folder.

    Returns (record, changed, created).
    """
    path = os.path.join(evidence_dir, RECORD_FILE)
    if check and not os.path.isdir(evidence_dir):
        record = merge_record({}, fields, incident_id, evidence_dir, now, new_run)
        return record, True, True
    os.makedirs(evidence_dir, mode=0o700, exist_ok=True)
    dir_fd = os.open(evidence_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        previous = read_record(path)
        record = merge_record(previous or {}, fields, incident_id, evidence_dir, now, new_run)
        changed = previous is None or render(previous) != render(record)
        if changed and not check:
            fd, tmp = tempfile.mkstemp(prefix=".incident.json.", dir=evidence_dir)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(render(record))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        return record, changed, previous is None
    finally:
        os.close(dir_fd)


def make_folders(evidence_dir: str, names: list[str], check: bool) -> list[str]:
    """Make each of ``names`` (plain names, no ``/``) a folder of mode 0700 in ``evidence_dir``: created when missing,
    given mode 0700 when not (as ansible.builtin.file with state=directory would). Returns the names changed (or that
    would be, in check mode)."""
    changed = []
    for name in names:
        if not name or name in (".", "..") or "/" in name:
            raise RecordError(f"folders: {name!r} is not a plain folder name (no '/', not '.' or '..')")
        path = os.path.join(evidence_dir, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            changed.append(name)
            if not check:
                os.mkdir(path, 0o700)
                os.chmod(path, 0o700)  # the umask may have narrowed it
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise RecordError(f"{path} is not a folder (a link or a file is in the way): check the evidence folder")
        if stat.S_IMODE(st.st_mode) != 0o700:
            changed.append(name)
            if not check:
                os.chmod(path, 0o700)
    return changed


def timeline_problem(incident_id: str, timeline: dict[str, Any]) -> str | None:
    """Why the incident must not start: the timeline file ``timeline['path']`` does not hold this run's token
    ``timeline['run']`` (the callback writes it into its run_start line when it sees the fact ledgerguard_timeline);
    None when it does, or when ``timeline`` is empty (a dry run, which writes no timeline)."""
    if not timeline:
        return None
    path, run = str(timeline.get("path") or ""), str(timeline.get("run") or "")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        text = ""
    if run in text:
        return None
    return TIMELINE_NOT_WRITTEN.format(incident_id=incident_id, path=path)


def declared_facts(incident_id: str, evidence_dir: str, operator: str, check: bool, run: str) -> dict[str, Any]:
    """The collection-wide facts of state=declare: ``ledgerguard_incident_id``, and ``ledgerguard_timeline`` (path,
    incident id, operator and this run's token ``run``, which the timeline callback writes into its run_start line
    when it sees the fact). A dry run writes no timeline: its ``ledgerguard_timeline`` is empty, which the callback
    ignores."""
    timeline = {
        "incident_id": incident_id,
        "path": os.path.join(evidence_dir, "timeline.jsonl"),
        "operator": operator,
        "run": run,
    }
    return {"ledgerguard_incident_id": incident_id, "ledgerguard_timeline": {} if check else timeline}


def run_token(now: datetime.datetime | None = None) -> str:
    """A token naming this run in the timeline's run_start line: the UTC time and a random number."""
    now = now or datetime.datetime.now(datetime.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.randbelow(2**32)}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars or {})
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        root = os.path.realpath(args["evidence_root"])
        incident_id = args["incident_id"]
        try:
            if not incident_id:
                incident_id = next_incident_id(root, datetime.datetime.now().strftime("%Y%m%d"))
            problem = incident_id_error(incident_id)
            if problem:
                raise RecordError(problem)
            evidence_dir = os.path.join(root, incident_id)
            path = os.path.join(evidence_dir, RECORD_FILE)
            result.update(incident_id=incident_id, evidence_dir=evidence_dir, path=path)
            if args["state"] == "declare":
                result.update(
                    changed=False,
                    ansible_facts=declared_facts(
                        incident_id, evidence_dir, args["operator"], self._task.check_mode, run_token()
                    ),
                )
                return result
            if args["state"] == "read":
                record = read_record(path)
                result.update(changed=False, exists=record is not None, record=record or {})
                if record is not None:
                    record["evidence_dir"] = evidence_dir
                return result
            problem = None if self._task.check_mode else timeline_problem(incident_id, args["timeline"])
            if problem:
                raise AnsibleActionFail(problem)
            record, changed, created = write_record(
                evidence_dir, args["record"], incident_id, format_utc(), args["new_run"], self._task.check_mode
            )
            # (A dry run before the folder exists reports changed already and makes nothing.)
            if args["folders"] and os.path.isdir(evidence_dir):
                changed = bool(make_folders(evidence_dir, args["folders"], self._task.check_mode)) or changed
        except (RecordError, OSError) as exc:
            raise AnsibleActionFail(f"incident_record ({args['state']}): {exc}") from exc
        result.update(changed=changed, created=created, exists=not (created and self._task.check_mode), record=record)
        if args["publish"]:
            result["ansible_facts"] = {"incident_record": record}
        return result
