# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compliance checklist, the incident grading record and the notice / reporting deadlines. Pure functions.

Every requirement row carries its sources from ``SOURCES``. A source has a confidence taken from the research notes
(docs/compliance.md): ``V`` wording seen in a source, ``S`` secondary source only, ``U`` unconfirmed. ``U`` is never
rendered as law: ``source_text`` appends "(unconfirmed)" / "（未经确认）", and the numbers that only the product
chose (RPO 24 h, restore test every 30 days, the internal PIPL notice target) are labelled product defaults.

Row status is one of ``PASS``, ``FAIL``, ``NOT-APPLICABLE`` (the duty does not arise, with the recorded reason) and
``MANUAL`` (a person must still act or decide; an open deadline with time left is MANUAL).

Times. Every timestamp must carry a timezone (ISO 8601 with an offset or ``Z``); naive ones are refused. Hour-based
deadlines (1 h, 4 h, 72 h) are elapsed time; day-based ones (30 days) are calendar days on the wall clock of the
report timezone (default Asia/Shanghai). Displayed times are converted to that timezone.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

import yaml

from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeutil

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9 has no zoneinfo; the filter runs on the controller (3.11+)
    ZoneInfo = None  # type: ignore[assignment,misc]
    ZoneInfoNotFoundError = KeyError  # type: ignore[assignment,misc]

from ansible_collections.ledgerguard.recovery.plugins.module_utils.retention import RetentionPolicyError, lint_policy

LEGAL_SOURCES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "legal_sources.yml")


def _load_legal(path: str = LEGAL_SOURCES_FILE) -> dict[str, Any]:
    """The legal sources and grading thresholds shipped with the collection (plugin_utils/data/legal_sources.yml)."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    missing = [
        k for k in ("sources", "confidence_suffix", "grades", "below_threshold", "reportable_grades") if k not in data
    ]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}; restore the file from the collection")
    return data


PASS = "PASS"  # noqa: S105 - a checklist status, not a password
FAIL = "FAIL"
NOT_APPLICABLE = "NOT-APPLICABLE"
MANUAL = "MANUAL"
STATUSES = (PASS, FAIL, NOT_APPLICABLE, MANUAL)

DEFAULT_TIMEZONE = "Asia/Shanghai"
_UTC = _dt.timezone.utc  # noqa: UP017

# Product defaults (not legal requirements; DOMAIN.md marks the RPO and 30-day values as unconfirmed defaults).
DEFAULT_SETTINGS: dict[str, Any] = {
    "rpo_hours": 24,
    "verify_max_age_days": 7,
    "restore_test_max_age_days": 30,
    "drill_max_age_months": 12,
    "rto_target_seconds": None,
    "pipl_notice_target_hours": 24,
    "gdpr": False,
    "timezone": DEFAULT_TIMEZONE,
}

# The sources and the grading thresholds are data (data/legal_sources.yml): persons [V], losses in CNY [S].
_LEGAL = _load_legal()
GRADES: list[dict[str, Any]] = [{**g, "loss": float(g["loss_cny"])} for g in _LEGAL["grades"]]
BELOW_THRESHOLD: dict[str, str] = _LEGAL["below_threshold"]
REPORTABLE_GRADES = tuple(_LEGAL["reportable_grades"])

INCIDENT_RECORD_FIELDS = (
    "discoverer",
    "detected_at",
    "place",
    "systems",
    "data_categories",
    "persons_affected",
    "law_enforcement_contacted",
)
NOTICE_FIELDS = ("data_categories", "cause", "possible_harm", "measures_taken", "individual_actions", "contact")
POLICY_FIELDS = ("method", "frequency", "medium", "retention")

FIELD_LABELS: dict[str, dict[str, str]] = {
    "discoverer": {"zh": "发现人", "en": "discoverer"},
    "detected_at": {"zh": "发现时间", "en": "time of discovery"},
    "place": {"zh": "地点", "en": "place"},
    "systems": {"zh": "涉及系统", "en": "systems"},
    "data_categories": {"zh": "信息种类", "en": "data categories"},
    "persons_affected": {"zh": "涉及人数", "en": "persons affected"},
    "law_enforcement_contacted": {"zh": "是否已联系执法机关", "en": "law enforcement contacted"},
    "cause": {"zh": "原因", "en": "cause"},
    "possible_harm": {"zh": "可能造成的危害", "en": "possible harm"},
    "measures_taken": {"zh": "已采取的补救措施", "en": "remedial measures taken"},
    "individual_actions": {"zh": "个人可以采取的减轻危害的措施", "en": "what individuals can do"},
    "contact": {"zh": "联系方式", "en": "contact"},
    "method": {"zh": "备份方式", "en": "method"},
    "frequency": {"zh": "备份频度", "en": "frequency"},
    "medium": {"zh": "存储介质", "en": "medium"},
    "retention": {"zh": "保存期", "en": "retention"},
}

# Sources and their confidence: V (wording seen), S (secondary source only), U (unconfirmed: never rendered as law).
SOURCES: dict[str, dict[str, str]] = _LEGAL["sources"]
CONFIDENCE_SUFFIX: dict[str, dict[str, str]] = _LEGAL["confidence_suffix"]


class ComplianceInputError(ValueError):
    """An input to the compliance functions is missing or malformed; the message names it."""


# --------------------------------------------------------------------------------------------------- time helpers


def get_zone(name: str | None) -> _dt.tzinfo:
    """Return the tzinfo for an IANA name (default Asia/Shanghai); raises ComplianceInputError on unknown names."""
    name = name or DEFAULT_TIMEZONE
    if name.upper() == "UTC":
        return _UTC
    if ZoneInfo is None:  # pragma: no cover
        raise ComplianceInputError("Python's zoneinfo module is missing: the compliance report needs Python 3.9+")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ComplianceInputError(f"timezone '{name}' is not a known IANA zone name (e.g. Asia/Shanghai)") from exc


def parse_time(value: Any, field: str) -> _dt.datetime:
    """Parse an ISO 8601 timestamp that carries a timezone (or an aware datetime). Naive times are refused."""
    if not isinstance(value, (_dt.datetime, str)) or (isinstance(value, str) and not value.strip()):
        raise ComplianceInputError(f"{field}: expected an ISO 8601 time with a timezone, got {value!r}")
    try:
        return timeutil.parse_time(value, field)
    except timeutil.NaiveTimeError:
        raise ComplianceInputError(
            f"{field}: '{value}' has no timezone; add the offset, e.g. 2026-11-26T23:30:00+08:00 for Asia/Shanghai"
        ) from None
    except ValueError:
        raise ComplianceInputError(
            f"{field}: '{value}' is not an ISO 8601 time; write it like 2026-11-26T23:30:00+08:00"
        ) from None


def _opt_time(value: Any, field: str) -> _dt.datetime | None:
    if value in (None, ""):
        return None
    return parse_time(value, field)


def iso_local(moment: _dt.datetime | None, tz: _dt.tzinfo) -> str | None:
    """ISO 8601 in the report timezone, seconds precision."""
    if moment is None:
        return None
    return moment.astimezone(tz).replace(microsecond=0).isoformat()


def format_duration(seconds: float, lang: str = "en") -> str:
    """A short human duration: ``1 d 3 h 5 min`` / ``1天3小时5分钟``. Seconds are rounded down to minutes."""
    total = int(abs(seconds)) // 60
    days, rem = divmod(total, 1440)
    hours, minutes = divmod(rem, 60)
    zh = str(lang).lower().startswith("zh")
    parts = []
    if days:
        parts.append(f"{days}天" if zh else f"{days} d")
    if hours:
        parts.append(f"{hours}小时" if zh else f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes}分钟" if zh else f"{minutes} min")
    return ("" if zh else " ").join(parts)


def add_calendar_days(start: _dt.datetime, days: int, tz: _dt.tzinfo) -> _dt.datetime:
    """``start`` plus ``days`` calendar days on the wall clock of ``tz`` (DST-correct)."""
    local = start.astimezone(tz)
    naive = local.replace(tzinfo=None) + _dt.timedelta(days=days)
    return naive.replace(tzinfo=tz).astimezone(tz)


def subtract_months(moment: _dt.datetime, months: int, tz: _dt.tzinfo) -> _dt.datetime:
    """``moment`` minus whole calendar months in ``tz`` (day clamped to the month's length)."""
    local = moment.astimezone(tz)
    index = local.year * 12 + (local.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    next_first = _dt.date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_first - _dt.timedelta(days=1)).day
    naive = local.replace(tzinfo=None).replace(year=year, month=month, day=min(local.day, last_day))
    return naive.replace(tzinfo=tz)


def deadline(
    name: str,
    start: _dt.datetime,
    now: _dt.datetime,
    tz: _dt.tzinfo,
    *,
    hours: float | None = None,
    days: int | None = None,
    done_at: _dt.datetime | None = None,
) -> dict[str, Any]:
    """A deadline record: due time, and whether it was met, met late, is open (time left) or overdue.

    ``hours`` counts elapsed time; ``days`` counts calendar days on the wall clock of ``tz``.
    """
    if (hours is None) == (days is None):
        raise ComplianceInputError(f"deadline {name}: give exactly one of hours or days")
    due = start + _dt.timedelta(hours=hours) if hours is not None else add_calendar_days(start, int(days or 0), tz)
    if done_at is not None:
        late = (done_at - due).total_seconds()
        state = "met" if late <= 0 else "met_late"
        seconds = -late
    else:
        seconds = (due - now).total_seconds()
        state = "open" if seconds >= 0 else "overdue"
    out = {
        "name": name,
        "start": iso_local(start, tz),
        "due": iso_local(due, tz),
        "due_utc": due.astimezone(_UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "period": f"{hours:g} h" if hours is not None else f"{days} d",
        "done_at": iso_local(done_at, tz),
        "state": state,
        "seconds_left": max(seconds, 0.0) if state in ("open", "met") else 0.0,
        "seconds_overdue": max(-seconds, 0.0) if state in ("overdue", "met_late") else 0.0,
    }
    out["text_en"] = deadline_text(out, "en")
    out["text_zh"] = deadline_text(out, "zh-CN")
    return out


def deadline_text(record: dict[str, Any], lang: str = "en") -> str:
    """One line saying when a deadline is due and its time left / overdue / met."""
    zh = str(lang).lower().startswith("zh")
    due = record["due"]
    state = record["state"]
    if state == "open":
        dur = format_duration(record["seconds_left"], lang)
        return f"截止 {due},剩余 {dur}" if zh else f"due {due}, {dur} left"
    if state == "overdue":
        dur = format_duration(record["seconds_overdue"], lang)
        return f"截止 {due},已逾期 {dur}" if zh else f"due {due}, overdue by {dur}"
    if state == "met":
        return f"截止 {due},已于 {record['done_at']} 完成" if zh else f"due {due}, done {record['done_at']} (in time)"
    dur = format_duration(record["seconds_overdue"], lang)
    if zh:
        return f"截止 {due},于 {record['done_at']} 完成,逾期 {dur}"
    return f"due {due}, done {record['done_at']}, {dur} late"


# ------------------------------------------------------------------------------------------------- source helpers


def source_text(source_id: str, lang: str = "en") -> str:
    """The citation of a source in a language, with "(unconfirmed)" / "(secondary source)" where that applies."""
    try:
        src = SOURCES[source_id]
    except KeyError as exc:
        raise ComplianceInputError(f"unknown compliance source id '{source_id}'") from exc
    key = "zh" if str(lang).lower().startswith("zh") else "en"
    return src[key] + CONFIDENCE_SUFFIX[src["confidence"]][key]


def _sources(*ids: str) -> list[dict[str, str]]:
    return [
        {"id": i, "confidence": SOURCES[i]["confidence"], "zh": source_text(i, "zh"), "en": source_text(i, "en")}
        for i in ids
    ]


def _row(
    row_id: str,
    requirement_zh: str,
    requirement_en: str,
    source_ids: tuple[str, ...],
    status: str,
    evidence_en: str,
    evidence_zh: str,
    **extra: Any,
) -> dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"checklist status {status!r} is not one of {sorted(STATUSES)}")
    row = {
        "id": row_id,
        "requirement": {"zh": requirement_zh, "en": requirement_en},
        "sources": _sources(*source_ids),
        "status": status,
        "evidence": {"en": evidence_en, "zh": evidence_zh},
    }
    row.update(extra)
    return row


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict, tuple)) and len(value) == 0)


