# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident's one restore queue across hosts, with deadlines and ETAs (logic in plugin_utils/filing.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: filing_restore_queue
short_description: The incident's restore queue across hosts, each client's next filing deadline and ETA
version_added: "0.1.0"
description:
  - Orders every host's restore entries (the restore role's C(restore_results), each with C(host), C(id),
    C(priority), C(next_deadline)) into the incident's one queue - nearest filing deadline first, then C(priority),
    then id, then host - the order each host restored (or will restore) its own clients in.
  - Each entry gets an ETA - a restored client's finish time; otherwise O(start) plus the restore times of its host's
    clients up to it (hosts restore in parallel), each estimated from the newest drill measurement of that client (its
    snapshot's bytes at the drill's bytes/s, else files at files/s; the same host's drill first, else any host's).
    Without one the ETA says C(no drill measurement); nothing is invented.
  - An ETA after the deadline adds a C(LATE) warning naming the filing, so the firm can apply for an extension
    (延期申报) in time. The calendar's own warning (check the dates against the tax bureau's calendar) is returned too.
author: ledgerguard contributors (@ledgerguard)
positional: drills, start, calendar, deadlines_after
options:
  _input:
    description: The restore entries of every host (each with C(host)).
    type: list
    elements: dict
    required: true
  drills:
    description: Drill history records (the drill role's C(history.jsonl) lines, parsed).
    type: list
    elements: dict
    default: []
  start:
    description: When the restore starts (RFC 3339); default now.
    type: str
  calendar:
    description: The firm's filing calendar file (C(ledgerguard_filing_calendar)); empty - the shipped one.
    type: str
    default: ""
  deadlines_after:
    description:
      - When set (RFC 3339, the incident's detection), entries without C(next_deadline) - the selected clients before
        their restore - first get their nearest deadline after it from the calendar, from their C(filings).
      - Empty - the entries carry their deadlines already (the restore role's results).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Show the queue
  ansible.builtin.debug:
    msg: "{{ (entries | ledgerguard.recovery.filing_restore_queue(drills, now_utc)).lines }}"
"""

RETURN = r"""
_value:
  description:
    - C(queue) (per client C(position), C(host), C(id), C(name), C(priority), C(status), C(next_deadline),
      C(deadline) (text), C(eta), C(eta_basis), C(eta_estimated), C(late), C(warnings)), C(lines) (the queue as
      text) and C(warning) (the calendar's warning).
  type: dict
"""

from ansible.errors import AnsibleFilterError  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import filing  # noqa: E402


def filing_restore_queue(entries, drills=None, start=None, calendar="", deadlines_after=""):
    entries = [dict(e) for e in entries or []]
    try:
        loaded = filing.load_calendar(calendar or None)
        warning = loaded["warning"]
    except filing.CalendarError as exc:
        if deadlines_after and any("next_deadline" not in e for e in entries):
            raise AnsibleFilterError(f"filing_restore_queue: {exc}") from exc
        loaded, warning = None, str(exc)
    try:
        if deadlines_after:
            entries = [e if "next_deadline" in e else filing.annotate(e, loaded, deadlines_after) for e in entries]
        queue = filing.restore_queue(entries, list(drills or []), start or None)
    except ValueError as exc:
        raise AnsibleFilterError(f"filing_restore_queue: {exc}") from exc
    return {"queue": queue, "lines": filing.queue_lines(queue, warning), "warning": warning}


class FilterModule:
    def filters(self):
        return {"filing_restore_queue": filing_restore_queue}
