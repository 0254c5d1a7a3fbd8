"""Bad and hostile input (issue 7): each is refused with a clear error before anything changes, or, for data that
is merely unusual (non-UTF-8 and 255-byte file names), restored faithfully.

Real playbooks through ansible-runner, real restic, the moto S3 server; assertions on bytes and sha256 of the trees.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from test_incident import Site, evidence_dir, failed_msgs, sha, tree
from test_incident_failures import refusing_site, site  # noqa: F401 (pytest fixtures)  # pylint: disable=unused-import

from conftest import cli_environment, failed_messages

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")

RELIABILITY = Path(__file__).resolve().parent / "reliability"


def untouched(site) -> dict:  # noqa: F811
    return {cid: tree(site.root(cid)) for cid in ("c001", "c002", "c003")}


def assert_nothing_touched(site, before: dict) -> None:  # noqa: F811
    assert untouched(site) == before
    assert not site.evidence.exists() or not any(site.evidence.iterdir())
    assert not (site.state / "incident.lock").exists()
    assert not (site.state / "freeze").exists() or not any((site.state / "freeze").iterdir())
    assert site.snapshots() == [] or all("pre-restore" not in (s.get("tags") or []) for s in site.snapshots())


# ----------------------------------------------------------------------------------------------------------------------
# Refused before anything is touched (ids/paths with '..' and ids in general are in test_incident_failures.py)
# ----------------------------------------------------------------------------------------------------------------------

BAD = [
    (
        "path-dotdot",
        {"incident_clients": ["c001"], "incident_paths": ["{c001}/../c002"]},
        "path '{c001}/../c002' contains '..'",
    ),
    (
        "time-malformed",
        {"incident_detected_at": "2026-13-45T25:00:00Z"},
        "incident_detected_at '2026-13-45T25:00:00Z' is not a date and time; write it as 2026-11-26T08:30:00+08:00",
    ),
    (
        "time-words",
        {"incident_loss_started": "yesterday evening"},
        "incident_loss_started 'yesterday evening' is not a date and time; write it as 2026-11-26T08:30:00+08:00",
    ),
    (
        "time-no-zone",
        {"incident_detected_at": "2026-11-20T08:00:00"},
        "incident_detected_at '2026-11-20T08:00:00' has no timezone, so it is ambiguous",
    ),
    (
        "time-order",
        {"incident_loss_started": "2026-11-20T08:00:00Z", "incident_detected_at": "2026-11-19T08:00:00Z"},
        "incident_loss_started 2026-11-20T08:00:00Z is after incident_detected_at 2026-11-19T08:00:00Z",
    ),
    (
        "repository-credentials",
        {"ledgerguard_repository": "s3:http://AKIARELIABILITY:hunter2-s3cr3t@127.0.0.1:9/bucket/restic"},
        "the restic repository URL embeds credentials (user:secret@host)",
    ),
]


@pytest.mark.parametrize(("extra", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_incident_input_refused(refusing_site, extra, message):  # noqa: F811
    site = refusing_site  # noqa: F811
    before = untouched(site)
    extra = {
        k: ([p.replace("{c001}", str(site.root("c001"))) for p in v] if k == "incident_paths" else v)
        for k, v in extra.items()
    }
    runner = site.run(**extra)
    assert runner.rc != 0
    message = message.replace("{c001}", str(site.root("c001")))
    msgs = failed_msgs(runner)
    assert any(message in m and "nothing was touched" in m for m in msgs), msgs
    assert_nothing_touched(site, before)
    if "hunter2-s3cr3t" in json.dumps(extra):
        # The refused secret is not repeated by any message, job event, evidence or state file. (ansible-runner keeps
        # the operator's own command line, extra vars included, in artifacts/<id>/command (0600); the CLI refuses such
        # a URL before it starts ansible at all: test_cli_refuses_repository_url_with_credentials.)
        scanned = 0
        for root in (site.base / "runner", site.evidence, site.state):
            for path in root.rglob("*") if root.exists() else []:
                if path.is_file() and path.name != "command":
                    scanned += 1
                    assert b"hunter2-s3cr3t" not in path.read_bytes(), path
        assert scanned > 10


def test_cli_refuses_repository_url_with_credentials(tmp_path):
    env = cli_environment()
    res = subprocess.run(
        [sys.executable, "-m", "ledgerguard", "incident", "--plain", "--incident-id", "INC-20261126-009",
         "--repository", "s3:http://AKIARELIABILITY:hunter2-s3cr3t@127.0.0.1:9/bucket/restic",
         "--private-data-dir", str(tmp_path / "runner"), "--evidence-dir", str(tmp_path / "evidence")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 2
    assert (
        "--repository must not embed credentials (user:password@); use --s3-credentials-file" in res.stdout + res.stderr
    )
    assert "hunter2-s3cr3t" not in res.stdout + res.stderr
    assert not (tmp_path / "runner").exists() and not (tmp_path / "evidence").exists()


def test_client_path_in_a_system_directory_refused(refusing_site):  # noqa: F811
    site = refusing_site  # noqa: F811
    before = untouched(site)
    declared = site.clients
    site.clients = [dict(declared[0], paths=["/etc"]), *declared[1:]]
    try:
        runner = site.run(incident_clients=["c001"])
    finally:
        site.clients = declared  # the module's site, shared with the other refused inputs
    assert runner.rc != 0
    msgs = " | ".join(failed_msgs(runner))
    assert "client c001 path '/etc' is a system directory" in msgs and "nothing was touched" in msgs, msgs
    assert_nothing_touched(site, before)


def test_unknown_pinned_snapshot_changes_no_data(site):  # noqa: F811
    site.backup(dt.datetime.now() - dt.timedelta(days=1))
    (site.root("c001") / "凭证" / "2026-09.csv").unlink()
    before = untouched(site)
    runner = site.run(incident_clients=["c001"], incident_pinned_snapshots={"c001": "deadbeef"})
    assert runner.rc != 0
    report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
    client = report["clients"][0]
    assert client["status"] == "failed"
    assert client["msg"].startswith("snapshot_damage: snapshot 'deadbeef' was not found among the 1 snapshots of")
    assert "pin an existing ID" in client["msg"]
    assert untouched(site) == before  # nothing restored, swapped or quarantined
    assert report["summary"]["all_thawed"] is True


# ----------------------------------------------------------------------------------------------------------------------
# restic_restore refuses / and system directories as its target (module level: the drill and restore playbooks)
# ----------------------------------------------------------------------------------------------------------------------


def test_restore_into_root_or_system_directory_refused(
    tmp_path, playbook, localhost_inventory, local_repo, restic_password_file, restic_cmd
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n")
    restic_cmd(local_repo, restic_password_file, "backup", str(data))
    inventory = localhost_inventory(
        {"ledgerguard_repository": local_repo, "ledgerguard_password_file": str(restic_password_file)}
    )
    etc_before = sorted(os.listdir("/etc"))
    targets = ["/", "/etc", "/usr/lib/ledgerguard", "/var", "/proc/1"]
    runner = playbook(str(RELIABILITY / "restore_targets.yml"), inventory=inventory, extravars={"targets": targets})
    assert runner.rc == 0, failed_messages(runner)
    results = {}
    for ev in runner.events:
        if ev.get("event") == "runner_item_on_ok" and ev["event_data"].get("task") == "Try to restore into the target":
            res = ev["event_data"]["res"]
            results[res["item"]] = res
    assert sorted(results) == sorted(targets)
    for target in targets:
        res = results[target]
        assert res.get("changed") is False and "snapshot_id" not in res
        assert res["msg"].startswith(f"target {target} is the root or a system directory"), res["msg"]
        assert "Nothing was restored" in res["msg"]
    assert sorted(os.listdir("/etc")) == etc_before
    assert not Path("/usr/lib/ledgerguard").exists()


# ----------------------------------------------------------------------------------------------------------------------
# Hostile links and odd file names: restored as links (never followed out of the client's folder), names byte for byte.
# Two independent cases, each in a client of its own, share one site, one backup and ONE incident run (issue 19): the
# declared cause is only the report's label, and each test asserts its own client's state.
# ----------------------------------------------------------------------------------------------------------------------

ODD_NAMES = [
    b"\xff\xfe\xb0 invoice (latin-1 \xe9t\xe9).csv",  # not UTF-8
    b"a" * 251 + b".csv",  # 255 bytes, the ext4 limit
    ("凭" * 83 + "ab.pdf").encode("utf-8"),  # 83 x 3 + 6 = 255 bytes of UTF-8
]
LINKS = {"link-etc": "/etc", "link-up": "../../outside"}  # c001's own links that point out; link-file is added below


def plant_links(site) -> dict:  # noqa: F811
    """c001: links that point out of its folder (to /etc, up the tree, to a file outside)."""
    outside = site.base / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("must stay exactly like this\n")
    c001 = site.root("c001")
    for name, target in LINKS.items():
        (c001 / name).symlink_to(target)
    (c001 / "link-file").symlink_to(str(outside / "sentinel.txt"))
    return {"outside": outside, "outside_before": tree(outside)}


def plant_odd_names(site) -> tuple[dict[bytes, bytes], bytes]:  # noqa: F811
    """c002: non-UTF-8 and 255-byte file names, in its folder and in a folder whose own name is not UTF-8; returns
    each file's bytes and that folder."""
    c002 = os.fsencode(site.root("c002"))
    odd_dir = os.path.join(c002, b"\xc3\x28-bad-utf8-dir")
    os.mkdir(odd_dir)
    contents = {}
    for i, name in enumerate(ODD_NAMES):
        for folder in (c002, odd_dir):
            path = os.path.join(folder, name)
            data = secrets.token_bytes(1000 + i) + name
            with open(path, "wb") as fh:
                fh.write(data)
            contents[path] = data
    return contents, odd_dir


