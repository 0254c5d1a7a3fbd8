"""Live progress for ansible-runner runs, and a summary of what happened.

`Progress` is an ansible-runner `event_handler`: pass the instance itself (``run_playbook(run, event_handler=p)``).
On a terminal it keeps one status line up to date (elapsed time, current task, hosts done / failed on that task, a
progress bar when events carry progress) and prints one permanent line per finished task. When stdout is not a TTY
(AWX job output, cron mail, journald) it prints plain timestamped lines instead, no control characters, and throttles
progress lines.

Progress data: any task result (`res`) that carries ``ledgerguard_progress: {done, total, unit, label}`` (directly,
or as the JSON object a command/script task prints on stdout) is drawn as a bar; an optional ``part`` (0 to 1, the
share of the item being worked on, e.g. restic's percentage of the client being backed up) moves the bar to
(done + part) / total while the count stays ``done`` (whole items: in plain mode each new ``done`` gets a line);
``runner_retry`` events of a polling task show the attempt count; async polls show that the job is still running.
``lines`` (a list of strings, e.g. the one-line result of each client backed up since the previous poll) are printed
as permanent lines, each once, in both modes.

`Progress.summary` collects the run: per-task timing and host outcomes, failed tasks with their message (never the
full result: results may hold data the operator did not ask to see), the final `playbook_on_stats` counts and the
`set_stats` data (``artifact_data``, the same thing AWX stores as job artifacts).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

HOST_RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
TASK_START_EVENTS = ("playbook_on_task_start", "playbook_on_handler_task_start")
MAX_MSG = 400


def format_duration(seconds: float) -> str:
    """12.3 -> '12.3s', 75 -> '1m15s', 3723 -> '1h02m03s'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def format_clock(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}"


def format_amount(value: float, unit: str) -> str:
    if unit == "bytes":
        size = float(value)
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if size < 1024 or suffix == "TiB":
                return f"{size:.0f} {suffix}" if suffix == "B" else f"{size:.1f} {suffix}"
            size /= 1024
    if float(value).is_integer():
        return f"{int(value)} {unit}".strip()
    return f"{value:.1f} {unit}".strip()


def progress_bar(fraction: float, width: int = 24) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def extract_progress(res: Any) -> dict | None:
    """The `ledgerguard_progress` dict of a task result, from the result itself or a JSON stdout."""
    if not isinstance(res, dict):
        return None
    data = res.get("ledgerguard_progress")
    if data is None:
        stdout = res.get("stdout")
        if isinstance(stdout, str) and '"ledgerguard_progress"' in stdout:
            for line in reversed(stdout.strip().splitlines()):
                try:
                    parsed = json.loads(line)
                except ValueError:
                    continue
                if isinstance(parsed, dict) and isinstance(parsed.get("ledgerguard_progress"), dict):
                    data = parsed["ledgerguard_progress"]
                    break
    if not isinstance(data, dict):
        return None
    try:
        done = float(data.get("done", 0))
        total = float(data["total"]) if data.get("total") not in (None, "", 0) else None
        part = None if data.get("part") is None else min(max(float(data["part"]), 0.0), 1.0)
    except (TypeError, ValueError):
        return None
    lines = data.get("lines")
    return {
        "done": done,
        "total": total,
        "unit": str(data.get("unit", "")),
        "label": str(data.get("label", "")),
        "part": part,
        "lines": [" ".join(str(x).split()) for x in lines] if isinstance(lines, list) else [],
    }


def result_message(res: Any) -> str:
    """A short, single-line reason for a failed or unreachable result."""
    if not isinstance(res, dict):
        return ""
    if res.get("censored"):
        return str(res["censored"])
    msg = res.get("msg") or ""
    if not msg and res.get("stderr"):
        msg = res["stderr"]
    if not msg and isinstance(res.get("results"), list):
        msgs = [result_message(r) for r in res["results"] if isinstance(r, dict) and r.get("failed")]
        msg = "; ".join(m for m in msgs if m)
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= MAX_MSG else msg[: MAX_MSG - 3] + "..."


@dataclass
class TaskRecord:
    name: str
    role: str | None
    action: str | None
    started: float
    uuid: str | None = None
    finished: float | None = None
    hosts: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return (self.finished or self.started) - self.started

    @property
    def title(self) -> str:
        return f"{self.role} : {self.name}" if self.role else self.name

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "action": self.action,
            "seconds": round(self.duration, 3),
            "hosts": dict(self.hosts),
        }


