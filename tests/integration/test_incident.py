"""The incident path end to end: playbooks/incident_respond.yml through ansible-runner, real restic, moto S3.

One incident covers the three scenarios at once (ransomware on c001, deletion of c002's folder, corruption of c003's
ledger), with a nightly backup taken after the damage, a legitimate edit and a new file after the snapshot. The
assertions read real state: bytes and sha256 of the live trees, the quarantine, the repository, the evidence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_s3_credentials
from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / ".collections"))

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import verify_chain  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

NAMES = {"c001": "杭州示例贸易有限公司", "c002": "宁波海风餐饮管理有限公司", "c003": "温州三江五金制品厂"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


class Site:
    """A host's books, a repository with dated snapshots, and the files the tests compare against."""

    def __init__(self, base: Path, s3_server, bucket: str):
        self.base = base
        self.books = base / "books"
        self.state = base / "state"
        self.evidence = base / "evidence"
        self.password_file = base / "restic-password"
        self.password_file.write_text(secrets.token_hex(16) + "\n")
        self.password_file.chmod(0o600)
        self.credentials_file = write_s3_credentials(base / "s3-credentials", s3_server)
        self.s3_env = s3_server.env()
        self.s3_server = s3_server
        self.repo = s3_server.restic_url(bucket, "restic")
        self.clients = []
        for n, cid in enumerate(NAMES, start=1):
            info = sampledata.make_client_tree(
                self.books, cid, NAMES[cid], periods=("2026-09", "2026-10"), vouchers_per_period=8, pdfs=2, seed=n
            )
            client = dict(info["client"], priority=10 * n)
            self.clients.append(client)

    def restic(self, *args: str, repo: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C", **self.s3_env}
        env.update({"RESTIC_REPOSITORY": repo or self.repo, "RESTIC_PASSWORD_FILE": str(self.password_file)})
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)

    def backup(self, when: dt.datetime) -> str:
        out = self.restic(
            "backup", "--json", "--host", "localhost", "--time", when.strftime("%Y-%m-%d %H:%M:%S"), str(self.books)
        )
        return [json.loads(line) for line in out.stdout.splitlines() if '"summary"' in line][-1]["snapshot_id"]

    def snapshots(self, *tags: str) -> list[dict]:
        args = ["snapshots", "--json"] + [f"--tag={','.join(tags)}"] if tags else ["snapshots", "--json"]
        return json.loads(self.restic(*args).stdout) or []

    def root(self, cid: str) -> Path:
        return self.books / cid

    def extravars(self, **more) -> dict:
        base = {
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
            "ledgerguard_s3_credentials_file": str(self.credentials_file),
            "ledgerguard_state_dir": str(self.state),
            "ledgerguard_evidence_dir": str(self.evidence),
            "incident_operator": "pytest",
            "incident_detected_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            # The bundle's journal and process list are not what these tests check; keep them short.
            "state_snapshot_journal_lines": 50,
        }
        base.update(more)
        return base

    def inventory(self, clients: list[dict] | None = None) -> Path:
        inv = {
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "ledgerguard_clients": clients if clients is not None else self.clients,
                    }
                }
            }
        }
        path = self.base / "inventory.json"
        path.write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
        return path

    def run(self, name: str = "incident_respond.yml", handler=None, check: bool = False, **extravars):
        run = PlaybookRun(
            playbook=name,
            private_data_dir=self.base / "runner",
            inventory=str(self.inventory()),
            extravars=self.extravars(**extravars),
            check=check,
        )
        return run_playbook(run, event_handler=handler)


def failed_msgs(runner) -> list[str]:
    return [
        str(ev["event_data"].get("res", {}).get("msg", ""))
        for ev in runner.events
        if ev.get("event") == "runner_on_failed" and not ev["event_data"].get("ignore_errors")
    ]


def changed_counts(runner) -> dict[str, int]:
    """The recap's changed count per host."""
    stats = [ev["event_data"] for ev in runner.events if ev.get("event") == "playbook_on_stats"]
    assert stats, "no playbook_on_stats event"
    return dict(stats[-1].get("changed") or {})


def task_msgs(runner, task: str) -> list:
    return [
        ev["event_data"].get("res", {}).get("msg")
        for ev in runner.events
        if ev.get("event") == "runner_on_ok" and ev["event_data"].get("task") == task
    ]


