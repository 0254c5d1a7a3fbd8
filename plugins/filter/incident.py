# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the incident path: input validation, incident ids, times, client selection, durations."""

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_input_errors
short_description: Validate an incident's inputs for one host; returns the list of problems (empty when valid)
version_added: "0.1.0"
description:
  - Checks the host's declared clients (C(ledgerguard_clients)), the selected client ids, the selected paths, the
    incident id, the times and the cause, and returns one sentence per problem.
  - The same file provides C(incident_time) (RFC 3339 -> UTC), C(incident_next_id), C(incident_select_clients),
    C(incident_duration) and C(incident_host_errors).
author: ledgerguard contributors
positional: selected, paths, host
options:
  _input:
    description: The host's C(ledgerguard_clients).
    type: list
    elements: dict
    required: true
  selected:
    description: Selected client ids (empty = all).
    type: list
    elements: str
  paths:
    description: Selected paths (empty = the clients' declared paths).
    type: list
    elements: str
  host:
    description: The host name (for messages).
    type: str
"""

EXAMPLES = r"""
- name: Validate the incident's inputs
  ansible.builtin.assert:
    that: __errors | length == 0
    fail_msg: "{{ __errors | join('; ') }}"
  vars:
    __errors: "{{ ledgerguard_clients | ledgerguard.recovery.incident_input_errors(incident_clients, incident_paths, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem found.
  type: list
  elements: str
"""

import datetime
import posixpath
import re

from ansible.errors import AnsibleFilterError

ID_RE = re.compile(r"^INC-[0-9]{8}-[0-9]{3}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(?P<tz>Z|[+-]\d{2}:?\d{2})?$")
CAUSES = ("deleted", "ransomware", "corruption", "unknown")


def _path_problem(path):
    text = str(path)
    if not text.startswith("/"):
        return "is not absolute"
    if any(part == ".." for part in text.split("/")):
        return "contains '..'"
    if posixpath.normpath(text) != text.rstrip("/") and text != "/":
        return "is not normalised (write %s)" % posixpath.normpath(text)
    if text.rstrip("/") == "" or text == "/":
        return "is the root directory"
    return None


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
            "incident id %r is not valid: use INC-YYYYMMDD-NNN (e.g. INC-20261126-001); it names folders, so '/', "
            "'..' and other characters are refused" % text
        )
    return None


def parse_time(value, name="time"):
    """RFC 3339 text with a timezone -> aware datetime; raises ValueError with a human message."""
    text = str(value).strip()
    match = TIME_RE.match(text)
    if not match:
        raise ValueError("%s %r is not a date and time; write it as 2026-11-26T08:30:00+08:00" % (name, text))
    if not match.group("tz"):
        raise ValueError(
            "%s %r has no timezone, so it is ambiguous; add one, e.g. %s+08:00 or %sZ"
            % (name, text, text.replace(" ", "T"), text.replace(" ", "T"))
        )
    norm = text.replace(" ", "T").replace("Z", "+00:00")
    tz = match.group("tz")
    if tz != "Z" and ":" not in tz:
        norm = norm[: -len(tz)] + tz[:3] + ":" + tz[3:]
    if "." in norm:
        head, rest = norm.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        norm = "%s.%s%s" % (head, digits[:6], rest[len(digits) :])
    try:
        return datetime.datetime.fromisoformat(norm)
    except ValueError as exc:
        raise ValueError("%s %r is not a valid date and time (%s)" % (name, text, exc)) from exc


def _iso(when):
    return when.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


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
    current = datetime.datetime.now(datetime.timezone.utc) if now in (None, "") else parse_time(now, "now")
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
                "%s %s is in the future (controller clock: %s); give the time the loss was %s"
                % (name, value, _iso(current), "detected" if name == "incident_detected_at" else "first possible")
            )
        parsed[name] = when
    if len(parsed) == 2 and parsed["incident_loss_started"] > parsed["incident_detected_at"]:
        errors.append(
            "incident_loss_started %s is after incident_detected_at %s; the loss cannot start after it was detected"
            % (loss_started, detected_at)
        )
    return errors


def incident_input_errors(clients, selected=None, paths=None, host="this host", incident_id=None, cause="unknown"):
    """See DOCUMENTATION."""
    errors = []
    problem = incident_id_error(incident_id)
    if problem:
        errors.append(problem)
    if cause not in CAUSES:
        errors.append("incident_cause %r is not one of %s" % (cause, ", ".join(CAUSES)))
    if not isinstance(clients, list) or not clients:
        return errors + [
            "host %s declares no clients: set ledgerguard_clients (list of {id, name, paths, priority}) in its "
            "inventory" % host
        ]
    declared = {}
    for index, client in enumerate(clients):
        if not isinstance(client, dict):
            errors.append("host %s: ledgerguard_clients[%d] is not a mapping" % (host, index))
            continue
        cid = str(client.get("id", ""))
        if not CLIENT_ID_RE.match(cid) or ".." in cid:
            errors.append(
                "host %s: client id %r is not valid: use letters, digits, '.', '_' or '-' (no '/', no '..', at most "
                "64 characters); it names folders" % (host, cid)
            )
            continue
        if cid in declared:
            errors.append("host %s: client id %r is declared twice in ledgerguard_clients" % (host, cid))
        if not client.get("name"):
            errors.append("host %s: client %s has no name" % (host, cid))
        cpaths = client.get("paths") or []
        if not isinstance(cpaths, list) or not cpaths:
            errors.append("host %s: client %s declares no paths" % (host, cid))
        for cpath in cpaths if isinstance(cpaths, list) else []:
            bad = _path_problem(cpath)
            if bad:
                errors.append("host %s: client %s path %r %s" % (host, cid, cpath, bad))
        priority = client.get("priority", 100)
        if isinstance(priority, bool) or not isinstance(priority, int):
            errors.append("host %s: client %s priority %r is not an integer" % (host, cid, priority))
        declared[cid] = client
    chosen = []
    for cid in selected or []:
        text = str(cid)
        if "/" in text or ".." in text or not CLIENT_ID_RE.match(text):
            errors.append("client id %r is not valid: '/', '..' and other path characters are refused" % text)
        elif text not in declared:
            errors.append(
                "unknown client %r on host %s: declared clients are %s (ledgerguard_clients)"
                % (text, host, ", ".join(sorted(declared)) or "none")
            )
        else:
            chosen.append(declared[text])
    if not selected:
        chosen = list(declared.values())
    for path in paths or []:
        bad = _path_problem(str(path))
        if bad:
            errors.append("path %r %s" % (str(path), bad))
            continue
        if not any(_under(str(path), cp) for c in chosen for cp in c.get("paths") or []):
            errors.append(
                "path %s is outside the declared paths of the selected clients on host %s (%s)"
                % (
                    path,
                    host,
                    "; ".join("%s: %s" % (c.get("id"), ", ".join(c.get("paths") or [])) for c in chosen) or "none",
                )
            )
    return errors


def incident_host_errors(wanted, inventory_hosts):
    """Hosts named for the incident that the inventory does not hold."""
    if isinstance(wanted, str):
        wanted = [h.strip() for h in wanted.split(",") if h.strip()]
    known = set(inventory_hosts or [])
    return [
        "host %r is not in the inventory (known hosts: %s)" % (h, ", ".join(sorted(known)) or "none")
        for h in wanted or []
        if h not in known
    ]


def incident_select_clients(clients, selected=None, paths=None):
    """The selected clients in restore order (priority, then id), each with the paths to restore."""
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
        item["restore_paths"] = mine
        item["declared_paths"] = declared
        out.append(item)
    return sorted(out, key=lambda c: (c["priority"], str(c.get("id"))))


def incident_next_id(existing, date):
    """The next INC-<date>-NNN after the ids in ``existing`` (folder names)."""
    date = str(date)
    if not re.match(r"^[0-9]{8}$", date):
        raise AnsibleFilterError("incident_next_id: date %r is not YYYYMMDD" % date)
    numbers = [0]
    for name in existing or []:
        base = posixpath.basename(str(name).rstrip("/"))
        match = re.match(r"^INC-%s-([0-9]{3})$" % date, base)
        if match:
            numbers.append(int(match.group(1)))
    nxt = max(numbers) + 1
    if nxt > 999:
        raise AnsibleFilterError("incident_next_id: more than 999 incidents on %s; give ledgerguard_incident_id" % date)
    return "INC-%s-%03d" % (date, nxt)


def incident_duration(seconds):
    """Seconds -> '1 h 05 min', '3 min 20 s', '12 s'."""
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return "unknown"
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return "%s%d d %d h %02d min" % (sign, days, hours, minutes)
    if hours:
        return "%s%d h %02d min" % (sign, hours, minutes)
    if minutes:
        return "%s%d min %02d s" % (sign, minutes, secs)
    return "%s%d s" % (sign, secs)


def incident_epoch(value):
    """RFC 3339 with timezone -> seconds since the epoch (float)."""
    try:
        return parse_time(value).timestamp()
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {
            "incident_input_errors": incident_input_errors,
            "incident_time_errors": incident_time_errors,
            "incident_host_errors": incident_host_errors,
            "incident_select_clients": incident_select_clients,
            "incident_next_id": incident_next_id,
            "incident_id_error": incident_id_error,
            "incident_time": incident_time,
            "incident_epoch": incident_epoch,
            "incident_duration": incident_duration,
        }
