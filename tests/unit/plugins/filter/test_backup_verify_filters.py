"""Filters of the backup_verify role: each check's OK / WARN / FAIL decision on module-shaped data."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.filter import backup_verify as bv

NOW = "2026-11-26T12:00:00Z"


def snap(sid: str, time: str, paths: list[str], host: str = "books01") -> dict:
    return {"id": sid * 8, "short_id": sid, "time": time, "hostname": host, "paths": paths, "tags": []}


SNAPS = [
    snap("aaaaaaaa", "2026-11-24T12:00:00.123456789+08:00", ["/srv/ledgers"]),
    snap("bbbbbbbb", "2026-11-26T10:00:00.5Z", ["/srv/ledgers"]),
    snap("cccccccc", "2026-11-26T11:00:00Z", ["/srv/other"], host="books02"),
]
CLIENTS = [
    {"id": "C001", "name": "华东商贸", "paths": ["/srv/ledgers/C001"]},
    {"id": "C002", "name": "客户二", "paths": ["/srv/ledgers/C002"], "rpo_hours": 1},
    {"id": "C003", "paths": ["/srv/archive/C003"]},
]


def test_parse_time_handles_nanoseconds_and_offsets():
    assert bv.parse_time("2026-11-24T12:00:00.123456789+08:00").isoformat() == "2026-11-24T04:00:00.123456+00:00"
    assert bv.parse_time("2026-11-26T10:00:00Z").isoformat() == "2026-11-26T10:00:00+00:00"
    with pytest.raises(AnsibleFilterError, match="'yesterday' is not an RFC 3339 time"):
        bv.parse_time("yesterday")


def test_freshness_per_client_path():
    out = bv.bv_freshness(SNAPS, CLIENTS, "books01", 24, now=NOW)
    by = {c["details"]["client"]: c for c in out}
    assert by["C001"]["status"] == "OK"
    assert by["C001"]["reason"] == "newest snapshot bbbbbbbb is 2.0 h old, within the RPO of 24 h"
    assert by["C001"]["details"]["age_seconds"] == 7199
    assert by["C002"]["status"] == "FAIL"  # its own RPO of 1 h
    assert by["C002"]["reason"].endswith("older than the RPO of 1 h")
    assert by["C003"]["status"] == "FAIL"
    assert by["C003"]["reason"] == "no snapshot of host books01 holds /srv/archive/C003"


def test_freshness_without_clients_and_without_snapshots():
    assert bv.bv_freshness([], [], "books09", 24, now=NOW)[0]["status"] == "FAIL"
    assert bv.bv_freshness(SNAPS, [], "books02", 24, now=NOW)[0]["status"] == "OK"


def test_damage_plan_takes_newest_per_client():
    plan = bv.bv_damage_plan(SNAPS, CLIENTS, "books01", 2)
    assert [(p["client"], p["short_id"], p["newest"]) for p in plan] == [
        ("C001", "bbbbbbbb", True),
        ("C001", "aaaaaaaa", False),
        ("C002", "bbbbbbbb", True),
        ("C002", "aaaaaaaa", False),
    ]


def _damage_result(item: dict, clean: bool, reasons=(), roots_missing=()) -> dict:
    return {
        "item": item,
        "changed": False,
        "snapshots": [
            {
                "id": item["snapshot"],
                "short_id": item["short_id"],
                "time": "t",
                "assessed": True,
                "clean": clean,
                "reasons": list(reasons),
                "stats": {"roots_missing": list(roots_missing), "predecessor": "aaaaaaaa"},
            }
        ],
    }


def test_coverage_and_damage():
    plan = bv.bv_damage_plan(SNAPS, CLIENTS, "books01", 1)
    results = [
        _damage_result(plan[0], True),
        _damage_result(plan[1], False, ["ransom note present: README_DECRYPT.txt"], ["/srv/ledgers/C002"]),
    ]
    cov = {c["details"].get("client") or c["subject"]: c for c in bv.bv_coverage(SNAPS, CLIENTS, "books01", results)}
    assert cov["C001"]["status"] == "OK"
    assert cov["C002"]["status"] == "FAIL"
    assert cov["C002"]["reason"] == "/srv/ledgers/C002 is missing from the newest snapshot bbbbbbbb of host books01"
    assert cov["C003"]["status"] == "FAIL"
    assert cov["C003"]["reason"].startswith("/srv/archive/C003 is outside the backup paths of the newest snapshot")
    assert cov["C001"]["details"]["ratio"] == pytest.approx(1 / 3, abs=1e-4)
    dmg = bv.bv_damage(results)
    assert [d["status"] for d in dmg] == ["OK", "FAIL"]
    assert "already holds damage: ransom note present" in dmg[1]["reason"]


def test_damage_module_failure_is_fail_even_with_failed_when_false():
    plan = bv.bv_damage_plan(SNAPS, CLIENTS[:1], "books01", 1)
    res = [{"item": plan[0], "failed": False, "failed_when_result": False, "msg": "restic: wrong password"}]
    assert bv.bv_damage(res)[0]["status"] == "FAIL"
    assert "wrong password" in bv.bv_coverage(SNAPS, CLIENTS[:1], "books01", res)[0]["reason"]


def test_spot_pick_excludes_files_changed_after_snapshot_and_is_reproducible():
    newest = SNAPS[1]
    taken = bv.parse_time(newest["time"]).timestamp()
    found = [{"path": f"/srv/ledgers/C001/f{i}", "mtime": taken - 100, "ctime": taken - 100} for i in range(10)]
    found.append({"path": "/srv/ledgers/C001/new", "mtime": taken - 100, "ctime": taken + 1})
    found.append({"path": "/srv/ledgers/C001/edited", "mtime": taken + 5, "ctime": taken + 5})
    first = bv.bv_spot_pick(found, newest, 4, "seed")
    assert len(first) == 4
    assert not {"/srv/ledgers/C001/new", "/srv/ledgers/C001/edited"} & {f["path"] for f in first}
    assert first == bv.bv_spot_pick(found, newest, 4, "seed")
    assert len(bv.bv_spot_pick(found, newest, 50, "seed")) == 10


def _hashes(pairs: dict[str, str]) -> str:
    return "".join(f"{h}  {p}\0" for p, h in pairs.items())


@pytest.mark.parametrize(
    "restored_hash,status,word",
    [
        ("a" * 64, "OK", "match the live sha256"),
        ("b" * 64, "FAIL", "differ from the live copy"),
        (None, "FAIL", "did not come back"),
    ],
)
def test_spot_check(restored_hash, status, word):
    samples = [{"path": "/srv/x/记账凭证.csv"}]
    pairs = {"/srv/x/记账凭证.csv": "a" * 64}
    if restored_hash:
        pairs["/sandbox/srv/x/记账凭证.csv"] = restored_hash
    out = bv.bv_spot_check(
        samples, _hashes(pairs), "/sandbox", SNAPS[1], {"snapshot_id": "x", "seconds": 0.2}, 0, "books01"
    )
    assert out[0]["status"] == status and word in out[0]["reason"] and out[0]["subject"] == "books01"


def test_spot_check_restore_failure():
    out = bv.bv_spot_check([{"path": "/a"}], "", "/s", SNAPS[1], {"failed": False, "msg": "no space left"})
    assert out[0]["status"] == "FAIL" and out[0]["reason"].endswith("failed: no space left")


def test_rolling_cycle():
    assert bv.bv_rolling(None, 3) == {"n": 1, "t": 3, "subset": "1/3"}
    state = None
    for n, expected_next in ((1, 2), (2, 3)):
        state = bv.bv_rolling_update(state, n, 3, True, now=NOW)
        assert state["next"] == expected_next
    assert state["coverage"] == pytest.approx(0.6667)
    failed = bv.bv_rolling_update(state, 3, 3, False, now=NOW)
    assert failed["next"] == 3 and failed["read"] == [1, 2]
    done = bv.bv_rolling_update(state, 3, 3, True, now=NOW)
    assert done["next"] == 1 and done["read"] == [] and done["coverage"] == 1.0
    assert done["last_full_cycle_at"] == "2026-11-26T12:00:00Z"
    # Changing t restarts the cycle.
    assert bv.bv_rolling(done, 5)["subset"] == "1/5"
    assert bv.bv_rolling({"t": 3, "next": 2}, 3)["subset"] == "2/3"
    with pytest.raises(AnsibleFilterError, match="at least 1"):
        bv.bv_rolling(None, 0)


def test_check_result():
    ok = bv.bv_check_result({"ok": True, "errors": [], "packs_read": 1, "packs_total": 3}, "1/3", {"coverage": 0.3333})
    assert ok[0]["status"] == "OK"
    assert ok[0]["reason"] == (
        "restic check --read-data-subset=1/3: no errors (1 of 3 packs read); rolling coverage this cycle 33%"
    )
    bad = bv.bv_check_result({"ok": False, "errors": ["Pack ID does not match"]}, None)
    assert bad[0]["check"] == "check" and bad[0]["status"] == "FAIL"
    assert bad[0]["reason"] == "restic check failed: Pack ID does not match"
    unreachable = bv.bv_check_result(
        {"failed": False, "msg": "backend 127.0.0.1:9 refused", "error_kind": "unreachable"}, "5%"
    )
    assert unreachable[0]["status"] == "FAIL" and unreachable[0]["details"]["error_kind"] == "unreachable"


def test_storage_and_retention_checks():
    audit = {
        "status": "FAIL",
        "bucket": "b",
        "checks": {"versioning": {"status": "FAIL", "reason": "off", "details": {}}},
    }
    assert bv.bv_storage(audit) == [
        {"check": "storage_versioning", "subject": "b", "status": "FAIL", "reason": "off", "details": {}}
    ]
    assert bv.bv_storage({"skipped": True, "skip_reason": "not an S3 repository (local)"})[0]["status"] == "SKIP"
    ret = bv.bv_retention({"keep_yearly": 10})
    assert {c["status"] for c in ret} == {"OK", "FAIL"}
    assert bv.bv_retention({"keep_yearly": "x"})[0]["reason"].startswith("forget policy cannot be read")


def test_report_markdown_metrics_and_missing_host():
    results = {
        "h1": {
            "repository": "s3:http://127.0.0.1:1/b/r",
            "checks": [bv.check("freshness", "OK", "fine", "C001: /a", client="C001", path="/a", age_seconds=60)],
            "repositories": [{"repository": "s3:http://127.0.0.1:1/b/r", "checks": [bv.check("data", "WARN", "slow")]}],
        }
    }
    report = bv.bv_report(["h1", "h2"], results, now=NOW, run_id="R1")
    assert report["status"] == "FAIL"
    assert report["counts"] == {"OK": 1, "WARN": 1, "FAIL": 1, "SKIP": 0, "UNSUPPORTED": 0}
    assert report["failed"] == ["host at h2"]
    assert report["problems"][0]["reason"] == "host h2 produced no result (unreachable, or the role failed on it)"
    md = bv.bv_markdown(report)
    assert md.startswith("# Backup verification — FAIL\n\nRun R1, generated 2026-11-26T12:00:00Z.")
    assert "| freshness | C001: /a | OK | fine |" in md
    fams = {f["name"]: f for f in bv.bv_metrics(report)}
    assert fams["ledgerguard_backup_verify_status"]["samples"][0]["value"] == 2
    assert fams["ledgerguard_backup_snapshot_age_seconds"]["samples"] == [
        {"labels": {"host": "h1", "client": "C001", "path": "/a"}, "value": 60}
    ]
    text = bv.bv_notify_text(report, limit=1)
    assert text.splitlines()[0] == "**FAIL** — 1 FAIL, 1 WARN, 1 OK (run R1)"
    assert text.endswith("- … and 1 more (see the evidence folder)")


def test_notify_filters():
    req = bv.notify_webhook_request({"url": "http://127.0.0.1:9/x", "kind": "slack"}, "T", "x", "FAIL")
    assert req["body"]["text"] == "[FAIL] T"
    with pytest.raises(AnsibleFilterError, match="kind 'msteams' is not supported"):
        bv.notify_webhook_request({"url": "http://127.0.0.1:9/x", "kind": "msteams"}, "T", "x")
    hooks = [{"url": "https://oapi.dingtalk.com/robot/send?access_token=SECRET", "kind": "dingtalk"}]
    bad = bv.notify_undelivered([{"status": 200, "json": {"errcode": 310000, "errmsg": "sign not match"}}], hooks)
    assert bad == ["dingtalk at oapi.dingtalk.com: errcode 310000: sign not match"]
    assert "SECRET" not in bad[0]
    assert bv.notify_undelivered([{"status": 200, "json": {"errcode": 0}}], hooks) == []


def test_bv_retention_reads_keep_all_and_refuses_a_word():
    assert {c["status"] for c in bv.bv_retention("keep-all")} == {"OK"}
    ret = bv.bv_retention("ten years")
    assert ret[0]["status"] == "FAIL"
    assert ret[0]["reason"].startswith("forget policy cannot be read: ledgerguard_backup_policy.retention 'ten years'")