def artifacts(runner) -> dict:
    stats = [ev["event_data"] for ev in runner.events if ev.get("event") == "playbook_on_stats"]
    return dict(stats[-1].get("artifact_data") or {}) if stats else {}


def host_state(site: Site) -> dict:
    """What a dry run must leave alone: the books (sha256 of every file), the state folder, mounts, evidence."""
    return {
        "books": tree(site.books),
        "dirs": sorted(str(p.relative_to(site.books)) for p in site.books.rglob("*") if p.is_dir()),
        "state_exists": site.state.exists(),
        "evidence": sorted(str(p) for p in site.evidence.rglob("*")) if site.evidence.exists() else [],
        "books_mounted": str(site.books) in os.fsdecode(Path("/proc/self/mountinfo").read_bytes()),
        "snapshots": sorted(s["id"] for s in site.snapshots()),
    }


def evidence_dir(site: Site) -> Path:
    found = sorted(site.evidence.glob("INC-*"))
    assert found, f"no evidence folder in {site.evidence}"
    return found[-1]


# ----------------------------------------------------------------------------------------------------------------------
# One incident: ransomware (c001), deletion (c002), corruption (c003)
# ----------------------------------------------------------------------------------------------------------------------


def attack(site: Site) -> tuple[dict[str, str], str]:
    """The damage of the three scenarios: ransomware encrypts and renames c001's files and drops a note, c002's folder
    is deleted, c003's ledger is overwritten with random bytes of the same size. Returns the sha256 of every file the
    ransomware left (path -> sha256) and the corrupted ledger's sha256."""
    before_attack = {}
    for path in sorted(p for p in site.root("c001").rglob("*") if p.is_file()):
        locked = path.with_name(path.name + ".locked")
        path.write_bytes(os.urandom(max(path.stat().st_size, 256)))
        path.rename(locked)
        before_attack[str(locked)] = sha(locked)
    note = site.root("c001") / "HOW_TO_DECRYPT.txt"
    note.write_text("pay us\n")
    before_attack[str(note)] = sha(note)
    shutil.rmtree(site.root("c002"))
    ledger = site.root("c003") / "账簿" / "ledger.sqlite"
    ledger.write_bytes(os.urandom(ledger.stat().st_size))
    return before_attack, sha(ledger)


@pytest.fixture(scope="module")
def incident(tmp_path_factory, s3_server):
    bucket = "lg-inc-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path_factory.mktemp("incident"), s3_server, bucket)
    site.restic("init")
    now = dt.datetime.now()
    site.backup(now - dt.timedelta(days=2))
    clean_id = site.backup(now - dt.timedelta(days=1))
    clean = {cid: tree(site.root(cid)) for cid in NAMES}
    before_attack, corrupted_sha = attack(site)
    damaged_id = site.backup(now - dt.timedelta(minutes=30))
    # After the nightly: a legitimate edit and a new file for c003 (both must be kept and listed for review).
    edited = site.root("c003") / "凭证" / "2026-09.csv"
    text = edited.read_text(encoding="utf-8-sig").rstrip("\n") + "\n"
    text += "2026-09,记,9,2026-09-30,1,补录 现金存入,1002,银行存款,1.00,\n"
    text += "2026-09,记,9,2026-09-30,2,补录 现金存入,1001,库存现金,,1.00\n"
    edited.write_text(text, encoding="utf-8-sig")
    new_file = site.root("c003") / "凭证" / "2026-11.csv"
    sampledata.write_voucher_csv(new_file, "2026-11", 2, 5)
    kept = {str(edited): sha(edited), str(new_file): sha(new_file)}
    # The dry run first: it must change nothing and name the restore points it would use.
    before_dry = host_state(site)
    dry = site.run(check=True, incident_cause="ransomware", incident_summary="pytest: dry run")
    after_dry = host_state(site)
    runner = site.run(incident_cause="ransomware", incident_summary="pytest: three scenarios in one incident")
    ev = evidence_dir(site)
    closed_before = {p.name: sha(p) for p in (ev / "report.json", ev / "incident.json", ev / "timeline.jsonl")}
    # The same incident again once it is closed: nothing to do, nothing changed.
    rerun = site.run(ledgerguard_incident_id=ev.name, incident_cause="ransomware")
    closed_after = {p.name: sha(p) for p in (ev / "report.json", ev / "incident.json", ev / "timeline.jsonl")}
    return {
        "dry": dry,
        "before_dry": before_dry,
        "after_dry": after_dry,
        "rerun": rerun,
        "closed_before": closed_before,
        "closed_after": closed_after,
        "site": site,
        "runner": runner,
        "clean": clean,
        "clean_id": clean_id,
        "damaged_id": damaged_id,
        "quarantined": before_attack,
        "corrupted_sha": corrupted_sha,
        "kept": kept,
        "evidence": evidence_dir(site),
    }


