"""The backup role end to end: playbooks/backup.yml through ansible-runner, real restic on moto S3.

Per-client snapshots and manifests as the incident path expects them; a SQLite ledger written continuously during
the backup restores consistent at its own path; refusal under an incident lock and against a second run; retention
over a synthetic multi-year history; the off-site copy to a second bucket.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import flock_free, write_s3_credentials
from ledgerguard import sampledata
from ledgerguard.runner import PlaybookRun, run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="consistent SQLite captures use a mount namespace (root)")

NAMES = {"c001": "杭州示例贸易有限公司", "c002": "宁波海风餐饮管理有限公司"}
MANIFEST_TAG = "ledgerguard-manifest"


class Site:
    """A host's books (two clients; c001 declares its SQLite ledger), a repository, the controller's secret files."""

    def __init__(self, base: Path, s3_server, bucket: str):
        self.base = base
        self.books = base / "客户账套"
        self.state = base / "state"
        self.s3_env = s3_server.env()
        self.s3_server = s3_server
        self.password_file = self.secret("restic-password", secrets.token_hex(16) + "\n")
        self.credentials_file = write_s3_credentials(base / "s3-credentials", s3_server)
        self.repo = s3_server.restic_url(bucket, "restic")
        self.restic("init")
        self.clients = []
        for n, cid in enumerate(NAMES, start=1):
            info = sampledata.make_client_tree(
                self.books, cid, NAMES[cid], periods=("2026-09", "2026-10"), vouchers_per_period=6, pdfs=1, seed=n
            )
            client = {k: info["client"][k] for k in ("id", "name", "paths")}
            if cid == "c001":
                client["sqlite"] = info["client"]["sqlite"]
                client["excludes"] = ["*.tmp"]
            self.clients.append(client)
        (self.books / "c001" / "scratch.tmp").write_text("excluded\n")

    def secret(self, name: str, text: str) -> Path:
        path = self.base / name
        path.write_text(text)
        path.chmod(0o600)
        return path

    def restic(self, *args: str, repo: str | None = None, password_file: Path | None = None, **more: str):
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C",
            **self.s3_env,
            **more,
        }
        env.update(
            {"RESTIC_REPOSITORY": repo or self.repo, "RESTIC_PASSWORD_FILE": str(password_file or self.password_file)}
        )
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True, check=True)

    def snapshots(self, repo: str | None = None, password_file: Path | None = None) -> list[dict]:
        return json.loads(self.restic("snapshots", "--json", repo=repo, password_file=password_file).stdout) or []

    def hostvars(self, **more) -> dict:
        """This site as one host's variables (its repository, secret files, state folder and clients), with ``more``:
        several sites can then be hosts of one run, each backing up into its own repository."""
        return {
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
            "ledgerguard_s3_credentials_file": str(self.credentials_file),
            "ledgerguard_state_dir": str(self.state),
            "ledgerguard_clients": self.clients,
            **more,
        }

    def run(self, check: bool = False, hosts: dict[str, dict] | None = None, **extravars):
        """playbooks/backup.yml on localhost with this site's clients and state folder; or on ``hosts`` (name -> its
        own ledgerguard_clients and ledgerguard_state_dir), independent cases in one run."""
        if hosts is None:
            hosts = {"localhost": {"ledgerguard_clients": self.clients, "ledgerguard_state_dir": str(self.state)}}
        base = {
            "ledgerguard_repository": self.repo,
            "ledgerguard_password_file": str(self.password_file),
            "ledgerguard_s3_credentials_file": str(self.credentials_file),
        }
        return run_hosts(self.base, hosts, check=check, **base, **extravars)


def run_hosts(base: Path, hosts: dict[str, dict], check: bool = False, event_handler=None, **extravars):
    """playbooks/backup.yml on local ``hosts`` (name -> its variables), with the run's inventory and runner folder in
    ``base``; ``event_handler`` sees each event as it comes."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {"all": {"hosts": {name: {**local, **hostvars} for name, hostvars in hosts.items()}}}
    path = base / "inventory.json"
    path.write_text(json.dumps(inv, ensure_ascii=False), encoding="utf-8")
    run = PlaybookRun(
        playbook="backup.yml", private_data_dir=base / "runner", inventory=str(path), extravars=extravars, check=check
    )
    return run_playbook(run, event_handler=event_handler)


def failed_msgs(runner, host: str | None = None) -> list[str]:
    """The messages of the failed tasks (of one host's, when given)."""
    return [
        str(ev["event_data"].get("res", {}).get("msg", ""))
        for ev in runner.events
        if ev.get("event") == "runner_on_failed"
        and not ev["event_data"].get("ignore_errors")
        and host in (None, ev["event_data"].get("host"))
    ]


def facts(runner, name: str, host: str | None = None):
    """The last value a set_fact task gave ``name`` (on ``host``, when given)."""
    found = None
    for ev in runner.events:
        res = ev.get("event_data", {}).get("res", {})
        if (
            ev.get("event") == "runner_on_ok"
            and name in res.get("ansible_facts", {})
            and host in (None, ev["event_data"].get("host"))
        ):
            found = res["ansible_facts"][name]
    return found