@pytest.fixture(scope="module")
def hostile_tree_incident(tmp_path_factory, s3_server):
    """c001's vouchers folder replaced by a link to a folder outside and a snapshot link deleted (the attack), c002's
    odd names deleted; then one incident over both clients."""
    bucket = "lg-hostile-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    made = Site(tmp_path_factory.mktemp("hostile"), s3_server, bucket)
    made.restic("init")
    links = plant_links(made)
    contents, odd_dir = plant_odd_names(made)
    made.backup(dt.datetime.now() - dt.timedelta(days=1))
    clean = {cid: tree(made.root(cid)) for cid in ("c001", "c002")}
    # The attack on c001: the folder 凭证 is replaced by a symlink to a folder outside the client's folder, so a
    # restore that follows it would write the vouchers there; and a snapshot symlink is deleted.
    vouchers = made.root("c001") / "凭证"
    for f in vouchers.iterdir():
        f.unlink()
    vouchers.rmdir()
    vouchers.symlink_to(links["outside"])
    (made.root("c001") / "link-file").unlink()
    # c002 loses every oddly named file and the oddly named folder.
    for path in contents:
        os.unlink(path)
    os.rmdir(odd_dir)
    runner = made.run(incident_clients=["c001", "c002"], incident_cause="unknown")
    return {"site": made, "runner": runner, "clean": clean, "contents": contents, **links}


