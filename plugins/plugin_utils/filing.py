# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore order from filing deadlines (issue 16), pure functions, unit-tested (tests/unit/plugins/plugin_utils).

- ``load_calendar``: the filing calendar (plugins/plugin_utils/data/filing_calendar_*.yml, or the firm's own file
  named by ``ledgerguard_filing_calendar``), checked; docs/filing_calendar.md describes the format.
- ``next_deadline``: a client's nearest deadline after a time (the incident's detection) among the filings it declares
  (``ledgerguard_clients[].filings``).
- ``order_key`` / ``order_clients``: the restore order, nearest deadline first, then the hand-set ``priority``, then
  the id (then the host). One key for every host: each host restores its clients in the order of the incident's one
  queue, and ``restore_queue`` builds that queue across the hosts for the plan and the report.
- ``drill_rates`` / ``restore_queue``: each client's ETA from the newest drill measurement of its restore throughput
  (bytes/s, else files/s), and a warning when the ETA is after the deadline (time to apply for an extension).
"""

from __future__ import annotations

import datetime
import glob
import os
import re
from typing import Any

import yaml

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CERTAINTIES = ("confirmed", "secondary", "unconfirmed")
NO_MEASUREMENT = "no drill measurement"
OFFSET_RE = re.compile(r"^([+-])([01][0-9]|2[0-3]):([0-5][0-9])$")


class _Loader(yaml.SafeLoader):
    """Safe YAML with dates kept as text: a bad date is then reported with its entry, not as a YAML error."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class CalendarError(ValueError):
    """The filing calendar cannot be used; the message names the file, the entry and what to write."""


def default_calendar_files() -> list[str]:
    return sorted(glob.glob(os.path.join(DATA_DIR, "filing_calendar_*.yml")))


def _as_date(value: Any, where: str) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise CalendarError(f"{where}: date {value!r} is not a date; write it as 2026-12-15") from None


def _offset(text: Any, where: str) -> datetime.timezone:
    match = OFFSET_RE.match(str(text or "+08:00"))
    if not match:
        raise CalendarError(f'{where}: utc_offset {text!r} is not an offset; write it as "+08:00"')
    sign = -1 if match.group(1) == "-" else 1
    return datetime.timezone(sign * datetime.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def parse_calendar(doc: Any, name: str) -> dict[str, Any]:
    """One calendar document (the YAML's mapping) -> {warning, sources, deadlines: [...sorted by due]}."""
    if not isinstance(doc, dict) or not isinstance(doc.get("deadlines"), list):
        raise CalendarError(
            f"filing calendar {name}: expected a mapping with a list 'deadlines' (docs/filing_calendar.md)"
        )
    tz = _offset(doc.get("utc_offset"), f"filing calendar {name}")
    sources = doc.get("sources") or {}
    if not isinstance(sources, dict):
        raise CalendarError(f"filing calendar {name}: 'sources' must be a mapping of key -> {{title, seen, certainty}}")
    out = []
    for index, entry in enumerate(doc["deadlines"]):
        where = f"filing calendar {name}, deadlines[{index}]"
        if not isinstance(entry, dict):
            raise CalendarError(f"{where}: expected a mapping with date, filings, period, source")
        day = _as_date(entry.get("date"), where)
        filings = entry.get("filings")
        if isinstance(filings, str):
            filings = [filings]
        if not filings or not all(isinstance(f, str) and f for f in filings):
            raise CalendarError(f"{where}: 'filings' must list the filing kinds it closes, e.g. [vat_monthly]")
        key = str(entry.get("source") or "")
        if key not in sources:
            raise CalendarError(
                f"{where}: source {key!r} is not a key of 'sources' ({', '.join(sorted(sources)) or 'none'}); "
                "every date names where it comes from"
            )
        source = sources[key] if isinstance(sources[key], dict) else {"title": str(sources[key])}
        certainty = str(entry.get("certainty") or source.get("certainty") or "unconfirmed")
        if certainty not in CERTAINTIES:
            raise CalendarError(f"{where}: certainty {certainty!r} is not one of {', '.join(CERTAINTIES)}")
        # The last day counts in full: the deadline is the end of that day in the calendar's zone.
        due = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tz)
        for kind in filings:
            out.append(
                {
                    "date": day.isoformat(),
                    "due": due.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
                    "utc_offset": str(doc.get("utc_offset") or "+08:00"),
                    "filing": kind,
                    "period": str(entry.get("period") or ""),
                    "source": key,
                    "source_title": " ".join(str(source.get("title") or key).split()),
                    "certainty": certainty,
                    "note": " ".join(str(entry.get("note") or "").split()),
                }
            )
    return {"warning": " ".join(str(doc.get("warning") or "").split()), "deadlines": out}