def item_msgs(runner, task: str, host: str | None = None) -> list[str]:
    """The messages of the loop items of ``task`` (on ``host``, when given)."""
    return [
        str(ev["event_data"]["res"].get("msg", ""))
        for ev in runner.events
        if ev.get("event") == "runner_item_on_ok"
        and ev["event_data"].get("task") == task
        and host in (None, ev["event_data"].get("host"))
    ]


def data_snapshots(site: Site, **kw) -> list[dict]:
    return [s for s in site.snapshots(**kw) if MANIFEST_TAG not in (s.get("tags") or [])]


def new_site(base: Path, s3_server) -> Site:
    bucket = "lg-bk-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    base.mkdir(parents=True, exist_ok=True)
    return Site(base, s3_server, bucket)


@pytest.fixture
def site(tmp_path, s3_server):
    return new_site(tmp_path, s3_server)


# ------------------------------------------------------------------------------------------------ the first nightly

WRITER = r"""
import sqlite3, sys, time, os
db, mode, flag = sys.argv[1], sys.argv[2], sys.argv[3]
conn = sqlite3.connect(db, timeout=60, isolation_level=None)
conn.execute(f"PRAGMA journal_mode={mode}")
conn.execute("CREATE TABLE IF NOT EXISTS pytest_writes (id INTEGER PRIMARY KEY, batch INTEGER, payload BLOB)")
batch = 0
while not os.path.exists(flag):
    batch += 1
    conn.execute("BEGIN IMMEDIATE")
    for _ in range(40):
        conn.execute("INSERT INTO pytest_writes (batch, payload) VALUES (?, randomblob(2048))", (batch,))
    conn.execute("UPDATE pytest_writes SET payload = randomblob(1024) WHERE id % 97 = ?", (batch % 97,))
    conn.execute("COMMIT")
"""
JOURNALS = ("wal", "delete")


def written_rows(ledger: Path) -> int:
    """The rows the writer has committed so far (0 before its table exists)."""
    try:
        conn = sqlite3.connect(ledger, timeout=30)
        try:
            return conn.execute("SELECT count(*) FROM pytest_writes").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def seed_history(site: Site, times: dict[str, dt.datetime]) -> None:
    """c002's synthetic history: one backup of its folder at each of ``times`` (host localhost, the role's tags)."""
    for when in sorted(times.values()):
        site.restic("backup", "-q", "--host", "localhost", "--tag", "c002", "--tag", "ledgerguard-backup",
                    "--time", when.strftime("%Y-%m-%d %H:%M:%S"), site.clients[1]["paths"][0], TZ="UTC")  # fmt: skip


