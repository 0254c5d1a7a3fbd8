"""ledgerguard.progress: live progress from ansible-runner events, plain and TTY output, run summary."""

from __future__ import annotations

import io
import json

from ledgerguard.progress import Progress, extract_progress, format_duration, progress_bar


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def ev(kind, **data):
    return {"event": kind, "event_data": data}


def feed(p: Progress, clock: Clock):
    clock.t = 0
    p(ev("playbook_on_start", playbook="drill.yml"))
    p(ev("playbook_on_play_start", name="Recovery drill"))
    p(ev("playbook_on_task_start", task="ledgerguard.recovery.drill : Restore", role="drill", task_uuid="t1"))
    p(ev("runner_on_start", host="web1", task_uuid="t1"))
    p(ev("runner_on_start", host="web2", task_uuid="t1"))
    clock.t = 5
    poll = json.dumps({"ledgerguard_progress": {"done": 512, "total": 1024, "unit": "bytes", "label": "restore c001"}})
    p(ev("runner_retry", host="web1", task_uuid="t1", res={"stdout": poll, "attempts": 1, "retries": 10}))
    clock.t = 12
    p(ev("runner_on_ok", host="web1", task_uuid="t1", res={"changed": True}))
    p(ev("runner_on_failed", host="web2", task_uuid="t1", res={"msg": "restic: wrong password\nsecond line"}))
    p(ev("playbook_on_task_start", task="Optional", task_uuid="t2"))
    clock.t = 13
    p(ev("runner_on_failed", host="web1", task_uuid="t2", ignore_errors=True, res={"msg": "ignored one"}))
    clock.t = 14
    p(
        ev(
            "playbook_on_stats",
            ok={"web1": 3},
            changed={"web1": 1},
            failures={"web2": 1},
            dark={},
            skipped={},
            rescued={},
            ignored={"web1": 1},
            processed={"web1": 1, "web2": 1},
            artifact_data={"ledgerguard_drill": {"passed": False}},
        )
    )


def test_plain_output_is_timestamped_lines_without_control_characters():
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=out, tty=False, clock=clock, title="ledgerguard drill")
    feed(p, clock)
    p.print_summary(status="failed", rc=2)
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "[00:00:00] ledgerguard drill"
    assert "[00:00:00] TASK drill : Restore" in lines
    assert "[00:00:05]   progress restore c001 [############------------]  50.0% 512 B/1.0 KiB" in lines
    assert "[00:00:12]   FAILED web2: restic: wrong password second line" in lines
    assert "[00:00:13]   failed (ignored) web1: ignored one" in lines
    assert "drill.yml: failed (rc 2) in 14.0s" in text
    assert "  web2: ok=0 changed=0 failed=1 unreachable=0 skipped=0 rescued=0" in text
    assert "  - drill : Restore on web2: restic: wrong password second line" in text
    assert "ignored one" not in text.split("Failed steps:")[1]  # ignored failures are not "failed steps"


def test_tty_output_keeps_one_status_line_and_a_line_per_task():
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=out, tty=True, clock=clock)
    feed(p, clock)
    text = out.getvalue()
    assert "\r\x1b[K[00:00:05] drill : Restore | hosts 0/2 done | restore c001 [############------------]" in text
    assert "x drill : Restore (12.0s)\n" in text  # a host failed: the task line is marked x
    assert "hosts 2/2 done, 1 failed" in text
    assert "+ Optional (2.0s)\n" in text  # an ignored failure does not mark the task failed


def test_summary_collects_tasks_failures_stats_and_artifacts():
    clock = Clock()
    p = Progress(stream=io.StringIO(), tty=False, clock=clock)
    feed(p, clock)
    s = p.summary.as_dict()
    assert s["playbook"] == "drill.yml"
    assert s["ok"] is False and s["failed_hosts"] == ["web2"] and s["hosts"] == ["web1", "web2"]
    assert s["tasks"][0] == {
        "name": "Restore",
        "role": "drill",
        "action": None,
        "seconds": 12.0,
        "hosts": {"web1": "ok", "web2": "failed"},
    }
    assert s["failures"][1] == {"task": "Optional", "host": "web1", "message": "ignored one", "ignored": True}
    assert s["artifact_data"] == {"ledgerguard_drill": {"passed": False}}
    assert s["host_stats"]["web1"]["ok"] == 3


