# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one time helper: RFC 3339 / ISO 8601 times as restic and operators write them, and UTC times as we write them.

restic writes nanoseconds (``2026-11-26T18:17:34.678045982+08:00``; restic 0.18 ``...Z`` or an offset), Python's
datetime holds microseconds and, before Python 3.11, ``fromisoformat`` takes neither ``Z`` nor more than six
fraction digits; managed hosts may run an older Python, so the text is read here, not by ``fromisoformat``. restic's
lock messages print Go's default form, ``2026-11-26 18:40:01.12 +0000 UTC``, also read here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc  # noqa: UP017 (module_utils stays importable on Python < 3.11)

TIME_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<clock>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?"
    r"(?:\s*(?P<tz>[Zz]|[+-]\d{2}:?\d{2})(?:\s+[A-Z]{2,5})?)?$"
)
EXAMPLE = "2026-03-01T09:30:00+08:00 or 2026-03-01T01:30:00Z"


class NaiveTimeError(ValueError):
    """A time without a timezone where one is needed (callers that word their own message catch this first)."""


def parse_time(value: Any, name: str = "time", naive_utc: bool = False) -> datetime:
    """An aware datetime from RFC 3339 / ISO 8601 text (``T`` or a space, fractions of any length, ``Z``, ``+08:00``
    or ``+0800``, Go's trailing zone name) or from a datetime.

    A time without a timezone is ambiguous and refused (NaiveTimeError, a ValueError naming ``name`` and the value)
    unless ``naive_utc``, which reads it as UTC; anything else unreadable is a ValueError naming them. The offset is
    kept: compare the results freely, or ``.astimezone(UTC)``.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value
        if naive_utc:
            return value.replace(tzinfo=UTC)
        raise NaiveTimeError(
            f"{name} {value.isoformat()!r} has no timezone, so it is ambiguous; add one, e.g. {EXAMPLE}"
        )
    text = str(value if value is not None else "").strip()
    match = TIME_RE.match(text)
    if not match:
        raise ValueError(f"{name} {value!r} is not a timestamp; use ISO 8601 with a timezone, e.g. {EXAMPLE}")
    written = f"{match.group('date')}T{match.group('clock')}"  # the suggestion keeps what was written
    zone = match.group("tz")
    if not zone and not naive_utc:
        raise NaiveTimeError(
            f"{name} {value!r} has no timezone, so it is ambiguous; add one, e.g. {written}+08:00 or {written}Z"
        )
    base = written + (":00" if match.group("clock").count(":") == 1 else "")
    try:
        moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a valid date and time (e.g. {EXAMPLE})") from None
    micro = int((match.group("frac") or "0")[:6].ljust(6, "0"))
    return moment.replace(microsecond=micro, tzinfo=_zone(zone or "Z"))


def _zone(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return UTC if not offset else timezone(sign * offset)


def format_utc(moment: datetime | float | None = None, precise: bool = False) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC of a datetime (a naive one is taken as UTC), of seconds since the epoch, or of
    now. ``precise`` keeps the microseconds when there are any (``...T18:17:34.678045Z``)."""
    if moment is None:
        moment = datetime.now(UTC)
    elif isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(float(moment), UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if precise and moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: Any) -> str:
    """Seconds -> ``1 h 05 min``, ``3 min 20 s``, ``12 s`` (``2 d 3 h 04 min`` past a day); ``unknown`` when not a
    number."""
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
        return f"{sign}{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    if minutes:
        return f"{sign}{minutes} min {secs:02d} s"
    return f"{sign}{secs} s"
