# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention lint: a ``restic forget`` policy against the accounting-archive retention periods.

The minimum periods come from 《会计档案管理办法》 (财政部 国家档案局令第79号) 附表1, as reproduced by secondary
sources (see docs/backup_verify.md). They are counted from the first day after the end of the fiscal year in which a
record was made. The lint asks one question per record class: can this policy delete the last snapshot that holds a
record of the class before the class's minimum period has run out? If yes, the class FAILs.

Worst case assumed: a record leaves the live data right after the end of its fiscal year, so the last snapshot that
holds it is the one taken at fiscal-year end. That snapshot must survive ``years`` years.

- ``keep_within`` / ``keep_within_yearly`` (restic durations such as ``30y``) keep every snapshot (resp. the last one
  of each year) that is at most that old, measured from the newest snapshot: enough when the duration is at least
  ``years`` years.
- ``keep_yearly: N`` keeps the last snapshot of each of the N newest years that have snapshots; the fiscal-year-end
  snapshot of year Y is dropped in year Y+N, so N must be at least ``years + 1``. ``-1`` (restic 0.17+) means
  unlimited.
- ``keep_monthly`` / ``keep_weekly`` / ``keep_daily`` / ``keep_hourly`` count months, weeks, days, hours in the same
  way; ``keep_last`` guarantees no age at all (it depends on how often backups run).
- ``keep_tag``: snapshots carrying one of these tags are never removed. A class whose ``tag`` is listed is protected
  for ever, provided its snapshots really carry the tag (the role checks that separately when asked).
- No policy at all (``None``) means nothing is ever forgotten: every class passes.