@pytest.fixture(scope="module")
def nightly(tmp_path_factory, s3_server):
    """The first nightly run of five fresh sites, each a host of one backup.yml run with its own books, repository and
    state folder (independent cases; each test asserts its own host's outcome and repository):

    - ``localhost``: both clients, with the off-site copy to a second bucket (before it, the same run in check mode);
    - ``wal`` and ``delete``: c001 alone, its SQLite ledger written in that journal mode throughout the run;
    - ``failing``: c001's ledger gone, c003's folder gone, c004 added;
    - ``retention``: c002 over a synthetic multi-year history (backed up as host localhost), the legal policy's dry
      run;
    - ``lockjob``: c002 alone, retention off: nothing follows the clients' one restic_backup run under the lock.
    """
    base = tmp_path_factory.mktemp("nightly")
    sites = {
        name: new_site(base / name, s3_server) for name in ("localhost", *JOURNALS, "failing", "retention", "lockjob")
    }
    # the off-site copy of localhost
    books = sites["localhost"]
    bucket2 = "lg-off-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket2)
    offsite = {
        "repo": s3_server.restic_url(bucket2, "offsite"),
        "password_file": books.secret("offsite-password", "another secret " + secrets.token_hex(8) + "\n"),
    }
    books.restic("init", repo=offsite["repo"], password_file=offsite["password_file"])
    copy_vars = {"backup_copy_repository": offsite["repo"], "backup_copy_password_file": str(offsite["password_file"])}
    # failing: c001's ledger is gone (its own step fails) and c003's folder is gone (it fails inside the one
    # restic_backup run of the clients without ledgers)
    failing = sites["failing"]
    Path(failing.clients[0]["sqlite"][0]).unlink()
    extra = failing.books / "c004"
    (extra / "凭证").mkdir(parents=True)
    (extra / "凭证" / "2026-10.csv").write_text("科目,金额\n1001,88.00\n", encoding="utf-8")
    failing.clients += [
        {"id": "c003", "name": "温州示例商贸有限公司", "paths": [str(failing.books / "c003-已迁走")]},
        {"id": "c004", "name": "台州示例科技有限公司", "paths": [str(extra)]},
    ]
    # retention: the history
    year = dt.datetime.now(dt.UTC).year
    times = history_times(year)
    seed_history(sites["retention"], times)
    hosts = {
        "localhost": books.hostvars(**copy_vars),
        **{j: sites[j].hostvars(backup_client_ids=["c001"], backup_retention_enabled=False) for j in JOURNALS},
        "failing": failing.hostvars(backup_retention_enabled=False),
        "lockjob": sites["lockjob"].hostvars(backup_client_ids=["c002"], backup_retention_enabled=False),
        "retention": sites["retention"].hostvars(
            ledgerguard_backup_host="localhost",
            backup_client_ids=["c002"],
            ledgerguard_backup_policy={"retention": LEGAL_POLICY},
            backup_verify_record_classes=CLASSES,
        ),
    }
    checked = books.run(check=True, hosts={"localhost": hosts["localhost"]})
    checked_snapshots = books.snapshots()
    # the ledgers of wal and delete are written from before the run until their host's capture is done (the writer
    # is a busy loop: it would burn a core for the rest of the run)
    ledgers = {j: Path(sites[j].clients[0]["sqlite"][0]) for j in JOURNALS}
    flags = {j: base / f"stop-writer-{j}" for j in JOURNALS}
    after: dict[str, int] = {}

    def stop_writer_after_capture(event: dict) -> bool:
        data = event.get("event_data", {})
        host = data.get("host")
        if (
            event.get("event") in ("runner_on_ok", "runner_on_failed")
            and host in flags
            and host not in after
            and str(data.get("task", "")).startswith("Back up with consistent SQLite ledgers")
        ):
            after[host] = written_rows(ledgers[host])
            flags[host].write_text("stop")
        return True

    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(ledgers[j]), j, str(flags[j])]) for j in JOURNALS]
    try:
        deadline = time.monotonic() + 30
        before = dict.fromkeys(JOURNALS, 0)
        while min(before.values()) < 400 and time.monotonic() < deadline:  # the writers are well under way
            time.sleep(0.2)
            before = {j: written_rows(ledgers[j]) for j in JOURNALS}
        runner = run_hosts(base, hosts, event_handler=stop_writer_after_capture)
        for j in JOURNALS:
            after.setdefault(j, written_rows(ledgers[j]))
    finally:
        for j in JOURNALS:
            flags[j].write_text("stop")
        for writer in writers:
            writer.wait(timeout=60)
    # what localhost's repository held after its first run (the off-site test goes on with it)
    made = {r["client"]: r["snapshot_id"] for r in facts(runner, "backup_results", "localhost") or []}
    first = {
        "snapshots": books.snapshots(),
        "c001_listing": books.restic("ls", made["c001"]).stdout if "c001" in made else "",
    }
    return {
        "runner": runner,
        "sites": sites,
        "first": first,
        "checked": checked,
        "checked_snapshots": checked_snapshots,
        "offsite": offsite,
        "copy_vars": copy_vars,
        "before": before,
        "after": after,
        "year": year,
        "times": times,
    }


def succeeded(runner, host: str) -> None:
    """``host``'s part of a run failed nothing (other hosts of the run may have failed)."""
    assert host in runner.stats["ok"] and not runner.stats["failures"].get(host), failed_msgs(runner, host)


# ------------------------------------------------------------------------------------------------ per client


def test_per_client_snapshots_with_manifests_as_the_incident_expects(nightly):
    site, checked, runner = nightly["sites"]["localhost"], nightly["checked"], nightly["runner"]
    assert checked.rc == 0, failed_msgs(checked)
    assert nightly["checked_snapshots"] == []  # check mode made nothing

    succeeded(runner, "localhost")
    results = {r["client"]: r for r in facts(runner, "backup_results", "localhost")}
    snaps = {s["id"]: s for s in nightly["first"]["snapshots"]}
    for client in site.clients:
        cid = client["id"]
        res = results[cid]
        snap = snaps[res["snapshot_id"]]
        # what the incident path filters on: host = inventory hostname, the client's declared paths; tagged by client
        assert snap["hostname"] == "localhost"
        assert snap["paths"] == client["paths"]
        assert snap["tags"] == [cid, "ledgerguard-backup"]
        manifest = snaps[res["manifest_snapshot_id"]]
        assert manifest["tags"] == [MANIFEST_TAG, f"ledgerguard-manifest-for={res['snapshot_id']}"]
        assert res["line"].startswith(f"{cid} ({NAMES[cid]}): ")
        assert f"snapshot {res['snapshot_id'][:8]}" in res["line"] and f"manifest {res['manifest_snapshot_id'][:8]}"
        assert int(res["files_new"]) > 0 and int(res["bytes_added"]) > 0
    assert results["c001"]["ledgers"][0]["check"] == "ok"
    assert "1 SQLite ledger(s) captured consistently" in results["c001"]["line"]
    # the per-client excludes apply
    listing = nightly["first"]["c001_listing"]
    assert "scratch.tmp" not in listing and "ledger.sqlite" in listing
    # the lock is free again, and its copies folder is empty
    assert not list((site.state / "backup-work").iterdir())
    assert flock_free(site.state / "backup.lock")


# ------------------------------------------------------------------------------------------------ consistent SQLite