@dataclass
class Failure:
    task: str
    host: str
    message: str
    ignored: bool = False

    def as_dict(self) -> dict:
        return {"task": self.task, "host": self.host, "message": self.message, "ignored": self.ignored}


@dataclass
class RunSummary:
    playbook: str | None = None
    elapsed: float = 0.0
    tasks: list[TaskRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    artifact_data: dict[str, Any] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)

    @property
    def failed_hosts(self) -> set[str]:
        out = {h for h, n in self.stats.get("failures", {}).items() if n}
        out |= {h for h, n in self.stats.get("dark", {}).items() if n}
        if not self.stats:
            out |= {f.host for f in self.failures if not f.ignored}
        return out

    @property
    def ok(self) -> bool:
        return not self.failed_hosts and not [f for f in self.failures if not f.ignored]

    def host_counts(self) -> dict[str, dict[str, int]]:
        """Per host: the playbook_on_stats counters (ok, changed, failures, dark, skipped, rescued, ignored)."""
        out: dict[str, dict[str, int]] = {}
        for key, per_host in self.stats.items():
            if not isinstance(per_host, dict):
                continue
            for host, n in per_host.items():
                out.setdefault(host, {})[key] = n
        return out

    def as_dict(self) -> dict:
        return {
            "playbook": self.playbook,
            "elapsed_seconds": round(self.elapsed, 3),
            "ok": self.ok,
            "hosts": sorted(self.hosts),
            "failed_hosts": sorted(self.failed_hosts),
            "host_stats": self.host_counts(),
            "tasks": [t.as_dict() for t in self.tasks],
            "failures": [f.as_dict() for f in self.failures],
            "artifact_data": self.artifact_data,
        }


