"""The restic engine's pure functions, fed with output captured from a real restic 0.14 (fixtures/restic/capture.sh)."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r

FIX = Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "restic"
REPO = "/WORK/repo"
V014 = r.ResticFeatures((0, 14, 0))
V017 = r.ResticFeatures((0, 17, 0))


def captured(name: str) -> r.ResticResult:
    """A fixture as the ResticResult the real run returned."""
    return r.ResticResult(
        argv=["restic"],
        rc=int((FIX / f"{name}.rc").read_text()),
        stdout=(FIX / f"{name}.stdout").read_text(),
        stderr=(FIX / f"{name}.stderr").read_text(),
    )


# -- version and features ---------------------------------------------------------------------------------------------


def test_parse_version_of_debian_restic():
    assert r.parse_version(captured("version").stdout) == (0, 14, 0)
    assert r.parse_version("restic 0.18.1 compiled with go1.24.2 on linux/amd64") == (0, 18, 1)
    with pytest.raises(ValueError, match="cannot read a restic version"):
        r.parse_version("bash: restic: command not found")


def test_help_flags_of_restic_014():
    restore = r.parse_help_flags(captured("restore_help").stdout)
    assert {"--verify", "--include", "--exclude", "--target", "--host", "--tag", "--json", "--cache-dir"} <= restore
    assert "--dry-run" not in restore and "--overwrite" not in restore and "--retry-lock" not in restore
    check = r.parse_help_flags(captured("check_help").stdout)
    assert {"--read-data", "--read-data-subset", "--with-cache"} <= check
    feats = r.ResticFeatures((0, 14, 0), restore, check, frozenset({"--dry-run"}))
    assert feats.restore_verify and feats.check_read_data_subset and feats.backup_dry_run
    assert not feats.restore_dry_run and not feats.retry_lock and not feats.distinct_exit_codes
    assert feats.version_string == "0.14.0"
    assert V017.distinct_exit_codes


def test_detect_features_runs_version_then_each_needed_help_once():
    calls = []

    def fake(argv, env, timeout=None, cwd=None, **_):
        calls.append(argv)
        name = "version" if argv[1] == "version" else f"{argv[1]}_help"
        if not (FIX / f"{name}.stdout").exists():
            return r.ResticResult(argv, 0, "Flags:\n  -n, --dry-run   do not write\n", "")
        return captured(name)

    engine = r.Restic("/usr/bin/restic", REPO, "/pw", run=fake, base_env={})
    assert engine.features.version == (0, 14, 0) and engine.features.version_string == "0.14.0"
    assert calls == [["/usr/bin/restic", "version"]]  # a backup needs no help: none asked yet
    assert engine.features.restore_verify and engine.features.backup_dry_run
    assert not engine.features.retry_lock and not engine.features.restore_dry_run  # restore's help, asked once
    engine.features  # noqa: B018 (cached: no second detection)
    assert calls == [
        ["/usr/bin/restic", "version"],
        ["/usr/bin/restic", "restore", "--help"],
        ["/usr/bin/restic", "backup", "--help"],
    ]
    assert engine.features.check_read_data_subset
    assert calls[-1] == ["/usr/bin/restic", "check", "--help"] and len(calls) == 4


# -- environment and secrets ------------------------------------------------------------------------------------------


def test_build_env_is_clean_and_c_locale():
    base = {
        "PATH": "/bin",
        "HOME": "/root",
        "RESTIC_PASSWORD": "leak",
        "AWS_SECRET_ACCESS_KEY": "leak",
        "LANG": "zh_CN",
    }
    env = r.build_env("s3:http://127.0.0.1:9/b", "/tmp/pw", {"AWS_ACCESS_KEY_ID": "k"}, base)
    assert env == {
        "PATH": "/bin",
        "HOME": "/root",
        "AWS_ACCESS_KEY_ID": "k",
        "LC_ALL": "C",
        "LANG": "C",
        "RESTIC_REPOSITORY": "s3:http://127.0.0.1:9/b",
        "RESTIC_PASSWORD_FILE": "/tmp/pw",
    }


@pytest.mark.parametrize("name", ["RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY"])
def test_build_env_refuses_reserved_names(name):
    with pytest.raises(ValueError, match=f"env may not set {name}"):
        r.build_env("/repo", "/pw", {name: "x"}, {})


def test_password_file_is_0600_and_removed(tmp_path):
    with r.PasswordFile(password="s3cret pass", directory=str(tmp_path)) as pw:
        assert stat.S_IMODE(os.stat(pw.path).st_mode) == 0o600
        assert Path(pw.path).read_text() == "s3cret pass"
    assert not Path(pw.path).exists()
    given = tmp_path / "given"
    given.write_text("x")
    with r.PasswordFile(path=str(given)) as pw:
        assert pw.path == str(given)
    assert given.exists()
    with pytest.raises(ValueError, match="a restic password is needed"):
        r.PasswordFile()


def test_argv_never_carries_the_password_and_names_the_cache_dir():
    engine = r.Restic("/usr/bin/restic", REPO, "/pw", cache_dir="/var/cache/lg", base_env={"PATH": "/bin"})
    assert engine.argv("snapshots", "--json") == [
        "/usr/bin/restic",
        "--cache-dir",
        "/var/cache/lg",
        "snapshots",
        "--json",
    ]
    assert engine.env["RESTIC_CACHE_DIR"] == "/var/cache/lg"
    assert engine.env["RESTIC_PASSWORD_FILE"] == "/pw"


@pytest.mark.parametrize(
    ("url", "embeds", "redacted"),
    [
        ("s3:https://AKIA:secret@s3.example.com/bucket", True, "s3:https://***@s3.example.com/bucket"),
        ("rest:http://user:pw@127.0.0.1:8000/repo", True, "rest:http://***@127.0.0.1:8000/repo"),
        ("s3:http://127.0.0.1:9000/bucket/prefix", False, "s3:http://127.0.0.1:9000/bucket/prefix"),
        ("sftp:backup@host:/srv/restic", False, "sftp:backup@host:/srv/restic"),
        ("/srv/restic-repo", False, "/srv/restic-repo"),
    ],
)
def test_credentials_in_url(url, embeds, redacted):
    assert r.url_embeds_credentials(url) is embeds
    assert r.redact_repository(url) == redacted


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("/srv/repo", "local"),
        ("s3:http://h/b", "s3"),
        ("sftp:u@h:/r", "sftp"),
        ("rest:http://h/", "rest"),
        ("C:/x", "local"),
    ],
)
def test_backend_of(url, backend):
    assert r.backend_of(url) == backend


# -- error classification (each from a real restic 0.14 failure) ------------------------------------------------------


def test_wrong_password():
    err = r.classify_error(captured("err_wrong_password"), REPO, V014)
    assert err.kind == "wrong_password"
    assert err.message.startswith("Wrong password for restic repository /WORK/repo: ")
    assert "ledgerguard_password_file" in err.message and "Nothing was changed." in err.message


def test_repository_missing_local_and_s3():
    err = r.classify_error(captured("err_repo_missing"), "/WORK/nope", V014)
    assert err.kind == "repo_missing"
    assert err.message.startswith(
        "There is no restic repository at /WORK/nope (restic says: Fatal: unable to open config"
    )
    assert "init: true" in err.message
    s3 = captured("err_s3_repo_missing")
    url = s3.stderr.strip().splitlines()[-1]
    err = r.classify_error(s3, url, V014)
    assert err.kind == "repo_missing" and url in err.message


def test_locked_names_holder_and_age():
    res = captured("err_locked")
    holder = r.parse_lock_holder(res.stderr)
    assert holder["host"] == "vm" and holder["user"] == "root" and holder["uid"] == 0 and not holder["exclusive"]
    assert holder["pid"] > 0 and holder["storage_id"] and holder["created"].startswith("20")
    assert holder["age"].endswith("s")
    err = r.classify_error(res, REPO, V014)
    assert err.kind == "locked"
    assert err.message.startswith(f"Restic repository /WORK/repo is locked by restic PID {holder['pid']} on host vm ")
    assert f"lock created at {holder['created']} ({holder['age']} ago), lock ID {holder['storage_id']}" in err.message
    assert "'restic unlock'" in err.message
    assert err.details["lock"] == holder


def test_backend_unreachable_names_host_and_port():
    res = captured("err_s3_unreachable")
    url = res.stderr.strip().splitlines()[-1]
    port = url.split(":")[-1].split("/")[0]
    err = r.classify_error(res, url, V014)
    assert err.kind == "unreachable"
    assert err.details == {"host": "127.0.0.1", "port": port, "reason": "connect: connection refused"}
    assert (
        f"Cannot reach the backend of restic repository {url}: 127.0.0.1:{port} (connect: connection refused)"
        in err.message
    )


def test_unreachable_by_name_lookup():
    res = r.ResticResult(
        [],
        1,
        "",
        'Fatal: Stat: Get "https://s3.example.invalid/b/": '
        "dial tcp: lookup s3.example.invalid on 127.0.0.53:53: no such host\n",
    )
    err = r.classify_error(res, "s3:https://s3.example.invalid:9000/b", V014)
    assert err.kind == "unreachable" and err.details["host"] == "s3.example.invalid" and err.details["port"] == "9000"


def test_snapshot_not_found():
    err = r.classify_error(captured("err_snapshot_missing"), REPO, V014)
    assert err.kind == "snapshot_not_found"
    assert err.message.startswith("Snapshot 'deadbeef' was not found in restic repository /WORK/repo.")


def test_permission_denied_on_target():
    err = r.classify_error(captured("err_permission_denied"), REPO, V014, target="/WORK/immutable/t", action="restore")
    assert err.kind == "permission_denied"
    assert err.message.startswith(
        "Permission denied writing to the restore target /WORK/immutable/t (/WORK/immutable/t: operation not permitted)"
    )
    assert err.details["path"] == "/WORK/immutable/t"


def test_permission_denied_elsewhere_is_not_blamed_on_the_target():
    res = r.ResticResult([], 1, "", "Fatal: open /srv/repo/keys: permission denied\n")
    err = r.classify_error(res, "/srv/repo", V014, target="/restore", action="restore into /restore")
    assert err.kind == "permission_denied"
    assert err.message.startswith("Permission denied (/srv/repo/keys: permission denied) while trying to restore")


def test_out_of_space():
    err = r.classify_error(
        captured("err_no_space"), REPO, V014, target="/WORK/small", action="restore into /WORK/small"
    )
    assert err.kind == "no_space"
    assert err.message.startswith(
        "Out of space on the restore target /WORK/small while trying to restore into /WORK/small"
    )
    assert "no space left on device" in err.message


def test_timeout():
    res = r.ResticResult(["restic"], -15, "", "", seconds=30.2, timed_out=True)
    err = r.classify_error(res, REPO, V014, action="check the repository")
    assert err.kind == "timeout" and "within the timeout of 30 s" in err.message


@pytest.mark.parametrize(("rc", "kind"), [(10, "repo_missing"), (11, "locked"), (12, "wrong_password"), (1, "failed")])
def test_distinct_exit_codes_of_restic_017(rc, kind):
    # restic >= 0.17 exits 10/11/12; the text is not needed (verified against the 0.17/0.18 scripting docs)
    res = r.ResticResult([], rc, "", "Fatal: something\n")
    assert r.classify_error(res, REPO, V017).kind == kind
    assert r.classify_error(res, REPO, V014).kind == "failed"


def test_unclassified_failure_quotes_restic():
    res = r.ResticResult([], 1, "", "Fatal: invalid pattern\n")
    err = r.classify_error(res, REPO, V014, action="list snapshots")
    assert (
        err.message == "restic failed to list snapshots on repository /WORK/repo (exit code 1): Fatal: invalid pattern"
    )


def test_messages_redact_credentials():
    res = captured("err_wrong_password")
    err = r.classify_error(res, "s3:https://AKIA:topsecret@h/b", V014)
    assert "topsecret" not in err.message and "s3:https://***@h/b" in err.message


# -- parsing ----------------------------------------------------------------------------------------------------------


def test_parse_snapshots_and_time():
    snaps = r.parse_snapshots(captured("snapshots_json").stdout)
    assert len(snaps) == 1
    snap = snaps[0]
    assert len(snap.id) == 64 and snap.short_id == snap.id[:8]
    assert (
        snap.hostname == "fixture-host" and snap.tags == ["daily", "C001"] and snap.paths == ["/WORK/src/srv/ledgers"]
    )
    assert snap.time.tzinfo is not None
    item = snap.as_dict()
    assert item["time_utc"].endswith("Z") and item["time"] == snap.raw_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T18:01:25.106570565Z", datetime(2026, 11, 26, 18, 1, 25, 106570, tzinfo=UTC)),
        ("2026-03-01T09:30:00+08:00", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01 09:30:00+0800", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01T09:30:00.5-05:00", datetime(2026, 3, 1, 14, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_time(text, expected):
    assert r.parse_time(text) == expected


def test_parse_time_refuses_naive_and_garbage():
    with pytest.raises(ValueError) as naive:
        r.parse_time("2026-03-01T09:30:00", "before")
    assert str(naive.value) == (
        "before '2026-03-01T09:30:00' has no timezone, so it is ambiguous; add one, e.g. 2026-03-01T09:30:00+08:00 "
        "or 2026-03-01T09:30:00Z"
    )
    with pytest.raises(ValueError, match="after 'yesterday' is not a timestamp"):
        r.parse_time("yesterday", "after")


def _snap(sid, when, host="h1", tags=(), paths=("/srv/ledgers",)):
    return r.Snapshot(sid, sid[:8], when, host, "root", list(paths), list(tags), "tree")


def test_filter_snapshots():
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    snaps = [
        _snap("a" * 64, t0, tags=("daily", "C001")),
        _snap("b" * 64, t0 + timedelta(hours=1), host="h2", tags=("daily",)),
        _snap("c" * 64, t0 + timedelta(hours=2), tags=("daily", "C001"), paths=("/srv/ledgers/C001",)),
    ]

    def ids(found):
        return [s.id[0] for s in found]

    assert ids(r.filter_snapshots(snaps, hosts=["h1"])) == ["a", "c"]
    assert ids(r.filter_snapshots(snaps, tags=["daily", "C001"])) == ["a", "c"]
    assert ids(r.filter_snapshots(snaps, paths=["/srv/ledgers/C001/"])) == ["c"]
    assert ids(r.filter_snapshots(snaps, before=t0 + timedelta(hours=1))) == ["a"]  # strictly before
    assert ids(r.filter_snapshots(snaps, after=t0 + timedelta(hours=1))) == ["b", "c"]  # at or after
    assert ids(r.filter_snapshots(snaps, hosts=["h1"], after=t0 + timedelta(minutes=1))) == ["c"]


def test_parse_backup_summary_and_dry_run():
    summary = r.parse_backup_summary(captured("backup_json").stdout)
    assert summary["files_new"] == 3 and summary["total_files_processed"] == 3 and len(summary["snapshot_id"]) == 8
    assert summary["errors"] == [] and "message_type" not in summary
    dry = r.parse_backup_summary(captured("backup_dry_run_json").stdout)
    assert dry["dry_run"] is True and dry["files_new"] == 0 and dry["files_unmodified"] == 3
    with pytest.raises(ValueError, match="no summary"):
        r.parse_backup_summary('{"message_type":"status","percent_done":0}\n')


def test_parse_backup_errors():
    text = (
        '{"message_type":"error","error":{"Op":"open","Path":"x","Err":13},"during":"archival","item":"/srv/x"}\n'
        '{"message_type":"summary","files_new":1,"snapshot_id":"abcd1234"}\n'
    )
    # restic 0.14 serialises the Go error as an object without "message"; keep whatever it says plus the item
    summary = r.parse_backup_summary(text)
    assert summary["errors"] == ["open x: errno 13 (/srv/x)"]


def test_parse_ls():
    listing = r.parse_ls(captured("ls_json").stdout)
    assert listing.snapshot is not None and listing.snapshot.paths == ["/WORK/src/srv/ledgers"]
    files = {n.path: n.size for n in listing.files}
    assert files == {
        "/WORK/src/srv/ledgers/C001/2026.csv": 31,
        "/WORK/src/srv/ledgers/C002/blob.bin": 20000,
        "/WORK/src/srv/ledgers/C002/notes.txt": 6,
    }
    sub = r.parse_ls(captured("ls_recursive_json").stdout)
    assert [n.path for n in sub.nodes] == ["/WORK/src/srv/ledgers/C001", "/WORK/src/srv/ledgers/C001/2026.csv"]
    missing = r.parse_ls(captured("err_snapshot_missing_ls").stdout)
    assert missing.snapshot is None and missing.nodes == []


def test_parse_find():
    found = r.parse_find(captured("find_json_dir").stdout)
    [(sid, paths)] = list(found.items())
    assert len(sid) == 64
    assert paths == ["/WORK/src/srv/ledgers/C001", "/WORK/src/srv/ledgers/C001/2026.csv"]
    assert r.parse_find(captured("find_json").stdout) == {}


def test_parse_config():
    config = r.parse_config(captured("cat_config").stdout)
    assert config["version"] == 2 and len(config["id"]) == 64


def test_parse_check_clean_and_subset():
    clean = r.parse_check(captured("check_text"))
    assert clean == {"ok": True, "errors": [], "warnings": []}
    subset = r.parse_check(captured("check_subset_text"))
    assert subset["ok"] is True and subset["packs_total"] >= 1


def test_parse_check_damaged_repository():
    res = captured("check_damaged")
    assert res.rc == 1
    parsed = r.parse_check(res)
    assert parsed["ok"] is False
    assert parsed["errors"][0].startswith("pack ") and parsed["errors"][0].endswith(": does not exist")
    assert parsed["errors"][1].startswith("error for tree ") and "ReadFull(<data/" in parsed["errors"][1]
    assert not any("retrying after" in e for e in parsed["errors"])
    # The check ran; its output names a tree it could not load from a missing pack: repository damage, not "failed".
    assert r.classify_error(res, REPO, V014).kind == "repository_damaged"
    [lost] = r.lost_packs_from_check(parsed["errors"])
    assert lost["id"] == "fbfe2e0a5f072d6092a30a72b9528df62ed28071bcef42736b89f5cee1314667"
    assert lost["reason"] == f"pack {lost['id']}: does not exist"
    assert lost["trees"] == ["cc4b0684"]


@pytest.mark.parametrize("value", ["1/7", "7/7", "5%", "2.5%", "100%", "500M", "2G", "1024", "1.5t"])
def test_read_data_subset_valid(value):
    assert r.validate_read_data_subset(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0/7", "n must be between 1 and t"),
        ("8/7", "n must be between 1 and t"),
        ("0%", "above 0 and at most 100"),
        ("150%", "above 0 and at most 100"),
        ("half", "none of the three forms"),
        ("5 %", "none of the three forms"),
        ("0", "a size must be above zero"),
    ],
)
def test_read_data_subset_invalid(value, why):
    with pytest.raises(ValueError, match="use a rolling part 'n/t'") as exc:
        r.validate_read_data_subset(value)
    assert why in str(exc.value)


def test_restic_pattern_escapes_globs():
    assert r.restic_pattern("/srv/ledgers/C001") == "/srv/ledgers/C001"
    assert r.restic_pattern("/srv/[old]/a*b?.csv") == "/srv/\\[old]/a\\*b\\?.csv"


# -- the engine with a replaying run function -------------------------------------------------------------------------


def replay(mapping: dict[str, str]):
    """A run function answering each restic subcommand with a captured fixture."""
    calls = []

    def run(argv, env, timeout=None, cwd=None, **_):
        calls.append(list(argv))
        sub = next(a for a in argv[1:] if not a.startswith("-") and a not in ("/c",))
        if sub in ("restore", "check", "backup") and "--help" in argv:
            return captured(f"{sub}_help")
        return captured(mapping[sub])

    run.calls = calls
    return run


def test_ls_of_unknown_snapshot_is_snapshot_not_found():
    # restic 0.14 'ls' exits 0 and only says "Ignoring" for an unknown ID
    engine = r.Restic(
        "restic", REPO, "/pw", run=replay({"version": "version", "ls": "err_snapshot_missing_ls"}), base_env={}
    )
    with pytest.raises(r.ResticError) as exc:
        engine.ls("deadbeef")
    assert exc.value.kind == "snapshot_not_found"
    assert exc.value.message.startswith("Snapshot 'deadbeef' was not found in restic repository /WORK/repo.")


def test_ls_of_paths_is_recursive_and_latest_takes_filters():
    run = replay({"version": "version", "ls": "ls_recursive_json"})
    engine = r.Restic("restic", REPO, "/pw", run=run, base_env={})
    listing = engine.ls("latest", ["/WORK/src/srv/ledgers/C001"], hosts=["web01"], tags=["daily", "C001"])
    assert listing.snapshot is not None
    assert run.calls[-1] == [
        "restic", "ls", "--json", "--recursive", "--host=web01", "--tag=daily,C001",
        "--", "latest", "/WORK/src/srv/ledgers/C001",
    ]  # fmt: skip


def test_must_raises_classified_error():
    engine = r.Restic(
        "restic", REPO, "/pw", run=replay({"version": "version", "snapshots": "err_wrong_password"}), base_env={}
    )
    with pytest.raises(r.ResticError) as exc:
        engine.snapshots()
    assert exc.value.kind == "wrong_password" and exc.value.result.rc == 1


def test_resolve_snapshot():
    run = replay({"version": "version", "snapshots": "snapshots_json"})
    engine = r.Restic("restic", REPO, "/pw", run=run, base_env={})
    full = r.parse_snapshots(captured("snapshots_json").stdout)[0].id
    assert engine.resolve_snapshot(full[:8]).id == full
    assert engine.resolve_snapshot("latest", hosts=["fixture-host"]).id == full
    with pytest.raises(r.ResticError) as exc:
        engine.resolve_snapshot("latest", hosts=["elsewhere"])
    assert exc.value.kind == "snapshot_not_found" and "hosts=['elsewhere']" in exc.value.message


def test_subprocess_run_times_out_and_stops_the_group(tmp_path):
    res = r.subprocess_run(["sleep", "30"], env={"PATH": os.environ["PATH"]}, timeout=0.5)
    assert res.timed_out and res.seconds < 20


def test_watched_run_hands_stdout_to_the_consumer():
    value, res = r.watched_run(
        ["sh", "-c", "printf abc; echo oops >&2; exit 3"], {"PATH": os.environ["PATH"]}, lambda s: s.read()
    )
    assert value == b"abc" and res.rc == 3 and res.stderr == "oops\n"


# -- a pack file lost from the repository (fixtures/restic/capture_lost_pack.sh) ---------------------------------------


def test_check_lost_data_pack_names_the_pack():
    res = captured("check_lost_data_pack")
    assert res.rc == 1
    parsed = r.parse_check(res)
    assert parsed["ok"] is False
    [lost] = r.lost_packs_from_check(parsed["errors"])
    assert len(lost["id"]) == 64 and lost["trees"] == []
    assert lost["reason"] == f"pack {lost['id']}: does not exist"
    # restic_check accepts this as "the check ran and found errors" (it raises only for other kinds)
    assert r.classify_error(res, REPO, V014).kind in ("failed", "repository_damaged")


def test_lost_packs_from_check_after_a_data_read_and_unreferenced_packs():
    want = "88338adcb6eb2e7e59a1f178cd2fdc2af3cc3a607c212fa4911d001289dbca47"
    errors = [
        f"Pack ID does not match, want {want}, got 8bc07ea4e78d5ea43677a4e0e19730ea23fa7fe7c9cbd9cd1b610af12d4c7b2f",
        "pack 0123abcd: not referenced in any index",
    ]
    assert r.lost_packs_from_check(errors) == [{"id": want, "reason": errors[0], "trees": []}]


def test_find_pack_lists_the_snapshots_that_need_a_deleted_pack():
    res = captured("find_pack_json")
    assert res.rc == 0
    assert "some pack files are missing from the repository, getting their blobs from the repository index" in (
        res.stderr
    )
    found = r.parse_find_objects(res.stdout)
    [(snapshot, paths)] = list(found.items())
    assert len(snapshot) == 64
    assert paths == ["/WORK/src/srv/ledgers/C001/scan-2026-11.pdf"]
    assert r.parse_find_objects("") == {}


def test_restore_of_a_snapshot_whose_data_pack_was_deleted_is_repository_damaged():
    res = captured("restore_lost_data_pack")
    pack = r.lost_packs_from_check(r.parse_check(captured("check_lost_data_pack"))["errors"])[0]["id"]
    err = r.classify_error(res, REPO, V014, target="/WORK/out", snapshot="ad807ca474f6", action="restore")
    assert err.kind == "repository_damaged"
    assert err.details["packs"] == [pack]
    assert err.details["paths"] == ["/WORK/src/srv/ledgers/C001/scan-2026-11.pdf"]
    assert err.message == (
        f"Snapshot ad807ca4 cannot be restored from restic repository {REPO}: data it needs is missing or damaged in "
        "the repository (1 file(s), e.g. /WORK/src/srv/ledgers/C001/scan-2026-11.pdf; restic says: StreamPack: open "
        f"/WORK/repo/data/{pack[:2]}/{pack}: no such file or directory; pack(s) missing or damaged: {pack}). The "
        "files restic could not verify must not be used. Run restic check --read-data to see the damage, and restore "
        "an older snapshot that does not need the lost data (the incident path moves to one by itself)."
    )


def test_listing_or_restoring_a_snapshot_whose_tree_pack_was_deleted_is_repository_damaged():
    ls = r.classify_error(
        captured("ls_lost_tree_pack"), REPO, V014, snapshot="ad807ca474f6", action="list the snapshot's files"
    )
    assert ls.kind == "repository_damaged"
    [pack] = ls.details["packs"]
    assert len(pack) == 64
    assert ls.message.startswith(
        f"restic could not list the snapshot's files in restic repository {REPO}: pack {pack}, which snapshot "
        f"ad807ca4 needs, is missing from the repository (restic says: open /WORK/repo-tree/data/{pack[:2]}/{pack}: "
        "no such file or directory). Snapshot ad807ca4 cannot be used."
    )
    restore = r.classify_error(
        captured("restore_lost_tree_pack"), REPO, V014, target="/WORK/out", snapshot="ad807ca474f6", action="restore"
    )
    assert restore.kind == "repository_damaged"
    assert restore.details["packs"] == [pack[:10]] or restore.details["packs"] == [pack]
    assert restore.message.startswith(f"Snapshot ad807ca4 cannot be restored from restic repository {REPO}:")


def test_packs_named_keeps_the_full_id_over_its_prefix():
    full = "3233b4dd99179ad98e53c57475ccbe032b3e79594c5a853f6964a82e58413db4"
    text = f"ReadFull(<data/3233b4dd99>): open /r/data/32/{full}: no such file or directory"
    assert r.packs_named(text) == [full]
    assert r.packs_named("ReadFull(<data/3233b4dd99>)") == ["3233b4dd99"]


# -- issue 13 item 9: no input value can become a restic option ---------------------------------------------------


@pytest.mark.parametrize("value", ["--help", "-r/tmp/x", "--password-command=id", "-", "latest; rm", "abc", "../x", ""])
def test_snapshot_ids_that_are_not_ids_are_refused_naming_the_input(value):
    with pytest.raises(ValueError) as exc:
        r.validate_snapshot_id(value)
    assert repr(value.strip()) in str(exc.value) and "8 to 64 hexadecimal" in str(exc.value)


@pytest.mark.parametrize("value", ["latest", "0f254756", "0F254756", "a" * 64])
def test_snapshot_ids_accepted(value):
    assert r.validate_snapshot_id(value) == value.lower()


def test_argv_puts_positionals_after_double_dash_and_joins_option_values():
    engine = r.Restic("restic", REPO, "/pw", run=replay({}), base_env={})
    assert engine.argv("restore", "0f254756", "--target", "/t", "--include", "/a", "--verify") == [
        "restic", "restore", "--target=/t", "--include=/a", "--verify", "--", "0f254756",
    ]  # fmt: skip
    assert engine.argv("dump", "--archive", "tar", "--", "0f254756", "/srv/x") == [
        "restic", "dump", "--archive=tar", "--", "0f254756", "/srv/x",
    ]  # fmt: skip
    diff = engine.argv("diff", "--json", "aaaaaaaa", "bbbbbbbb")
    assert diff == ["restic", "diff", "--json", "--", "aaaaaaaa", "bbbbbbbb"]
    assert engine.argv("snapshots", "--json") == ["restic", "snapshots", "--json"]
    assert engine.argv("cat", "config") == ["restic", "cat", "--", "config"]
    assert engine.argv("repair", "index") == ["restic", "repair", "index"]
    # a value of a value option that starts with "-" stays that option's value
    assert engine.argv("ls", "--host", "-evil", "--", "latest") == ["restic", "ls", "--host=-evil", "--", "latest"]
    # after "--", nothing is an option
    assert engine.argv("ls", "--json", "--", "--help", "-r/tmp/x") == [
        "restic", "ls", "--json", "--", "--help", "-r/tmp/x",
    ]  # fmt: skip


@pytest.mark.parametrize("planted", ["--help", "-r/tmp/x", "--password-command=id", "--delete", "-o", "--repo=/x"])
def test_argv_refuses_an_unknown_option_in_front_of_the_arguments(planted):
    """A caller that forgot "--" (snapshot_damage writes ``"dump", snapshot_id, path``) still cannot turn a value
    into an option: anything option-like that is not one of ours is refused before restic runs."""
    run = replay({})
    engine = r.Restic("restic", REPO, "/pw", run=run, base_env={})
    with pytest.raises(ValueError) as exc:
        engine.argv("dump", planted, "/srv/ledgers/C001/a.csv")
    assert repr(planted) in str(exc.value)
    with pytest.raises(ValueError):
        engine.run("restore", planted, "--target", "/t")
    assert not any(planted in call for call in run.calls)


def test_ls_and_resolve_refuse_a_snapshot_that_is_an_option():
    run = replay({"version": "version", "snapshots": "snapshots_json", "ls": "ls_recursive_json"})
    engine = r.Restic("restic", REPO, "/pw", run=run, base_env={})
    for call in (lambda: engine.ls("-r/tmp/x"), lambda: engine.resolve_snapshot("--help")):
        with pytest.raises(ValueError, match="is not a restic snapshot ID"):
            call()
    assert run.calls == []


# -- issue 17: restic's own kinds of damage, classified (captured by fixtures/restic/capture_damaged.sh) -----------


def _damaged(name: str, version: str) -> tuple[dict, str]:
    res = captured(f"check_repo_{name}_{version}")
    return r.parse_check(res), res.stdout + "\n" + res.stderr


@pytest.mark.parametrize("version", ["014", "018"])
@pytest.mark.parametrize(
    "name, kinds, harmless",
    [
        ("data_missing", ["data_lost"], False),
        ("index_missing", ["index_incomplete"], False),
        ("index_missing_blob", ["index_incomplete"], False),
        ("unused_data_missing", ["unused_data_missing"], True),
        ("duplicates", [], True),
        ("cache_warning", ["cache_warning"], True),
    ],
)
def test_check_diagnosis_of_restics_damage_kinds(version, name, kinds, harmless):
    parsed, text = _damaged(name, version)
    lost = r.lost_packs_from_check(parsed["errors"])
    # restic_check's locate step: the data-missing pack is needed by a snapshot, the unused one by none
    located = [{"id": "a" * 64, "short_id": "aaaaaaaa", "packs": [p["id"] for p in lost], "paths": ["/srv/x"]}]
    found = r.diagnose_check(parsed, text, located if name == "data_missing" else [], (0, int(version[1:]), 0))
    assert [f["kind"] for f in found] == kinds
    assert all(f["harmless"] for f in found) is harmless
    # the cache notice and restic 0.18's pointer to its guide are never counted as repository errors
    assert not any("temporary directory for cache" in e or "must be repaired" in e for e in parsed["errors"])
    if name in ("duplicates", "cache_warning"):
        assert parsed["ok"] is True
    if name.startswith("index_missing"):
        finding = found[0]
        assert finding["repairable"] is True
        assert finding["repair_command"] == ("restic rebuild-index" if version == "014" else "restic repair index")
        assert finding["trees"] and "Rebuild the index" in finding["what_to_do"]
    if name == "data_missing":
        assert found[0]["snapshots"][0]["short_id"] == "aaaaaaaa" and found[0]["packs"] == [lost[0]["id"]]


def test_index_repair_command_by_version():
    assert r.index_repair_command((0, 14, 0)) == ["rebuild-index"]
    assert r.index_repair_command((0, 16, 0)) == ["repair", "index"]
    engine = r.Restic("restic", REPO, "/pw", run=replay({}), base_env={})
    assert engine.argv("rebuild-index") == ["restic", "rebuild-index"]
    assert engine.argv("cat", "index", "ab" * 32) == ["restic", "cat", "--", "index", "ab" * 32]


def test_layout_of_a_snapshot_whose_recorded_path_is_the_live_path():
    """Given by ID, with the live path equal to the recorded one: one listing, roots computed (a regression: the
    second pass found nothing new to ask and returned the layout without its roots)."""
    run = replay({"version": "version", "ls": "ls_json"})
    engine = r.Restic("restic", REPO, "/pw", run=run, base_env={})
    sid = "46eb436e9eff9de244a07ee89179426c90f92c408be89577730aba148896a79d"
    assert engine.map_path(sid, "/WORK/src/srv/ledgers") == "/WORK/src/srv/ledgers"
    assert [c[1] for c in run.calls].count("ls") == 1
    assert engine.map_path(sid, "/WORK/src/srv/ledgers/C001") == "/WORK/src/srv/ledgers/C001"
    assert engine.map_path(sid[:8], "/WORK/src/srv/ledgers/C001") == "/WORK/src/srv/ledgers/C001"  # cached
    assert [c[1] for c in run.calls].count("ls") == 2


# -- sftp: backend ------------------------------------------------------------------------------------------------


def test_sftp_repository_forms_and_ssh_command():
    assert r.parse_sftp("sftp://backup@nas.lan:2222//volume1/restic") == {
        "user": "backup", "host": "nas.lan", "port": 2222, "path": "//volume1/restic",
    }  # fmt: skip
    assert r.parse_sftp("sftp:backup@nas.lan:/volume1/restic")["host"] == "nas.lan"
    assert r.parse_sftp("/srv/restic") is None
    argv = r.sftp_ssh_argv("sftp://backup@nas.lan:2222//v/r", "/etc/lg/key", "/etc/lg/known_hosts")
    assert argv[-4:] == ["-s", "--", "nas.lan", "sftp"]  # a host starting with '-' can never become an ssh option
    assert ["-i", "/etc/lg/key", "-o", "IdentitiesOnly=yes"] == argv[argv.index("-i") : argv.index("-i") + 4]
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/etc/lg/known_hosts" in argv
    assert "BatchMode=yes" in argv and argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "backup"
    with pytest.raises(ValueError, match="without spaces"):
        r.sftp_ssh_argv("sftp://nas//r", "/my keys/key")
    engine = r.Restic("restic", "sftp://b@nas:22//r", "/pw", run=replay({}), base_env={}, sftp_identity_file="/k")
    full = engine.argv("snapshots", "--json")
    assert full[1] == "-o" and full[2].startswith("sftp.command=ssh ") and "-i /k" in full[2]
    assert full[3:] == ["snapshots", "--json"]


@pytest.mark.parametrize(
    "text, kind",
    [
        (
            "subprocess ssh: No ED25519 host key is known for [127.0.0.1]:2299 and you have requested strict "
            "checking.\nsubprocess ssh: Host key verification failed.\nFatal: unable to open repository at "
            "sftp://root@127.0.0.1:2299//r: unable to start the sftp session, error: EOF\n",
            "sftp_host_key",
        ),
        ("subprocess ssh: root@127.0.0.1: Permission denied (publickey).\nFatal: ...error: EOF\n", "sftp_auth_failed"),
        (
            "subprocess ssh: ssh: connect to host 127.0.0.1 port 2399: Connection refused\nFatal: unable to open "
            "repository at sftp://root@127.0.0.1:2399//r: unable to start the sftp session, error: EOF\n",
            "unreachable",
        ),
        (
            "Fatal: unable to open config file: Lstat: file does not exist\nIs there a repository at the following",
            "repo_missing",
        ),
    ],
)
def test_sftp_errors_classified_from_restics_output(text, kind):
    err = r.classify_error(r.ResticResult(["restic"], 1, "", text), "sftp://root@127.0.0.1:2299//r")
    assert err.kind == kind, err.message
    if kind == "sftp_auth_failed":
        assert "Permission denied" in err.message and err.kind != "permission_denied"


def test_live_path_is_the_reverse_of_map_path():
    """A relative backup (cd /WORK/src/srv && restic backup ledgers): listing paths translate back to live paths."""
    listing = "\n".join(
        [
            '{"time":"2026-11-26T18:17:34.678045982Z","tree":"cc","paths":["/WORK/src/srv/ledgers"],'
            '"hostname":"h","username":"root","id":"' + "a" * 64 + '","short_id":"aaaaaaaa","struct_type":"snapshot"}',
            '{"name":"ledgers","type":"dir","path":"/ledgers","struct_type":"node"}',
            '{"name":"C001","type":"dir","path":"/ledgers/C001","struct_type":"node"}',
        ]
    )

    def run(argv, env, timeout=None, cwd=None, **_):
        if argv[1] == "version":
            return captured("version")
        return r.ResticResult(list(argv), 0, listing + "\n", "")

    engine = r.Restic("restic", REPO, "/pw", run=run, base_env={})
    assert engine.map_path("a" * 64, "/WORK/src/srv/ledgers/C001") == "/ledgers/C001"
    roots = ["/WORK/src/srv/ledgers/C001"]
    assert engine.live_path("a" * 64, "/ledgers/C001/x.csv", roots) == "/WORK/src/srv/ledgers/C001/x.csv"
    assert engine.live_path("a" * 64, "/ledgers/C002/x.csv", roots) is None


def test_covering_many_searches_every_client_path_with_one_restic_find():
    """Several clients' paths (issue 19): ONE restic find with every pair's patterns over every snapshot a pair may
    be in; each pair keeps only its own candidates, so its answer is what covering() alone gives."""
    calls: list[tuple] = []
    a = _snap("a" * 64, datetime(2026, 11, 20, tzinfo=UTC), paths=("/srv/账套",))
    b = _snap("b" * 64, datetime(2026, 11, 21, tzinfo=UTC), paths=("/srv/账套/c002",))
    held = {a.id: ["/srv/账套/c001", "/srv/账套/c002"], b.id: ["/srv/账套/c002"]}

    class Fake(r.Restic):
        def must(self, *args, **kwargs):
            calls.append(args)
            sids = [args[i + 1] for i, x in enumerate(args) if x == "--snapshot"]
            text = json.dumps(
                [{"snapshot": s, "matches": [{"path": p} for p in held[s]]} for s in sids if s in held],
                ensure_ascii=False,
            )
            return r.ResticResult(list(args), 0, text, "")

        def map_path(self, snapshot, live_path, pinned=None):
            raise r.PathNotInSnapshot(live_path)

    restic = Fake("restic", "/repo", "/pw")
    pairs = [("/srv/账套/c001", None), ("/srv/账套/c002", None), ("/srv/账套/c003", None)]
    found = restic.covering_many([a, b], pairs)
    assert len(calls) == 1 and calls[0][:2] == ("find", "--json")
    assert calls[0].count("--snapshot") == 2
    assert found == [{a.id: "/srv/账套/c001"}, {a.id: "/srv/账套/c002", b.id: "/srv/账套/c002"}, {}]
    # covering() of one path is covering_many of that path alone: the same answer, its own search
    assert restic.covering([a, b], "/srv/账套/c002") == found[1]
    assert len(calls) == 2


def test_lost_packs_beyond_the_search_are_never_called_unused():
    """restic_check searches the snapshots of the first MAX_PACKS_LOCATED lost packs only; the others were not
    searched, so they are data lost (critical), never the harmless 'unused data missing'."""
    from ansible_collections.ledgerguard.recovery.plugins.modules import restic_check

    ids = [f"{i:02d}" + "e0" * 31 for i in range(restic_check.MAX_PACKS_LOCATED + 5)]
    stderr = "".join(f"pack {pid}: does not exist\n" for pid in ids) + "Fatal: repository contains errors\n"
    parsed = r.parse_check(r.ResticResult(argv=["restic"], rc=1, stdout="check all packs\n", stderr=stderr))
    lost = r.lost_packs_from_check(parsed["errors"])
    assert [p["id"] for p in lost] == ids

    class Repository:
        """restic for locate(): every searched pack is needed by no snapshot (restic find prints an empty list)."""

        repository, features = "/srv/备份", None
        searched: list[str] = []

        def run(self, *argv):
            self.searched.append(argv[-1])
            return r.ResticResult(argv=["restic", *argv], rc=0, stdout="[]", stderr="")

        def snapshots(self):
            return []

    repo = Repository()
    ok, errors, located, unlocated = restic_check.locate(repo, lost)
    assert repo.searched == ids[: restic_check.MAX_PACKS_LOCATED] and located == []
    assert unlocated == ids[restic_check.MAX_PACKS_LOCATED :] and not ok
    assert errors == [f"only the first 20 of {len(ids)} lost packs were searched"]
    found = r.diagnose_check(parsed, stderr, located, (0, 14, 0), unlocated=unlocated)
    kinds = {f["kind"]: f for f in found}
    assert set(kinds) == {"data_lost", "unused_data_missing"} and kinds["data_lost"]["harmless"] is False
    assert kinds["data_lost"]["packs"] == unlocated