def load_calendar(path: str | list[str] | None = None) -> dict[str, Any]:
    """The calendar from ``path`` (a file or a list of files: the firm's own, replacing the shipped ones) or, when
    empty, the files shipped in plugins/plugin_utils/data. Entries of several files are merged and sorted."""
    files = [path] if isinstance(path, str) and path else list(path or []) or default_calendar_files()
    if not files:
        raise CalendarError(f"no filing calendar: none shipped in {DATA_DIR} and ledgerguard_filing_calendar is empty")
    warnings, deadlines = [], []
    for name in files:
        try:
            with open(name, encoding="utf-8") as handle:
                doc = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader
        except OSError as exc:
            raise CalendarError(
                f"filing calendar {name} cannot be read ({exc.strerror}); set ledgerguard_filing_calendar to a "
                "readable YAML file on the controller, or leave it empty for the shipped calendar"
            ) from None
        except yaml.YAMLError as exc:
            raise CalendarError(f"filing calendar {name} is not valid YAML: {exc}") from None
        part = parse_calendar(doc, name)
        if part["warning"] and part["warning"] not in warnings:
            warnings.append(part["warning"])
        deadlines.extend(part["deadlines"])
    deadlines.sort(key=lambda d: (d["due"], d["filing"]))
    return {"files": files, "warning": " ".join(warnings), "deadlines": deadlines}


