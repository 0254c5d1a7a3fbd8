#!/usr/bin/python
# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress of a running async job, from the progress file the job writes and its async results file."""

from __future__ import annotations

DOCUMENTATION = r"""
module: job_progress
short_description: Report the progress of a running async job for the ledgerguard CLI and AWX
version_added: "0.1.0"
description:
  - Reads, and changes nothing but the job's own temporary files (the finished-clients file it takes its lines from,
    and at the job's end the files described below). Meant for a
    polling task (C(until) on RV(finished), with C(retries) and C(delay)) after a task started with C(async) and
    C(poll=0) that writes a progress file, such as M(ledgerguard.recovery.restic_backup) with its C(progress_file)
    option.
  - Each poll's result carries RV(ledgerguard_progress); the C(ledgerguard) CLI draws it as a progress line or bar,
    and AWX shows it in the job's events.
  - The progress file is a JSON object with C(done) and C(total) (numbers) and C(current) (what the job works on,
    for example a client ID), and optionally C(client) (the client being backed up, with restic's figures; see the
    C(progress_file) option of M(ledgerguard.recovery.restic_backup)). A missing or half-written file counts as no
    progress yet.
  - When the job also writes C(<progress_file>.finished) (one JSON line per finished client, as
    M(ledgerguard.recovery.restic_backup) does), each poll takes the lines written since the previous poll and
    empties that file (under a lock shared with the writer), and returns them as C(lines) of RV(ledgerguard_progress),
    one line per client in the order they finished, so every client's one-line result is shown exactly once however
    short its backup was against the poll interval.
  - For a job that writes no progress file but files into a folder, such as
    M(ledgerguard.recovery.restic_restore) into the drill's sandbox, O(target) counts instead, and
    RV(ledgerguard_progress) then gives the bytes of the regular files under that folder so far (symbolic links not
    followed, not counted) out of O(total).
  - The poll that sees the job ended removes that file and the progress file (the job writes neither after its end),
    so a polling task that saw the end leaves nothing behind. With O(collect), that poll also returns the job's own
    result as RV(result) and removes the async results file, which saves the two M(ansible.builtin.async_status)
    tasks (status, then cleanup) that would otherwise follow. Nothing else is changed.
author: ledgerguard contributors (@ledgerguard)
options:
  results_file:
    description:
      - The async job's results file (C(results_file) of the registered result of the task started with C(async)).
      - The job has finished when the file holds its final result (no C(started) key, or C(finished) set). A missing
        file counts as not finished.
    type: path
    required: true
  progress_file:
    description:
      - The progress file the job writes (see the description).
      - One of O(progress_file) and O(target) is required, and only one.
    type: path
  target:
    description:
      - A folder the job writes files into; RV(ledgerguard_progress) counts the bytes of the regular files under it
        (walked with directory file descriptors, symbolic links neither followed nor counted). A missing folder
        counts as nothing done yet.
      - The poll that sees the job ended reports O(total) as done when that is more (a restore that compared files
        in place writes less than it restored).
    type: path
  total:
    description: The bytes O(target) will hold when the job is done, for RV(ledgerguard_progress)'s C(total); V(0)
      when unknown (C(total) is then null).
    type: int
    default: 0
  wait:
    description:
      - Seconds to wait for the job to end before this poll returns; the poll returns as soon as the results file
        says the job ended (it is read every 0.05 s), else after O(wait) with the progress as it is then.
      - With O(wait) set to the poll interval and C(delay=0) on the polling task, each poll still reports once per
        interval, and the job's end is seen within 0.05 s instead of up to a whole C(delay) later (the backup role's
        fixed cost on a small backup was mostly that sleep).
      - V(0) reads once and returns at once.
    type: float
    default: 0
  collect:
    description:
      - When the job has ended, return its result (the async results file's contents, as
        M(ansible.builtin.async_status) would) as RV(result) and remove the results file.
      - The job's failure is not this poll's failure; look at RV(result) (its C(failed) and C(msg)).
      - While the job runs, nothing is collected and the results file stays.
    type: bool
    default: false
  unit:
    description: What C(done) and C(total) count (for example V(clients)), shown after the numbers.
    type: str
    default: ""
  label:
    description:
      - Text before the job's C(current) in the C(label) of RV(ledgerguard_progress); for example V(backup) gives
        C(backup c002).
      - >-
        When the file describes the client being backed up, the label names it and, once restic has printed a status
        for it, how far restic is - for example C(backup c003 \(示例客户03有限公司\): 45 % of 1.2 GiB, about 3 min left)
        (a name longer than 16 characters is cut with C(…); no estimate while restic has none).
      - When the job works on nothing (C(current) empty, at its end), the last finished entry's C(id) is shown.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: The same in check mode (a job started in check mode writes no progress).
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Reads two files on the managed host (any POSIX system).
"""