Permanent classes (``years: None``) pass only through unlimited keep rules or a protecting tag.
"""

from __future__ import annotations

import re
from typing import Any

DAYS_PER_YEAR = 365.2425
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

# 附表1 企业和其他组织会计档案保管期限表 (2016 table). ``years: None`` = permanent.
DEFAULT_RECORD_CLASSES: list[dict[str, Any]] = [
    {"id": "vouchers", "name": "原始凭证, 记账凭证 (vouchers)", "years": 30},
    {"id": "ledgers", "name": "总账, 明细账, 日记账, 其他辅助性账簿 (ledgers)", "years": 30},
    {
        "id": "fixed_asset_cards",
        "name": "固定资产卡片 (fixed-asset cards)",
        "years": 5,
        "note": "5 years after the asset is scrapped and cleared",
    },
    {
        "id": "periodic_reports",
        "name": "月度、季度、半年度财务会计报告 (monthly/quarterly/half-year reports)",
        "years": 10,
    },
    {"id": "annual_reports", "name": "年度财务会计报告 (annual financial reports)", "years": None},
    {
        "id": "bank_and_tax",
        "name": "银行存款余额调节表, 银行对账单, 纳税申报表 (bank reconciliations, statements, tax returns)",
        "years": 10,
    },
    {"id": "handover_registers", "name": "会计档案移交清册 (archive handover registers)", "years": 30},
    {
        "id": "archive_registers",
        "name": "会计档案保管清册, 销毁清册, 鉴定意见书 (custody/destruction registers, appraisal opinions)",
        "years": None,
    },
]

POLICY_KEYS = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
    "keep_tag",
)

_COUNT_UNIT_DAYS = {
    "keep_hourly": 1 / 24,
    "keep_daily": 1.0,
    "keep_weekly": 7.0,
    "keep_monthly": DAYS_PER_MONTH,
    "keep_yearly": DAYS_PER_YEAR,
}
_DURATION_RE = re.compile(r"(\d+)([ymdh])")
_UNIT_DAYS = {"y": DAYS_PER_YEAR, "m": DAYS_PER_MONTH, "d": 1.0, "h": 1 / 24}


class RetentionPolicyError(ValueError):
    """The forget policy cannot be understood."""


def normalize_policy(policy: dict[str, Any] | None) -> dict[str, Any] | None:
    """Accept restic flag spellings (``keep-yearly``, ``--keep-yearly``) and return snake_case keys."""
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise RetentionPolicyError(
            f"forget policy must be a mapping of restic forget options, got {type(policy).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in policy.items():
        norm = str(key).lstrip("-").replace("-", "_")
        if norm not in POLICY_KEYS:
            continue  # prune, group_by, host, ... do not change what is kept per group
        out[norm] = value
    return out


def parse_duration_days(text: str) -> float:
    """Parse a restic duration (``30y``, ``1y6m``, ``90d``, ``36h``) into days; raises on anything else."""
    compact = str(text).strip().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise RetentionPolicyError(
            f"'{text}' is not a restic duration: use numbers with y, m, d or h, e.g. 30y or 1y6m"
        )
    return sum(int(n) * _UNIT_DAYS[u] for n, u in _DURATION_RE.findall(compact))


def guaranteed_days(policy: dict[str, Any]) -> tuple[float, str]:
    """The age (days) up to which the policy surely keeps a fiscal-year-end snapshot, and the rule that gives it.

    ``float('inf')`` when a rule keeps without limit.
    """
    best, why = 0.0, "no keep rule guarantees any age (keep_last depends on how often backups run)"
    for key, unit in _COUNT_UNIT_DAYS.items():
        raw = policy.get(key)
        if raw in (None, ""):
            continue
        try:
            count = int(raw)
        except (TypeError, ValueError) as exc:
            raise RetentionPolicyError(f"{key} must be an integer, got '{raw}'") from exc
        if count < 0:
            return float("inf"), f"{key}: {count} (unlimited)"
        # The snapshot of period P is dropped once N newer periods exist: it survives N-1 full periods.
        days = max(count - 1, 0) * unit
        if days > best:
            best, why = days, f"{key}: {count}"
    for key in (k for k in POLICY_KEYS if k.startswith("keep_within")):
        raw = policy.get(key)
        if raw in (None, ""):
            continue
        days = parse_duration_days(raw)
        if days > best:
            best, why = days, f"{key}: {raw}"
    return best, why


def _tags(policy: dict[str, Any]) -> set[str]:
    raw = policy.get("keep_tag") or []
    if isinstance(raw, str):
        raw = [raw]
    tags: set[str] = set()
    for item in raw:
        tags.update(t.strip() for t in str(item).split(",") if t.strip())
    return tags


def _fmt_years(days: float) -> str:
    if days == float("inf"):
        return "unlimited"
    return f"{days / DAYS_PER_YEAR:.1f} years"


def lint_policy(policy: dict[str, Any] | None, classes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Lint a forget policy against record classes. Returns ``{status, reason, classes: [...]}``.

    Each class result: ``{id, name, years, status (OK|FAIL), reason, guaranteed_years, rule}``.
    """
    classes = DEFAULT_RECORD_CLASSES if classes is None else classes
    norm = normalize_policy(policy)
    results: list[dict[str, Any]] = []
    if norm is None:
        for cls in classes:
            results.append(
                {
                    "id": cls["id"],
                    "name": cls.get("name", cls["id"]),
                    "years": cls.get("years"),
                    "status": "OK",
                    "reason": "no forget policy is configured: restic never deletes snapshots",
                    "guaranteed_years": None,
                    "rule": None,
                }
            )
        return {"status": "OK", "reason": "no forget policy configured; nothing is ever forgotten", "classes": results}

    days, rule = guaranteed_days(norm)
    tags = _tags(norm)
    for cls in classes:
        years = cls.get("years")
        tag = cls.get("tag")
        need = "permanent" if years is None else f"{years} years"
        if tag and tag in tags:
            status, reason = "OK", f"snapshots tagged '{tag}' are kept by keep_tag (need {need})"
        elif years is None:
            if days == float("inf"):
                status, reason = "OK", f"{rule} keeps snapshots without limit (need permanent)"
            else:
                status = "FAIL"
                reason = (
                    f"permanent class, but the policy keeps a year-end snapshot only {_fmt_years(days)} ({rule}); "
                    f"tag these snapshots (e.g. '{tag or 'archive-permanent'}') and add it to keep_tag"
                )
        else:
            need_days = years * DAYS_PER_YEAR
            if days + 1e-6 >= need_days:
                status, reason = "OK", f"{rule} keeps a year-end snapshot {_fmt_years(days)} (need {need})"
            else:
                fix = f"keep_yearly: {years + 1} or keep_within_yearly: {years}y"
                status = "FAIL"
                reason = (
                    f"the policy keeps a year-end snapshot only {_fmt_years(days)} ({rule}), "
                    f"less than the {need} minimum; use {fix}, or a protecting keep_tag"
                )
        results.append(
            {
                "id": cls["id"],
                "name": cls.get("name", cls["id"]),
                "years": years,
                "status": status,
                "reason": reason,
                "guaranteed_years": None if days == float("inf") else round(days / DAYS_PER_YEAR, 2),
                "rule": rule,
            }
        )
    failed = [r["id"] for r in results if r["status"] == "FAIL"]
    if failed:
        return {
            "status": "FAIL",
            "reason": "forget policy could delete the last copy of: " + ", ".join(failed),
            "classes": results,
        }
    return {"status": "OK", "reason": f"every record class is kept long enough ({rule})", "classes": results}