@pytest.mark.parametrize("journal", JOURNALS)
def test_sqlite_written_during_the_backup_restores_consistent_at_its_path(nightly, tmp_path, journal):
    site, runner = nightly["sites"][journal], nightly["runner"]
    ledger = Path(site.clients[0]["sqlite"][0])
    before, after = nightly["before"][journal], nightly["after"][journal]
    assert before >= 400
    succeeded(runner, journal)
    assert after > before  # the writer really wrote during the run, until its capture was done
    result = facts(runner, "backup_results", journal)[0]
    snap = next(s for s in site.snapshots() if s["id"] == result["snapshot_id"])
    assert snap["hostname"] == journal  # the inventory hostname, when no ledgerguard_backup_host is set
    target = tmp_path / "restored"
    site.restic("restore", result["snapshot_id"], "--target", str(target))
    restored = target / str(ledger).lstrip("/")
    assert restored.is_file()
    for suffix in ("-wal", "-shm", "-journal"):
        assert not Path(str(restored) + suffix).exists()  # the live ledger's companions stay out of the snapshot
    conn = sqlite3.connect(f"file:{restored}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        count, top = conn.execute("SELECT count(*), max(id) FROM pytest_writes").fetchone()
        batches = conn.execute("SELECT batch, count(*) FROM pytest_writes GROUP BY batch").fetchall()
        vouchers = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    finally:
        conn.close()
    assert count >= before and count == top  # every row committed before the backup started, no hole
    assert all(n == 40 for _batch, n in batches)  # whole transactions only
    assert vouchers >= 2  # the ledger's own tables came along
    # the live ledger itself was never touched by the capture (no bind mount leaked to the host); read as bytes: other
    # tests' mounts may name paths that are not UTF-8
    assert not any(os.fsencode(ledger) in line for line in Path("/proc/self/mounts").read_bytes().splitlines())


def test_a_failing_client_does_not_stop_the_others(nightly):
    """c001's SQLite ledger is gone (its own step fails) and c003's folder is gone (it fails inside the one
    restic_backup run of the clients without ledgers): c002 and c004 are still backed up, the run fails naming both."""
    site, runner = nightly["sites"]["failing"], nightly["runner"]
    ledger = Path(site.clients[0]["sqlite"][0])
    gone = site.clients[2]["paths"][0]
    assert runner.stats["failures"].get("failing"), runner.stats
    msgs = failed_msgs(runner, "failing")
    named = (
        f"2 of 4 clients failed: client c001 ({NAMES['c001']}): SQLite ledger {ledger} does not exist on this host (or "
        f"is not a regular file); client c003 (温州示例商贸有限公司): paths entry {gone} does not exist on this host; "
        "nothing was backed up"
    )
    assert any(m == named for m in msgs), msgs
    assert any(m == f"Backup on failing failed: {named}" for m in msgs), msgs
    backed = sorted(s["tags"][0] for s in data_snapshots(site))
    assert backed == ["c002", "c004"]
    results = facts(runner, "__backup_results", "failing")
    assert [r["client"] for r in results] == ["c002", "c004"]
    # published before the run fails, so a caller's rescue (and the job's facts) see what was backed up
    assert facts(runner, "backup_results", "failing") == results
    assert results[1]["line"].startswith("c004 (台州示例科技有限公司): 1 new, 0 changed, ")
    status = {s["client"]: s for s in facts(runner, "__backup_status", "failing")}
    assert [cid for cid in ("c001", "c002", "c003", "c004") if status[cid]["failed"]] == ["c001", "c003"]
    assert status["c002"]["backed_up"] and status["c004"]["backed_up"]


# ------------------------------------------------------------------------------------------------ locks


def task_events(runner, host: str, name: str) -> list[tuple[str, bool]]:
    """(event, changed) of each result of the tasks whose name starts with ``name``, on ``host``."""
    return [
        (ev["event"], bool(ev["event_data"].get("res", {}).get("changed")))
        for ev in runner.events
        if ev.get("event") in ("runner_on_ok", "runner_on_skipped", "runner_on_failed")
        and ev["event_data"].get("host") == host
        and str(ev["event_data"].get("task", "")).startswith(name)
    ]


def test_the_clients_run_takes_the_lock_and_keeps_it_only_for_later_steps(nightly):
    """The clients' one restic_backup run takes the backup lock itself (no lock task). ``lockjob``: nothing follows it
    under the lock, so its own process held the lock and no release task ran; ``failing``: a client with a SQLite
    ledger follows, so the run kept the lock for it (a detached holder) and the release task gave it back. Both locks
    are free after the run."""
    runner, sites = nightly["runner"], nightly["sites"]
    succeeded(runner, "lockjob")
    for host, after, release in (("lockjob", False, [("runner_on_skipped", False)]),
                                 ("failing", True, [("runner_on_ok", True)])):  # fmt: skip
        lock = facts(runner, "__backup_batch", host)["lock"]
        assert lock["taken"] is True and lock["held_after"] is after, (host, lock)
        assert lock["holder"].get("held_by") == (None if after else "module"), (host, lock)
        assert task_events(runner, host, "Take the backup lock") == [("runner_on_skipped", False)], host
        assert task_events(runner, host, "Release the backup lock") == release, host
        assert flock_free(sites[host].state / "backup.lock"), host
    assert [s["tags"][0] for s in data_snapshots(sites["lockjob"])] == ["c002"]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory, s3_server):
    """The runs refused before anything is backed up, each case a host of one run (module-scoped) with a state folder
    of its own (they share one site's books and repository): an incident's lock on the host, another backup run
    holding the backup lock, a relative ledger path, a ledger outside its client's paths."""
    site = new_site(tmp_path_factory.mktemp("refused"), s3_server)
    good = site.clients
    cases = {
        "incident-held": good,
        "second-run": good,
        "relative-ledger": [dict(good[0], sqlite=["账簿/ledger.sqlite"]), good[1]],
        "ledger-elsewhere": [dict(good[0], sqlite=[good[1]["paths"][0] + "/x.sqlite"]), good[1]],
    }
    states = {name: site.base / "state" / name for name in cases}
    for name in ("incident-held", "second-run"):
        states[name].mkdir(parents=True)
    lock = {"incident_id": "INC-20261204-0001", "operator": "张伟", "created": "2026-12-04T08:00:00Z"}
    (states["incident-held"] / "incident.lock").write_text(json.dumps(lock, ensure_ascii=False))
    held = states["second-run"] / "backup.lock"
    fd = os.open(held, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder = {"run_id": "first-run", "purpose": "backup", "host": "books-hz01", "pid": os.getpid(),
              "started": "2026-12-04T01:00:00Z"}  # fmt: skip
    os.write(fd, json.dumps(holder).encode())
    try:
        runner = site.run(
            hosts={
                name: {"ledgerguard_clients": clients, "ledgerguard_state_dir": str(states[name])}
                for name, clients in cases.items()
            }
        )
    finally:
        os.close(fd)
    return {"runner": runner, "states": states, "site": site}


def test_refused_while_an_incident_holds_the_host(refusals):
    runner, site = refusals["runner"], refusals["site"]
    assert runner.rc != 0
    assert runner.stats["failures"].get("incident-held"), runner.stats
    msgs = failed_msgs(runner, "incident-held")
    assert any(
        "Incident INC-20261204-0001 holds this host (operator 张伟" in m and "nothing was backed up" in m for m in msgs
    ), msgs
    assert site.snapshots() == []


def test_a_second_run_exits_with_a_clear_message(refusals):
    runner, site = refusals["runner"], refusals["site"]
    path = refusals["states"]["second-run"] / "backup.lock"
    assert runner.stats["failures"].get("second-run"), runner.stats
    msgs = failed_msgs(runner, "second-run")
    assert any(
        f"Another backup run holds {path} (run first-run, started 2026-12-04T01:00:00Z on books-hz01, holder PID "
        f"{os.getpid()})"
        in m
        and "this run exits without doing anything" in m
        for m in msgs
    ), msgs
    assert site.snapshots() == []
    # the first run's lock was left alone
    assert json.loads(path.read_text())["run_id"] == "first-run"


# ------------------------------------------------------------------------------------------------ retention

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / ".collections"))
from ansible_collections.ledgerguard.recovery.plugins.module_utils.retention import (  # noqa: E402
    DEFAULT_RECORD_CLASSES,
)