class Progress:
    """ansible-runner event handler that shows live progress and collects a `RunSummary`."""

    def __init__(
        self,
        stream: TextIO | None = None,
        tty: bool | None = None,
        title: str | None = None,
        clock=time.monotonic,
        quiet: bool = False,
        progress_interval: float = 15.0,
        keep_events: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.title = title
        self.clock = clock
        self.quiet = quiet
        self.progress_interval = progress_interval
        self.keep_events = keep_events
        self.t0 = clock()
        self.summary = RunSummary()
        self.current: TaskRecord | None = None
        self.progress: dict | None = None
        self.note: str | None = None
        self._status_shown = False
        # plain mode: (time, fraction, done) of the last progress line per host of the current task
        self._last_plain_progress: dict[str, tuple[float, float, float]] = {}
        self._task_by_uuid: dict[str, TaskRecord] = {}
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        if self.title:
            self._line(f"{self.title}")

    # -- ticker (TTY only: keeps the elapsed clock moving during long, silent tasks) ------------------------
    def start(self, interval: float = 1.0) -> Progress:
        if self.tty and not self.quiet and self._ticker is None:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, args=(interval,), daemon=True)
            self._ticker.start()
        return self

    def stop(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join(timeout=2)
            self._ticker = None

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            with self._lock:
                self._render_status()

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- output ---------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(text)
        self.stream.flush()

    def _clear_status(self) -> None:
        if self.tty and self._status_shown:
            self._write("\r\x1b[K")
            self._status_shown = False

    def _line(self, text: str) -> None:
        """A permanent line (plain mode: timestamped)."""
        if self.tty:
            self._clear_status()
            self._write(text + "\n")
            self._render_status()
        else:
            self._write(f"[{format_clock(self.elapsed())}] {text}\n")

    def _render_status(self) -> None:
        if not self.tty or self.current is None or self.current.finished is not None:
            return
        task = self.current
        done = sum(1 for s in task.hosts.values() if s != "running")
        failed = sum(1 for s in task.hosts.values() if s in ("failed", "unreachable"))
        parts = [f"[{format_clock(self.elapsed())}] {task.title}"]
        if task.hosts:
            parts.append(f"hosts {done}/{len(task.hosts)} done" + (f", {failed} failed" if failed else ""))
        if self.progress:
            parts.append(self._progress_text(self.progress))
        elif self.note:
            parts.append(self.note)
        text = " | ".join(parts)
        self._write("\r\x1b[K" + text[:200])
        self._status_shown = True

    @staticmethod
    def _progress_text(p: dict) -> str:
        label = (p["label"] + " ") if p.get("label") else ""
        if p.get("total"):
            frac = (p["done"] + (p.get("part") or 0.0)) / p["total"]
            return (
                f"{label}{progress_bar(frac)} {frac * 100:5.1f}% "
                f"{format_amount(p['done'], p['unit'])}/{format_amount(p['total'], p['unit'])}"
            )
        return f"{label}{format_amount(p['done'], p['unit'])}"

    # -- event handling -------------------------------------------------------------------------------------
    def __call__(self, event: dict) -> bool:
        try:
            with self._lock:
                self.handle(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # never break a run over display
            self._write(f"\n(progress display error: {exc})\n")
        return self.keep_events

    def handle(self, event: dict) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_start":
            self.summary.playbook = data.get("playbook")
        elif kind == "playbook_on_play_start":
            self._finish_task()
            name = data.get("name") or data.get("play") or data.get("pattern")
            self._line(f"PLAY {name}")
        elif kind in TASK_START_EVENTS:
            self._start_task(data, handler=kind == "playbook_on_handler_task_start")
        elif kind == "runner_on_start":
            task = self._task_for(data)
            host = data.get("host")
            if task is not None and host:
                task.hosts.setdefault(host, "running")
                self.summary.hosts.add(host)
                self._render_status()
        elif kind in HOST_RESULT_EVENTS:
            self._host_result(HOST_RESULT_EVENTS[kind], data)
        elif kind == "runner_item_on_failed":
            msg = result_message(data.get("res"))
            item = (data.get("res") or {}).get("item", "")
            self._line(f"  item failed on {data.get('host')}: {item} {msg}".rstrip())
        elif kind in ("runner_retry", "runner_on_async_poll"):
            res = data.get("res") or {}
            p = extract_progress(res)
            if p:
                self._show_progress(p, data.get("host"))
            elif kind == "runner_retry":
                self.note = f"waiting (attempt {res.get('attempts', '?')}/{res.get('retries', '?')})"
                self._render_status()
            else:
                self.note = "running (async job polled)"
                self._render_status()
        elif kind == "playbook_on_stats":
            self._finish_task()
            self.summary.stats = {
                k: dict(data.get(k) or {})
                for k in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
            }
            self.summary.artifact_data = dict(data.get("artifact_data") or {})
            self.summary.hosts |= set(self.summary.stats.get("processed", {}))
        self.summary.elapsed = self.elapsed()

    def _task_for(self, data: dict) -> TaskRecord | None:
        uuid = data.get("task_uuid")
        if uuid and uuid in self._task_by_uuid:
            return self._task_by_uuid[uuid]
        return self.current

    def _start_task(self, data: dict, handler: bool = False) -> None:
        self._finish_task()
        name = data.get("name") or data.get("task") or data.get("task_action") or "?"
        role = data.get("role") or None
        if role:
            # ansible names role tasks "<role or its FQCN> : <task>"; keep just the task name.
            name = re.sub(rf"^(\S+\.)?{re.escape(role)} : ", "", name)
        task = TaskRecord(
            name=("HANDLER " if handler else "") + name,
            role=role,
            action=data.get("task_action"),
            started=self.elapsed(),
            uuid=data.get("task_uuid") or data.get("uuid"),
        )
        self.current = task
        self.progress = None
        self._last_plain_progress = {}
        self.note = None
        self.summary.tasks.append(task)
        if task.uuid:
            self._task_by_uuid[task.uuid] = task
        if self.tty:
            self._render_status()
        else:
            self._line(f"TASK {task.title}")

    def _host_result(self, status: str, data: dict) -> None:
        task = self._task_for(data)
        host = data.get("host") or "?"
        self.summary.hosts.add(host)
        res = data.get("res") or {}
        ignored = bool(data.get("ignore_errors"))
        if status == "failed" and ignored:
            status = "failed (ignored)"
        if task is not None:
            task.hosts[host] = status
        p = extract_progress(res)
        if p:
            self._show_progress(p, host)
        if status.startswith("failed") or status == "unreachable":
            msg = result_message(res)
            self.summary.failures.append(
                Failure(task=task.title if task else "?", host=host, message=msg, ignored=ignored)
            )
            word = "UNREACHABLE" if status == "unreachable" else ("failed (ignored)" if ignored else "FAILED")
            self._line(f"  {word} {host}: {msg}" if msg else f"  {word} {host}")
        elif status == "ok" and task is not None and (task.action or "").endswith("debug") and res.get("msg"):
            # debug messages are meant for the operator: show them (single line).
            self._line(f"  {host}: {' '.join(str(res['msg']).split())[:MAX_MSG]}")
        elif not self.tty and status == "ok" and res.get("changed"):
            self._line(f"  changed {host}")
        self._render_status()

    def _show_progress(self, p: dict, host: str | None = None) -> None:
        # items finished since the previous poll (a backup's clients): each once, as a permanent line, never throttled
        for line in p.get("lines") or []:
            self._line(f"  {host}: {line[:MAX_MSG]}" if host else f"  {line[:MAX_MSG]}")
        self.progress = p
        if self.tty:
            self._render_status()
            return
        # Plain mode: one line per 10 % step or per progress_interval seconds, whichever first, and with `part` (done
        # counts whole items) one per item done, per host of the task (the hosts of one task poll side by side; a new
        # task starts again from nothing).
        now = self.elapsed()
        frac = (p["done"] + (p.get("part") or 0.0)) / p["total"] if p.get("total") else -1.0
        last_t, last_frac, last_done = self._last_plain_progress.get(host or "", (-1.0, -1.0, -1.0))
        new_item = p.get("part") is not None and p["done"] != last_done
        if new_item or (frac >= 0 and (frac - last_frac >= 0.1 or frac >= 1.0 > last_frac)):
            pass
        elif now - last_t < self.progress_interval:
            return
        self._last_plain_progress[host or ""] = (now, frac, p["done"])
        self._line(f"  progress {self._progress_text(p)}")

    def _finish_task(self) -> None:
        task = self.current
        if task is None or task.finished is not None:
            return
        task.finished = self.elapsed()
        if not self.tty:
            self.current = None
            return
        self._clear_status()
        states = list(task.hosts.values())
        if not states:
            mark = "-"
        elif any(s in ("failed", "unreachable") for s in states):
            mark = "x"
        elif all(s == "skipped" for s in states):
            mark = "-"
        else:
            mark = "+"
        changed = ""
        self._write(f"{mark} {task.title} ({format_duration(task.duration)}){changed}\n")
        self.current = None

    # -- summary ------------------------------------------------------------------------------------------
    def render_summary(self, status: str | None = None, rc: int | None = None, extra: dict | None = None) -> str:
        s = self.summary
        lines = ["", "=" * 60]
        head = f"{s.playbook or 'run'}: {status or ('successful' if s.ok else 'failed')}"
        if rc is not None:
            head += f" (rc {rc})"
        lines.append(head + f" in {format_duration(s.elapsed)}")
        counts = s.host_counts()
        for host in sorted(counts):
            c = counts[host]
            lines.append(
                f"  {host}: ok={c.get('ok', 0)} changed={c.get('changed', 0)} failed={c.get('failures', 0)} "
                f"unreachable={c.get('dark', 0)} skipped={c.get('skipped', 0)} rescued={c.get('rescued', 0)}"
            )
        real = [f for f in s.failures if not f.ignored]
        if real:
            lines.append("Failed steps:")
            for f in real:
                lines.append(f"  - {f.task} on {f.host}: {f.message}")
        slow = sorted((t for t in s.tasks if t.duration >= 1.0), key=lambda t: -t.duration)[:5]
        if slow:
            lines.append("Longest steps:")
            for t in slow:
                lines.append(f"  {format_duration(t.duration):>9}  {t.title}")
        for key, value in (extra or {}).items():
            lines.append(f"{key}: {value}")
        lines.append("=" * 60)
        return "\n".join(lines) + "\n"

    def print_summary(self, status: str | None = None, rc: int | None = None, extra: dict | None = None) -> None:
        self.stop()
        self._finish_task()
        self._clear_status()
        self._write(self.render_summary(status=status, rc=rc, extra=extra))


def event_time(event: dict) -> datetime | None:
    """The `created` timestamp of an event, if any."""
    created = event.get("created")
    if not created:
        return None
    try:
        return datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return None