def _when(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    text = str(value).strip().replace("Z", "+00:00")
    when = datetime.datetime.fromisoformat(text)
    # Times without a zone are UTC (the incident's own times always carry one).
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _maybe_when(value: Any) -> datetime.datetime | None:
    try:
        return _when(value) if value else None
    except ValueError:
        return None


def filings_of(client: dict[str, Any]) -> list[str]:
    value = client.get("filings") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def next_deadline(filings: list[str], calendar: dict[str, Any], after: Any) -> tuple[dict | None, list[str]]:
    """The first deadline due after ``after`` for any of ``filings``, and the problems to show (an unknown filing
    kind, a declared filing the calendar has no later date for)."""
    now = _when(after)
    known = {d["filing"] for d in calendar["deadlines"]}
    problems, best = [], None
    for kind in filings:
        if kind not in known:
            problems.append(
                f"filing {kind!r} has no dates in the filing calendar (known: {', '.join(sorted(known))}); "
                "it does not count for the restore order"
            )
            continue
        upcoming = [d for d in calendar["deadlines"] if d["filing"] == kind and _when(d["due"]) > now]
        if not upcoming:
            problems.append(
                f"the filing calendar has no {kind} date after {now.date().isoformat()}: add the next dates "
                "(ledgerguard_filing_calendar)"
            )
            continue
        if best is None or (upcoming[0]["due"], kind) < (best["due"], best["filing"]):
            best = upcoming[0]
    return (dict(best) if best else None), problems


def _priority(entry: dict[str, Any]) -> int:
    value = entry.get("priority")
    return 100 if value is None or isinstance(value, bool) or not str(value).lstrip("-").isdigit() else int(value)


def order_key(entry: dict[str, Any]) -> tuple:
    """Nearest deadline first (none: last), then priority (default 100), then id, then host."""
    deadline = entry.get("next_deadline") or {}
    due = str(deadline.get("due") or "")
    return (0 if due else 1, due, _priority(entry), str(entry.get("id")), str(entry.get("host", "")))


def annotate(client: dict[str, Any], calendar: dict[str, Any], after: Any) -> dict[str, Any]:
    """The client with ``filings``, ``next_deadline`` (None without filings) and ``filing_warnings``."""
    deadline, problems = next_deadline(filings_of(client), calendar, after)
    problems = list(client.get("filing_warnings") or []) + problems
    return {**client, "filings": filings_of(client), "next_deadline": deadline, "filing_warnings": problems}


def order_clients(clients: list[dict[str, Any]], calendar: dict[str, Any], after: Any) -> list[dict[str, Any]]:
    """One host's clients, annotated, in the incident queue's order."""
    return sorted((annotate(c, calendar, after) for c in clients), key=order_key)


# -- ETA from the drills ---------------------------------------------------------------------------------------------
def drill_rates(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest drill measurement per (host, client id) and per ('', client id) (any host): bytes/s and files/s of
    the drill's restore, with the drill's id, host and time."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records or []:
        if not isinstance(rec, dict) or rec.get("kind", "drill") != "drill":
            continue
        when = str(rec.get("finished") or rec.get("started") or "")
        for client in rec.get("clients") or []:
            if not isinstance(client, dict):
                continue
            seconds = float(client.get("restore_seconds") or 0)
            size, files = int(client.get("bytes") or 0), int(client.get("files") or 0)
            if seconds <= 0 or (size <= 0 and files <= 0):
                continue
            rate = {
                "bytes_per_second": size / seconds if size > 0 else None,
                "files_per_second": files / seconds if files > 0 else None,
                "seconds": seconds,
                "drill_id": str(rec.get("drill_id") or ""),
                "host": str(rec.get("host") or ""),
                "at": when,
            }
            for key in ((rate["host"], str(client.get("id"))), ("", str(client.get("id")))):
                if key not in out or when >= out[key]["at"]:
                    out[key] = rate
    return out


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def estimate_seconds(entry: dict[str, Any], rate: dict[str, Any] | None) -> tuple[float | None, str]:
    """The restore time of one client from the drill rate and the size to restore (its snapshot's stats), and how."""
    if not rate:
        return None, NO_MEASUREMENT
    stats = (entry.get("snapshot") or {}).get("stats") or {}
    size, files = int(stats.get("bytes") or 0), int(stats.get("files") or 0)
    basis = f"drill {rate['drill_id']} on {rate['host']} ({rate['at']})"
    if size and rate.get("bytes_per_second"):
        return size / rate["bytes_per_second"], f"{size} bytes at {_rate(rate['bytes_per_second'])} B/s, {basis}"
    if files and rate.get("files_per_second"):
        speed = _rate(rate["files_per_second"])
        return files / rate["files_per_second"], f"{files} files at {speed} files/s, {basis}"
    return rate["seconds"], f"as long as the {basis} took"


def _iso(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deadline_text(deadline: dict[str, Any] | None) -> str:
    if not deadline:
        return "no filing deadline (no filings declared, or none in the calendar)"
    text = (
        f"{deadline['filing']} for {deadline['period']} due {deadline['date']} "
        f"(end of day, UTC{deadline['utc_offset']}; {deadline['certainty']}: {deadline['source']})"
    )
    return text + (f"; {deadline['note']}" if deadline.get("note") else "")


def restore_queue(
    entries: list[dict[str, Any]], drills: list[dict[str, Any]] | None = None, start: Any = None
) -> list[dict[str, Any]]:
    """The incident's one restore queue across hosts (each entry: a host's restore result or plan entry, with host,
    id, priority, next_deadline, snapshot), each with its position, ETA and warnings. Hosts restore in parallel, each
    its own clients one after the other in queue order: a client's ETA is ``start`` plus the estimated restore times
    of its host's clients up to it. A restored client's ETA is its real finish time; a failed one (or one the plan
    cannot restore) has none and is warned about when it has a deadline."""
    begin = _when(start) if start else datetime.datetime.now(datetime.UTC)
    rates = drill_rates(drills or [])
    elapsed: dict[str, float] = {}
    unknown_ahead: dict[str, list[str]] = {}
    out = []
    for position, entry in enumerate(sorted(entries, key=order_key), start=1):
        host, cid = str(entry.get("host", "")), str(entry.get("id"))
        deadline = entry.get("next_deadline")
        item = {
            "position": position,
            "host": host,
            "id": cid,
            "name": entry.get("name", ""),
            "priority": _priority(entry),
            "status": entry.get("status", ""),
            "next_deadline": deadline,
            "deadline": deadline_text(deadline),
            "warnings": list(entry.get("filing_warnings") or []),
        }
        finished = _maybe_when(entry.get("finished")) if entry.get("status") == "ok" else None
        if finished:
            eta, item["eta_basis"], item["eta_estimated"] = finished, "restored", False
        elif entry.get("status") in ("failed", "not_done"):
            eta, item["eta_basis"], item["eta_estimated"] = None, f"not restored ({entry['status']})", False
            if deadline:
                item["warnings"].append(
                    f"NOT RESTORED: client {cid} on {host} has its {deadline['filing']} deadline {deadline['date']} "
                    f"({deadline['period']}): restore it or apply for an extension of the filing (延期申报) in time"
                )
        else:
            rate = rates.get((host, cid)) or rates.get(("", cid))
            seconds, basis = estimate_seconds(entry, rate)
            item["eta_estimated"] = True
            if seconds is None:
                eta = None
                item["eta_basis"] = NO_MEASUREMENT
                unknown_ahead.setdefault(host, []).append(cid)
            else:
                elapsed[host] = elapsed.get(host, 0.0) + seconds
                eta = begin + datetime.timedelta(seconds=elapsed[host])
                item["eta_basis"] = basis
                if unknown_ahead.get(host):
                    item["eta_basis"] += f"; at least: {NO_MEASUREMENT} for {', '.join(unknown_ahead[host])} ahead"
        item["eta"] = _iso(eta) if eta else ""
        if eta and deadline and eta > _when(deadline["due"]):
            verb = "was restored" if not item["eta_estimated"] else "is expected to be restored"
            item["late"] = True
            item["warnings"].append(
                f"LATE: client {cid} on {host} {verb} at {item['eta']}, after its {deadline['filing']} deadline "
                f"{deadline['date']} ({deadline['period']}): apply for an extension of the filing (延期申报) in time"
            )
        else:
            item["late"] = False
        out.append(item)
    return out


def queue_lines(queue: list[dict[str, Any]], warning: str = "") -> list[str]:
    """The queue as text lines for the plan and the report."""
    lines = ["Restore queue of the incident (all hosts; nearest filing deadline first, then priority, then id):"]
    for q in queue:
        eta = q["eta"] or q["eta_basis"]
        lines.append(
            f"{q['position']}. {q['id']} ({q['name']}) on {q['host']}, priority {q['priority']}: next deadline "
            f"{q['deadline']}; ETA {eta}" + (f" ({q['eta_basis']})" if q["eta"] else "")
        )
        lines.extend(f"   warning: {w}" for w in q["warnings"])
    if warning:
        lines.append(f"Filing calendar: {warning}")
    return lines
