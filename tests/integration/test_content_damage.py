"""Content-aware damage detection through playbooks/incident_respond.yml (real restic, moto S3).

Damage that sits inside files and persists for more than one night, loss start unknown:
- c001: its SQLite ledger corrupted in place (same size, a b-tree page overwritten);
- c002: an .xlsx workbook truncated;
- c003: a scanned PDF with its trailer cut;
- c004: its folder deleted.
The damage arrives in night 3 and is still there in night 4 (the newest). Each client must skip nights 4 and 3 with
reasons naming the file and the validator's finding (or the missing folder), and restore night 2.
c005's books use its own CSV and SQLite schema, mapped in ledgerguard_clients[].ledger: its ledgers validate in every
night (so night 4 is its restore point) and the incident's ledger check reads them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from ledgerguard import sampledata

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_drill_damage import LEDGER, custom_books  # noqa: E402
from test_incident import Site, evidence_dir, failed_msgs  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")


def make_xlsx(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        z.writestr(
            "xl/workbook.xml", '<?xml version="1.0"?><workbook><sheets><sheet name="余额表"/></sheets></workbook>'
        )
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + "<row><c><v>1</v></c></row>" * 800 + "</worksheet>")


CLEAN: dict[str, str] = {}  # sha256 of each file damage() damages, taken just before


def damage(site: Site) -> dict[str, str]:
    """Night 3's damage; returns the damaged file of each client (their clean sha256 go to CLEAN)."""
    ledger = site.root("c001") / "账簿" / "ledger.sqlite"
    book = site.root("c002") / "报表" / "余额表.xlsx"
    pdf = sorted((site.root("c003") / "扫描件").glob("*.pdf"))[0]
    for path in (ledger, book, pdf):
        CLEAN[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    data = bytearray(ledger.read_bytes())
    data[4096 : 4096 + 64] = os.urandom(64)  # page 2's b-tree header: same size, no change in entropy to speak of
    ledger.write_bytes(bytes(data))
    book.write_bytes(book.read_bytes()[: book.stat().st_size // 2])
    pdf.write_bytes(pdf.read_bytes()[: pdf.read_bytes().rindex(b"trailer")])
    shutil.rmtree(site.root("c004"))
    return {"c001": str(ledger), "c002": str(book), "c003": str(pdf), "c004": str(site.root("c004"))}


@pytest.fixture(scope="module")
def persisted(tmp_path_factory, s3_server):
    bucket = "lg-content-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path_factory.mktemp("content"), s3_server, bucket)
    info = sampledata.make_client_tree(
        site.books,
        "c004",
        "绍兴示例纺织有限公司",
        periods=("2026-09", "2026-10"),
        vouchers_per_period=8,
        pdfs=2,
        seed=4,
    )
    site.clients.append(dict(info["client"], priority=40))
    # c005 keeps its books in its own software's format, declared once in ledgerguard_clients[].ledger
    custom_books(site.root("c005"))
    site.clients.append(
        {
            "id": "c005",
            "name": "自定义格式客户",
            "paths": [str(site.root("c005"))],
            "priority": 50,
            "csv": ["导出"],
            "sqlite": ["账套/books.db"],
            "ledger": LEDGER,
        }
    )
    make_xlsx(site.root("c002") / "报表" / "余额表.xlsx")
    site.restic("init")
    now = dt.datetime.now()
    site.backup(now - dt.timedelta(days=4))
    good = site.backup(now - dt.timedelta(days=3))
    damaged = damage(site)
    night3 = site.backup(now - dt.timedelta(days=2))
    night4 = site.backup(now - dt.timedelta(days=1))  # the damage is still there
    # The live files are as damaged as nights 3 and 4: the swap must find that inside them (validators), not keep them
    # "for review" because they changed after the clean night.
    runner = site.run(
        incident_cause="unknown",
        incident_summary="pytest: damage inside files, found days later",
        restore_ledger_fail_on_findings=False,
    )
    ev = evidence_dir(site)
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    return {
        "site": site,
        "runner": runner,
        "report": report,
        "good": good,
        "night3": night3,
        "night4": night4,
        "damaged": damaged,
    }


def client(persisted, cid: str) -> dict:
    return {c["id"]: c for c in persisted["report"]["clients"]}[cid]


def test_incident_succeeds(persisted):
    assert persisted["runner"].status == "successful", failed_msgs(persisted["runner"])


@pytest.mark.parametrize(
    ("cid", "finding"),
    [
        ("c001", "SQLite"),
        ("c002", "central directory"),
        ("c003", "%%EOF"),
        ("c004", "vanished"),
    ],
)
def test_damaged_nights_skipped_with_the_file_and_the_reason(persisted, cid, finding):
    entry = client(persisted, cid)
    assert entry["snapshot"]["id"].startswith(persisted["good"]), entry["snapshot"]
    skipped = {s["id"][:8]: s for s in entry["skipped"]}
    assert persisted["night3"][:8] in skipped and persisted["night4"][:8] in skipped, entry["skipped"]
    target = persisted["damaged"][cid]
    for night in ("night3", "night4"):
        reasons = " ".join(skipped[persisted[night][:8]]["reasons"])
        assert target in reasons and finding in reasons, reasons
    # night 4 holds the same damage it inherited from night 3: found by comparing with the newest clean snapshot
    assert "still carries the damage first seen in snapshot " + persisted["night3"][:8] in " ".join(
        skipped[persisted["night4"][:8]]["reasons"]
    )


@pytest.mark.parametrize("cid", ["c001", "c002", "c003"])
def test_damaged_live_file_quarantined_and_replaced_by_content(persisted, cid):
    entry = client(persisted, cid)
    target = persisted["damaged"][cid]
    moved = [q for q in entry["quarantined"] if q["path"] == target]
    assert len(moved) == 1 and moved[0]["reason"].startswith("corrupt: "), entry["quarantined"]
    assert "the snapshot's version passes" in moved[0]["reason"], moved
    assert hashlib.sha256(Path(target).read_bytes()).hexdigest() == CLEAN[target]
    assert target not in [k["path"] for k in entry["kept_changed"]]


@pytest.mark.parametrize(("cid", "cause"), [("c001", "corruption"), ("c003", "corruption"), ("c004", "deleted")])
def test_cause_detected_from_the_validators(persisted, cid, cause):
    found = client(persisted, cid)["cause"]
    assert (found["cause"], found["source"]) == (cause, "detected"), found
    assert any(persisted["damaged"][cid] in e for e in found["evidence"])


def test_custom_schema_declared_once_is_read_by_the_incident(persisted):
    entry = client(persisted, "c005")
    assert entry["status"] == "ok", entry
    assert entry["snapshot"]["id"].startswith(persisted["night4"][:8]), entry["snapshot"]
    assert entry["skipped"] == []
    # both declared ledgers were validated in the chosen snapshot, in the declared format, and passed
    stats = entry["snapshot"]["stats"]
    assert (stats["validated"], stats["invalid"]) == (2, 0), stats
    assert entry["ledger"] == {"ok": True, "findings": 0}, entry.get("ledger")