def test_handler_keeps_events_for_the_artifacts_and_survives_odd_events():
    p = Progress(stream=io.StringIO(), tty=False)
    assert p({"event": "verbose", "stdout": "x"}) is True
    assert p({"event": "runner_on_ok", "event_data": None}) is True
    assert Progress(stream=io.StringIO(), keep_events=False)({"event": "verbose"}) is False


def test_no_log_results_show_the_censored_text_only():
    out = io.StringIO()
    p = Progress(stream=out, tty=False)
    p(ev("playbook_on_task_start", task="Secret"))
    p(ev("runner_on_failed", host="h", res={"censored": "the output has been hidden due to no_log"}))
    assert "FAILED h: the output has been hidden due to no_log" in out.getvalue()


def test_extract_progress_and_formatting():
    assert extract_progress({"ledgerguard_progress": {"done": 5, "total": 10}})["total"] == 10.0
    assert extract_progress({"stdout": "noise\n" + json.dumps({"ledgerguard_progress": {"done": 1}})})["total"] is None
    assert extract_progress({"stdout": "{not json"}) is None
    assert extract_progress("x") is None
    assert progress_bar(0.5, 10) == "[#####-----]"
    assert format_duration(75) == "1m15s" and format_duration(3723) == "1h02m03s" and format_duration(9.5) == "9.5s"


def test_debug_messages_are_shown_to_the_operator():
    out = io.StringIO()
    p = Progress(stream=out, tty=False)
    p(ev("playbook_on_task_start", task="Show the plan", task_action="ansible.builtin.debug"))
    p(ev("runner_on_ok", host="books1", res={"msg": "Check mode: would restore\nsnapshot 4f3a9c01"}))
    assert "  books1: Check mode: would restore snapshot 4f3a9c01\n" in out.getvalue()


def test_plain_progress_steps_are_counted_per_host_and_per_task():
    """Two hosts polling the same task each get their steps (issue 15: per-client backup progress); a later task's
    progress starts again from nothing instead of being held back by the last task's 100 %."""
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=out, tty=False, clock=clock, title="ledgerguard backup")

    def poll(host, done, total, label, uuid):
        res = {"ledgerguard_progress": {"done": done, "total": total, "unit": "clients", "label": label}}
        p(ev("runner_retry", host=host, task_uuid=uuid, res=res))

    p(ev("playbook_on_task_start", task="Wait for the clients' backup", task_uuid="t1"))
    clock.t = 1
    poll("books-hz01", 1, 3, "backup c002", "t1")
    poll("books-nb01", 0, 2, "backup c101", "t1")  # behind the other host's 33 %: still its own first step
    poll("books-hz01", 1, 3, "backup c002", "t1")  # no step, within the interval: no line
    p(ev("playbook_on_task_start", task="Wait again", task_uuid="t2"))
    clock.t = 2
    poll("books-hz01", 0, 3, "backup c001", "t2")
    lines = [line for line in out.getvalue().splitlines() if "progress" in line]
    assert lines == [
        "[00:00:01]   progress backup c002 [########----------------]  33.3% 1 clients/3 clients",
        "[00:00:01]   progress backup c101 [------------------------]   0.0% 0 clients/2 clients",
        "[00:00:02]   progress backup c001 [------------------------]   0.0% 0 clients/3 clients",
    ]