# The legal policy: vouchers and ledgers 30 years (keep_yearly 31), annual reports and archive registers permanent
# through the permanent tag, which the role puts on each fiscal year's year-end snapshot.
LEGAL_POLICY = {"keep_daily": 7, "keep_monthly": 12, "keep_yearly": 31, "keep_tag": ["permanent"]}
CLASSES = [dict(c, tag="permanent") if c["years"] is None else c for c in DEFAULT_RECORD_CLASSES]


def history_times(year: int) -> dict[str, dt.datetime]:
    """A 12-year synthetic history (UTC) for the current year ``year``: two snapshots a year in Y-12..Y-1 (30 June
    and 31 December 12:00 UTC = 20:00 in Beijing, the year-end one), and ten dailies 20-29 December of Y-1."""
    out = {}
    for back in range(12, 0, -1):
        out[f"Y-{back} 06-30"] = dt.datetime(year - back, 6, 30, 12, tzinfo=dt.UTC)
        out[f"Y-{back} 12-31"] = dt.datetime(year - back, 12, 31, 12, tzinfo=dt.UTC)
    for day in range(20, 30):
        out[f"Y-1 12-{day}"] = dt.datetime(year - 1, 12, day, 3, tzinfo=dt.UTC)
    return out


# Kept by the legal policy (besides the role's own backup of today, kept as the newest daily/monthly/yearly):
#   keep_daily 7    -> today, Y-1 12-31, 12-29 .. 12-25
#   keep_monthly 12 -> today, Y-1 12-31, then 06-30 and 12-31 of Y-1 .. Y-5, and Y-6 12-31
#   keep_yearly 31  -> today, and each 12-31 of Y-1 .. Y-12
#   permanent tag   -> each 12-31 of Y-1 .. Y-12 (tagged by the role)
EXPECTED_LEGAL = (
    {f"Y-{b} 12-31" for b in range(1, 13)}
    | {f"Y-1 12-{d}" for d in range(25, 30)}
    | {f"Y-{b} 06-30" for b in range(1, 6)}
)
FORGOTTEN_LEGAL = {f"Y-1 12-{d}" for d in range(20, 25)} | {f"Y-{b} 06-30" for b in range(6, 13)}


