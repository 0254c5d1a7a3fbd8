"""Restore order from filing deadlines (issue 16): the calendar, the next deadline, the one queue, the ETAs."""

from __future__ import annotations

import pytest

from ansible_collections.ledgerguard.recovery.plugins.filter.filing_restore_queue import filing_restore_queue
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import filing

DETECTED = "2026-12-05T01:00:00Z"


@pytest.fixture(scope="module")
def shipped():
    return filing.load_calendar()


def write(tmp_path, text: str):
    path = tmp_path / "日历.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


CUSTOM = """
warning: 请核对税务局征期日历
utc_offset: "+08:00"
sources:
  mine: {title: 本所自编, certainty: unconfirmed}
deadlines:
  - {date: 2026-12-07, filings: [vat_monthly], period: 2026-11, source: mine}
  - {date: 2026-12-10, filings: [cit_quarterly], period: 2026-Q4, source: mine, note: 提前}
  - {date: 2027-01-31, filings: [annual_report], period: "2026", source: mine}
"""


# -- the shipped calendar ----------------------------------------------------------------------------------------------
def test_shipped_calendar_has_2026_dates_with_sources_and_the_warning(shipped):
    by = {(d["filing"], d["date"]): d for d in shipped["deadlines"]}
    # 税总办征科函〔2025〕64号 as reproduced: January 20, October 26, December 15
    assert by[("vat_monthly", "2026-01-20")]["period"] == "2025-12"
    assert by[("cit_quarterly", "2026-10-26")]["period"] == "2026-Q3"
    assert by[("iit_monthly", "2026-12-15")]["certainty"] == "secondary"
    assert "税总办征科函〔2025〕64号" in by[("vat_monthly", "2026-12-15")]["source_title"]
    assert by[("cit_annual", "2026-05-31")]["note"].startswith("May 31, 2026 is a Sunday")
    assert by[("annual_report", "2026-06-30")]["source"] == "disclosure-8"
    # 2027 is not published yet: every 2027 monthly date is marked unconfirmed
    assert {d["certainty"] for d in shipped["deadlines"] if d["date"] >= "2027" and d["filing"] == "vat_monthly"} == {
        "unconfirmed"
    }
    assert "State Taxation Administration" in shipped["warning"] and "unconfirmed" in shipped["warning"]
    # the deadline is the end of the day in China (UTC+8)
    assert by[("vat_monthly", "2026-12-15")]["due"] == "2026-12-15T16:00:00Z"


def test_next_deadline_is_the_nearest_upcoming_one_of_the_declared_filings(shipped):
    got, problems = filing.next_deadline(["cit_annual", "vat_monthly"], shipped, DETECTED)
    assert (got["filing"], got["date"], got["period"], problems) == ("vat_monthly", "2026-12-15", "2026-11", [])
    got, problems = filing.next_deadline(["annual_report"], shipped, DETECTED)
    assert (got["date"], got["period"], problems) == ("2027-06-30", "2026", [])
    # the last day counts in full: at 23:59 Beijing time on the 15th the 15th is still the deadline, a minute later not
    assert filing.next_deadline(["vat_monthly"], shipped, "2026-12-15T23:59:00+08:00")[0]["date"] == "2026-12-15"
    assert filing.next_deadline(["vat_monthly"], shipped, "2026-12-16T00:00:00+08:00")[0]["date"] == "2027-01-15"
    assert filing.next_deadline([], shipped, DETECTED) == (None, [])


def test_unknown_filing_and_an_exhausted_calendar_are_said_not_guessed(shipped):
    got, problems = filing.next_deadline(["vat_monthy", "iit_monthly"], shipped, DETECTED)
    assert got["filing"] == "iit_monthly"
    assert problems[0].startswith("filing 'vat_monthy' has no dates in the filing calendar (known: annual_report, ")
    assert problems[0].endswith("it does not count for the restore order")
    got, problems = filing.next_deadline(["vat_monthly"], shipped, "2028-01-01T00:00:00Z")
    assert got is None
    assert problems == [
        "the filing calendar has no vat_monthly date after 2028-01-01: add the next dates (ledgerguard_filing_calendar)"
    ]


