"""The one time helper (module_utils/timeutil.py): restic's times, operators' times, our UTC form."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import (
    UTC,
    NaiveTimeError,
    format_utc,
    parse_time,
)

SHANGHAI = timezone(timedelta(hours=8))
BERLIN_SUMMER = timezone(timedelta(hours=2))
MINUS_0530 = timezone(-timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # restic 0.14.0 and 0.18.0, `snapshots --json` and `ls --json` run with TZ=Asia/Shanghai (captured)
        ("2026-12-05T05:39:18.336512804+08:00", datetime(2026, 12, 5, 5, 39, 18, 336512, SHANGHAI)),
        ("2026-12-05T05:39:27.282130228+08:00", datetime(2026, 12, 5, 5, 39, 27, 282130, SHANGHAI)),
        # restic 0.14.0 with TZ unset (tests/unit/fixtures/restic/snapshots_json.stdout), and 8 fraction digits
        ("2026-11-26T18:17:34.678045982Z", datetime(2026, 11, 26, 18, 17, 34, 678045, UTC)),
        ("2026-11-26T20:56:35.30772802Z", datetime(2026, 11, 26, 20, 56, 35, 307728, UTC)),
        # restic's documentation example (2020) with a +02:00 offset
        ("2020-07-09T11:18:26.501071439+02:00", datetime(2020, 7, 9, 11, 18, 26, 501071, BERLIN_SUMMER)),
        # what operators and playbooks write
        ("2026-03-01T09:30:00+08:00", datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI)),
        ("2026-03-01T01:30:00Z", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01t01:30:00z", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01 09:30:00+0800", datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI)),
        ("2026-03-01T09:30+08:00", datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI)),
        ("2026-11-20T02:00:00.5Z", datetime(2026, 11, 20, 2, 0, 0, 500000, UTC)),
        ("2026-03-01T01:30:00-05:30", datetime(2026, 3, 1, 1, 30, tzinfo=MINUS_0530)),
        # Go's default time form (restic's lock messages when Go prints a zone)
        ("2026-11-26 18:40:01.12 +0000 UTC", datetime(2026, 11, 26, 18, 40, 1, 120000, UTC)),
        ("  2026-11-26T18:40:01Z\n", datetime(2026, 11, 26, 18, 40, 1, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_restic_and_operator_times(text, expected):
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()  # the offset is kept, not converted


def test_parse_time_keeps_the_offset_and_orders_across_zones():
    shanghai = parse_time("2026-12-05T05:39:18.336512804+08:00")
    utc = parse_time("2026-12-04T21:39:18.336512Z")
    assert shanghai.utcoffset() == timedelta(hours=8) and utc.utcoffset() == timedelta(0)
    assert shanghai == utc and not shanghai < utc


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2026-03-01T09:30:00",
            "snapshot time '2026-03-01T09:30:00' has no timezone, so it is ambiguous; add one, e.g. "
            "2026-03-01T09:30:00+08:00 or 2026-03-01T09:30:00Z",
        ),
        (
            "二〇二六年三月一日",
            "snapshot time '二〇二六年三月一日' is not a timestamp; use ISO 8601 with a timezone, e.g. "
            "2026-03-01T09:30:00+08:00 or 2026-03-01T01:30:00Z",
        ),
        (
            "2026-02-30T09:30:00Z",
            "snapshot time '2026-02-30T09:30:00Z' is not a valid date and time (e.g. 2026-03-01T09:30:00+08:00 or "
            "2026-03-01T01:30:00Z)",
        ),
        (None, "snapshot time None is not a timestamp"),
        ("", "snapshot time '' is not a timestamp"),
        ("2026-03-01T09:30:00+8", "snapshot time '2026-03-01T09:30:00+8' is not a timestamp"),
    ],
)
def test_parse_time_refuses_naming_the_input(value, message):
    with pytest.raises(ValueError) as info:
        parse_time(value, "snapshot time")
    assert str(info.value).startswith(message)


def test_parse_time_naive_as_utc_only_when_asked():
    assert parse_time("2026-12-05 05:39:38", naive_utc=True) == datetime(2026, 12, 5, 5, 39, 38, tzinfo=UTC)
    assert parse_time(datetime(2026, 1, 5, 2), naive_utc=True) == datetime(2026, 1, 5, 2, tzinfo=UTC)
    aware = datetime(2026, 1, 5, 2, tzinfo=SHANGHAI)
    assert parse_time(aware) is aware
    with pytest.raises(NaiveTimeError, match="^now '2026-01-05T02:00:00' has no timezone"):
        parse_time(datetime(2026, 1, 5, 2), "now")
    with pytest.raises(NaiveTimeError, match=r"add one, e.g. 2026-01-05T02:00\+08:00 or 2026-01-05T02:00Z$"):
        parse_time("2026-01-05 02:00", "detected_at")
    with pytest.raises(NaiveTimeError):
        parse_time("2026-01-05T02:00:00.123456789")
    with pytest.raises(ValueError) as garbage:
        parse_time("2026-01-05")
    assert not isinstance(garbage.value, NaiveTimeError)


def test_format_utc():
    moment = parse_time("2026-12-05T05:39:18.336512804+08:00")
    assert format_utc(moment) == "2026-12-04T21:39:18Z"
    assert format_utc(moment, precise=True) == "2026-12-04T21:39:18.336512Z"
    assert format_utc(parse_time("2026-03-01T01:30:00Z"), precise=True) == "2026-03-01T01:30:00Z"
    assert format_utc(datetime(2026, 3, 1, 1, 30)) == "2026-03-01T01:30:00Z"  # naive: taken as UTC
    assert format_utc(1764000000) == "2025-11-24T16:00:00Z"
    assert format_utc(1764000000.25, precise=True) == "2025-11-24T16:00:00.250000Z"
    before = datetime.now(UTC).replace(microsecond=0)
    now = parse_time(format_utc())
    assert before <= now <= datetime.now(UTC)
    # round trip of every form parse_time reads
    assert parse_time(format_utc(moment, precise=True)) == moment
