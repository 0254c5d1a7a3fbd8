"""Unit tests of plugins/module_utils/drill.py: snapshot choice, sandbox safety, targets, records, trend chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jinja2

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import drill

CLIENTS = [
    {"id": "c001", "name": "杭州示例贸易有限公司", "paths": ["/srv/ledgers/c001"]},
    {"id": "c002", "name": "宁波示例餐饮有限公司", "paths": ["/srv/ledgers/c002", "/data/c002-scans"]},
]
SNAPS = [
    {"id": "a" * 64, "short_id": "aaaaaaaa", "time": "2026-11-01T02:00:00.123456789+08:00"},
    {"id": "b" * 64, "short_id": "bbbbbbbb", "time": "2026-11-20T02:00:00.5Z"},
    {"id": "c" * 64, "short_id": "cccccccc", "time": "2026-11-25T18:00:00Z"},
]


def test_parse_time_handles_restic_nanoseconds_and_offsets():
    t = drill.parse_time("2026-11-01T02:00:00.123456789+08:00")
    assert t.utcoffset().total_seconds() == 8 * 3600
    assert t.microsecond == 123456
    assert drill.snapshot_age_seconds("2026-11-25T18:00:00Z", "2026-11-26T00:00:00+00:00") == 6 * 3600
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        drill.parse_time("yesterday")


def test_pick_latest_and_explicit():
    assert drill.pick_snapshot(list(reversed(SNAPS)))["short_id"] == "cccccccc"
    assert drill.pick_snapshot(SNAPS, snapshot_id="bbbb")["short_id"] == "bbbbbbbb"
    with pytest.raises(ValueError, match="drill_snapshot_id 'dddd' is not among the 3 matching snapshots"):
        drill.pick_snapshot(SNAPS, snapshot_id="dddd")
    with pytest.raises(ValueError, match="no snapshot matching"):
        drill.pick_snapshot([])


def test_database_dumps_and_manifests_are_never_drilled_as_files():
    files = {**SNAPS[1], "paths": ["/srv/ledgers/c001"], "tags": ["c001", "ledgerguard-backup"]}
    dump = {
        "id": "d" * 64,
        "short_id": "dddddddd",
        "time": "2026-11-26T03:00:00Z",
        "paths": ["/ledgerguard-db/postgresql/账套库.dump"],
        "tags": ["c001", "ledgerguard-backup", "db-postgresql-账套库"],
    }
    manifest = {**SNAPS[2], "paths": ["/ledgerguard-manifest-bbbbbbbb.jsonl"], "tags": ["ledgerguard-manifest"]}
    assert drill.pick_snapshot([files, dump, manifest])["short_id"] == "bbbbbbbb"
    with pytest.raises(ValueError, match="no snapshot matching"):
        drill.pick_snapshot([dump, manifest])


def test_pick_prefers_the_hosts_own_snapshots_and_refuses_to_guess_among_other_hosts():
    hz01 = [dict(s, hostname="杭州-books01") for s in SNAPS[:2]]
    nb02 = dict(SNAPS[2], hostname="nb-books02")  # the newest, but another server's
    assert drill.pick_snapshot([*hz01, nb02], own_host="杭州-books01")["short_id"] == "bbbbbbbb"
    assert drill.pick_snapshot([*hz01, nb02])["short_id"] == "cccccccc"  # no host given: every host, as listed
    # a drill host restoring one server's backups: a single host wrote the repository
    assert drill.pick_snapshot(hz01, own_host="drill-host")["short_id"] == "bbbbbbbb"
    with pytest.raises(ValueError) as err:
        drill.pick_snapshot([*hz01, nb02], own_host="drill-host")
    assert str(err.value) == (
        "the repository holds snapshots of 2 hosts (nb-books02, 杭州-books01) and none of this host (drill-host): set "
        "drill_snapshot_host to the host whose backups this drill restores, or drill_snapshot_id"
    )
    # an explicit snapshot wins over the host preference
    assert drill.pick_snapshot([*hz01, nb02], snapshot_id="cccc", own_host="杭州-books01")["hostname"] == "nb-books02"


def test_pick_random_stays_in_window_and_is_reproducible_with_a_seed():
    now = "2026-11-26T00:00:00Z"
    picks = {drill.pick_snapshot(SNAPS, "random", 10, now, seed=s)["short_id"] for s in range(40)}
    assert picks == {"bbbbbbbb", "cccccccc"}  # the 1 Nov snapshot is 25 days old: outside a 10-day window
    one = drill.pick_snapshot(SNAPS, "random", 30, now, seed="weekly-7")
    assert all(drill.pick_snapshot(SNAPS, "random", 30, now, seed="weekly-7") == one for _try in range(5))
    with pytest.raises(ValueError, match=r"no snapshot is younger than drill_random_window_days=0\.1"):
        drill.pick_snapshot(SNAPS, "random", 0.1, now)
    with pytest.raises(ValueError, match="drill_snapshot_selection 'oldest' is not one of latest, random"):
        drill.pick_snapshot(SNAPS, "oldest")


@pytest.mark.parametrize(
    ("sandbox", "message"),
    [
        ("/", "drill_sandbox_dir '/' is the root directory; a drill never restores onto /"),
        (
            "/srv/ledgers/c001/restore-test",
            "drill_sandbox_dir '/srv/ledgers/c001/restore-test' is inside production path '/srv/ledgers/c001' of "
            "client c001 (杭州示例贸易有限公司); "
            "a drill must restore outside every path declared in ledgerguard_clients",
        ),
        (
            "/data/c002-scans/",
            "drill_sandbox_dir '/data/c002-scans' is inside production path '/data/c002-scans' of client c002 "
            "(宁波示例餐饮有限公司); a drill must restore outside every path declared in ledgerguard_clients",
        ),
        (
            "/srv/ledgers",
            "drill_sandbox_dir '/srv/ledgers' contains production path '/srv/ledgers/c001' of client c001 "
            "(杭州示例贸易有限公司); a drill must restore outside every path declared in ledgerguard_clients",
        ),
        (
            "/etc/ledgerguard/drill",
            "drill_sandbox_dir '/etc/ledgerguard/drill' is inside the system directory '/etc'; "
            "use a dedicated directory such as /var/tmp/ledgerguard-drill",
        ),
        (
            "/var/tmp",
            "drill_sandbox_dir '/var/tmp' is the shared directory '/var/tmp' itself; "
            "use a dedicated sub-directory such as /var/tmp/ledgerguard-drill",
        ),
        (
            "relative/dir",
            "drill_sandbox_dir 'relative/dir' is not an absolute path; "
            "give an absolute directory such as /var/tmp/ledgerguard-drill",
        ),
    ],
)
def test_sandbox_refusals_have_exact_messages(sandbox, message):
    assert drill.sandbox_problem(sandbox, CLIENTS) == message


def test_sandbox_resolved_through_a_symlink_is_checked_too():
    msg = drill.sandbox_problem("/var/tmp/innocent", CLIENTS, realpath="/srv/ledgers/c002/x")
    assert msg.startswith("drill_sandbox_dir '/srv/ledgers/c002/x' (resolved from '/var/tmp/innocent') is inside")


def test_safe_sandboxes_pass():
    assert drill.sandbox_problem("/var/tmp/ledgerguard-drill", CLIENTS) is None
    assert drill.sandbox_problem("/srv/ledgers-drill", CLIENTS) is None  # a sibling prefix is not "inside"
    assert drill.sandbox_problem("/srv/x", CLIENTS, extra_forbidden=["/srv"]).startswith(
        "drill_sandbox_dir '/srv/x' overlaps the protected path '/srv'"
    )


def test_targets_merge_and_evaluate():
    targets = drill.merge_targets({"rto_seconds": 3600, "rpo_seconds": 86400}, {"rto_seconds": 60})
    assert targets == {"rto_seconds": 60.0, "rpo_seconds": 86400.0, "min_throughput_bytes_per_second": None}
    misses = drill.evaluate(
        {"rto_seconds": 61.25, "rpo_seconds": 100, "throughput_bytes_per_second": 10.0},
        {"rto_seconds": 60, "rpo_seconds": 86400, "min_throughput_bytes_per_second": 1000},
    )
    assert misses == [
        "RTO 61.2s exceeds the target of 60s",
        "throughput 10 B/s is below the target of 1000 B/s",
    ]
    assert drill.merge_targets({"rto_seconds": 0})["rto_seconds"] is None


def test_client_result_and_record():
    client = CLIENTS[0]
    targets = drill.merge_targets({"rto_seconds": 10, "rpo_seconds": 3600})
    ok = drill.client_result(
        client, {"files": 7, "bytes": 7000, "seconds": 2.0}, 2.5, 1.5, 120, {"manifest": {"ok": True}}, targets
    )
    assert ok["rto_seconds"] == 4.0 and ok["throughput_bytes_per_second"] == 3500.0 and ok["passed"]
    slow = drill.client_result(client, {"bytes": 10}, 9.0, 2.0, 7200, {"sqlite": {"ok": False}}, targets)
    assert slow["misses"] == [
        "RTO 11.0s exceeds the target of 10s",
        "RPO 7200.0s (snapshot age) exceeds the target of 3600s",
    ]
    assert slow["failed_checks"] == ["sqlite"] and not slow["passed"]
    rec = drill.drill_record({"drill_id": "d1", "host": "h1"}, [ok, slow])
    assert rec["rto_seconds"] == 11.0 and rec["rpo_seconds"] == 7200.0
    assert rec["targets_missed"] and rec["verification_failed"] and not rec["passed"]
    assert rec["misses"][0] == "c001: RTO 11.0s exceeds the target of 10s"
    assert drill.drill_record({}, [])["passed"] is False  # nothing restored is never a pass
    summary = drill.summary(rec)
    assert summary["problems"] == [
        "c001: sqlite",
        "c001: RTO 11.0s exceeds the target of 10s",
        "c001: RPO 7200.0s (snapshot age) exceeds the target of 3600s",
    ]


def test_trend_svg_is_well_formed_and_draws_every_drill():
    history = [
        {"drill_id": f"d{i}", "started": f"2026-11-{i:02d}T02:00:00+00:00", "rto_seconds": 30 + i, "passed": i != 3}
        for i in range(1, 6)
    ]
    svg = drill.trend_svg(history, "rto_seconds", "RTO <restore>", target=40)
    root = ET.fromstring(svg)  # valid XML
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f"{ns}circle")) == 5
    assert [c.get("fill") for c in root.findall(f"{ns}circle")].count("#c0392b") == 1  # the failed drill is red
    points = root.find(f"{ns}polyline").get("points").split()
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys, reverse=True)  # rising RTO: y decreases left to right
    assert (
        "RTO &lt;restore&gt;" in svg
        and "<script" not in svg
        and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert re.search(r"target 40s", svg)
    assert "no drill recorded yet" in drill.trend_svg([], "rpo_seconds", "RPO")


def test_metric_families_for_prometheus_filter():
    rec = drill.drill_record(
        {"host": "web1", "started": "2026-11-26T02:00:00+00:00"},
        [drill.client_result(CLIENTS[0], {"bytes": 100, "seconds": 1}, 1, 1, 50, {}, drill.merge_targets())],
    )
    fams = {f["name"]: f for f in drill.metric_families(rec)}
    assert fams["ledgerguard_drill_passed"]["samples"] == [{"labels": {"host": "web1"}, "value": 1}]
    assert fams["ledgerguard_drill_last_run_timestamp_seconds"]["samples"][0]["value"] == 1795658400.0
    assert fams["ledgerguard_drill_rto_seconds"]["samples"] == [
        {"labels": {"host": "web1", "client": "c001"}, "value": 2.0}
    ]


def test_parse_history_skips_broken_lines():
    text = '{"drill_id": "a"}\nnot json\n\n[1]\n{"drill_id": "b"}\n'
    assert [h["drill_id"] for h in drill.parse_history(text)] == ["a", "b"]


def test_database_results_in_the_metrics_and_the_summary():
    databases = [
        {"engine": "postgresql", "database": "ledger", "passed": True, "snapshot": "9c1d2e3f",
         "tables": {"public.凭证": 120}, "table_count": 1, "total_rows": 120, "seconds": 1.84, "message": ""},
        {"engine": "mariadb", "database": "books", "passed": False, "snapshot": "", "tables": {}, "table_count": 0,
         "total_rows": 0, "seconds": 0, "message": "table 凭证 has 20 rows, at least 21 expected"},
    ]  # fmt: skip
    clients = [drill.client_result(CLIENTS[0], {"bytes": 100, "seconds": 1}, 1, 1, 50, {}, drill.merge_targets())]
    rec = drill.drill_record(
        {"host": "web1", "started": "2026-11-26T02:00:00+00:00", "databases": databases},
        clients,
        ["database mariadb/books: table 凭证 has 20 rows, at least 21 expected"],
    )
    assert rec["passed"] is False and rec["verification_failed"] is True
    fams = {f["name"]: f["samples"] for f in drill.metric_families(rec)}
    pg = {"host": "web1", "engine": "postgresql", "database": "ledger"}
    maria = {"host": "web1", "engine": "mariadb", "database": "books"}
    assert fams["ledgerguard_drill_database_passed"] == [{"labels": pg, "value": 1}, {"labels": maria, "value": 0}]
    # a failed restore's counts are not those of a usable database: only its passed 0
    assert fams["ledgerguard_drill_database_rows"] == [{"labels": pg, "value": 120}]
    assert fams["ledgerguard_drill_database_tables"] == [{"labels": pg, "value": 1}]
    assert fams["ledgerguard_drill_database_restore_seconds"] == [{"labels": pg, "value": 1.84}]
    assert drill.summary(rec)["databases"] == [
        "postgresql/ledger: passed, snapshot 9c1d2e3f, 1 table(s), 120 rows, 1.8 s",
        "mariadb/books: FAILED: table 凭证 has 20 rows, at least 21 expected",
    ]
    assert "database mariadb/books: table 凭证 has 20 rows, at least 21 expected" in drill.summary(rec)["problems"]
    # no database declared: no database family at all
    plain = drill.drill_record({"host": "web1", "started": "2026-11-26T02:00:00+00:00"}, clients)
    names = {f["name"] for f in drill.metric_families(plain) if f["samples"]}
    assert not {n for n in names if n.startswith("ledgerguard_drill_database_")}
    assert drill.summary(plain)["databases"] == []


def test_ledger_verdict_of_a_database_in_the_metrics_and_the_summary():
    """A database with a ledger table: ok / findings / vouchers per database whose ledger was read (a database
    without a ledger mapping, or whose restore failed before the ledger was read, has none)."""
    balanced = {"table": "账务.凭证分录", "ok": True, "rows": 6, "vouchers": 3, "findings_count": 0,
                "summary": "账务.凭证分录: ok (6 rows, 3 vouchers, balanced)"}  # fmt: skip
    unbalanced = {"table": "凭证分录", "ok": False, "rows": 6, "vouchers": 3, "findings_count": 1,
                  "summary": "凭证分录: 1 finding (1 unbalanced): voucher 记-2 of 2024-03 does not balance: debit "
                             "500.00 != credit 450.00 (difference 50.00)"}  # fmt: skip
    message = f"the ledger of the restore ... does not check out: {unbalanced['summary']}"
    databases = [
        {"engine": "postgresql", "database": "ledger", "passed": True, "snapshot": "9c1d2e3f",
         "tables": {"账务.凭证分录": 6}, "table_count": 1, "total_rows": 6, "seconds": 1.84, "ledger": balanced},
        {"engine": "mariadb", "database": "books", "passed": False, "snapshot": "1a2b3c4d", "tables": {"凭证分录": 6},
         "table_count": 1, "total_rows": 6, "seconds": 2.0, "message": message, "ledger": unbalanced},
        {"engine": "postgresql", "database": "payroll", "passed": True, "snapshot": "5e6f7a8b",
         "tables": {"public.工资": 3}, "table_count": 1, "total_rows": 3, "seconds": 0.5, "ledger": None},
    ]  # fmt: skip
    clients = [drill.client_result(CLIENTS[0], {"bytes": 100, "seconds": 1}, 1, 1, 50, {}, drill.merge_targets())]
    rec = drill.drill_record({"host": "web1", "started": "2026-11-26T02:00:00+00:00", "databases": databases},
                             clients, ["database mariadb/books: " + message])  # fmt: skip
    fams = {f["name"]: f["samples"] for f in drill.metric_families(rec)}
    pg = {"host": "web1", "engine": "postgresql", "database": "ledger"}
    maria = {"host": "web1", "engine": "mariadb", "database": "books"}
    assert fams["ledgerguard_drill_database_ledger_ok"] == [{"labels": pg, "value": 1}, {"labels": maria, "value": 0}]
    assert fams["ledgerguard_drill_database_ledger_findings"] == [
        {"labels": pg, "value": 0}, {"labels": maria, "value": 1}
    ]  # fmt: skip
    assert fams["ledgerguard_drill_database_ledger_vouchers"] == [
        {"labels": pg, "value": 3}, {"labels": maria, "value": 3}
    ]  # fmt: skip
    assert drill.summary(rec)["databases"] == [
        "postgresql/ledger: passed, snapshot 9c1d2e3f, 1 table(s), 6 rows, 1.8 s, ledger 账务.凭证分录: ok (6 rows, "
        "3 vouchers, balanced)",
        "mariadb/books: FAILED: " + message,
        "postgresql/payroll: passed, snapshot 5e6f7a8b, 1 table(s), 3 rows, 0.5 s",
    ]

    # the reports list the verdict of each database with a ledger table under the Databases table
    templates = Path(__file__).resolve().parents[4] / "roles" / "drill" / "templates"
    env = jinja2.Environment(  # the template module's settings: trim_blocks
        loader=jinja2.FileSystemLoader(str(templates)), trim_blocks=True, undefined=jinja2.ChainableUndefined
    )
    env.filters["ledgerguard.recovery.drill_trend_svg"] = lambda *a, **k: ""
    ctx = {"__records": [rec], "__drill_id": "drill-1", "__drill_started": rec["started"], "__histories": {"web1": []},
           "drill_trend_points": 10}  # fmt: skip
    md = env.get_template("report.md.j2").render(ctx).splitlines()
    at = md.index("Ledger checks on the scratch restores (the databases' ledger tables):")
    assert md[at - 2].startswith("| payroll | postgresql | 5e6f7a8b |") and md[at - 1] == ""
    assert md[at + 1 : at + 5] == [
        "",
        "- postgresql/ledger: ok: 账务.凭证分录: ok (6 rows, 3 vouchers, balanced)",
        "- mariadb/books: FAILED: " + unbalanced["summary"],
        "",
    ]
    html = env.get_template("report.html.j2").render(ctx)
    assert (
        '<li class="failed">mariadb/books: FAILED: 凭证分录: 1 finding (1 unbalanced): voucher 记-2 of 2024-03 does '
        "not balance: debit 500.00 != credit 450.00 (difference 50.00)</li>" in html
    )
    assert html.count("<li class=") == 2 and '<ul>\n<li class="passed">postgresql/ledger: ok: ' in html