def test_playbook_succeeds(incident):
    runner = incident["runner"]
    assert runner.rc == 0, failed_msgs(runner)
    report = json.loads((incident["evidence"] / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "restored"
    assert [c["id"] for c in report["clients"]] == ["c001", "c002", "c003"]  # priority order
    assert [c["name"] for c in report["clients"]] == list(NAMES.values())
    # The outcome as job artifacts (AWX / ansible-runner), published by the report's one action.
    published = artifacts(runner)
    assert published["ledgerguard_incident_id"] == report["incident"]["incident_id"]
    assert published["ledgerguard_report"] == str(incident["evidence"] / "report.html")
    assert published["ledgerguard_incident_status"] == "restored"
    assert published["ledgerguard_clients_failed"] == []


@pytest.mark.parametrize("cid", ["c001", "c002"])
def test_ransomware_and_deleted_clients_are_byte_identical(incident, cid):
    root = incident["site"].root(cid)
    assert tree(root) == incident["clean"][cid]


def test_corrupted_ledger_restored_and_later_work_kept(incident):
    root = incident["site"].root("c003")
    now = tree(root)
    for rel, digest in incident["clean"]["c003"].items():
        if rel == "凭证/2026-09.csv":
            continue  # edited after the snapshot: kept
        assert now[rel] == digest, rel
    for path, digest in incident["kept"].items():
        assert sha(Path(path)) == digest, f"{path} was not kept as it was"


def test_snapshot_with_damage_skipped_with_reasons(incident):
    report = json.loads((incident["evidence"] / "report.json").read_text(encoding="utf-8"))
    by_id = {c["id"]: c for c in report["clients"]}
    for cid in ("c001", "c002", "c003"):
        # restic 0.14's backup summary names the snapshot by its short id
        assert by_id[cid]["snapshot"]["id"].startswith(incident["clean_id"]), cid
        assert [s["id"][:8] for s in by_id[cid]["skipped"]] == [incident["damaged_id"][:8]], cid
    assert any("ransom note" in r for r in by_id["c001"]["skipped"][0]["reasons"])
    assert any(".locked" in r for r in by_id["c001"]["skipped"][0]["reasons"])
    assert any("vanished" in r for r in by_id["c002"]["skipped"][0]["reasons"])
    assert any("encrypted or random" in r for r in by_id["c003"]["skipped"][0]["reasons"])
    review = {f["path"] for f in report["files_to_review"]}
    assert review == set(incident["kept"])


def test_quarantine_holds_the_damaged_files(incident):
    report = json.loads((incident["evidence"] / "report.json").read_text(encoding="utf-8"))
    by_id = {c["id"]: c for c in report["clients"]}
    moved = {q["path"]: Path(q["to"]) for c in by_id.values() for q in c["quarantined"]}
    assert set(incident["quarantined"]) <= set(moved)
    for path, digest in incident["quarantined"].items():
        assert sha(moved[path]) == digest
        assert not Path(path).exists()
    ledger = str(incident["site"].root("c003") / "账簿" / "ledger.sqlite")
    assert sha(moved[ledger]) == incident["corrupted_sha"]
    assert "header" in next(q["reason"] for q in by_id["c003"]["quarantined"] if q["path"] == ledger)


def test_pre_restore_snapshot_in_repository(incident):
    site = incident["site"]
    incident_id = incident["evidence"].name
    snaps = site.snapshots(incident_id, "pre-restore")
    assert len(snaps) == 1
    assert snaps[0]["hostname"] == "localhost"
    listed = site.restic("ls", "--json", "--recursive", snaps[0]["id"], str(site.root("c001"))).stdout
    assert "HOW_TO_DECRYPT.txt" in listed  # the damaged state is what was kept


def test_evidence_bundle_report_and_notices(incident):
    ev = incident["evidence"]
    bundle = ev / "hosts" / "localhost"
    for name in ("mounts.txt", "df.txt", "services.txt", "processes.txt", "journal.txt", "SHA256SUMS"):
        assert (bundle / name).is_file(), name
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, check=True)
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=ev, check=True)
    for cid in NAMES:
        zh = (ev / "notices" / f"{cid}.zh-CN.md").read_text(encoding="utf-8")
        en = (ev / "notices" / f"{cid}.en.md").read_text(encoding="utf-8")
        assert NAMES[cid] in zh and "第五十七条" in zh and "草稿" in zh
        assert "Article 57" in en and "DRAFT" in en
    html = (ev / "report.html").read_text(encoding="utf-8")
    assert "杭州示例贸易有限公司" in html and incident["damaged_id"][:8] in html
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["all_thawed"] is True
    assert report["summary"]["rto_seconds"] > 0
    assert report["hosts"][0]["thawed_at"]