def test_retention_keeps_exactly_the_legal_table_and_permanent_for_ever(nightly):
    """c002's synthetic history (``nightly``'s host ``retention``, backing up as localhost): the nightly's dry run,
    then retention alone applied, refused (two ways, two hosts of one run), forced."""
    site, year, times = nightly["sites"]["retention"], nightly["year"], nightly["times"]
    assert EXPECTED_LEGAL | FORGOTTEN_LEGAL == set(times) and not EXPECTED_LEGAL & FORGOTTEN_LEGAL
    by_time = {v.strftime("%Y-%m-%dT%H:%M:%S"): k for k, v in times.items()}

    def labels(snaps):
        return {by_time.get(s["time"][:19], "today") for s in snaps}

    common = {
        "backup_client_ids": ["c002"],
        "ledgerguard_backup_policy": {"retention": LEGAL_POLICY},
        "backup_verify_record_classes": CLASSES,
    }
    # 1. the nightly in dry-run mode: a backup, the year-end tags, and the preview; nothing forgotten
    preview = nightly["runner"]
    succeeded(preview, "retention")
    shown = facts(preview, "backup_retention_result", "retention")
    assert shown["lint"]["status"] == "OK" and shown["mode"] == "dry_run" and shown["forgotten"] == []
    assert labels(shown["preview"][0]["remove"]) == FORGOTTEN_LEGAL
    assert labels(shown["preview"][0]["keep"]) == EXPECTED_LEGAL | {"today"}
    assert {t["year"] for t in shown["tagged"][0]["tagged"]} == {year - b for b in range(1, 13)}
    assert len(data_snapshots(site)) == len(times) + 1  # dry run: nothing forgotten
    lines = item_msgs(preview, "List what would be forgotten", "retention")
    assert any(m.startswith("c002: the policy keeps 23 and would forget 12 snapshot(s): ") for m in lines), lines

    # 2. apply: exactly the table is kept; the permanent ones carry the tag
    applied = site.run(backup_entry="forget", backup_forget_mode="apply", **common)
    assert applied.rc == 0, failed_msgs(applied)
    left = [s for s in data_snapshots(site) if "c002" in s["tags"]]
    assert labels(left) == EXPECTED_LEGAL | {"today"} and len(left) == len(EXPECTED_LEGAL) + 1
    permanent = {by_time[s["time"][:19]] for s in left if "permanent" in s["tags"]}
    assert permanent == {f"Y-{b} 12-31" for b in range(1, 13)}
    # the manifests of forgotten snapshots went with them; today's manifest follows today's snapshot
    manifests = [s for s in site.snapshots() if MANIFEST_TAG in s["tags"]]
    assert {t for s in manifests for t in s["tags"] if t.startswith("ledgerguard-manifest-for=")} <= {
        "ledgerguard-manifest-for=" + s["id"] for s in left
    }

    # 3. refused, two ways, each a host of one run (backing up as localhost, a state folder of its own): nothing
    # forgotten by either. alias-only: a policy that fails the 会计档案管理办法 lint, set by the deprecated alias alone
    # (no ledgerguard_backup_policy.retention): the alias is the policy read, with a deprecation warning.
    # two-policies: the alias with another policy than ledgerguard_backup_policy.retention, refused before anything
    # is done (not even the lock is taken), naming both variables
    short = {"keep_daily": 3}
    alias_only = {k: v for k, v in common.items() if k != "ledgerguard_backup_policy"}
    refusing = {"alias-only": dict(alias_only, backup_verify_forget_policy=short),
                "two-policies": dict(common, backup_forget_policy=short)}  # fmt: skip
    refused = site.run(
        backup_entry="forget",
        backup_forget_mode="apply",
        hosts={
            name: site.hostvars(
                ledgerguard_state_dir=str(site.base / f"state-{name}"), ledgerguard_backup_host="localhost", **own
            )
            for name, own in refusing.items()
        },  # fmt: skip
    )
    assert refused.rc != 0 and set(refused.stats["failures"]) == set(refusing), refused.stats
    msgs = failed_msgs(refused, "alias-only")
    assert any("fails the 会计档案管理办法 lint" in m and "nothing was forgotten" in m for m in msgs), msgs
    assert len([s for s in data_snapshots(site) if "c002" in s["tags"]]) == len(left)
    out = " ".join(refused.stdout.read().split())
    assert "backup_verify_forget_policy is deprecated (its policy is in force): write the retention policy once in " \
        "ledgerguard_backup_policy.retention" in out, out[-3000:]  # fmt: skip
    assert not (site.base / "state-two-policies" / "backup.lock").exists()

    (msg,) = failed_msgs(refused, "two-policies")
    assert msg.endswith(
        "retention_policy: two retention policies are set: ledgerguard_backup_policy.retention = {keep_daily: 7, "
        "keep_monthly: 12, keep_yearly: 31, keep_tag: ['permanent']} and backup_forget_policy = {keep_daily: 3}. Keep "
        "one: write the policy only in ledgerguard_backup_policy.retention and remove backup_forget_policy "
        "(deprecated), so that backup_verify lints the policy the backup role applies"
    ), msg
    assert len([s for s in data_snapshots(site) if "c002" in s["tags"]]) == len(left)

    # 4. forced through, the short policy still keeps every permanent snapshot (and one the operator names)
    named = next(s for s in left if by_time.get(s["time"][:19]) == "Y-3 06-30")
    forced_vars = dict(
        common, ledgerguard_backup_policy={"retention": short}, backup_permanent_snapshots=[named["id"][:12]]
    )
    forced = site.run(backup_entry="forget", backup_forget_mode="apply", backup_forget_require_compliant=False,
                      **forced_vars)  # fmt: skip
    assert forced.rc == 0, failed_msgs(forced)
    final = [s for s in data_snapshots(site) if "c002" in s["tags"]]
    assert labels(final) == {f"Y-{b} 12-31" for b in range(1, 13)} | {"Y-3 06-30", "Y-1 12-29", "today"}
    assert all("permanent" in s["tags"] for s in final if labels([s]) != {"today"} and labels([s]) != {"Y-1 12-29"})