def test_symlinks_pointing_out_are_not_followed(hostile_tree_incident):
    h = hostile_tree_incident
    site, runner, outside = h["site"], h["runner"], h["outside"]  # noqa: F811
    assert runner.rc == 0, failed_msgs(runner)
    c001 = site.root("c001")
    assert tree(outside) == h["outside_before"]  # nothing written through a link
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    vouchers = c001 / "凭证"
    assert vouchers.is_dir() and not vouchers.is_symlink()
    for name, target in (*LINKS.items(), ("link-file", str(outside / "sentinel.txt"))):
        assert (c001 / name).is_symlink() and os.readlink(c001 / name) == target
    restored = {k: v for k, v in tree(c001).items() if not k.startswith(("link-",))}
    assert restored == {k: v for k, v in h["clean"]["c001"].items() if not k.startswith(("link-",))}
    # The attacker's link went to quarantine as a link (not the folder it pointed at).
    ev = evidence_dir(site)
    quarantined = list(site.books.glob(f".ledgerguard-{ev.name}/quarantine/c001/**/凭证"))
    assert quarantined and all(p.is_symlink() and os.readlink(p) == str(outside) for p in quarantined)


def test_odd_file_names_restored_faithfully(hostile_tree_incident):
    h = hostile_tree_incident
    site, runner = h["site"], h["runner"]  # noqa: F811
    assert [len(n) for n in ODD_NAMES[1:]] == [255, 255]
    assert runner.rc == 0, [
        (ev["event_data"].get("task"), str(ev["event_data"].get("res", {}).get("msg"))[:300])
        for ev in runner.events
        if ev.get("event") == "runner_on_failed"
    ]
    for path, data in h["contents"].items():
        with open(path, "rb") as fh:
            assert fh.read() == data, path
    assert tree(site.root("c002")) == h["clean"]["c002"]
    report = json.loads((evidence_dir(site) / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "restored"
    assert sha(evidence_dir(site) / "report.json")