EXAMPLES = r"""
- name: Back up the clients as an async job that writes its progress
  ledgerguard.recovery.restic_backup:
    clients: "{{ clients }}"
    progress_file: /var/lib/ledgerguard/backup-progress.json
  async: 86400
  poll: 0
  register: backup_job

- name: Wait for the backup (one progress event per poll)
  ledgerguard.recovery.job_progress:
    results_file: "{{ backup_job.results_file }}"
    progress_file: /var/lib/ledgerguard/backup-progress.json
    unit: clients
    label: backup
  register: backup_progress
  until: backup_progress.finished
  retries: 8640
  delay: 10

- name: The same, the end seen within 0.05 s (each poll waits up to 10 s for it), and the job's result collected
  ledgerguard.recovery.job_progress:
    results_file: "{{ backup_job.results_file }}"
    progress_file: /var/lib/ledgerguard/backup-progress.json
    wait: 10
    collect: true
  register: backup_progress
  until: backup_progress.finished
  retries: 8640
  delay: 0

- name: Wait for a restore into a sandbox, counting the bytes restored so far
  ledgerguard.recovery.job_progress:
    results_file: "{{ restore_job.results_file }}"
    target: /var/tmp/drill/c001
    total: "{{ restore_sizing.bytes }}"
    unit: bytes
    label: restore c001
    wait: 2
    collect: true
  register: restore_progress
  until: restore_progress.finished
  retries: 1800
  delay: 0

- name: Fail when the backup job failed
  ansible.builtin.fail:
    msg: "{{ backup_progress.result.msg | default('the backup failed') }}"
  when: backup_progress.result.failed | default(false)
"""

RETURN = r"""
finished:
  description: Whether the async job has ended (its result can be collected with M(ansible.builtin.async_status), or
    with O(collect)).
  returned: always
  type: bool
result:
  description: The ended job's own result, as its async results file held it (the module's return values, with
    C(failed) and C(msg) when it failed). The results file is removed.
  returned: when collect is set and the job has ended
  type: dict
  sample: {"changed": true, "clients": [{"id": "c001", "status": "ok", "snapshot_id": "1a2b3c4d"}]}
ledgerguard_progress:
  description:
    - C(done), C(total) (null when unknown), C(unit) and C(label), as the C(ledgerguard) CLI reads them, and, when
      the file describes the client being backed up, C(part) (0 to 1), the share of it done (restic's
      C(percent_done); 0 before restic's first status). The CLI's bar then shows (C(done) + C(part)) / C(total).
    - >-
      C(lines) (only when some client finished since the previous poll) - the one-line result of each, in order,
      for example "c001 (客户甲): 3 new, 0 changed, 1.2 KiB added in 0.4 s, snapshot 1a2b3c4d, manifest 5e6f7a8b"
      or "c002 (客户乙): failed (locked)". The CLI prints each as a line of its own.
  returned: always
  type: dict
  sample: {"done": 2, "total": 10, "unit": "clients", "part": 0.45,
           "label": "backup c003 (示例客户03有限公司): 45 % of 1.2 GiB, about 3 min left",
           "lines": ["c002 (宁波示例制造有限公司): 12 new, 3 changed, 4.1 MiB added in 2.3 s, snapshot 1a2b3c4d,
                      manifest 5e6f7a8b"]}
progress:
  description: The progress file's contents as read (empty before the job wrote it, and with O(target)).
  returned: always
  type: dict
  sample: {"done": 1, "total": 3, "current": "c002", "finished": [{"id": "c001", "status": "ok"}],
           "client": {"id": "c002", "name": "宁波示例制造有限公司", "percent_done": 0.45, "bytes_done": 579820584,
                      "total_bytes": 1288490188, "files_done": 1210, "total_files": 4900, "seconds_elapsed": 150,
                      "seconds_remaining": 183, "error_count": 0}}
"""