def test_firm_calendar_replaces_the_shipped_one(tmp_path):
    cal = filing.load_calendar(write(tmp_path, CUSTOM))
    assert cal["warning"] == "请核对税务局征期日历"
    assert [(d["filing"], d["date"]) for d in cal["deadlines"]] == [
        ("vat_monthly", "2026-12-07"),
        ("cit_quarterly", "2026-12-10"),
        ("annual_report", "2027-01-31"),
    ]
    assert cal["deadlines"][1]["note"] == "提前" and cal["deadlines"][1]["source_title"] == "本所自编"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deadlines: {}\n", "expected a mapping with a list 'deadlines' (docs/filing_calendar.md)"),
        (
            "sources: {a: {title: x}}\ndeadlines: [{date: 2026-13-01, filings: [vat_monthly], source: a}]\n",
            "deadlines[0]: date '2026-13-01' is not a date; write it as 2026-12-15",
        ),
        (
            "sources: {a: {title: x}}\ndeadlines: [{date: 2026-12-01, filings: [vat_monthly], source: b}]\n",
            "deadlines[0]: source 'b' is not a key of 'sources' (a); every date names where it comes from",
        ),
        (
            "sources: {a: {title: x}}\ndeadlines: [{date: 2026-12-01, filings: [], source: a}]\n",
            "deadlines[0]: 'filings' must list the filing kinds it closes, e.g. [vat_monthly]",
        ),
        (
            "sources: {a: {title: x, certainty: sure}}\ndeadlines: [{date: 2026-12-01, filings: [x], source: a}]\n",
            "deadlines[0]: certainty 'sure' is not one of confirmed, secondary, unconfirmed",
        ),
        ("utc_offset: '8'\ndeadlines: []\n", "utc_offset '8' is not an offset; write it as \"+08:00\""),
    ],
)
def test_bad_calendar_names_the_file_the_entry_and_the_fix(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(filing.CalendarError) as err:
        filing.load_calendar(path)
    assert str(err.value).startswith(f"filing calendar {path}") and str(err.value).endswith(message)


def test_missing_calendar_file(tmp_path):
    with pytest.raises(filing.CalendarError, match=r"cannot be read \(No such file or directory\); set ledgerguard"):
        filing.load_calendar(str(tmp_path / "none.yml"))


# -- the order ---------------------------------------------------------------------------------------------------------
def test_order_nearest_deadline_then_priority_then_id_then_host(tmp_path):
    cal = filing.load_calendar(write(tmp_path, CUSTOM))
    clients = {
        "books-a": [
            {"id": "c001", "name": "杭州示例贸易有限公司", "priority": 1, "filings": ["annual_report"]},
            {"id": "c002", "name": "宁波海风餐饮管理有限公司", "priority": 50, "filings": ["cit_quarterly"]},
            {"id": "c004", "name": "无申报", "priority": 1},
        ],
        "books-b": [
            {"id": "c003", "name": "温州三江五金制品厂", "priority": 90, "filings": "vat_monthly"},
            {"id": "c005", "name": "同日甲", "priority": 20, "filings": ["cit_quarterly"]},
            {"id": "c002", "name": "同号乙", "priority": 50, "filings": ["cit_quarterly"]},
        ],
    }
    per_host = {h: filing.order_clients(cs, cal, DETECTED) for h, cs in clients.items()}
    assert [c["id"] for c in per_host["books-a"]] == ["c002", "c001", "c004"]
    assert [c["id"] for c in per_host["books-b"]] == ["c003", "c005", "c002"]
    assert per_host["books-b"][0]["filings"] == ["vat_monthly"] and per_host["books-a"][2]["next_deadline"] is None
    entries = [{**c, "host": h} for h, cs in per_host.items() for c in cs]
    queue = filing.restore_queue(entries, [], DETECTED)
    assert [(q["position"], q["id"], q["host"]) for q in queue] == [
        (1, "c003", "books-b"),  # 12-07
        (2, "c005", "books-b"),  # 12-10, priority 20
        (3, "c002", "books-a"),  # 12-10, priority 50, same id on two hosts: host decides
        (4, "c002", "books-b"),
        (5, "c001", "books-a"),  # 2027-01-31
        (6, "c004", "books-a"),  # no filings: last
    ]
    # no priority (a standalone restore_clients run) counts as the default 100
    assert filing.order_key({"id": "c9", "priority": None}) == filing.order_key({"id": "c9"}) == (1, "", 100, "c9", "")
    # each host's own order is the global queue restricted to that host
    for host, ordered in per_host.items():
        assert [c["id"] for c in ordered] == [q["id"] for q in queue if q["host"] == host]


# -- ETA -------------------------------------------------------------------------------------------------------------
DRILLS = [
    {"kind": "drill", "drill_id": "drill-old", "host": "books-a", "finished": "2026-11-01T00:00:00+00:00",
     "clients": [{"id": "c002", "restore_seconds": 10.0, "bytes": 1000, "files": 10}]},
    {"kind": "drill", "drill_id": "drill-new", "host": "books-a", "finished": "2026-12-01T00:00:00+00:00",
     "clients": [{"id": "c002", "restore_seconds": 100.0, "bytes": 1000, "files": 10},
                 {"id": "c001", "restore_seconds": 4.0, "bytes": 0, "files": 8}]},
    {"kind": "drill", "drill_id": "drill-sandbox", "host": "sandbox", "finished": "2026-11-15T00:00:00+00:00",
     "clients": [{"id": "c003", "restore_seconds": 1.0, "bytes": 50, "files": 1},
                 {"id": "c010", "restore_seconds": 1.0, "bytes": 10, "files": 1}]},
]  # fmt: skip


def entry(host, cid, due=None, size=None, files=None, **more):
    deadline = {"filing": "vat_monthly", "date": due[:10], "due": due, "period": "2026-11", "utc_offset": "+08:00",
                "certainty": "secondary", "source": "sta-2026", "note": ""} if due else None  # fmt: skip
    stats = {k: v for k, v in (("bytes", size), ("files", files)) if v is not None}
    return {"host": host, "id": cid, "name": f"客户{cid}", "priority": 100, "next_deadline": deadline,
            "snapshot": {"stats": stats}, "status": "planned", **more}  # fmt: skip


def test_newest_drill_rate_per_host_and_client():
    rates = filing.drill_rates(DRILLS)
    assert (
        rates[("books-a", "c002")]["bytes_per_second"] == 10.0 and rates[("books-a", "c002")]["drill_id"] == "drill-new"
    )
    assert rates[("books-a", "c001")] == {
        "bytes_per_second": None, "files_per_second": 2.0, "seconds": 4.0, "drill_id": "drill-new", "host": "books-a",
        "at": "2026-12-01T00:00:00+00:00",
    }  # fmt: skip
    assert rates[("", "c003")]["host"] == "sandbox"


def test_eta_accumulates_per_host_and_warns_when_after_the_deadline():
    start = "2026-12-05T00:00:00Z"
    entries = [
        entry("books-a", "c002", "2026-12-05T00:04:00Z", size=2000),  # 2000 B at 10 B/s: 200 s -> 00:03:20, in time
        entry("books-a", "c001", "2026-12-05T00:05:00Z", files=800),  # then 800 files at 2 files/s: +400 s -> 00:10:00
        entry("books-b", "c003", "2026-12-06T00:00:00Z", size=500),  # another host in parallel, sandbox drill: 10 s
        entry("books-b", "c009", "2026-12-06T00:00:00Z", size=500),  # never drilled
        entry("books-b", "c010", "2026-12-07T00:00:00Z", size=10),  # behind an unmeasured client: a lower bound
    ]
    queue = filing.restore_queue(entries, DRILLS, start)
    by = {q["id"]: q for q in queue}
    assert [(q["id"], q["host"]) for q in queue] == [
        ("c002", "books-a"), ("c001", "books-a"), ("c003", "books-b"), ("c009", "books-b"), ("c010", "books-b")
    ]  # fmt: skip
    assert by["c002"]["eta"] == "2026-12-05T00:03:20Z" and by["c002"]["late"] is False
    assert by["c002"]["eta_basis"] == "2000 bytes at 10 B/s, drill drill-new on books-a (2026-12-01T00:00:00+00:00)"
    assert by["c003"]["eta"] == "2026-12-05T00:00:10Z"
    assert by["c009"]["eta"] == "" and by["c009"]["eta_basis"] == "no drill measurement" and not by["c009"]["late"]
    assert by["c010"]["eta"] == "2026-12-05T00:00:11Z"
    assert by["c010"]["eta_basis"].endswith("; at least: no drill measurement for c009 ahead")
    late = [q for q in queue if q["late"]]
    assert [q["id"] for q in late] == [by["c001"]["id"]]
    assert by["c001"]["warnings"] == [
        "LATE: client c001 on books-a is expected to be restored at 2026-12-05T00:10:00Z, after its vat_monthly "
        "deadline 2026-12-05 (2026-11): apply for an extension of the filing (延期申报) in time"
    ]


def test_restored_client_eta_is_its_finish_time():
    done = entry("books-a", "c002", "2026-12-05T00:05:00Z", size=2000, status="ok", finished="2026-12-05T00:06:00Z")
    [q] = filing.restore_queue([done], DRILLS, "2026-12-05T00:00:00Z")
    assert (q["eta"], q["eta_estimated"], q["late"]) == ("2026-12-05T00:06:00Z", False, True)
    assert q["warnings"][0].startswith("LATE: client c002 on books-a was restored at 2026-12-05T00:06:00Z, after")
    failed = entry("books-b", "c003", "2026-12-05T00:05:00Z", size=2000, status="failed")
    [q] = filing.restore_queue([failed], DRILLS, "2026-12-05T00:00:00Z")
    assert (q["eta"], q["eta_basis"], q["late"]) == ("", "not restored (failed)", False)
    assert q["warnings"] == [
        "NOT RESTORED: client c003 on books-b has its vat_monthly deadline 2026-12-05 (2026-11): restore it or apply "
        "for an extension of the filing (延期申报) in time"
    ]


def test_filter_returns_lines_with_hosts_deadlines_and_the_calendar_warning(tmp_path):
    cal = filing.load_calendar(write(tmp_path, CUSTOM))
    client = {"id": "c001", "name": "杭州示例贸易有限公司", "filings": ["vat_monthly"]}
    entries = [
        {**c, "host": "books-a", "status": "planned", "snapshot": {}}
        for c in filing.order_clients([client], cal, DETECTED)
    ]
    out = filing_restore_queue(entries, [], "2026-12-05T00:00:00Z", write(tmp_path, CUSTOM))
    assert out["warning"] == "请核对税务局征期日历"
    assert out["lines"] == [
        "Restore queue of the incident (all hosts; nearest filing deadline first, then priority, then id):",
        "1. c001 (杭州示例贸易有限公司) on books-a, priority 100: next deadline vat_monthly for 2026-11 due 2026-12-07 "
        "(end of day, UTC+08:00; unconfirmed: mine); ETA no drill measurement",
        "Filing calendar: 请核对税务局征期日历",
    ]


def test_filter_gives_the_clients_before_their_restore_their_deadlines_across_hosts(tmp_path):
    # The restoring notices' ETAs: the selected clients of two hosts (no next_deadline yet, no snapshot), one queue.
    clients = [
        {"id": "c001", "name": "杭州示例贸易有限公司", "host": "books-a", "priority": 1, "filings": ["cit_quarterly"]},
        {"id": "c002", "name": "宁波海风餐饮管理有限公司", "host": "books-a", "priority": 50, "filings": "vat_monthly"},
        {"id": "c003", "name": "温州三江五金制品厂", "host": "books-b", "priority": 90, "filings": []},
    ]
    out = filing_restore_queue(clients, DRILLS, "2026-12-05T00:00:00Z", write(tmp_path, CUSTOM), DETECTED)
    queue = {q["id"]: q for q in out["queue"]}
    assert [(q["position"], q["id"], q["host"]) for q in out["queue"]] == [
        (1, "c002", "books-a"), (2, "c001", "books-a"), (3, "c003", "books-b")
    ]  # fmt: skip
    assert (queue["c002"]["next_deadline"]["date"], queue["c001"]["next_deadline"]["date"]) == (
        "2026-12-07",
        "2026-12-10",
    )
    # No snapshot yet: as long as each drill took, one client after the other on its host.
    assert queue["c002"]["eta_basis"] == "as long as the drill drill-new on books-a (2026-12-01T00:00:00+00:00) took"
    assert queue["c003"]["next_deadline"] is None and queue["c003"]["eta"] == "2026-12-05T00:00:01Z"
    with pytest.raises(Exception, match="filing_restore_queue: filing calendar "):
        filing_restore_queue(clients, [], None, str(tmp_path / "missing.yml"), DETECTED)
