"""The backup role's pure decisions: forget options, year-end snapshots, forget summaries, orphan manifests, copy
status; and dbcapture's exclude patterns and SQLite capture."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_policy as bp
from ansible_collections.ledgerguard.recovery.plugins.module_utils import dbcapture as dc

CST = timezone(timedelta(hours=8))


def snap(sid, time, tags=("c001",), host="h1", **more):
    return {"id": sid, "time": time, "tags": list(tags), "hostname": host, "paths": ["/srv/books/c001"], **more}


@pytest.mark.parametrize(
    ("policy", "argv"),
    [
        (None, []),
        (
            {"keep-daily": 7, "keep_yearly": 31, "keep_tag": ["archive"]},
            ["--keep-daily=7", "--keep-yearly=31", "--keep-tag=archive", "--keep-tag=permanent"],
        ),
        (
            {"keep_within_yearly": "30y", "keep_last": 3},
            ["--keep-last=3", "--keep-within-yearly=30y", "--keep-tag=permanent"],
        ),
        ({"keep_yearly": -1, "keep_tag": "permanent"}, ["--keep-yearly=-1", "--keep-tag=permanent"]),
    ],
)
def test_forget_options(policy, argv):
    assert bp.forget_options(policy, "permanent") == argv


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"keep_daily": "seven"}, "must be an integer"),
        ({"keep_within": "30 years"}, "not a restic duration"),
        ({"keep_tag": ["permanent"]}, "no keep rule besides keep_tag"),
        ({"keep_daily": -2}, "must be -1"),
    ],
)
def test_forget_options_refuse(policy, message):
    with pytest.raises(ValueError, match=message):
        bp.forget_options(policy, "permanent")


def test_year_end_snapshots_in_beijing_time():
    snaps = [
        snap("a", "2024-12-31T16:30:00Z"),  # 00:30 on 2025-01-01 in Beijing: belongs to 2025
        snap("b", "2024-12-31T12:00:00Z"),  # 20:00 Beijing: 2024's year-end
        snap("c", "2025-06-30T12:00:00+08:00"),
        snap("d", "2026-03-01T12:00:00Z"),  # this year: not over yet
        snap("m", "2024-12-31T13:00:00Z", tags=("ledgerguard-manifest",)),
    ]
    now = datetime(2026, 3, 2, tzinfo=UTC)
    picks = bp.year_end_snapshots(snaps, now, ["12-31"], CST)
    assert [(p["id"], p["year"]) for p in picks] == [("b", 2024), ("c", 2025)]
    # a second date per year (after the annual report is filed)
    picks = bp.year_end_snapshots(snaps, now, ["12-31", "05-31"], CST)
    assert [(p["id"], p["year"], p["date"]) for p in picks] == [
        ("b", 2024, "12-31"),
        ("a", 2025, "05-31"),
        ("c", 2025, "12-31"),
    ]
    with pytest.raises(ValueError, match="MM-DD"):
        bp.year_end_snapshots(snaps, now, ["31.12"], CST)


def test_forget_summary_and_orphans():
    groups = [{"keep": [snap("k", "2025-01-02T00:00:00Z")], "remove": [snap("r", "2024-01-02T00:00:00Z")]}]
    out = bp.forget_summary(groups)
    assert [s["id"] for s in out["keep"]] == ["k"] and [s["short_id"] for s in out["remove"]] == ["r"]
    assert out["keep"][0]["reasons"] == [] and "reasons" not in out["remove"][0]


def test_forget_summary_gives_each_kept_snapshot_the_rules_that_keep_it():
    # restic 0.14's reasons carry the snapshot without its ID (matched by time and tree); later ones may carry it
    kept = [snap("a", "2025-12-31T10:00:00Z", tree="t1"), snap("b", "2026-11-30T10:00:00Z", tree="t2"),
            snap("c", "2026-11-30T10:00:00Z", tree="t3")]  # fmt: skip
    reasons = [
        {"snapshot": {"time": "2025-12-31T10:00:00Z", "tree": "t1"}, "matches": ["has tags [permanent]"]},
        {"snapshot": {"time": "2026-11-30T10:00:00Z", "tree": "t2"}, "matches": ["daily snapshot", "monthly snapshot"]},
        {"snapshot": {"id": "c", "time": "2026-11-30T10:00:00Z", "tree": "t3"}, "matches": ["last snapshot"]},
    ]
    out = bp.forget_summary([{"keep": kept, "remove": [], "reasons": reasons}])
    assert [(s["id"], s["reasons"]) for s in out["keep"]] == [
        ("a", ["has tags [permanent]"]),
        ("b", ["daily snapshot", "monthly snapshot"]),
        ("c", ["last snapshot"]),
    ]
    snaps = [
        snap("k", "2025-01-02T00:00:00Z"),
        snap("m1", "2025-01-02T00:00:00Z", tags=("ledgerguard-manifest", "ledgerguard-manifest-for=k")),
        snap("m2", "2024-01-02T00:00:00Z", tags=("ledgerguard-manifest", "ledgerguard-manifest-for=r")),
        snap("m3", "2024-01-02T00:00:00Z", tags=("ledgerguard-manifest", "ledgerguard-manifest-for=x"), host="h2"),
    ]
    assert [s["id"] for s in bp.orphan_manifests(snaps, "h1")] == ["m2"]
    # in the off-site copy every snapshot has a new ID and keeps the source's in "original", which its manifest names
    copied = [
        snap("k2", "2025-01-02T00:00:00Z", original="k"),
        snap("m1c", "2025-01-02T00:00:00Z", tags=("ledgerguard-manifest", "ledgerguard-manifest-for=k"), original="m1"),
        snap("m2c", "2024-01-02T00:00:00Z", tags=("ledgerguard-manifest", "ledgerguard-manifest-for=r"), original="m2"),
    ]
    assert [s["id"] for s in bp.orphan_manifests(copied, "h1")] == ["m2c"]


def test_copy_status_matches_by_original_or_content():
    source = [snap("s1", "2025-01-01T00:00:00Z", tree="t1"), snap("s2", "2025-01-02T00:00:00Z", tree="t2"),
              snap("s3", "2025-01-02T00:00:00Z", tags=("c002",), tree="t3")]  # fmt: skip
    dest = [snap("d1", "2025-01-01T00:00:00Z", tree="t1", original="s1")]
    out = {s["client"]: s for s in bp.copy_status(source, dest, ["c001", "c002", "c009"], "h1")}
    assert out["c001"]["newest"] == "s2" and out["c001"]["in_copy"] is False and out["c001"]["copies"] == 1
    dest.append(snap("d2", "2025-01-02T00:00:00Z", tree="t2"))  # same content, copied by an older tool
    out = {s["client"]: s for s in bp.copy_status(source, dest, ["c001", "c002", "c009"], "h1")}
    assert out["c001"]["copy_id"] == "d2" and out["c002"]["in_copy"] is False and out["c009"]["newest"] == ""


def test_copy_status_names_the_newest_snapshot_in_both_and_the_checks_judge_it():
    source = [snap("s1", "2025-01-01T00:00:00Z", tree="t1"), snap("s2", "2025-01-02T00:00:00Z", tree="t2"),
              snap("s3", "2025-01-02T00:00:00Z", tags=("c002",), tree="t3"),
              snap("s4", "2025-01-03T00:00:00Z", tags=("客户甲",), tree="t4")]  # fmt: skip
    dest = [snap("d1", "2025-01-01T00:00:00Z", tree="t1", original="s1"),
            snap("d4", "2025-01-03T00:00:00Z", tags=("客户甲",), tree="t4", original="s4")]  # fmt: skip
    status = bp.copy_status(source, dest, ["c001", "c002", "客户甲", "c009"], "h1")
    out = {s["client"]: s for s in status}
    assert (out["c001"]["both_id"], out["c001"]["both_copy_id"], out["c001"]["both_time"]) == (
        "s1", "d1", "2025-01-01T00:00:00Z")  # fmt: skip
    assert out["c002"]["both_id"] == "" and out["客户甲"]["both_copy_id"] == "d4"
    checks = bp.copy_checks(status, "h1", "s3:http://offsite/bucket/restic")
    assert [(c["subject"], c["status"]) for c in checks] == [
        ("c001", "WARN"), ("c002", "FAIL"), ("客户甲", "OK"), ("c009", "WARN")]  # fmt: skip
    assert checks[0]["reason"] == (
        "newest snapshot s2 (2025-01-02T00:00:00Z) is not in the copy; the newest in both is s1 "
        "(2025-01-01T00:00:00Z, copy d1): run the backup's copy step"
    )
    assert checks[1]["reason"].startswith("the copy holds no snapshot of client c002 (host h1)")
    assert checks[2]["reason"] == "newest snapshot s4 (2025-01-03T00:00:00Z) is in the copy as d4"
    assert checks[3]["reason"] == "no snapshot of client c009 (host h1) in the first repository"
    assert all(c["check"] == "offsite_copy" and c["details"]["host"] == "h1" for c in checks)


def test_client_status_after_a_run_and_its_metrics():
    now = datetime(2026, 12, 5, 1, 0, tzinfo=UTC).timestamp()
    snaps = [snap("a1", "2026-12-04T00:00:00+08:00", tags=("c001", "ledgerguard-backup")),
             snap("b1", "2026-12-01T23:30:00+08:00", tags=("客户乙", "ledgerguard-backup")),
             snap("m1", "2026-12-04T00:00:00+08:00", tags=(bp.MANIFEST_TAG, "c003"))]  # fmt: skip
    results = [
        {"client": "c001", "snapshot_id": "a2", "seconds": "1.5", "bytes_added": "2048", "files_new": "3",
         "files_changed": "1", "check_mode": False},
        {"client": "c001", "database": "postgresql/ledger", "bytes_added": "9"},
    ]  # fmt: skip
    ok = {
        s["client"]: s
        for s in bp.client_status(results, ["c001", "客户乙", "c003"], snaps, "h1", False, now, 26 * 3600)
    }
    assert ok["c001"] == {
        "client": "c001", "host": "h1", "backed_up": True, "failed": False, "duration_seconds": 1.5,
        "bytes_added": 2048, "files_new": 3, "files_changed": 1, "snapshot_id": "a2", "last_success": now,
        "age_seconds": 0.0, "last_success_utc": "2026-12-05T01:00:00+00:00", "late": False,
    }  # fmt: skip
    assert ok["客户乙"]["last_success_utc"] == "2026-12-01T15:30:00+00:00" and ok["客户乙"]["late"] is True
    assert ok["客户乙"]["age_seconds"] == 3 * 86400 + 9.5 * 3600 and ok["客户乙"]["failed"] is False
    assert ok["c003"]["last_success"] is None and ok["c003"]["late"] is True  # a manifest is not a backup
    failed = {s["client"]: s for s in bp.client_status([], ["c001"], snaps, "h1", True, now, 48 * 3600)}
    assert (
        failed["c001"]["failed"] is True and failed["c001"]["late"] is False and failed["c001"]["snapshot_id"] == "a1"
    )
    checked = bp.client_status([dict(results[0], check_mode="True")], ["c001"], [], "h1", False, now, 3600)
    assert checked[0]["backed_up"] is False and checked[0]["late"] is True

    fams = {f["name"]: f["samples"] for f in bp.metric_families(list(ok.values()), now)}
    labels = {"host": "h1", "client": "c001"}
    assert fams["ledgerguard_backup_last_run_timestamp_seconds"] == [{"labels": {"host": "h1"}, "value": int(now)}]
    assert fams["ledgerguard_backup_bytes_added"] == [{"labels": labels, "value": 2048}]
    assert fams["ledgerguard_backup_duration_seconds"] == [{"labels": labels, "value": 1.5}]
    assert [s["labels"]["client"] for s in fams["ledgerguard_backup_last_success_timestamp_seconds"]] == [
        "c001",
        "客户乙",
    ]
    assert [s["value"] for s in fams["ledgerguard_backup_late"]] == [False, True, True]
    assert [s["value"] for s in fams["ledgerguard_backup_failed"]] == [False, False, False]


def test_patterns():
    assert dc.restic_pattern("/srv/books/c[1]/a*b?.db") == r"/srv/books/c\[1\]/a\*b\?.db"
    assert dc.fnmatch_pattern("账簿/l[1].db") == "账簿/l[[]1].db"
    restic, manifest = dc.ledger_excludes(["/srv/books/c001/账簿/ledger.sqlite"], ["/srv/books/c001"])
    assert restic == [f"/srv/books/c001/账簿/ledger.sqlite{s}" for s in ("-wal", "-shm", "-journal")]
    assert manifest == [f"账簿/ledger.sqlite{s}" for s in ("-wal", "-shm", "-journal")]
    assert dc.owning_root("/srv/books/c001", ["/srv/books/c001"]) is None


def test_capture_sqlite(tmp_path):
    live = tmp_path / "账簿 1.sqlite"
    conn = sqlite3.connect(live)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.commit()  # still open: the rows sit in the WAL
    live.chmod(0o640)
    info = dc.capture_sqlite(str(live), str(tmp_path / "copy.sqlite"))
    conn.close()
    assert info["check"] == "ok" and info["journal_mode"] == "wal" and info["bytes"] > 0
    copy = sqlite3.connect(tmp_path / "copy.sqlite")
    assert copy.execute("SELECT count(*) FROM t").fetchone() == (100,)
    copy.close()
    assert (tmp_path / "copy.sqlite").stat().st_mode & 0o777 == 0o640
    (tmp_path / "not.sqlite").write_text("plain text")
    with pytest.raises(dc.CaptureError, match="not a SQLite 3 database"):
        dc.capture_sqlite(str(tmp_path / "not.sqlite"), str(tmp_path / "copy2.sqlite"))


def test_dump_argv_never_carries_a_password():
    pg = dc.dump_argv(
        "postgresql", "/usr/bin/pg_dump", "ledger", {"host": "/run/postgresql", "port": 5433, "user": "bk"}
    )
    assert pg == ["/usr/bin/pg_dump", "--host=/run/postgresql", "--port=5433", "--username=bk", "--no-password",
                  "--format=custom", "--dbname=ledger"]  # fmt: skip
    assert "--schema-only" in dc.dump_argv("postgresql", "pg_dump", "ledger", {}, schema_only=True)
    my = dc.dump_argv("mariadb", "mariadb-dump", "erp", {"defaults_extra_file": "/etc/lg/my.cnf", "user": "bk"})
    assert my == ["mariadb-dump", "--defaults-extra-file=/etc/lg/my.cnf", "--user=bk", "--single-transaction",
                  "--quick", "--routines", "--triggers", "--events", "--hex-blob", "--databases", "erp"]  # fmt: skip
    with pytest.raises(ValueError, match="never on the command line"):
        dc.dump_argv("mariadb", "mariadb-dump", "erp", {"password": "secret"})
    assert dc.dump_path("postgresql", "ledger") == "ledgerguard-db/postgresql/ledger.dump"
    assert dc.dump_path("mariadb", "erp") == "ledgerguard-db/mariadb/erp.sql"


def test_the_dump_tag_is_named_in_one_place_and_the_yaml_filter_gives_the_same():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.ledgerguard.recovery.plugins.filter.backup import FilterModule

    assert dc.dump_tag("postgresql", "账套库") == "db-postgresql-账套库"
    assert dc.dump_tag("mariadb", "erp") == "db-mariadb-erp"
    tag = FilterModule().filters()["db_dump_tag"]
    assert tag({"engine": "mariadb", "database": "erp", "client": "c001", "connection": {}}) == "db-mariadb-erp"
    with pytest.raises(AnsibleFilterError, match="expected a database entry with engine and database"):
        tag({"database": "erp"})