# ------------------------------------------------------------------------------------------------ off-site copy


def test_offsite_copy_to_a_second_bucket_verified_per_client(nightly, tmp_path):
    """``nightly``'s host localhost copies off-site in its first run; then a second run, then retention alone."""
    site, first, copy_vars = nightly["sites"]["localhost"], nightly["runner"], nightly["copy_vars"]
    repo2, password2 = nightly["offsite"]["repo"], nightly["offsite"]["password_file"]
    succeeded(first, "localhost")
    status = {c["client"]: c for c in facts(first, "backup_copy_result", "localhost")}
    made = {r["client"]: r for r in facts(first, "backup_results", "localhost")}
    offsite = site.snapshots(repo=repo2, password_file=password2)
    for cid in NAMES:
        assert status[cid]["newest"] == made[cid]["snapshot_id"] and status[cid]["in_copy"] is True
        copy = next(s for s in offsite if s["id"] == status[cid]["copy_id"])
        assert copy["original"] == made[cid]["snapshot_id"] and copy["tags"] == [cid, "ledgerguard-backup"]
        assert copy["hostname"] == "localhost" and copy["paths"] == site.clients[list(NAMES).index(cid)]["paths"]
    # the manifests travelled too
    assert len([s for s in offsite if MANIFEST_TAG in s["tags"]]) == 2

    # a second run copies only its new snapshots; both repositories hold each client's newest (with the legal policy:
    # its dry run reaches the copy too)
    second = site.run(
        **copy_vars, ledgerguard_backup_policy={"retention": LEGAL_POLICY}, backup_verify_record_classes=CLASSES
    )
    assert second.rc == 0, failed_msgs(second)
    status2 = {c["client"]: c for c in facts(second, "backup_copy_result")}
    offsite2 = site.snapshots(repo=repo2, password_file=password2)
    assert len(offsite2) == 2 * len(offsite)
    assert all(status2[cid]["in_copy"] and status2[cid]["copies"] == 2 for cid in NAMES)
    # nothing changed in c002's folder: its second snapshot adds no file data, only the tree nodes of the test's
    # parent folders (their mtimes change as the test writes its state and runner folders beside the books)
    again = {r["client"]: r for r in facts(second, "backup_results")}
    assert int(again["c002"]["files_new"]) == 0 and int(again["c002"]["files_changed"]) == 0
    assert int(again["c002"]["bytes_added"]) < 4096
    # the same retention policy reached the copy, per client, as a dry run (the default mode): nothing forgotten
    # no policy in the first run: nothing to apply
    assert facts(first, "backup_copy_retention_result", "localhost") is None
    kept = facts(second, "backup_copy_retention_result")
    assert kept["mode"] == "dry_run" and kept["forgotten"] == []
    assert sorted(c["client"] for c in kept["preview"]) == sorted(NAMES)

    # retention alone (backup_entry=forget), applied with a short policy: the copy, like the primary, keeps per client
    # exactly its newest snapshot; its dry run listed per client the one it then forgot
    short = {"keep_last": 1}
    pruned = site.run(**copy_vars, backup_entry="forget", backup_forget_mode="apply",
                      ledgerguard_backup_policy={"retention": short},
                      backup_forget_require_compliant=False)  # fmt: skip
    assert pruned.rc == 0, failed_msgs(pruned)
    applied = facts(pruned, "backup_copy_retention_result")
    assert {c["client"]: len(c["remove"]) for c in applied["preview"]} == dict.fromkeys(NAMES, 1)
    assert sorted(c["client"] for c in applied["forgotten"]) == sorted(NAMES)
    offsite3 = site.snapshots(repo=repo2, password_file=password2)
    left = {cid: [s["id"] for s in offsite3 if cid in s["tags"] and MANIFEST_TAG not in s["tags"]] for cid in NAMES}
    assert left == {cid: [status2[cid]["copy_id"]] for cid in NAMES}
    listed = item_msgs(pruned, "List what would be forgotten")
    assert any(m.startswith("off-site copy c001: the policy keeps 1 and would forget 1 snapshot(s): ") for m in listed)

    # a restore from the copy gives the client's files back, the ledger consistent at its own path
    target = tmp_path / "from-offsite"
    site.restic("restore", status2["c001"]["copy_id"], "--target", str(target), repo=repo2, password_file=password2)
    root = Path(site.clients[0]["paths"][0])
    live = {p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix != ".tmp"}
    back = {p.relative_to(target / str(root).lstrip("/")) for p in (target / str(root).lstrip("/")).rglob("*")
            if p.is_file()}  # fmt: skip
    assert back == live
    ledger = target / site.clients[0]["sqlite"][0].lstrip("/")
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