def test_a_clients_share_done_moves_the_bar_and_makes_its_own_steps():
    """Issue 15: job_progress's ``part`` (restic's percentage of the client being backed up) moves the bar within a
    client and, in plain mode, a 10 % step of the whole run inside one long client gets its line; the count stays
    the clients done."""
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=out, tty=False, clock=clock)
    p(ev("playbook_on_task_start", task="Wait for the clients' backup", task_uuid="t1"))

    def poll(part, label):
        res = {"ledgerguard_progress": {"done": 0, "total": 1, "unit": "clients", "label": label, "part": part}}
        p(ev("runner_retry", host="books-hz01", task_uuid="t1", res=res))

    clock.t = 1
    poll(0.2, "backup c001 (杭州示例): 20 % of 1.2 GiB, about 4 min left")
    poll(0.25, "backup c001 (杭州示例): 25 % of 1.2 GiB, about 3 min left")  # no step, within the interval
    clock.t = 2
    poll(0.45, "backup c001 (杭州示例): 45 % of 1.2 GiB, about 3 min left")
    assert [line for line in out.getvalue().splitlines() if "progress" in line] == [
        "[00:00:01]   progress backup c001 (杭州示例): 20 % of 1.2 GiB, about 4 min left [#####-------------------] "
        " 20.0% 0 clients/1 clients",
        "[00:00:02]   progress backup c001 (杭州示例): 45 % of 1.2 GiB, about 3 min left [###########-------------] "
        " 45.0% 0 clients/1 clients",
    ]
    assert extract_progress({"ledgerguard_progress": {"done": 1, "total": 2, "part": 7}})["part"] == 1.0
    assert extract_progress({"ledgerguard_progress": {"done": 1, "total": 2}})["part"] is None


def test_each_new_client_gets_its_line_after_a_long_one():
    """With ``part``, ``done`` counts whole clients: a client started right after another one's last 10 % step still
    gets its line in plain mode (c002's start is only 3 % of the run past c001 at 90 %)."""
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=out, tty=False, clock=clock)
    p(ev("playbook_on_task_start", task="Wait for the clients' backup", task_uuid="t1"))
    for t, done, part, label in ((1, 0, 0.0, "backup c001 (杭州)"), (2, 0, 0.9, "backup c001 (杭州): 90 % of 9.0 GiB"),
                                 (3, 1, 0.0, "backup c002 (宁波)"), (4, 3, None, "backup c003")):  # fmt: skip
        clock.t = t
        shown = {"done": done, "total": 3, "unit": "clients", "label": label, "part": part}
        p(ev("runner_retry", host="h", task_uuid="t1", res={"ledgerguard_progress": shown}))
    lines = [line for line in out.getvalue().splitlines() if "   progress " in line]
    assert [line.split("   progress ")[1].split(" [")[0] for line in lines] == [
        "backup c001 (杭州)",
        "backup c001 (杭州): 90 % of 9.0 GiB",
        "backup c002 (宁波)",
        "backup c003",
    ]


def test_each_finished_client_line_is_printed_once_in_both_modes():
    """Issue 15: job_progress's ``lines`` (clients finished since the previous poll) are permanent lines, each printed
    once and never throttled, also when several arrive in one poll within the progress interval, and in TTY mode."""
    for tty in (False, True):
        out, clock = io.StringIO(), Clock()
        p = Progress(stream=out, tty=tty, clock=clock)
        p(ev("playbook_on_task_start", task="Wait for the clients' backup", task_uuid="t1"))
        polls = [
            ["c001 (客户甲): 1 new, 0 changed, 1.4 KiB added in 0.3 s, snapshot 1a2b3c4d"],
            [],
            ["c002 (客户乙): 2 new, 0 changed, 2.0 KiB added in 0.2 s, snapshot 5e6f7a8b",
             "c003 (客户丙): failed (locked)"],
        ]  # fmt: skip
        for done, lines in enumerate(polls):
            clock.t = 1 + done * 0.1  # well within the plain mode's progress interval
            shown = {"done": done + 1, "total": 3, "unit": "clients", "label": "backup", "lines": lines}
            p(ev("runner_retry", host="books-hz01", task_uuid="t1", res={"ledgerguard_progress": shown}))
        text = out.getvalue()
        for line in (x for poll in polls for x in poll):
            assert text.count(f"  books-hz01: {line}\n") == 1, (tty, text)
        assert text.index("c001 (客户甲)") < text.index("c002 (客户乙)") < text.index("c003 (客户丙)")
    assert extract_progress({"ledgerguard_progress": {"done": 1, "lines": "not a list"}})["lines"] == []