def _labels(fields: list[str], lang: str) -> str:
    return ("、" if lang == "zh" else ", ").join(FIELD_LABELS.get(f, {}).get(lang, f) for f in fields)


# ---------------------------------------------------------------------------------------------- history records


def _first(record: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in record and record[key] not in (None, ""):
            return record[key]
    return None


def _truthy_outcome(record: dict[str, Any]) -> bool | None:
    for key in ("passed", "ok", "success", "successful"):
        if isinstance(record.get(key), bool):
            return record[key]
    status = _first(record, "status", "result", "outcome")
    if status is None:
        return None
    return str(status).strip().lower() in ("pass", "passed", "ok", "success", "successful", "succeeded")


def normalize_drill(record: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """One drill / restore-test history record in a common form.

    Accepted keys (the drill role's ``drills/history.jsonl`` lines and similar records): time ``finished_at`` |
    ``finished`` | ``ended_at`` | ``time`` | ``started_at`` | ``started``; outcome ``passed`` (bool) or
    ``status``/``result`` (``passed``, ``ok``, ``success``...); measured RTO ``rto_seconds`` |
    ``achieved_rto_seconds`` | ``rto.achieved_seconds``; target ``rto_target_seconds`` | ``targets.rto_seconds`` |
    ``rto.target_seconds``; per-client results ``clients: [{id, rto_seconds, targets: {rto_seconds}}]`` (each client
    is compared with its own target); ``kind`` (``drill`` default, or ``restore_test`` for a spot-check restore that
    is not a full drill); ``drill_id`` | ``id``.
    """
    if not isinstance(record, dict):
        raise ComplianceInputError(f"drill history record {index} must be a mapping, got {type(record).__name__}")
    rto = record.get("rto") if isinstance(record.get("rto"), dict) else {}
    targets = record.get("targets") if isinstance(record.get("targets"), dict) else {}
    when = _first(record, "finished_at", "finished", "ended_at", "time", "started_at", "started")
    if when is None:
        raise ComplianceInputError(f"drill history record {index} has no finished_at / time field")
    measured = _first(record, "rto_seconds", "achieved_rto_seconds")
    if measured is None:
        measured = _first(rto, "achieved_seconds", "achieved")
    target = _first(record, "rto_target_seconds")
    if target is None:
        target = _first(targets, "rto_seconds") or _first(rto, "target_seconds", "target")
    checks = []
    for client in record.get("clients") or []:
        if not isinstance(client, dict) or client.get("rto_seconds") is None:
            continue
        c_targets = client.get("targets") if isinstance(client.get("targets"), dict) else {}
        c_target = c_targets.get("rto_seconds", target)
        checks.append(
            {
                "client_id": client.get("id"),
                "client": client.get("name") or client.get("id"),
                "rto_seconds": float(client["rto_seconds"]),
                "target": float(c_target) if c_target not in (None, "") else None,
            }
        )
    if not checks and measured is not None:
        checks.append(
            {
                "client_id": None,
                "client": None,
                "rto_seconds": float(measured),
                "target": float(target) if target else None,
            }
        )
    return {
        "id": str(_first(record, "drill_id", "id", "run_id") or f"#{index + 1}"),
        "time": parse_time(when, f"drill history record {index} time"),
        "passed": bool(_truthy_outcome(record)),
        "kind": str(record.get("kind") or "drill"),
        "rto_seconds": float(measured) if measured is not None else None,
        "rto_target_seconds": float(target) if target not in (None, "") else None,
        "rto_checks": checks,
        "host": record.get("host"),
    }


def normalize_verify(record: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """One backup-verification result in a common form.

    Accepted keys: time ``finished_at`` | ``time`` | ``checked_at`` | ``started_at``; outcome ``status`` (``OK``
    passes, ``WARN`` passes with a warning, ``FAIL`` fails) or ``ok``/``passed``; ``repository`` (name or URL);
    ``newest_snapshot_time`` | ``last_snapshot_time``; ``offsite`` (bool) when the result names it.
    """
    if not isinstance(record, dict):
        raise ComplianceInputError(f"verify result {index} must be a mapping, got {type(record).__name__}")
    when = _first(record, "finished_at", "time", "checked_at", "started_at")
    if when is None:
        raise ComplianceInputError(f"verify result {index} has no finished_at / time field")
    status = str(_first(record, "status", "result") or "").upper()
    if status in ("OK", "WARN", "PASS", "PASSED"):
        passed = True
    elif status in ("FAIL", "FAILED", "ERROR"):
        passed = False
    else:
        passed = bool(_truthy_outcome(record))
    newest = _first(record, "newest_snapshot_time", "last_snapshot_time")
    return {
        "time": parse_time(when, f"verify result {index} time"),
        "passed": passed,
        "repository": record.get("repository"),
        "newest_snapshot_time": _opt_time(newest, f"verify result {index} newest_snapshot_time"),
    }


def parse_jsonl(text: str, source: str = "history") -> list[dict[str, Any]]:
    """JSON Lines into records. A line that is not a JSON object raises, naming the source and line number
    (a compliance report must not silently drop evidence)."""
    import json

    out = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ComplianceInputError(f"{source} line {number} is not valid JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise ComplianceInputError(f"{source} line {number} is not a JSON object")
        out.append(record)
    return out


def verify_records(document: Any) -> list[dict[str, Any]]:
    """Flatten a backup-verification result document into per-repository records for ``normalize_verify``.

    The ``backup_verify`` role's ``result.json`` (schema ``ledgerguard.backup_verify/1``) yields one record per host
    (its repository, worst check status, newest snapshot time) and one per repository-level result, all at the
    document's ``generated_at``. Otherwise a list is taken as records; a mapping with ``results`` /
    ``repositories`` / ``hosts`` (a list) yields its items, each inheriting the document's time when it has none;
    any other mapping is one record.
    """
    if isinstance(document, list):
        return [r for r in document if isinstance(r, dict)]
    if not isinstance(document, dict):
        return []
    when = _first(document, "finished_at", "time", "checked_at", "started_at", "generated_at")
    if str(document.get("schema", "")).startswith("ledgerguard.backup_verify/"):
        out = []
        for host in document.get("hosts") or []:
            newest = host.get("newest_snapshot")
            out.append(
                {
                    "time": when,
                    "status": host.get("status"),
                    "repository": host.get("repository"),
                    "host": host.get("host"),
                    "newest_snapshot_time": newest.get("time") if isinstance(newest, dict) else newest,
                }
            )
        for repo in document.get("repositories") or []:
            out.append({"time": when, "status": repo.get("status"), "repository": repo.get("repository")})
        return out
    for key in ("results", "repositories", "hosts"):
        items = document.get(key)
        if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
            out = []
            for item in items:
                rec = dict(item)
                if when is not None and _first(rec, "finished_at", "time", "checked_at", "started_at") is None:
                    rec["time"] = when
                out.append(rec)
            return out
    if when is not None and "time" not in document:
        return [{**document, "time": when}]
    return [document]


# --------------------------------------------------------------------------------------------------------- grading


def grade_incident(grading: dict[str, Any] | None) -> dict[str, Any]:
    """The grading record: answers, computed grade, override, justification, and whether a CAC report is due.

    ``grading`` keys: ``persons_affected`` (int), ``direct_loss_cny`` (number), ``cii`` (bool), optional
    ``grade_override`` (one of the grade ids, for the guide's catch-all clauses) with ``justification``,
    ``graded_by``, ``graded_at``, ``reported_at`` (when the report to the authority was made).
    """
    grading = grading or {}
    missing = [k for k in ("persons_affected", "direct_loss_cny", "cii") if grading.get(k) is None]
    try:
        persons = int(grading.get("persons_affected") or 0)
        loss = float(grading.get("direct_loss_cny") or 0)
    except (TypeError, ValueError) as exc:
        raise ComplianceInputError(
            "ledgerguard_incident_record.grading: persons_affected must be an integer and direct_loss_cny a number"
        ) from exc
    computed = BELOW_THRESHOLD
    basis_en = f"{persons} persons affected, direct loss CNY {loss:,.0f}"
    for grade in GRADES:
        if persons >= grade["persons"] or loss >= grade["loss"]:
            computed = grade
            break
    override = grading.get("grade_override")
    final = computed
    if override:
        known = {g["id"]: g for g in [*GRADES, BELOW_THRESHOLD]}
        if override not in known:
            raise ComplianceInputError(
                f"ledgerguard_incident_record.grading.grade_override: '{override}' is not one of "
                + ", ".join(sorted(known))
            )
        final = known[override]
    return {
        "answers": {
            "persons_affected": grading.get("persons_affected"),
            "direct_loss_cny": grading.get("direct_loss_cny"),
            "cii": grading.get("cii"),
        },
        "missing": missing,
        "computed_grade": computed["id"],
        "grade": final["id"],
        "grade_zh": final["zh"],
        "grade_en": final["en"],
        "overridden": bool(override) and override != computed["id"],
        "basis": basis_en,
        "justification": grading.get("justification"),
        "graded_by": grading.get("graded_by"),
        "graded_at": grading.get("graded_at"),
        "cii": bool(grading.get("cii")),
        "reportable": final["id"] in REPORTABLE_GRADES,
        "report_hours": 1 if grading.get("cii") else 4,
    }


# ------------------------------------------------------------------------------------------------ deadline set


def incident_deadlines(
    incident: dict[str, Any], now: Any, settings: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The deadlines of one incident, keyed: ``cac_report`` (if reportable), ``summary_30d`` (after closure),
    ``pipl_notice_target`` (internal target; PIPL says 立即 with no day count), ``gdpr_72h`` (profile on)."""
    cfg = {**DEFAULT_SETTINGS, **(settings or {})}
    tz = get_zone(cfg.get("timezone"))
    now_t = parse_time(now, "now")
    detected = parse_time(incident.get("detected_at"), "ledgerguard_incident_record.detected_at")
    grading = grade_incident(incident.get("grading"))
    out: dict[str, dict[str, Any]] = {}
    g = incident.get("grading") or {}
    if grading["reportable"]:
        out["cac_report"] = deadline(
            "cac_report",
            detected,
            now_t,
            tz,
            hours=grading["report_hours"],
            done_at=_opt_time(g.get("reported_at"), "ledgerguard_incident_record.grading.reported_at"),
        )
    closed = _opt_time(incident.get("closed_at"), "ledgerguard_incident_record.closed_at")
    if closed is not None:
        summary = incident.get("summary") or {}
        out["summary_30d"] = deadline(
            "summary_30d",
            closed,
            now_t,
            tz,
            days=30,
            done_at=_opt_time(summary.get("submitted_at"), "ledgerguard_incident_record.summary.submitted_at"),
        )
    notices = incident.get("notices") or {}
    target = cfg.get("pipl_notice_target_hours")
    if target and incident.get("personal_information_involved") is not False:
        auth = notices.get("authority") or {}
        out["pipl_notice_target"] = deadline(
            "pipl_notice_target",
            detected,
            now_t,
            tz,
            hours=float(target),
            done_at=_opt_time(auth.get("sent_at"), "ledgerguard_incident_record.notices.authority.sent_at"),
        )
    gdpr = incident.get("gdpr") or {}
    if cfg.get("gdpr") or gdpr.get("enabled"):
        aware = _opt_time(gdpr.get("aware_at"), "ledgerguard_incident_record.gdpr.aware_at") or detected
        out["gdpr_72h"] = deadline(
            "gdpr_72h",
            aware,
            now_t,
            tz,
            hours=72,
            done_at=_opt_time(gdpr.get("notified_at"), "ledgerguard_incident_record.gdpr.notified_at"),
        )
    return out


def _deadline_status(record: dict[str, Any], late_reason: str | None = None) -> str:
    if record["state"] == "met":
        return PASS
    if record["state"] == "open":
        return MANUAL
    if record["state"] == "met_late" and late_reason:
        return MANUAL
    return FAIL


# ---------------------------------------------------------------------------------------------- checklist rows


def _age_text(seconds: float, lang: str) -> str:
    return format_duration(seconds, lang)


def row_offsite(policy: dict[str, Any], verifies: list[dict[str, Any]], now: _dt.datetime) -> dict[str, Any]:
    repos = policy.get("repositories") or []
    offsite = [r for r in repos if isinstance(r, dict) and r.get("offsite")]
    local = [r for r in repos if isinstance(r, dict) and not r.get("offsite")]
    srcs = ("archives_art8_5", "gbt22239_8149")
    req = ("异地备份存在(本地与异地副本)", "An off-site copy exists (local and off-site copies)")
    if not offsite:
        return _row(
            "offsite_copy",
            *req,
            srcs,
            FAIL,
            f"no repository in ledgerguard_backup_policy.repositories has offsite: true ({len(repos)} declared)",
            f"ledgerguard_backup_policy.repositories 中没有声明 offsite: true 的仓库(共 {len(repos)} 个)",
        )
    names = [str(r.get("name") or r.get("url") or "?") for r in offsite]
    keys = {r.get("name") for r in offsite} | {r.get("url") for r in offsite}
    seen = [v for v in verifies if v["passed"] and v.get("repository") in keys - {None}]
    if not seen:
        return _row(
            "offsite_copy",
            *req,
            srcs,
            MANUAL,
            f"off-site repository declared ({', '.join(names)}) but no passing verify result shows it reachable",
            f"已声明异地仓库({'、'.join(names)}),但没有通过的校验记录证明其可访问",
        )
    last = max(v["time"] for v in seen)
    status = PASS if local else MANUAL
    when = iso_local(last, now.tzinfo or _UTC)
    en = f"off-site: {', '.join(names)} (last verified {when}); local copies: {len(local)}"
    zh = f"异地:{'、'.join(names)}(最近校验 {when});本地副本:{len(local)} 个"
    if not local:
        en += " - no local copy declared"
        zh += " - 未声明本地副本"
    return _row("offsite_copy", *req, srcs, status, en, zh)


def row_snapshot_age(
    policy: dict[str, Any], verifies: list[dict[str, Any]], now: _dt.datetime, cfg: dict[str, Any]
) -> dict[str, Any]:
    rpo_h = float(policy.get("rpo_hours") or cfg["rpo_hours"])
    srcs = ("iso27001_a530", "nist80034", "gbt20988_levels", "product_default")
    req = (f"最新快照时间不超过RPO({rpo_h:g} 小时)", f"Newest snapshot within the RPO ({rpo_h:g} h)")
    times = [v["newest_snapshot_time"] for v in verifies if v.get("newest_snapshot_time")]
    times += [
        parse_time(r["last_snapshot_time"], "repositories[].last_snapshot_time")
        for r in policy.get("repositories") or []
        if isinstance(r, dict) and r.get("last_snapshot_time")
    ]
    if not times:
        return _row(
            "snapshot_age", *req, srcs, FAIL, "no snapshot time recorded in any verify result", "校验记录中无快照时间"
        )
    newest = max(times)
    age = (now - newest).total_seconds()
    status = PASS if age <= rpo_h * 3600 else FAIL
    return _row(
        "snapshot_age",
        *req,
        srcs,
        status,
        f"newest snapshot {iso_local(newest, now.tzinfo)}, age {_age_text(age, 'en')} (RPO {rpo_h:g} h)",
        f"最新快照 {iso_local(newest, now.tzinfo)},已过 {_age_text(age, 'zh')}(RPO {rpo_h:g} 小时)",
        rpo_hours=rpo_h,
        age_seconds=age,
    )


def row_verified(verifies: list[dict[str, Any]], now: _dt.datetime, cfg: dict[str, Any]) -> dict[str, Any]:
    limit = int(cfg["verify_max_age_days"])
    srcs = ("gbt20988_l1", "iso27001_a813", "product_default")
    req = (f"定期校验备份有效性(至少每 {limit} 天)", f"Backups verified regularly (at least every {limit} days)")
    ok = [v for v in verifies if v["passed"]]
    failed_after = []
    if not ok:
        return _row(
            "backups_verified",
            *req,
            srcs,
            FAIL,
            f"no passing backup verification on record ({len(verifies)} results read)",
            f"没有通过的备份校验记录(共读取 {len(verifies)} 条)",
        )
    last = max(v["time"] for v in ok)
    failed_after = [v for v in verifies if not v["passed"] and v["time"] > last]
    age = (now - last).total_seconds()
    status = PASS if age <= limit * 86400 and not failed_after else FAIL
    en = f"last passing verification {iso_local(last, now.tzinfo)} ({_age_text(age, 'en')} ago); {len(ok)} passed"
    zh = f"最近通过的校验 {iso_local(last, now.tzinfo)}({_age_text(age, 'zh')}前);通过 {len(ok)} 次"
    if failed_after:
        en += f"; {len(failed_after)} failed since"
        zh += f";此后失败 {len(failed_after)} 次"
    return _row("backups_verified", *req, srcs, status, en, zh, last_verified=iso_local(last, now.tzinfo))


def row_restore_test(drills: list[dict[str, Any]], now: _dt.datetime, cfg: dict[str, Any]) -> dict[str, Any]:
    limit = int(cfg["restore_test_max_age_days"])
    srcs = ("gbt28448_restore_record", "iso27001_a813", "product_default")
    req = (
        f"{limit} 天内有恢复测试记录并测得RTO",
        f"A restore test within {limit} days, with measured RTO",
    )
    ok = [d for d in drills if d["passed"]]
    if not ok:
        return _row(
            "restore_test",
            *req,
            srcs,
            FAIL,
            f"no successful restore test on record ({len(drills)} drill records read)",
            f"没有成功的恢复测试记录(共读取 {len(drills)} 条演练记录)",
        )
    last = max(ok, key=lambda d: d["time"])
    age = (now - last["time"]).total_seconds()
    age_days = age / 86400
    when = iso_local(last["time"], now.tzinfo)
    if age > limit * 86400:
        return _row(
            "restore_test",
            *req,
            srcs,
            FAIL,
            f"last successful restore test {when}, {age_days:.0f} days ago (limit {limit} days)",
            f"最近一次成功的恢复测试 {when},已过 {age_days:.0f} 天(上限 {limit} 天)",
            last_restore_test=when,
        )
    if last["rto_seconds"] is None and last["rto_checks"]:
        last = {**last, "rto_seconds": max(c["rto_seconds"] for c in last["rto_checks"])}
    if last["rto_seconds"] is None:
        return _row(
            "restore_test",
            *req,
            srcs,
            FAIL,
            f"restore test {when} ({last['id']}) recorded no measured RTO",
            f"恢复测试 {when}({last['id']})未记录实测RTO",
            last_restore_test=when,
        )
    return _row(
        "restore_test",
        *req,
        srcs,
        PASS,
        f"restore test {last['id']} {when} ({age_days:.0f} days ago), measured RTO {last['rto_seconds']:.0f} s",
        f"恢复测试 {last['id']} {when}({age_days:.0f} 天前),实测RTO {last['rto_seconds']:.0f} 秒",
        last_restore_test=when,
        measured_rto_seconds=last["rto_seconds"],
    )


def row_rto(drills: list[dict[str, Any]], now: _dt.datetime, cfg: dict[str, Any]) -> dict[str, Any]:
    measured = [d for d in drills if d["rto_checks"]]
    if not measured:
        return _rto_row(None, [])
    last = max(measured, key=lambda d: d["time"])
    default_target = cfg.get("rto_target_seconds")
    checks = [{**c, "target": c["target"] if c["target"] is not None else default_target} for c in last["rto_checks"]]
    return _rto_row(last["id"], checks)


def _rto_row(drill_id: str | None, checks: list[dict[str, Any]]) -> dict[str, Any]:
    srcs = ("nist80034", "gbt20988_levels")
    req = ("实测RTO不超过目标RTO", "Measured RTO within the target RTO")
    if not checks:
        return _row("rto_target", *req, srcs, FAIL, "no drill recorded a measured RTO", "没有演练记录实测RTO")
    with_target = [c for c in checks if c["target"] is not None]
    worst = max(c["rto_seconds"] for c in checks)
    extra = {"drill_id": drill_id, "checks": checks}
    if not with_target:
        return _row(
            "rto_target",
            *req,
            srcs,
            MANUAL,
            f"measured RTO {worst:.0f} s ({drill_id}); no RTO target configured",
            f"实测RTO {worst:.0f} 秒({drill_id});未配置目标RTO",
            **extra,
        )
    missed = [c for c in with_target if c["rto_seconds"] > float(c["target"])]

    def _one(c: dict[str, Any], zh: bool) -> str:
        who = f"{c['client']}: " if c["client"] else ""
        if zh:
            return f"{who}实测 {c['rto_seconds']:.0f} 秒 / 目标 {float(c['target']):.0f} 秒"
        return f"{who}measured {c['rto_seconds']:.0f} s / target {float(c['target']):.0f} s"

    shown = missed or with_target
    return _row(
        "rto_target",
        *req,
        srcs,
        FAIL if missed else PASS,
        f"drill {drill_id}: " + "; ".join(_one(c, False) for c in shown),
        f"演练 {drill_id}:" + ";".join(_one(c, True) for c in shown),
        **extra,
    )


def row_drill(drills: list[dict[str, Any]], now: _dt.datetime, cfg: dict[str, Any]) -> dict[str, Any]:
    months = int(cfg["drill_max_age_months"])
    tz = now.tzinfo or _UTC
    since = subtract_months(now, months, tz)
    srcs = ("gbt35273_drill", "gbt35273_clause", "dengbao_drill")
    req = (f"最近 {months} 个月内至少一次演练", f"A recovery drill in the last {months} months")
    recent = [d for d in drills if d["kind"] == "drill" and d["time"] >= since]
    if not recent:
        return _row(
            "drill_yearly",
            *req,
            srcs,
            FAIL,
            f"no drill since {iso_local(since, tz)}",
            f"自 {iso_local(since, tz)} 起没有演练",
        )
    passed = [d for d in recent if d["passed"]]
    last = max(recent, key=lambda d: d["time"])
    status = PASS if passed else FAIL
    return _row(
        "drill_yearly",
        *req,
        srcs,
        status,
        f"{len(recent)} drills since {iso_local(since, tz)}, {len(passed)} passed; last {iso_local(last['time'], tz)}",
        f"自 {iso_local(since, tz)} 起演练 {len(recent)} 次,通过 {len(passed)} 次;最近 {iso_local(last['time'], tz)}",
    )


def row_policy_fields(policy: dict[str, Any]) -> dict[str, Any]:
    srcs = ("dengbao_backup_mgmt",)
    req = ("备份策略明确备份方式、频度、介质和保存期", "Backup policy defines method, frequency, medium and retention")
    missing = [f for f in POLICY_FIELDS if _missing(policy.get(f))]
    if missing:
        return _row(
            "policy_fields",
            *req,
            srcs,
            FAIL,
            "ledgerguard_backup_policy is missing: " + _labels(missing, "en"),
            "ledgerguard_backup_policy 缺少:" + _labels(missing, "zh"),
            missing=missing,
        )
    ret = policy["retention"]
    ret_text = ret if isinstance(ret, str) else ", ".join(f"{k}: {v}" for k, v in sorted(ret.items()))
    return _row(
        "policy_fields",
        *req,
        srcs,
        PASS,
        f"method {policy['method']}; frequency {policy['frequency']}; medium {policy['medium']}; retention {ret_text}",
        f"方式 {policy['method']};频度 {policy['frequency']};介质 {policy['medium']};保存期 {ret_text}",
        missing=[],
    )


def row_retention(policy: dict[str, Any], record_classes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Lint ``policy.retention`` (a restic forget policy, or ``keep-all``) with module_utils.retention."""
    srcs = ("archives_art14_15", "archives_annex_periods")
    req = ("保存期不短于会计档案最低保管期限", "Retention not shorter than the accounting-archive minimum periods")
    ret = policy.get("retention")
    if _missing(ret):
        return _row(
            "retention",
            *req,
            srcs,
            FAIL,
            "ledgerguard_backup_policy.retention is not defined",
            "ledgerguard_backup_policy.retention 未定义",
        )
    forget = None if isinstance(ret, str) and ret.strip().lower() in ("keep-all", "keep_all", "forever") else ret
    if isinstance(forget, str):
        return _row(
            "retention",
            *req,
            srcs,
            FAIL,
            f"ledgerguard_backup_policy.retention '{ret}' is neither a restic forget policy mapping nor 'keep-all'",
            f"ledgerguard_backup_policy.retention '{ret}' 既不是 restic forget 策略,也不是 keep-all",
        )
    try:
        lint = lint_policy(forget, record_classes)
    except RetentionPolicyError as exc:
        return _row("retention", *req, srcs, FAIL, f"retention policy: {exc}", f"保存策略无法解析:{exc}")
    failed = [c for c in lint["classes"] if c["status"] == "FAIL"]
    if failed:
        en = "; ".join(f"{c['name']}: {c['reason']}" for c in failed)
        zh = ";".join(
            f"{c['name']}:最低 {'永久' if c['years'] is None else str(c['years']) + ' 年'},"
            f"策略仅保证 {c['guaranteed_years'] if c['guaranteed_years'] is not None else 0} 年"
            for c in failed
        )
        return _row("retention", *req, srcs, FAIL, en, zh, classes=lint["classes"])
    zh_ok = "各类会计档案的保存期均满足最低期限"
    return _row("retention", *req, srcs, PASS, lint["reason"], zh_ok, classes=lint["classes"])


def row_evidence(evidence_checks: list[dict[str, Any]] | None) -> dict[str, Any]:
    srcs = ("archives_art8_4", "dengbao_incident")
    req = ("证据包签名有效、哈希与时间线链完整", "Evidence packs signed, hashes and timeline chain intact")
    if not evidence_checks:
        return _row(
            "evidence_integrity",
            *req,
            srcs,
            MANUAL,
            "no evidence pack verified yet: run `ledgerguard evidence sign` and `ledgerguard evidence verify`",
            "尚未校验证据包:请运行 `ledgerguard evidence sign` 和 `ledgerguard evidence verify`",
        )
    bad = [c for c in evidence_checks if not c.get("ok")]
    if bad:
        en = "; ".join(f"{_pack_name(c)}: {'; '.join(c.get('problems') or ['failed'])}" for c in bad)
        return _row("evidence_integrity", *req, srcs, FAIL, en, "证据包校验失败:" + en)
    names = ", ".join(_pack_name(c) for c in evidence_checks)
    return _row(
        "evidence_integrity",
        *req,
        srcs,
        PASS,
        f"{len(evidence_checks)} pack(s) verified: {names}",
        f"已校验 {len(evidence_checks)} 个证据包:{names}",
    )


def _pack_name(check: dict[str, Any]) -> str:
    return str(check.get("pack") or "?").rstrip("/").rsplit("/", 1)[-1]


def row_contracts(clients: list[dict[str, Any]]) -> dict[str, Any]:
    srcs = ("archives_art26", "agency_contract", "agency_contract_article")
    req = ("每个客户合同均引用会计档案保管条款", "Each client's contract archive-custody clause is referenced")
    if not clients:
        return _row(
            "contract_clause", *req, srcs, NOT_APPLICABLE, "no clients declared (ledgerguard_clients)", "未声明客户"
        )
    missing = [c for c in clients if _missing(c.get("contract_clause"))]
    refs = [f"{c.get('name') or c.get('id')}: {c.get('contract_clause')}" for c in clients if c not in missing]
    if missing:
        names = [str(c.get("name") or c.get("id")) for c in missing]
        return _row(
            "contract_clause",
            *req,
            srcs,
            FAIL,
            "no contract_clause for: " + ", ".join(names),
            "以下客户未引用合同条款:" + "、".join(names),
            clauses=refs,
        )
    return _row("contract_clause", *req, srcs, PASS, "; ".join(refs), ";".join(refs), clauses=refs)


def row_incident_record(incident: dict[str, Any]) -> dict[str, Any]:
    srcs = ("gbt35273_record", "gbt35273_clause", "dengbao_incident")
    req = ("事件记录字段齐全", "Incident record has the required fields")
    missing = [f for f in INCIDENT_RECORD_FIELDS if _missing(incident.get(f))]
    if missing:
        return _row(
            "incident_record",
            *req,
            srcs,
            FAIL,
            "ledgerguard_incident_record is missing: " + _labels(missing, "en"),
            "事件记录缺少:" + _labels(missing, "zh"),
            missing=missing,
        )
    police = "yes" if incident.get("law_enforcement_contacted") else "no"
    return _row(
        "incident_record",
        *req,
        srcs,
        PASS,
        f"discoverer {incident['discoverer']}, place {incident['place']}, persons {incident['persons_affected']}, "
        f"law enforcement contacted: {police}",
        f"发现人 {incident['discoverer']},地点 {incident['place']},涉及 {incident['persons_affected']} 人,"
        f"已联系执法机关:{'是' if police == 'yes' else '否'}",
        missing=[],
    )


def row_grading(grading: dict[str, Any], deadlines: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    srcs = ("cac_art4", "cac_loss_thresholds")
    req = ("事件分级记录(较大及以上须报告)", "Incident grading record (relatively major or above must be reported)")
    rows = []
    if grading["missing"] or _missing(grading.get("justification")):
        miss = grading["missing"] + (["justification"] if _missing(grading.get("justification")) else [])
        rows.append(
            _row(
                "grading",
                *req,
                srcs,
                FAIL,
                "grading record is missing: " + ", ".join(miss),
                "分级记录缺少:" + "、".join(miss),
            )
        )
    else:
        rows.append(
            _row(
                "grading",
                *req,
                srcs,
                PASS,
                f"grade: {grading['grade_en']} ({grading['basis']}, CII: {'yes' if grading['cii'] else 'no'}); "
                f"justification: {grading['justification']}",
                f"分级:{grading['grade_zh']}(涉及 {grading['answers']['persons_affected']} 人,直接损失 "
                f"{grading['answers']['direct_loss_cny']} 元,关键信息基础设施:{'是' if grading['cii'] else '否'});"
                f"理由:{grading['justification']}",
            )
        )
    req2 = (
        f"向主管部门报告({grading['report_hours']} 小时内)",
        f"Report to the authority within {grading['report_hours']} h",
    )
    if not grading["reportable"]:
        rows.append(
            _row(
                "cac_report",
                *req2,
                ("cac_art4",),
                NOT_APPLICABLE,
                f"graded {grading['grade_en']}: the reporting threshold is not reached",
                f"分级为{grading['grade_zh']},未达到报告门槛",
            )
        )
    else:
        d = deadlines["cac_report"]
        status = _deadline_status(d)
        rows.append(_row("cac_report", *req2, ("cac_art4",), status, d["text_en"], d["text_zh"], deadline=d))
    return rows


def _notice_row(row_id: str, req: tuple[str, str], notice: dict[str, Any] | None, reason: str | None) -> dict[str, Any]:
    srcs = ("pipl57", "dsl29")
    if not notice and reason:
        return _row(
            row_id,
            *req,
            srcs,
            NOT_APPLICABLE,
            f"individuals not notified; recorded reason: {reason} (the authority may still require notice)",
            f"未通知个人;记录的理由:{reason}(主管部门仍可要求通知)",
            reason=reason,
        )
    if not notice:
        return _row(row_id, *req, srcs, FAIL, "no notice record", "没有通知记录")
    missing = [f for f in NOTICE_FIELDS if _missing(notice.get(f))]
    if missing:
        return _row(
            row_id,
            *req,
            srcs,
            FAIL,
            "notice record is missing: " + _labels(missing, "en"),
            "通知记录缺少:" + _labels(missing, "zh"),
            missing=missing,
        )
    if _missing(notice.get("sent_at")):
        return _row(
            row_id,
            *req,
            srcs,
            MANUAL,
            "notice content complete; not sent yet (no sent_at) - a person must send it",
            "通知内容齐全,尚未发送(无 sent_at),需人工发送",
        )
    to = notice.get("recipient") or "?"
    return _row(
        row_id,
        *req,
        srcs,
        PASS,
        f"sent {notice['sent_at']} to {to}; all content fields present",
        f"已于 {notice['sent_at']} 发送给 {to};内容字段齐全",
    )


def _sent_notices(records: list[dict[str, Any]], milestone: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The clients that have drafts of ``milestone`` (in index order) and, per client, its earliest sent one."""
    clients: list[str] = []
    sent: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("milestone") != milestone:
            continue
        cid = str(rec.get("client"))
        if cid not in clients:
            clients.append(cid)
        if rec.get("status") == "sent" and rec.get("sent_at"):
            if cid not in sent or str(rec["sent_at"]) < str(sent[cid]["sent_at"]):
                sent[cid] = rec
    return clients, sent


def _pending_text(records: list[dict[str, Any]], clients: list[str], milestone: str) -> tuple[str, str]:
    """Why the notices of ``milestone`` to ``clients`` are not sent yet, by status (draft / approved / failed)."""
    counts = {"draft": 0, "approved": 0, "failed": 0}
    for rec in records:
        if rec.get("milestone") == milestone and str(rec.get("client")) in clients and rec.get("status") in counts:
            counts[rec["status"]] += 1
    en = (
        f"{counts['draft']} waiting for approval, {counts['approved']} approved and not sent, "
        f"{counts['failed']} failed delivery"
    )
    zh = f"待审批 {counts['draft']} 份,已审批未发送 {counts['approved']} 份,发送失败 {counts['failed']} 份"
    return en, zh


def _individuals_row_from_records(req: tuple[str, str], records: list[dict[str, Any]] | None) -> dict | None:
    """The PIPL notice row from the delivery records of the ``confirmed`` notices (the ones with the Art. 57
    content), or None when there are no such records (the hand-typed ``notices.individuals`` then applies)."""
    clients, sent = _sent_notices(records or [], "confirmed")
    if not clients or not sent:
        return None
    srcs = ("pipl57", "dsl29")
    if len(sent) < len(clients):
        missing = [c for c in clients if c not in sent]
        pen, pzh = _pending_text(records or [], missing, "confirmed")
        return _row(
            "pipl_notice_individuals",
            *req,
            srcs,
            MANUAL,
            f"notice with the Art. 57 content sent to {len(sent)} of {len(clients)} clients; not yet: "
            f"{', '.join(missing)} ({pen}; ledgerguard notices)",
            f"含第57条内容的通知已发送 {len(sent)}/{len(clients)} 个客户;尚未发送:{'、'.join(missing)}({pzh})",
            records=[sent[c]["id"] for c in clients if c in sent],
        )
    last = max(str(r["sent_at"]) for r in sent.values())
    to = sorted({str(x.get("mail")) for r in sent.values() for x in r.get("recipients") or [] if x.get("mail")})
    return _row(
        "pipl_notice_individuals",
        *req,
        srcs,
        PASS,
        f"sent {last} (last of {len(sent)} clients, delivery records in notices/index.json) to {', '.join(to)}; "
        "content of Art. 57 in the approved text",
        f"已于 {last} 发送完毕({len(sent)} 个客户,发送记录见 notices/index.json),收件人 {'、'.join(to)};"
        "经审批的文本含第57条要求的内容",
        records=[sent[c]["id"] for c in clients],
        sent_at=last,
    )


def row_customer_notices(records: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Each affected client told, from the delivery records (notices/index.json): PASS once every client's final
    notice is sent; MANUAL while a notice waits for approval or delivery. No day count applies (及时)."""
    req = (
        "及时告知受影响的客户(确认、恢复进展、最终通知)",
        "Affected clients told in time (confirmed, restore progress, final notice)",
    )
    srcs = ("dsl29", "ndsr11")
    records = [r for r in records or [] if isinstance(r, dict)]
    if not records:
        return _row(
            "customer_notices",
            *req,
            srcs,
            MANUAL,
            "no customer notice records (notices/index.json): the incident report writes the drafts; review, "
            "approve and send them with ledgerguard notices",
            "没有客户通知记录(notices/index.json):事件报告会生成草稿,请用 ledgerguard notices 审核、审批并发送",
        )
    clients: list[str] = []
    for rec in records:
        if str(rec.get("client")) not in clients:
            clients.append(str(rec.get("client")))
    told = {}
    for rec in records:
        if rec.get("status") == "sent" and rec.get("sent_at"):
            cid = str(rec.get("client"))
            told[cid] = min(told.get(cid, str(rec["sent_at"])), str(rec["sent_at"]))
    _final_clients, final = _sent_notices(records, "final")
    done = [c for c in clients if c in final]
    first_en = ", ".join(f"{c} first told {told[c]}" for c in clients if c in told) or "no client told yet"
    first_zh = "、".join(f"{c} 首次告知 {told[c]}" for c in clients if c in told) or "尚未告知任何客户"
    if len(done) == len(clients):
        finals = [(c, final[c]["sent_at"]) for c in done]
        return _row(
            "customer_notices",
            *req,
            srcs,
            PASS,
            f"{first_en}; final notice sent to every client ({', '.join(f'{c} {t}' for c, t in finals)})",
            f"{first_zh};最终通知已发送给全部客户({'、'.join(f'{c} {t}' for c, t in finals)})",
            records=[final[c]["id"] for c in done],
        )
    waiting = [c for c in clients if c not in final]
    pen, pzh = _pending_text(records, waiting, "final")
    no_final = [
        c for c in waiting if not any(r.get("milestone") == "final" and str(r.get("client")) == c for r in records)
    ]
    extra_en = f"; no final notice drafted yet for {', '.join(no_final)} (not restored yet)" if no_final else ""
    extra_zh = f";{'、'.join(no_final)} 尚未生成最终通知(尚未恢复)" if no_final else ""
    return _row(
        "customer_notices",
        *req,
        srcs,
        MANUAL,
        f"{first_en}; final notice not sent yet to {', '.join(waiting)} ({pen}){extra_en}",
        f"{first_zh};尚未向 {'、'.join(waiting)} 发送最终通知({pzh}){extra_zh}",
    )


def rows_notices(
    incident: dict[str, Any], deadlines: dict[str, dict[str, Any]], records: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The notice rows of an incident. ``records`` are the entries of notices/index.json: their delivery records
    close the customer-notice row and the PIPL individuals row; a hand-typed ``notices.individuals.sent_at`` is the
    fallback when there are no records."""
    pi = incident.get("personal_information_involved")
    req_a = ("PIPL 第57条:通知履行个人信息保护职责的部门", "PIPL Art. 57: notice to the authority")
    req_i = ("PIPL 第57条:通知个人(或记录不通知的理由)", "PIPL Art. 57: notice to individuals (or the reason not to)")
    customer = row_customer_notices(records)
    if pi is False:
        why = incident.get("personal_information_reason") or "recorded as not involving personal information"
        en, zh = f"no personal information involved: {why}", f"不涉及个人信息:{why}"
        return [
            _row(r, *q, ("pipl57",), NOT_APPLICABLE, en, zh)
            for r, q in (("pipl_notice_authority", req_a), ("pipl_notice_individuals", req_i))
        ] + [customer]
    if pi is None:
        return [
            _row(
                "pipl_notice_authority",
                *req_a,
                ("pipl57",),
                MANUAL,
                "decide whether personal information was (or may have been) leaked, altered or lost: set "
                "personal_information_involved",
                "请判断是否发生或可能发生个人信息泄露、篡改、丢失,并设置 personal_information_involved",
            ),
            customer,
        ]
    notices = incident.get("notices") or {}
    rows = [
        _notice_row("pipl_notice_authority", req_a, notices.get("authority"), None),
        _individuals_row_from_records(req_i, records)
        or _notice_row(
            "pipl_notice_individuals", req_i, notices.get("individuals"), notices.get("individuals_not_notified_reason")
        ),
        customer,
    ]
    target = deadlines.get("pipl_notice_target")
    if target is not None:
        rows[0]["deadline"] = target
        if target["state"] == "overdue":
            rows[0]["evidence"]["en"] += f"; internal target ({target['period']}, product default): {target['text_en']}"
            rows[0]["evidence"]["zh"] += f";内部时限({target['period']},产品默认值):{target['text_zh']}"
    return rows


NOTICE_ROW_IDS = ("pipl_notice_authority", "pipl_notice_individuals", "customer_notices")
NOTICE_INPUT_KEYS = ("personal_information_involved", "personal_information_reason", "notices")


def refresh_notice_rows(checklist: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored incident checklist (compliance.json) with its notice rows recomputed from new delivery records
    (``ledgerguard notices`` calls it after each approval or delivery); the other rows are kept as they are."""
    if checklist.get("mode") != "incident":
        raise ComplianceInputError("refresh_notice_rows needs an incident checklist (compliance.json, mode incident)")
    inputs = checklist.get("notice_inputs") or {}
    fresh = {r["id"]: r for r in rows_notices(inputs, checklist.get("deadlines") or {}, records)}
    rows = []
    for row in checklist.get("rows") or []:
        if row.get("id") in NOTICE_ROW_IDS:
            if row["id"] in fresh:
                rows.append(fresh.pop(row["id"]))
            continue
        rows.append(row)
    rows.extend(r for r in fresh.values())
    out = dict(checklist, rows=rows)
    out["summary"] = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    out["overall"] = FAIL if out["summary"][FAIL] else (MANUAL if out["summary"][MANUAL] else PASS)
    return out


def row_summary(incident: dict[str, Any], grading: dict[str, Any], deadlines: dict[str, dict[str, Any]]) -> dict:
    req = ("处置结束后30日内提交总结报告", "Summary report within 30 days after closure")
    srcs = ("cac_art8",)
    d = deadlines.get("summary_30d")
    if d is None:
        return _row(
            "summary_30d",
            *req,
            srcs,
            MANUAL if grading["reportable"] else NOT_APPLICABLE,
            "incident not closed yet (no closed_at): the 30-day timer starts at closure",
            "事件尚未结束(无 closed_at):30日时限自处置结束起算",
        )
    if not grading["reportable"]:
        return _row(
            "summary_30d",
            *req,
            srcs,
            PASS if d["state"] == "met" else NOT_APPLICABLE,
            "below the reporting threshold, recommended only: " + d["text_en"],
            "未达报告门槛,建议提交:" + d["text_zh"],
            deadline=d,
        )
    return _row("summary_30d", *req, srcs, _deadline_status(d), d["text_en"], d["text_zh"], deadline=d)


def row_gdpr(incident: dict[str, Any], deadlines: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    d = deadlines.get("gdpr_72h")
    if d is None:
        return None
    late_reason = (incident.get("gdpr") or {}).get("late_reason")
    status = _deadline_status(d, late_reason)
    en, zh = d["text_en"], d["text_zh"]
    if d["state"] == "met_late":
        en += f"; late reason: {late_reason or 'NOT RECORDED'}"
        zh += f";逾期理由:{late_reason or '未记录'}"
    return _row(
        "gdpr_72h",
        "GDPR 第33条:72小时内通知监管机构(可选)",
        "GDPR Art. 33: notify the supervisory authority within 72 h (optional profile)",
        ("gdpr33",),
        status,
        en,
        zh,
        deadline=d,
    )


# ------------------------------------------------------------------------------------------------ the checklist


def build_checklist(data: dict[str, Any]) -> dict[str, Any]:
    """The compliance checklist.

    ``data``: ``mode`` (``incident`` or ``periodic``), ``now`` (ISO time with timezone), ``settings`` (see
    ``DEFAULT_SETTINGS``), ``policy`` (ledgerguard_backup_policy), ``clients`` (ledgerguard_clients), ``drills``
    and ``verifies`` (history records, see ``normalize_drill`` / ``normalize_verify``), ``evidence`` (list of
    ``{pack, ok, problems}`` from ``ledgerguard evidence verify``), ``incident`` (ledgerguard_incident_record,
    incident mode only), ``notices`` (incident mode: the entries of notices/index.json, whose delivery records close
    the notice rows), ``record_classes`` (optional override of the retention record classes).

    Returns ``{mode, generated_at, timezone, rows, summary, deadlines, grading}``.
    """
    if not isinstance(data, dict):
        raise ComplianceInputError(f"compliance checklist input must be a mapping, got {type(data).__name__}")
    mode = data.get("mode") or "periodic"
    if mode not in ("incident", "periodic"):
        raise ComplianceInputError(f"mode must be 'incident' or 'periodic', got '{mode}'")
    cfg = {**DEFAULT_SETTINGS, **{k: v for k, v in (data.get("settings") or {}).items() if v is not None}}
    tz = get_zone(cfg["timezone"])
    now = parse_time(data.get("now"), "now").astimezone(tz)
    policy = data.get("policy") or {}
    if not isinstance(policy, dict):
        raise ComplianceInputError("ledgerguard_backup_policy must be a mapping")
    drills = _dedupe(
        [normalize_drill(r, i) for i, r in enumerate(data.get("drills") or [])],
        lambda d: (d["id"], d["host"], d["time"]),
    )
    verifies = _dedupe(
        [normalize_verify(r, i) for i, r in enumerate(data.get("verifies") or [])],
        lambda v: (v["repository"], v["time"], v["passed"]),
    )
    clients = data.get("clients") or []

    rows = [
        row_offsite(policy, verifies, now),
        row_snapshot_age(policy, verifies, now, cfg),
        row_verified(verifies, now, cfg),
        row_restore_test(drills, now, cfg),
        row_rto(drills, now, cfg),
        row_drill(drills, now, cfg),
        row_policy_fields(policy),
        row_retention(policy, data.get("record_classes")),
        row_evidence(data.get("evidence")),
        row_contracts(clients),
    ]
    deadlines: dict[str, dict[str, Any]] = {}
    grading = None
    if mode == "incident":
        incident = data.get("incident") or {}
        if not isinstance(incident, dict) or not incident:
            raise ComplianceInputError("incident mode needs ledgerguard_incident_record (a mapping with detected_at)")
        grading = grade_incident(incident.get("grading"))
        deadlines = incident_deadlines(incident, now, cfg)
        rows.append(row_incident_record(incident))
        rows.extend(row_grading(grading, deadlines))
        rows.extend(rows_notices(incident, deadlines, data.get("notices")))
        rows.append(row_summary(incident, grading, deadlines))
        gdpr = row_gdpr(incident, deadlines)
        if gdpr is not None:
            rows.append(gdpr)
    summary = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    return {
        "mode": mode,
        "generated_at": iso_local(now, tz),
        "timezone": cfg["timezone"],
        "settings": {k: cfg[k] for k in DEFAULT_SETTINGS},
        "rows": rows,
        "summary": summary,
        "overall": FAIL if summary[FAIL] else (MANUAL if summary[MANUAL] else PASS),
        "deadlines": deadlines,
        "grading": grading,
        "notice_inputs": (
            {k: (data.get("incident") or {}).get(k) for k in NOTICE_INPUT_KEYS} if mode == "incident" else None
        ),
        "drills": [
            {
                "id": d["id"],
                "host": d["host"],
                "kind": d["kind"],
                "time": iso_local(d["time"], tz),
                "passed": d["passed"],
                "rto_seconds": d["rto_seconds"],
            }
            for d in sorted(drills, key=lambda d: d["time"], reverse=True)
        ],
        "verifies": [
            {
                "repository": v["repository"],
                "time": iso_local(v["time"], tz),
                "passed": v["passed"],
                "newest_snapshot_time": iso_local(v["newest_snapshot_time"], tz),
            }
            for v in sorted(verifies, key=lambda v: v["time"], reverse=True)
        ],
    }


def client_view(checklist: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
    """The checklist as one client may see it: the contract row covers only that client, and no row names
    another client. Rows that list evidence packs keep only their count."""
    if not isinstance(client, dict) or not client.get("id"):
        raise ComplianceInputError("client_view needs a client mapping with an id (an item of ledgerguard_clients)")
    out = dict(checklist)
    rows = []
    for row in checklist.get("rows") or []:
        if row["id"] == "contract_clause":
            row = row_contracts([client])
        elif row["id"] == "rto_target" and row.get("checks"):
            mine = [c for c in row["checks"] if c.get("client_id") in (client.get("id"), None)]
            row = _rto_row(row.get("drill_id"), mine)
        rows.append(row)
    out["rows"] = rows
    out["summary"] = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    out["overall"] = FAIL if out["summary"][FAIL] else (MANUAL if out["summary"][MANUAL] else PASS)
    out["client"] = {"id": client.get("id"), "name": client.get("name") or client.get("id")}
    return out


def _dedupe(items: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    """Drop repeated records (the same drill is copied into several evidence folders)."""
    seen: set[Any] = set()
    out = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


STATUS_LABELS = {
    PASS: {"zh": "通过", "en": "PASS"},
    FAIL: {"zh": "不通过", "en": "FAIL"},
    NOT_APPLICABLE: {"zh": "不适用", "en": "NOT-APPLICABLE"},
    MANUAL: {"zh": "需人工", "en": "MANUAL"},
}


def status_label(status: str, lang: str = "en") -> str:
    key = "zh" if str(lang).lower().startswith("zh") else "en"
    return STATUS_LABELS.get(status, {}).get(key, status)