def test_writes_thawed_and_lock_released(incident):
    site = incident["site"]
    mounts = os.fsdecode(Path("/proc/self/mountinfo").read_bytes())
    assert str(site.books) not in mounts
    probe = site.root("c001") / "probe-after-thaw"
    probe.write_text("ok")
    probe.unlink()
    assert not (site.state / "incident.lock").exists()


def test_timeline_verifies_and_tampering_is_found(incident, tmp_path):
    path = incident["evidence"] / "timeline.jsonl"
    result = verify_chain(str(path))
    assert result["ok"], result
    lines = path.read_text(encoding="utf-8").splitlines()
    assert result["lines"] == len(lines) > 20
    first = json.loads(lines[0])
    assert first["incident_id"] == incident["evidence"].name and first["operator"] == "pytest"
    tampered = tmp_path / "timeline.jsonl"
    record = json.loads(lines[9])
    record["status"] = "ok" if record.get("status") != "ok" else "failed"
    lines[9] = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = verify_chain(str(tampered))
    assert bad["ok"] is False and bad["first_bad_line"] == 10, bad


# ----------------------------------------------------------------------------------------------------------------------
# Each client's own cause in the notices and the report (detected from what its restore found)
# ----------------------------------------------------------------------------------------------------------------------

CAUSE_LINES = {
    ("ransomware", "en"): "- Cause (preliminary): ransomware encrypted or altered some files.",
    ("deleted", "en"): "- Cause (preliminary): files or folders were deleted.",
    ("ransomware", "zh-CN"): "- 原因（初步判断）：勒索软件加密、篡改了部分文件。",
    ("deleted", "zh-CN"): "- 原因（初步判断）：部分文件或文件夹被删除。",
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize(("cid", "cause"), [("c001", "ransomware"), ("c002", "deleted")])
def test_notice_gives_the_clients_own_detected_cause(incident, cid, cause, lang):
    # The operator declared "ransomware" for the whole incident; c002's folder was deleted, and its notice says so.
    text = (incident["evidence"] / "notices" / f"{cid}.{lang}.md").read_text(encoding="utf-8")
    assert CAUSE_LINES[(cause, lang)] in text, text
    other = "deleted" if cause == "ransomware" else "ransomware"
    assert CAUSE_LINES[(other, lang)] not in text
    basis = {
        ("c001", "en"): "  Basis: detected by our restore checks in your records: a ransom note, files renamed and "
        "encrypted",
        ("c002", "en"): "  Basis: detected by our restore checks in your records: your records folder had disappeared",
        ("c001", "zh-CN"): "  判断依据：我方恢复检查时在贵司资料中检测到：勒索信、文件被改名并加密",
        ("c002", "zh-CN"): "  判断依据：我方恢复检查时在贵司资料中检测到：贵司资料文件夹整体消失",
    }[(cid, lang)]
    assert basis in text, text


def test_report_names_each_clients_cause_and_its_source(incident):
    report = json.loads((incident["evidence"] / "report.json").read_text(encoding="utf-8"))
    assert report["incident"]["cause"] == "ransomware"  # what the operator declared
    causes = {c["id"]: c["cause"] for c in report["clients"]}
    assert (causes["c001"]["cause"], causes["c001"]["source"]) == ("ransomware", "detected")
    assert causes["c001"]["evidence"][0].startswith(f"snapshot {incident['damaged_id'][:8]}: ransom note present:")
    assert (causes["c002"]["cause"], causes["c002"]["source"]) == ("deleted", "detected")
    assert any("vanished" in e for e in causes["c002"]["evidence"])
    assert all(c["declared"] == "ransomware" for c in causes.values())
    md = (incident["evidence"] / "report.md").read_text(encoding="utf-8")
    assert "- Cause: **deleted** — detected by the restore: snapshot " in md


# ----------------------------------------------------------------------------------------------------------------------
# The dry run (--check) before the incident: nothing changed, the plan names the restore points
# ----------------------------------------------------------------------------------------------------------------------


def test_dry_run_changes_nothing(incident):
    dry = incident["dry"]
    assert dry.rc == 0, failed_msgs(dry)
    before, after = incident["before_dry"], incident["after_dry"]
    assert after["books"] == before["books"]  # sha256 of every damaged (and intact) file unchanged
    assert after["dirs"] == before["dirs"] and "c002" not in after["dirs"]  # nothing restored, no work folder
    assert after["state_exists"] is False  # no lock, no freeze registry, no closed marker: no state folder at all
    assert after["books_mounted"] is False  # no freeze bind mount left behind
    assert after["snapshots"] == before["snapshots"]  # no pre-restore (or any) snapshot written
    assert after["evidence"] == []  # no evidence folder, no timeline: the incident id is still free


def test_dry_run_plan_names_the_chosen_and_skipped_snapshots(incident):
    dry = incident["dry"]
    clean8, damaged8 = incident["clean_id"][:8], incident["damaged_id"][:8]
    lines = task_msgs(dry, "Show the plan of this host (dry run, nothing was changed)")
    assert len(lines) == 1, lines
    text = "\n".join(lines[0])
    assert text.startswith("Dry run of incident INC-") and "nothing was changed" in text
    for cid in NAMES:
        assert f"client {cid} ({NAMES[cid]}): restore {clean8} into staging, verify, swap into place" in text, text
    assert f"  would skip {damaged8} (" in text and "ransom note present" in text and "vanished" in text
    plan = artifacts(dry)["ledgerguard_plan"]
    assert [(p["id"], p["status"], p["snapshot"]["short_id"]) for p in plan] == [
        (cid, "planned", clean8) for cid in NAMES
    ]
    assert all([s["short_id"] for s in p["skipped"]] == [damaged8] for p in plan)
    assert {p["id"]: p["cause"]["cause"] for p in plan}["c002"] == "deleted"
    assert artifacts(dry)["ledgerguard_dry_run"] is True


# ----------------------------------------------------------------------------------------------------------------------
# Re-running the incident once it is closed: nothing to do, changed=0
# ----------------------------------------------------------------------------------------------------------------------


def test_closed_incident_rerun_is_a_no_op(incident):
    rerun = incident["rerun"]
    incident_id = incident["evidence"].name
    assert rerun.rc == 0, failed_msgs(rerun)
    assert changed_counts(rerun) == {}, changed_counts(rerun)
    msgs = task_msgs(rerun, "Say that the incident is closed on this host")
    assert len(msgs) == 1, msgs
    assert (
        msgs[0].startswith(f"Incident {incident_id} closed at 20")
        and " on localhost (clients c001, c002, c003)" in msgs[0]
    )
    assert "nothing to do; use a new incident id to respond again" in msgs[0]
    assert incident["closed_after"] == incident["closed_before"]  # report, record and timeline untouched
    marker = json.loads((incident["site"].state / "incidents" / incident_id / "closed.json").read_text())
    assert marker["incident_id"] == incident_id and marker["host"] == "localhost"
    assert [c["id"] for c in marker["clients"]] == ["c001", "c002", "c003"]
    assert all(c["status"] == "ok" and c["snapshot"] == incident["clean_id"][:8] for c in marker["clients"])