# ------------------------------------------------------------------------------------------------ PostgreSQL


def test_postgresql_dump_streamed_into_restic_restores_into_a_scratch_database(site, postgres, tmp_path):
    psql = postgres.psql
    psql("CREATE DATABASE ledger")
    psql("CREATE TABLE vouchers (id serial PRIMARY KEY, 摘要 text, amount numeric(14,2))", "ledger")
    psql(
        "INSERT INTO vouchers (摘要, amount) SELECT '收到货款 ' || g, g * 1.25 FROM generate_series(1, 500) g", "ledger"
    )
    db = {"engine": "postgresql", "database": "ledger", "client": "c002", "connection": postgres.conn}
    checked = site.run(check=True, backup_client_ids=["c002"], backup_databases=[db])
    assert checked.rc == 0, failed_msgs(checked)
    assert site.snapshots() == []

    # the dump, and beside it (a host of the same run, with a state folder of its own) a dump that fails
    bad = dict(db, database="no_such_db")
    runner = site.run(
        backup_client_ids=["c002"],
        backup_retention_enabled=False,
        hosts={
            "localhost": site.hostvars(backup_databases=[db]),
            "bad-dump": site.hostvars(ledgerguard_state_dir=str(site.base / "state-bad"), backup_databases=[bad]),
        },
    )
    succeeded(runner, "localhost")
    result = next(r for r in facts(runner, "backup_results", "localhost") if r.get("database") == "postgresql/ledger")
    assert result["line"].startswith("postgresql database ledger (client c002): dump of ")
    snap = next(s for s in site.snapshots() if s["id"] == result["snapshot_id"])
    assert snap["paths"] == ["/ledgerguard-db/postgresql/ledger.dump"]
    assert snap["tags"] == ["c002", "ledgerguard-backup", "db-postgresql-ledger"] and snap["hostname"] == "localhost"
    # never on the host's disk: nothing named like the dump under the state folder or the work folder
    assert not list(site.base.rglob("*.dump"))

    # the drill's restore: restic dump | pg_restore into a scratch database, then count
    psql("CREATE DATABASE scratch")
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "LC_ALL": "C", **site.s3_env,
           "RESTIC_REPOSITORY": site.repo, "RESTIC_PASSWORD_FILE": str(site.password_file)}  # fmt: skip
    out = subprocess.run(["restic", "dump", result["snapshot_id"], "/ledgerguard-db/postgresql/ledger.dump"],
                         env=env, capture_output=True, check=True).stdout  # fmt: skip
    where = ["-h", postgres.conn["host"], "-p", postgres.conn["port"], "-U", "postgres"]
    subprocess.run(["pg_restore", *where, "-d", "scratch"], input=out, check=True, capture_output=True)
    assert psql("SELECT count(*), sum(amount) FROM vouchers", "scratch") == "500|156562.50"

    # a dump that fails leaves no snapshot behind and says why
    assert runner.rc != 0 and runner.stats["failures"].get("bad-dump"), runner.stats
    msgs = failed_msgs(runner, "bad-dump")
    assert any(
        "pg_dump of database no_such_db failed" in m and "nothing of this database was backed up" in m for m in msgs
    ), msgs
    assert not [s for s in site.snapshots() if "db-postgresql-no_such_db" in s["tags"]]


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input_fails_before_anything_is_backed_up(refusals):
    runner, site, states = refusals["runner"], refusals["site"], refusals["states"]
    msgs = failed_msgs(runner, "relative-ledger")  # a relative ledger path
    assert runner.stats["failures"].get("relative-ledger"), runner.stats
    assert any(m.startswith("Invalid backup input on relative-ledger") for m in msgs), msgs
    msgs = failed_msgs(runner, "ledger-elsewhere")  # outside the client's paths
    assert runner.stats["failures"].get("ledger-elsewhere"), runner.stats
    assert any(
        m.startswith("Invalid backup input on ledger-elsewhere")
        and "is not inside the backed-up paths of its client" in m
        for m in msgs
    ), msgs
    assert site.snapshots() == []
    # both were refused before the backup lock was taken (checked before anything else)
    assert not (states["relative-ledger"] / "backup.lock").exists()
    assert not (states["ledger-elsewhere"] / "backup.lock").exists()