# --- the one retention variable ---------------------------------------------------------------------------------------
# ledgerguard_backup_policy.retention is where the policy is written; these role variables are deprecated aliases,
# read only when it is not set (one release), and an error when they hold another policy.
RETENTION_VARIABLE = "ledgerguard_backup_policy.retention"
RETENTION_ALIASES = ("backup_verify_forget_policy", "backup_forget_policy")
KEEP_ALL = ("keep-all", "keep_all", "forever")


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, (str, dict, list)) and len(value) == 0)


def forget_policy(retention: Any, name: str = RETENTION_VARIABLE) -> dict[str, Any] | None:
    """The restic forget policy of a retention value: a mapping as it is, ``None`` for unset or ``keep-all``
    (nothing is forgotten). Raises RetentionPolicyError naming ``name`` for anything else."""
    if _unset(retention):
        return None
    if isinstance(retention, str) and retention.strip().lower() in KEEP_ALL:
        return None
    if isinstance(retention, dict):
        return retention
    raise RetentionPolicyError(
        f"{name} {retention!r} is neither a restic forget policy mapping (keep_daily, keep_yearly, keep_tag, ...) "
        "nor 'keep-all'"
    )


def _same_policy(a: Any, b: Any) -> bool:
    """Whether two retention values keep the same snapshots (restic flag spellings and keep-all compared as read)."""
    try:
        return normalize_policy(forget_policy(a)) == normalize_policy(forget_policy(b))
    except RetentionPolicyError:
        return a == b


def resolve_retention(backup_policy: Any, aliases: dict[str, Any] | None = None) -> dict[str, Any]:
    """The retention policy in force: ``{retention, source, deprecated}``.

    ``retention`` is ``ledgerguard_backup_policy.retention`` when set (a forget policy mapping or ``keep-all``, as
    written); otherwise the value of a deprecated alias (``backup_verify_forget_policy``, ``backup_forget_policy``);
    ``None`` when none is set. ``source`` names the variable it came from, ``deprecated`` the aliases that are set.
    Raises RetentionPolicyError when two of them hold different policies: two policies in force is the bug this
    variable exists to prevent (one forgets what the other lints as kept).
    """
    if backup_policy is None:
        backup_policy = {}
    if not isinstance(backup_policy, dict):
        raise RetentionPolicyError(
            f"ledgerguard_backup_policy must be a mapping (method, frequency, medium, retention, ...), got "
            f"{type(backup_policy).__name__}"
        )
    unknown = sorted(set(aliases or {}) - set(RETENTION_ALIASES))
    if unknown:
        raise RetentionPolicyError(
            f"not a retention alias: {', '.join(unknown)} (known: {', '.join(RETENTION_ALIASES)})"
        )
    written = [(RETENTION_VARIABLE, backup_policy.get("retention"))] + [
        (name, (aliases or {}).get(name)) for name in RETENTION_ALIASES
    ]
    written = [(name, value) for name, value in written if not _unset(value)]
    deprecated = [entry[0] for entry in written if entry[0] != RETENTION_VARIABLE]
    if not written:
        return {"retention": None, "source": None, "deprecated": []}
    source, value = written[0]
    for other, other_value in written[1:]:
        if not _same_policy(value, other_value):
            raise RetentionPolicyError(
                f"two retention policies are set: {source} = {_show(value)} and {other} = {_show(other_value)}. "
                f"Keep one: write the policy only in {RETENTION_VARIABLE} and remove {', '.join(deprecated)} "
                "(deprecated), so that backup_verify lints the policy the backup role applies"
            )
    return {"retention": value, "source": source, "deprecated": deprecated}


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return repr(value)


def alias_notice(name: str, used: bool) -> str:
    """The deprecation warning for an alias that is set (``used``: it is the policy in force)."""
    what = "its policy is in force" if used else f"it holds the same policy as {RETENTION_VARIABLE}"
    return (
        f"{name} is deprecated ({what}): write the retention policy once in {RETENTION_VARIABLE}, which "
        f"backup_verify's lint, the backup role's forget and the compliance checklist all read, and remove {name}"
    )
