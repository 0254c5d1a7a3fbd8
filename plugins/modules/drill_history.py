#!/usr/bin/python
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's drill history: one drill record appended, the history read back, the textfile metrics written."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: drill_history
short_description: Append a drill record to the host's drill history and read the history back
version_added: "0.1.0"
description:
  - Appends O(record) as one JSON line (sorted keys, UTF-8 kept readable) to the history file O(path), creating the
    file (mode C(0640)) and its missing folders (each mode C(0750)); the folder of O(path) is given mode C(0750) and
    the file mode C(0640). A record whose line is already in the file is not appended again, and a last line without
    a newline gets one first (as C(ansible.builtin.lineinfile) with C(insertafter=EOF) would).
  - Returns the whole history as it is after the append (RV(content), base64, as C(ansible.builtin.slurp) would), so
    the drill reads its trend in the same module run (issue 19; it took a folder task, C(lineinfile) and C(slurp)).
  - With O(metrics_path), writes O(metrics) there (mode C(0644), atomically, only when it differs), creating its
    missing folders (each mode C(0755)); the Prometheus textfile collector's file of the drill.
  - The action plugin of the same name parses the history (RV(history)) and, with O(copy_to), copies it to the
    controller (the drill's evidence folder) in the same task.
author:
  - ledgerguard engineers (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Reports whether the record would be appended and the metrics written, and returns the history as it
      would be; writes nothing (on the host or, with O(copy_to), on the controller).
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Any POSIX host.
options:
  path:
    description: The history file (JSON Lines), absolute.
    type: path
    required: true
  record:
    description: The drill record to append (the drill role's record, filter C(ledgerguard.recovery.drill_record)).
    type: dict
    required: true
  metrics_path:
    description: Where to write O(metrics) (absolute); nothing is written without it.
    type: path
  metrics:
    description: The text of the metrics file (Prometheus textfile format). Required with O(metrics_path).
    type: str
  copy_to:
    description:
      - A file on the controller that gets the history's bytes as they are after the append (mode C(0640), written
        atomically, only when it differs), its missing folders created with mode C(0750) each (the drill's
        C(<evidence>/<drill id>/hosts/<host>/history.jsonl)). Handled by the action plugin; the module on the host
        does not use it.
    type: path
"""

EXAMPLES = r"""
- name: Append the drill to the host's history, copy it into the evidence folder, write the textfile metrics
  ledgerguard.recovery.drill_history:
    path: /var/lib/ledgerguard/drills/history.jsonl
    record: "{{ drill_record }}"
    metrics_path: /var/lib/node_exporter/textfile_collector/ledgerguard_drill.prom
    metrics: >-
      {{ drill_record | ledgerguard.recovery.drill_metric_families | ledgerguard.recovery.prometheus_textfile }}
    copy_to: /srv/evidence/drill-20261206/hosts/files01/history.jsonl
  register: drill_history

- name: Show how many drills the host has run
  ansible.builtin.debug:
    msg: "{{ drill_history.history | length }} drills recorded"
"""

RETURN = r"""
path:
  description: The history file.
  returned: always
  type: str
  sample: /var/lib/ledgerguard/drills/history.jsonl
appended:
  description: Whether the record was appended (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
content:
  description:
    - The history file's bytes after the append, base64-encoded. The action plugin takes it out of the task's result
      and returns RV(history) instead.
  returned: when the module is run without its action plugin
  type: str
history:
  description: The history's records, oldest first (lines that are not a JSON object are left out). From the action
    plugin.
  returned: always
  type: list
  elements: dict
  sample: [{"drill_id": "drill-20261206T020000", "host": "files01", "passed": true, "rto_seconds": 12.5}]
metrics_changed:
  description: Whether the metrics file was written (in check mode, whether it would be).
  returned: always
  type: bool
  sample: false
copied:
  description: Whether the controller's copy (O(copy_to)) was written (in check mode, whether it would be). From the
    action plugin.
  returned: with copy_to
  type: bool
  sample: true
"""

import base64  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import json  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import os  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)
import tempfile  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible plugins put DOCUMENTATION before imports)


def record_line(record: dict) -> bytes:
    """The record's history line, as the role's ``to_json(ensure_ascii=false, sort_keys=true)`` wrote it."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")


def appended(existing: bytes, line: bytes) -> bytes | None:
    """What to add to the end of ``existing`` so that it holds ``line`` (None when it already does): a newline first
    when the last line has none, then the line and a newline."""
    if any(old.rstrip(b"\r\n") == line for old in existing.splitlines(keepends=True)):
        return None
    return (b"\n" if existing and existing[-1:] not in (b"\n", b"\r") else b"") + line + b"\n"


def make_folders(module: AnsibleModule, folder: str, mode: str, changed: bool) -> bool:
    """Create ``folder`` and its missing parents, each given ``mode`` (as ansible.builtin.file state=directory);
    an existing ``folder`` gets ``mode`` too. Nothing is changed in check mode."""
    missing = []
    cur = folder
    while not os.path.lexists(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    if not os.path.isdir(cur):
        module.fail_json(msg=f"drill_history: {cur} is not a folder; cannot create {folder} under it (move it aside)")
    if module.check_mode:
        return changed or bool(missing) or oct(os.stat(folder).st_mode & 0o7777)[2:] != mode.lstrip("0o")
    for path in reversed(missing):
        try:
            os.mkdir(path)
            changed = True
        except FileExistsError:
            if not os.path.isdir(path):
                module.fail_json(
                    msg=f"drill_history: {path} is not a folder; cannot create {folder} under it (move it aside)"
                )
            # another host of the same run (a shared parent) made it first, as ansible.builtin.file allows
        except OSError as exc:
            module.fail_json(msg=f"drill_history: cannot create the folder {path}: {exc.strerror or exc}")
        changed = module.set_mode_if_different(path, mode, changed)
    return module.set_mode_if_different(folder, mode, changed)


def read_bytes(module: AnsibleModule, path: str) -> bytes:
    if not os.path.lexists(path):
        return b""
    if not os.path.isfile(path):
        module.fail_json(
            msg=f"drill_history: {path} is not a regular file; the drill history must be one (move it aside)"
        )
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg=f"drill_history: cannot read {path}: {exc.strerror or exc}")
    return b""  # not reached


def write_metrics(module: AnsibleModule, path: str, text: str) -> bool:
    """Write ``text`` to ``path`` (mode 0644) atomically when it differs; whether it was (or would be) written."""
    folder = os.path.dirname(path)
    changed = make_folders(module, folder, "0755", False) if folder else False
    data = text.encode("utf-8")
    same = os.path.isfile(path) and read_bytes(module, path) == data
    if module.check_mode:
        return changed or not same
    if not same:
        fd, tmp = tempfile.mkstemp(prefix=".ledgerguard_drill.", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        module.atomic_move(tmp, path)
        changed = True
    return module.set_mode_if_different(path, "0644", changed)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "record": {"type": "dict", "required": True},
            "metrics_path": {"type": "path"},
            "metrics": {"type": "str"},
            "copy_to": {"type": "path"},
        },
        required_by={"metrics_path": ("metrics",)},
        supports_check_mode=True,
    )
    path = module.params["path"]
    if not os.path.isabs(path):
        module.fail_json(msg=f"drill_history: path must be absolute (the host's history file), got {path!r}")
    existing = read_bytes(module, path)
    tail = appended(existing, record_line(module.params["record"]))
    changed = make_folders(module, os.path.dirname(path), "0750", False)
    if not module.check_mode:
        if tail is not None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(tail)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                module.fail_json(msg=f"drill_history: cannot append the drill to {path}: {exc.strerror or exc}")
        changed = module.set_mode_if_different(path, "0640", changed or tail is not None)
    else:
        changed = changed or tail is not None
    content = existing + (tail or b"") if module.check_mode else read_bytes(module, path)
    metrics_changed = False
    if module.params["metrics_path"]:
        metrics_changed = write_metrics(module, module.params["metrics_path"], module.params["metrics"])
    module.exit_json(
        changed=changed or metrics_changed,
        path=path,
        appended=tail is not None,
        metrics_changed=metrics_changed,
        content=base64.b64encode(content).decode("ascii"),
    )


if __name__ == "__main__":
    main()