import os  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import stat  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
import time  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)

from ansible_collections.ledgerguard.recovery.plugins.module_utils.progress_file import (  # noqa: E402 (Ansible modules put DOCUMENTATION before imports)
    client_progress,
    finished_line,
    number,
    read_json,
    take_finished,
)


def job_finished(results: dict | None) -> bool:
    """An async results file holds ``started`` until the job writes its final result."""
    return results is not None and ("started" not in results or bool(results.get("finished")))


def wait_for_end(results_file: str, wait: float, step: float = 0.05) -> dict | None:
    """The job's final result once it ended, read every ``step`` seconds for up to ``wait`` seconds (once when
    ``wait`` is 0); None while it runs."""
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        results = read_json(results_file)
        if job_finished(results):
            return results
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(step, left))


def tree_bytes(root: str) -> int:
    """The bytes of the regular files under ``root`` (0 when it does not exist), walked with directory file
    descriptors; symbolic links are neither followed nor counted, and what vanishes during the walk is skipped."""
    total = 0
    try:
        for _folder, _subfolders, files, folder_fd in os.fwalk(root, follow_symlinks=False):
            for name in files:
                try:
                    st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    except OSError:
        return 0
    return total


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "results_file": {"type": "path", "required": True},
            "progress_file": {"type": "path"},
            "target": {"type": "path"},
            "total": {"type": "int", "default": 0},
            "unit": {"type": "str", "default": ""},
            "label": {"type": "str", "default": ""},
            "wait": {"type": "float", "default": 0},
            "collect": {"type": "bool", "default": False},
        },
        required_one_of=[("progress_file", "target")],
        mutually_exclusive=[("progress_file", "target")],
        supports_check_mode=True,
    )
    params = module.params
    try:
        ended = wait_for_end(params["results_file"], params["wait"])
        finished = ended is not None
        if params["target"]:
            state: dict = {}
            progress = target_progress(params, finished)
        else:
            state = read_json(params["progress_file"]) or {}
            # after the results file: once it says the job ended, every line the job wrote is there
            lines = [finished_line(record) for record in take_finished(params["progress_file"], remove=finished)]
            progress = file_progress(params, state, lines)
        if finished:
            done_with = [params["progress_file"]] + ([params["results_file"]] if params["collect"] else [])
            for path in filter(None, done_with):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
    except OSError as exc:
        module.fail_json(msg=f"cannot read {exc.filename}: {exc.strerror}; check that the job runs on this host")
    collected = {"result": ended} if finished and params["collect"] else {}
    module.exit_json(changed=False, finished=finished, ledgerguard_progress=progress, progress=state, **collected)


def file_progress(params: dict, state: dict, lines: list[str]) -> dict:
    """The progress of a job that writes a progress file (``state``, as read), with the lines of the clients that
    finished since the previous poll."""
    current, part = client_progress(state)
    if not current and isinstance(state.get("finished"), list) and state["finished"]:
        last = state["finished"][-1]
        current = str(last.get("id", "")) if isinstance(last, dict) else ""
    label = " ".join(word for word in (params["label"], current) if word)
    progress = {
        "done": number(state.get("done")) or 0,
        "total": number(state.get("total")),
        "unit": params["unit"],
        "label": label,
    }
    if part is not None:
        progress["part"] = part
    if lines:
        progress["lines"] = lines
    return progress


def target_progress(params: dict, finished: bool) -> dict:
    """The progress of a job that writes into ``target``: its bytes so far out of ``total`` (all of it once the job
    ended)."""
    total = params["total"] if params["total"] > 0 else None
    done = tree_bytes(params["target"])
    if finished and total is not None:
        done = max(done, total)
    return {"done": done, "total": total, "unit": params["unit"], "label": params["label"]}


if __name__ == "__main__":
    main()
