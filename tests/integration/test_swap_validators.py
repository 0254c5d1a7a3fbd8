"""restore_swap judges files changed after the snapshot with the file validators (issue 18), through
playbooks/incident_respond.yml (real restic, moto S3), the loss start KNOWN (after the only night):

- c001: its SQLite ledger corrupted in place after the night (same size, a b-tree page overwritten, newer mtime):
  no damage by name or sample, changed after the snapshot, but it fails validation while the snapshot's version
  passes: quarantined (reason ``corrupt: ...``) and replaced; the report's cause is ``corruption``;
- c002: its SQLite ledger legitimately edited after the night (a memo changed; still a valid database whose vouchers
  balance): kept for review, with the validator's verdict. c002 declares its books only in ``ledger`` (no csv/sqlite
  keys): the ledger check after the swap still runs;
- c003: the night's books hold an unbalanced voucher and a voucher file was deleted: the ledger check on the staging
  copy finds it and the client stops before the swap (nothing put back), the message naming the finding.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_incident import Site, evidence_dir, failed_msgs  # noqa: E402

from ledgerguard import sampledata  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def persisted(tmp_path_factory, s3_server):
    bucket = "lg-swapval-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path_factory.mktemp("swapval"), s3_server, bucket)
    c2 = site.clients[1]
    c2.pop("csv", None)
    c2.pop("sqlite", None)
    c2["ledger"] = {"csv": {"sources": ["凭证"]}, "sqlite": {"sources": ["账簿/ledger.sqlite"]}}
    shutil.rmtree(site.root("c003"))
    sampledata.make_client_tree(
        site.books,
        "c003",
        site.clients[2]["name"],
        periods=("2026-09", "2026-10"),
        vouchers_per_period=8,
        pdfs=2,
        seed=3,
        unbalanced=[("2026-09", 3)],
    )
    site.restic("init")
    now = dt.datetime.now()
    corrupt = site.root("c001") / "账簿" / "ledger.sqlite"
    edited = site.root("c002") / "账簿" / "ledger.sqlite"
    clean = sha(corrupt)
    night = site.backup(now - dt.timedelta(days=1))
    time.sleep(1)
    data = bytearray(corrupt.read_bytes())
    data[4096 : 4096 + 64] = os.urandom(64)  # same size; mtime now, after the snapshot
    corrupt.write_bytes(bytes(data))
    with sqlite3.connect(edited) as conn:
        conn.execute("UPDATE voucher_entries SET memo = memo || ' 已核对' WHERE rowid = 1")
    conn.close()
    edited_sha = sha(edited)
    deleted = site.root("c003") / "凭证" / "2026-10.csv"
    deleted.unlink()
    loss = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    runner = site.run(
        incident_cause="unknown",
        incident_summary="pytest: a ledger corrupted in place, another edited",
        incident_loss_started=loss,
        incident_clients=["c001", "c002", "c003"],
    )
    report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
    return {
        "site": site,
        "runner": runner,
        "report": report,
        "night": night,
        "corrupt": corrupt,
        "clean": clean,
        "edited": edited,
        "edited_sha": edited_sha,
        "deleted": deleted,
    }


def client(persisted, cid: str) -> dict:
    return {c["id"]: c for c in persisted["report"]["clients"]}[cid]


def test_incident_fails_only_for_the_client_with_bad_books(persisted):
    assert persisted["runner"].status == "failed"
    msgs = failed_msgs(persisted["runner"])
    assert msgs and all("c003" in m for m in msgs), msgs


def test_ledger_corrupted_in_place_is_quarantined_and_restored(persisted):
    entry = client(persisted, "c001")
    assert entry["status"] == "ok", entry
    assert entry["snapshot"]["id"].startswith(persisted["night"][:8]), entry["snapshot"]
    target = str(persisted["corrupt"])
    assert target in entry["replaced"], entry
    moved = [q for q in entry["quarantined"] if q["path"] == target]
    assert len(moved) == 1, entry["quarantined"]
    assert moved[0]["reason"].startswith("corrupt: ") and "snapshot's version passes" in moved[0]["reason"], moved
    assert Path(moved[0]["to"]).is_file()
    assert sha(persisted["corrupt"]) == persisted["clean"]
    assert target not in [k["path"] for k in entry["kept_changed"]]


def test_cause_is_corruption(persisted):
    found = client(persisted, "c001")["cause"]
    assert (found["cause"], found["source"]) == ("corruption", "detected"), found
    assert any("corrupt: SQLite" in e and "the snapshot's version passes" in e for e in found["evidence"]), found


def test_legitimately_edited_ledger_is_kept_for_review(persisted):
    entry = client(persisted, "c002")
    assert entry["status"] == "ok", entry
    target = str(persisted["edited"])
    kept = [k for k in entry["kept_changed"] if k["path"] == target]
    assert len(kept) == 1, entry["kept_changed"]
    assert kept[0]["verdict"] == "keep" and "still a valid" in kept[0]["validation"], kept
    assert target not in entry["replaced"] and not [q for q in entry["quarantined"] if q["path"] == target]
    assert sha(persisted["edited"]) == persisted["edited_sha"]


def test_ledger_only_declaration_is_checked_after_the_swap(persisted):
    entry = client(persisted, "c002")
    assert entry["ledger"] == {"ok": True, "findings": 0}, entry.get("ledger")


def test_books_with_findings_in_staging_are_not_swapped(persisted):
    entry = client(persisted, "c003")
    assert entry["status"] == "failed", entry
    assert entry["failed_task"] == "Stop this client before the swap when the restored books have findings", entry
    assert "unbalanced" in entry["msg"] and "Nothing was swapped" in entry["msg"], entry["msg"]
    assert not persisted["deleted"].exists()  # nothing put back
    assert entry["quarantined"] == []
