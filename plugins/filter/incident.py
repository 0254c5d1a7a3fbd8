# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the incident path: input validation, incident ids, times, client selection, durations."""

from __future__ import annotations

import datetime
import posixpath
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeutil
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import url_embeds_credentials

ID_RE = re.compile(r"^INC-[0-9]{8}-[0-9]{3}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CAUSES = ("deleted", "ransomware", "corruption", "unknown")


def _path_problem(path):
    text = str(path)
    if not text.startswith("/"):
        return "is not absolute"
    if any(part == ".." for part in text.split("/")):
        return "contains '..'"
    if posixpath.normpath(text) != text.rstrip("/") and text != "/":
        return f"is not normalised (write {posixpath.normpath(text)})"
    if text.rstrip("/") == "" or text == "/":
        return "is the root directory"
    return None


def _system_problem(path):
    """A sentence when a declared client path is (or lies in) a system directory, else None."""
    norm = posixpath.normpath(str(path))
    if norm in SYSTEM_DIRS or any(norm == t or norm.startswith(t + "/") for t in SYSTEM_TREES):
        return "is a system directory (a restore there could overwrite the operating system)"
    return None


# Client data may not live in (or be) these: a restore would swap files of the operating system.
SYSTEM_DIRS = ("/home", "/opt", "/srv", "/var", "/var/lib", "/mnt", "/media", "/tmp", "/root")  # noqa: S108
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin")
SYSTEM_TREES += ("/sys", "/usr")


def _under(path, root):
    path = posixpath.normpath(path)
    root = posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def incident_id_error(value):
    """A sentence when ``value`` is not a valid incident id, else None."""
    if value in (None, ""):
        return None
    text = str(value)
    if not ID_RE.match(text):
        return (
            f"incident id {text!r} is not valid: use INC-YYYYMMDD-NNN (e.g. INC-20261126-001); it names folders, "
            "so '/', "
            "'..' and other characters are refused"
        )
    return None


def parse_time(value, name="time"):
    """RFC 3339 text with a timezone -> aware datetime; raises ValueError with a human message (timeutil reads it)."""
    text = str(value).strip()
    try:
        return timeutil.parse_time(text, name)
    except timeutil.NaiveTimeError:
        raise
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date and time; write it as 2026-11-26T08:30:00+08:00") from None


def _iso(when):
    return when.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def incident_time(value, name="time"):
    """RFC 3339 with timezone -> UTC RFC 3339 ('' stays '')."""
    if value in (None, ""):
        return ""
    try:
        return _iso(parse_time(value, name))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def incident_time_errors(detected_at, loss_started, now=None):
    """Problems with the detection and loss-start times (future, no timezone, order)."""
    errors = []
    current = datetime.datetime.now(datetime.UTC) if now in (None, "") else parse_time(now, "now")
    parsed = {}
    for name, value in (("incident_detected_at", detected_at), ("incident_loss_started", loss_started)):
        if value in (None, ""):
            continue
        try:
            when = parse_time(value, name)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if when > current + datetime.timedelta(seconds=60):
            errors.append(
                "{} {} is in the future (controller clock: {}); give the time the loss was {}".format(
                    name, value, _iso(current), "detected" if name == "incident_detected_at" else "first possible"
                )
            )
        parsed[name] = when
    if len(parsed) == 2 and parsed["incident_loss_started"] > parsed["incident_detected_at"]:
        errors.append(
            f"incident_loss_started {loss_started} is after incident_detected_at {detected_at}; the loss cannot start "
            "after it was detected"
        )
    return errors


def _as_list(value):
    """A list from a list or a comma-separated string (``-e incident_clients=c001,c002``)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


CREDENTIALS_ERROR = (
    "the restic repository URL embeds credentials (user:secret@host). Remove them from the URL and give the S3 keys "
    "through ledgerguard_s3_credentials_file (a 0600 AWS shared-credentials file on the controller) or the "
    "controller's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, so they never reach logs, reports or process lists."
)


def incident_input_errors(
    clients,
    selected=None,
    paths=None,
    host="this host",
    incident_id=None,
    cause="unknown",
    repository="",
    pins=None,
    hosts=None,
):
    """See DOCUMENTATION."""
    errors = _input_errors(clients, selected, paths, host, incident_id, cause)
    if url_embeds_credentials(str(repository or "")):
        errors.append(CREDENTIALS_ERROR)
    if pins and not errors:
        chosen = [str(c.get("id")) for c in incident_select_clients(clients, selected, paths)]
        known = set(chosen) | {str(h) for h in hosts or []}
        bad = [str(k) for k in pins if str(k) not in known]
        if bad:
            errors.append(
                "incident_pinned_snapshots names client(s) {} that are not selected on this host; selected: {}".format(
                    ", ".join(bad), ", ".join(chosen)
                )
            )
    return errors


def _input_errors(clients, selected, paths, host, incident_id, cause):
    selected, paths = _as_list(selected), _as_list(paths)
    errors = []
    problem = incident_id_error(incident_id)
    if problem:
        errors.append(problem)
    if cause not in CAUSES:
        errors.append("incident_cause {!r} is not one of {}".format(cause, ", ".join(CAUSES)))
    if not isinstance(clients, list) or not clients:
        return errors + [
            f"host {host} declares no clients: set ledgerguard_clients (list of {{id, name, paths, priority}}) in its "
            "inventory"
        ]
    declared = {}
    for index, client in enumerate(clients):
        if not isinstance(client, dict):
            errors.append(f"host {host}: ledgerguard_clients[{index}] is not a mapping")
            continue
        cid = str(client.get("id", ""))
        if not CLIENT_ID_RE.match(cid) or ".." in cid:
            errors.append(
                f"host {host}: client id {cid!r} is not valid: use letters, digits, '.', '_' or '-' (no '/', "
                "no '..', at most "
                "64 characters); it names folders"
            )
            continue
        if cid in declared:
            errors.append(f"host {host}: client id {cid!r} is declared twice in ledgerguard_clients")
        if not client.get("name"):
            errors.append(f"host {host}: client {cid} has no name")
        cpaths = client.get("paths") or []
        if not isinstance(cpaths, list) or not cpaths:
            errors.append(f"host {host}: client {cid} declares no paths")
        for cpath in cpaths if isinstance(cpaths, list) else []:
            bad = _path_problem(cpath) or _system_problem(cpath)
            if bad:
                errors.append(f"host {host}: client {cid} path {cpath!r} {bad}")
        priority = client.get("priority", 100)
        if isinstance(priority, bool) or not isinstance(priority, int):
            errors.append(f"host {host}: client {cid} priority {priority!r} is not an integer")
        declared[cid] = client
    chosen = []
    for cid in selected or []:
        text = str(cid)
        if "/" in text or ".." in text or not CLIENT_ID_RE.match(text):
            errors.append(f"client id {text!r} is not valid: '/', '..' and other path characters are refused")
        elif text not in declared:
            errors.append(
                "unknown client {!r} on host {}: declared clients are {} (ledgerguard_clients)".format(
                    text, host, ", ".join(sorted(declared)) or "none"
                )
            )
        else:
            chosen.append(declared[text])
    if not selected:
        chosen = list(declared.values())
    for path in paths or []:
        bad = _path_problem(str(path))
        if bad:
            errors.append(f"path {str(path)!r} {bad}")
            continue
        if not any(_under(str(path), cp) for c in chosen for cp in c.get("paths") or []):
            errors.append(
                "path {} is outside the declared paths of the selected clients on host {} ({})".format(
                    path,
                    host,
                    "; ".join("{}: {}".format(c.get("id"), ", ".join(c.get("paths") or [])) for c in chosen) or "none",
                )
            )
    return errors


def incident_host_errors(wanted, inventory_hosts):
    """Hosts named for the incident that the inventory does not hold."""
    if isinstance(wanted, str):
        wanted = [h.strip() for h in wanted.split(",") if h.strip()]
    known = set(inventory_hosts or [])
    return [
        "host {!r} is not in the inventory (known hosts: {})".format(h, ", ".join(sorted(known)) or "none")
        for h in wanted or []
        if h not in known
    ]


def incident_select_clients(clients, selected=None, paths=None):
    """The selected clients by priority, then id, each with the paths to restore and its filings as a list. The
    restore order adds the filing deadlines (restore_clients orders by plugin_utils/filing.py's order_key)."""
    selected, paths = _as_list(selected), _as_list(paths)
    chosen = [c for c in clients or [] if not selected or str(c.get("id")) in [str(s) for s in selected]]
    out = []
    for client in chosen:
        declared = [posixpath.normpath(p) for p in client.get("paths") or []]
        if paths:
            mine = [posixpath.normpath(str(p)) for p in paths if any(_under(str(p), d) for d in declared)]
            if not mine:
                continue
        else:
            mine = declared
        item = dict(client)
        item["priority"] = int(client.get("priority", 100))
        item["filings"] = [client["filings"]] if isinstance(client.get("filings"), str) else client.get("filings") or []
        item["restore_paths"] = mine
        item["declared_paths"] = declared
        out.append(item)
    return sorted(out, key=lambda c: (c["priority"], str(c.get("id"))))


def incident_next_id(existing, date):
    """The next INC-<date>-NNN after the ids in ``existing`` (folder names)."""
    date = str(date)
    if not re.match(r"^[0-9]{8}$", date):
        raise AnsibleFilterError(f"incident_next_id: date {date!r} is not YYYYMMDD")
    numbers = [0]
    for name in existing or []:
        base = posixpath.basename(str(name).rstrip("/"))
        match = re.match(rf"^INC-{date}-([0-9]{{3}})$", base)
        if match:
            numbers.append(int(match.group(1)))
    nxt = max(numbers) + 1
    if nxt > 999:
        raise AnsibleFilterError(f"incident_next_id: more than 999 incidents on {date}; give ledgerguard_incident_id")
    return f"INC-{date}-{nxt:03d}"


def incident_duration(seconds):
    """Seconds -> '1 h 05 min', '3 min 20 s', '12 s' (module_utils/timeutil.duration_text)."""
    return timeutil.duration_text(seconds)


def incident_outcome(
    result,
    restore_results=None,
    database_results=None,
    check_mode=False,
    label="Incident",
    incident_id="",
    host="",
    evidence_dir="",
):
    """The host's verdict at the end of an incident (or restore) run: ``{done, msg}``. Done when no step failed, every
    client was restored (in a dry run: has a restore point, status planned) and every database named for the incident
    was restored (restore_database_results all ok). Otherwise ``msg`` names the failed step, clients and databases."""
    result = result or {}
    wanted = "planned" if check_mode else "ok"
    clients = [c for c in restore_results or [] if isinstance(c, dict) and c.get("status") != wanted]
    databases = [d for d in database_results or [] if isinstance(d, dict) and not d.get("ok")]
    done = "failed_step" not in result and not clients and not databases
    report = f"{evidence_dir}/report.html"
    if done:
        msg = (
            f"Dry run of {label.lower()} {incident_id} on {host}: every client has a restore point (see the plan "
            "above); nothing was changed."
            if check_mode
            else f"{label} {incident_id}: every client on {host} restored. Report: {report}"
        )
        return {"done": True, "msg": msg}
    parts = [
        f"Dry run of {label.lower()} {incident_id} on {host}: a real run would not restore everything:"
        if check_mode
        else f"{label} {incident_id} on {host} is not fully restored:"
    ]
    if "failed_step" in result:
        parts.append('step "{}" failed: {}.'.format(result["failed_step"], result.get("failed_msg", "")))
    verb = "" if check_mode else " failed"
    parts.extend("client {}{}: {}.".format(c.get("id"), verb, c.get("msg", "")) for c in clients)
    parts.extend(
        "database {}/{}{}: {}.".format(d.get("engine"), d.get("database"), verb, d.get("msg") or "not restored")
        for d in databases
    )
    if check_mode:
        parts.append("Nothing was changed.")
    else:
        parts.append(
            ("Writes were thawed; the" if "frozen_at" in result else "The")
            + f" lock stays so a re-run with ledgerguard_incident_id={incident_id} continues. Report: {report}"
        )
    return {"done": False, "msg": " ".join(parts)}


class FilterModule:
    def filters(self):
        return {
            "incident_input_errors": incident_input_errors,
            "incident_time_errors": incident_time_errors,
            "incident_host_errors": incident_host_errors,
            "incident_select_clients": incident_select_clients,
            "incident_next_id": incident_next_id,
            "incident_time": incident_time,
            "incident_duration": incident_duration,
            "incident_outcome": incident_outcome,
        }
