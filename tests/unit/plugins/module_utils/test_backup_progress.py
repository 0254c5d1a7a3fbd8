"""Progress inside one client's backup (issue 15): restic's status lines as restic 0.14 and 0.18 print them
(fixtures/restic/backup_status_014.* and _018.*, captured by capture_backup_status.sh), read while restic runs without
weakening the summary, the RESTIC_PROGRESS_FPS of the backup run only, the progress file's client entry and the line a
poll shows."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import backup_manifest as bm
from ansible_collections.ledgerguard.recovery.plugins.module_utils import progress_file as pf
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.engine import Restic
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import parse_backup_summary
from ansible_collections.ledgerguard.recovery.plugins.module_utils.units import human_eta
from ansible_collections.ledgerguard.recovery.plugins.modules.restic_backup import ProgressFile

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "restic"
VERSIONS = ("014", "018")


def captured(version: str) -> bytes:
    return (FIX / f"backup_status_{version}.stdout").read_bytes()


@pytest.mark.parametrize("version", VERSIONS)
def test_each_status_line_gives_restics_numbers_and_no_file_name(version):
    lines = [line for line in captured(version).splitlines(keepends=True) if b'"status"' in line]
    statuses = [bm.backup_status(line) for line in lines]
    assert len(statuses) >= 5 and all(s is not None for s in statuses)
    for line, status in zip(lines, statuses, strict=True):
        raw = json.loads(line)
        assert set(status) == set(bm.STATUS_FIELDS)  # current_files left out, a missing (zero) field is 0
        assert {k: v for k, v in status.items() if v} == {k: raw[k] for k in bm.STATUS_FIELDS if raw.get(k)}
        assert "凭证" not in json.dumps(status, ensure_ascii=False)
    # restic's figures move: an in-flight status (some of the 160 MiB done, not all) and the last one all done
    assert any(0 < s["percent_done"] < 1 and s["total_bytes"] == 160 << 20 for s in statuses)
    assert statuses[-1]["percent_done"] == 1 and statuses[-1]["files_done"] == 40
    assert any(s["seconds_remaining"] > 0 for s in statuses)


def test_a_line_that_is_no_status_is_none():
    summary = captured("014").splitlines()[-1]
    assert bm.backup_status(summary) is None
    assert bm.backup_status(b'{"message_type":"status","percent_do') is None
    assert bm.backup_status(b"[1, 2]") is None
    assert bm.backup_status(b'{"message_type":"status","percent_done":true,"bytes_done":"7"}')["bytes_done"] == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_the_stream_keeps_what_the_summary_parser_reads(version):
    """Status lines go to on_status while the rest is kept: parse_backup_summary finds the same summary in the kept
    text as in the whole output, with and without a consumer of the statuses."""
    whole = captured(version)
    seen = []
    reader = bm.BackupOutput(seen.append)
    text = reader(io.BytesIO(whole))
    statuses = whole.count(b'{"message_type":"status"')
    assert reader.statuses == statuses == len(seen) and text == reader.text
    assert text == whole.splitlines(keepends=True)[-1].decode()  # only the summary is left
    stderr = (FIX / f"backup_status_{version}.stderr").read_text()
    assert parse_backup_summary(text + "\n" + stderr) == parse_backup_summary(whole.decode() + "\n" + stderr)

    quiet = bm.BackupOutput()
    assert quiet(io.BytesIO(whole)) == text and quiet.statuses == statuses


def test_the_stream_keeps_every_other_line_in_order_and_a_second_run_starts_afresh():
    out = (
        b'{"message_type":"status","percent_done":0.5,"total_bytes":10}\n'
        b"Warning: something restic says\n"
        b'{"message_type":"error","error":{"message":"open /x: permission denied"},"during":"archival","item":"/x"}\n'
        b'{"message_type":"summary","files_new":1,"snapshot_id":"0123abcd"}\n'
    )
    reader = bm.BackupOutput()
    reader(io.BytesIO(b"stale\n"))
    text = reader(io.BytesIO(out))
    assert text.splitlines() == [line.decode() for line in out.splitlines()[1:]]
    assert parse_backup_summary(text) == parse_backup_summary(out.decode())
    assert parse_backup_summary(text)["errors"] == ["open /x: permission denied (/x)"]


def test_backup_env_asks_one_status_per_interval_or_effectively_none():
    assert bm.backup_env(None) == {"RESTIC_PROGRESS_FPS": "0.000001"}
    assert bm.backup_env(5) == {"RESTIC_PROGRESS_FPS": "0.200000"}
    assert bm.backup_env(0.25) == {"RESTIC_PROGRESS_FPS": "4.000000"}
    assert bm.backup_env(10**9) == {"RESTIC_PROGRESS_FPS": "0.000001"}  # never 0, which restic reads as "not set"
    with pytest.raises(ValueError, match="progress_interval 0 is not above 0"):
        bm.backup_env(0)


def test_the_fps_reaches_the_backup_run_only(tmp_path):
    """Restic.stream and Restic.run add ``env`` to that run only: the engine's environment (every other restic
    command, whose parsed output progress counters would change) never holds RESTIC_PROGRESS_FPS."""
    log = tmp_path / "env.log"
    fake = tmp_path / "restic"
    fake.write_text(f'#!/bin/sh\necho "$1 ${{RESTIC_PROGRESS_FPS:-unset}}" >> "{log}"\necho "{{}}"\n')
    fake.chmod(0o755)
    engine = Restic(str(fake), str(tmp_path / "repo"), "/pw", base_env={"PATH": os.environ["PATH"]})
    res = bm.run_backup(engine, ["backup", "--json"], [str(tmp_path)], on_status=lambda s: None, interval=2)
    assert res.rc == 0 and res.stdout == "{}\n"
    bm.run_backup(engine, ["backup", "--json"], [str(tmp_path)])
    engine.run("snapshots", "--json")
    engine.run("backup", "--json", "--stdin", env=bm.backup_env(None))
    engine.run("check")
    assert log.read_text().splitlines() == [
        "backup 0.500000",
        "backup 0.000001",
        "snapshots unset",
        "backup 0.000001",
        "check unset",
    ]
    assert "RESTIC_PROGRESS_FPS" not in engine.env


# -- the progress file and the line a poll shows -------------------------------------------------------------------


def state_with(status: dict | None, name: str = "杭州示例贸易有限公司") -> dict:
    client = {"id": "c003", "name": name, **(status or {})}
    return {"done": 2, "total": 10, "current": "c003", "finished": [], "client": client}


@pytest.mark.parametrize(("version", "percent"), [("014", 43), ("018", 44)])
def test_the_line_of_an_in_flight_status(version, percent):
    status = next(
        bm.backup_status(line)
        for line in captured(version).splitlines()
        if b'"seconds_remaining":2' in line and b'"percent_done":0.4' in line
    )
    text, part = pf.client_progress(state_with(status))
    assert text == f"c003 (杭州示例贸易有限公司): {percent} % of 160.0 MiB, about 2 s left"
    assert part == pytest.approx(status["percent_done"])


def test_the_line_before_restics_first_status_at_the_end_and_without_an_estimate():
    assert pf.client_progress(state_with(None)) == ("c003 (杭州示例贸易有限公司)", 0.0)
    assert pf.client_progress(state_with(None, name="c003")) == ("c003", 0.0)
    done = {"percent_done": 1, "total_bytes": 5 << 30, "seconds_remaining": 0}
    assert pf.client_progress(state_with(done)) == ("c003 (杭州示例贸易有限公司): 100 % of 5.0 GiB", 1.0)
    long = state_with({"percent_done": 0.456, "total_bytes": 1288490188, "seconds_remaining": 7384}, "示例" * 10)
    cut = "c003 (示例示例示例示例示例示例示例示例…): 45 % of 1.2 GiB, about 2 h 04 min left"
    assert pf.client_progress(long) == (cut, 0.456)
    assert pf.client_progress({"done": 3, "total": 3, "current": "", "finished": []}) == ("", None)
    assert pf.client_progress({"done": 0, "total": 3, "current": "c001"}) == ("c001", None)  # a file without client
    stale = dict(state_with({"percent_done": 0.5, "total_bytes": 100}), current="c004")
    assert pf.client_progress(stale) == ("c004", None)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.2, "1 s"), (59, "59 s"), (60, "1 min"), (61, "2 min"), (3600, "1 h 00 min")]
)
def test_eta(seconds, text):
    assert human_eta(seconds) == text


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_progress_file_is_throttled_and_replaced_atomically(tmp_path):
    path = tmp_path / "状态" / "progress.json"
    path.parent.mkdir()
    clock, warnings = Clock(), []
    progress = ProgressFile(str(path), 3, 5.0, warnings.append, clock)
    entries: list[dict] = []
    progress.start(entries, {"id": "c001", "name": "杭州"})
    first = json.loads(path.read_text(encoding="utf-8"))
    assert first == {"done": 0, "total": 3, "current": "c001", "finished": [], "client": {"id": "c001", "name": "杭州"}}
    figures = {"percent_done": 0.5, "total_bytes": 100}
    clock.now += 4.4  # under 0.9 interval since the last write: not written
    progress.status(figures)
    assert json.loads(path.read_text(encoding="utf-8")) == first
    clock.now += 0.1
    progress.status(figures)
    assert json.loads(path.read_text(encoding="utf-8"))["client"] == {"id": "c001", "name": "杭州", **figures}
    entries.append({"id": "c001", "status": "ok", "summary": {"files_new": 3}})
    progress.start(entries, None)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "done": 1,
        "total": 3,
        "current": "",
        "finished": [{"id": "c001", "status": "ok"}],
    }
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(path.parent)) == ["progress.json", "progress.json.finished"]  # no temporary file left


def test_a_progress_file_that_cannot_be_written_while_restic_runs_is_one_warning(tmp_path):
    folder = tmp_path / "状态"
    folder.mkdir()
    clock, warnings = Clock(), []
    progress = ProgressFile(str(folder / "progress.json"), 1, 1.0, warnings.append, clock)
    progress.start([], {"id": "c001", "name": ""})
    os.rename(folder, tmp_path / "gone")  # the folder went away while restic runs
    for step in (0.1, 0.2, 0.3):
        clock.now += 2
        progress.status({"percent_done": step})
    assert len(warnings) == 1 and "could not be written while restic ran" in warnings[0]


OK_ENTRY = {"id": "c001", "name": "客户甲", "status": "ok", "short_id": "1a2b3c4d", "paths": ["/srv/账套/客户甲"],
            "summary": {"files_new": 3, "files_changed": 1, "data_added": 1434, "total_duration": 0.2},
            "manifest_snapshot_id": "5e6f7a8b" + "0" * 56}  # fmt: skip


def test_each_finished_client_is_taken_once_in_order_and_the_run_empties_the_file_first(tmp_path):
    """Issue 15: <progress file>.finished gets one record per finished client; a poll takes those written since
    the previous one (the file is emptied, under flock) and the poll after the job's end removes it."""
    path = str(tmp_path / "状态" / "progress.json")
    os.mkdir(os.path.dirname(path))
    with open(pf.finished_path(path), "w", encoding="utf-8") as handle:
        handle.write('{"id": "旧", "status": "ok"}\n')  # a line of an earlier run that nobody read
    progress = ProgressFile(path, 3, 5.0, [].append, Clock())
    assert pf.take_finished(path) == []  # emptied when the run started
    assert os.stat(pf.finished_path(path)).st_mode & 0o777 == 0o600
    progress.finished(OK_ENTRY, 0.449)
    progress.finished({"id": "c002", "name": "客户乙", "status": "failed", "msg": "/srv/账套/客户乙 gone",
                       "error_kind": "locked"}, 0.1)  # fmt: skip
    first = pf.take_finished(path)
    assert first == [
        {"id": "c001", "name": "客户甲", "status": "ok", "files_new": 3, "files_changed": 1, "data_added": 1434,
         "seconds": 0.4, "snapshot": "1a2b3c4d", "manifest": "5e6f7a8b"},
        {"id": "c002", "name": "客户乙", "status": "failed", "error_kind": "locked"},
    ]  # fmt: skip
    assert "账套" not in json.dumps(first, ensure_ascii=False)  # no path, no message: IDs, names and numbers only
    assert pf.take_finished(path) == []  # taken once
    progress.finished({"id": "c003", "name": "c003", "status": "not_run"}, 0.0)
    assert [r["id"] for r in pf.take_finished(path, remove=True)] == ["c003"]
    assert not os.path.exists(pf.finished_path(path)) and pf.take_finished(path) == []


def test_the_one_line_result_of_a_finished_client():
    record = pf.finished_record(OK_ENTRY, 0.449)
    assert pf.finished_line(record) == (
        "c001 (客户甲): 3 new, 1 changed, 1.4 KiB added in 0.4 s, snapshot 1a2b3c4d, manifest 5e6f7a8b"
    )
    assert pf.finished_line(pf.finished_record(dict(OK_ENTRY, manifest_snapshot_id=""), 2)) == (
        "c001 (客户甲): 3 new, 1 changed, 1.4 KiB added in 2.0 s, snapshot 1a2b3c4d"
    )
    failed = {"id": "c002", "name": "客户乙", "status": "failed", "msg": "x", "error_kind": "unreachable"}
    assert pf.finished_line(pf.finished_record(failed, 1)) == "c002 (客户乙): failed (unreachable)"
    assert pf.finished_line(pf.finished_record({"id": "c003", "status": "not_run"}, 0)) == "c003: not run"


def test_a_finished_file_that_cannot_be_written_is_one_warning(tmp_path):
    folder = tmp_path / "状态"
    folder.mkdir()
    warnings: list[str] = []
    progress = ProgressFile(str(folder / "progress.json"), 2, 1.0, warnings.append, Clock())
    os.rename(folder, tmp_path / "gone")
    progress.finished(OK_ENTRY, 1.0)
    progress.finished(OK_ENTRY, 1.0)
    assert len(warnings) == 1 and "finished clients could not be recorded" in warnings[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_snapshot_just_made_is_known_from_restic_018s_summary_without_a_listing(version):
    """Issue 15: restic 0.18's summary names the snapshot by its full ID and gives its time, so a backup with a
    manifest needs no listing for it (paths as restic stores them: absolute, cleaned, sorted, as given otherwise);
    restic 0.14's (8 digits, no time) and a run without --host leave it to the listing."""
    summary = parse_backup_summary(captured(version).decode("utf-8"))
    base = {"host": "books-hz01", "paths": ["/srv/账套/客户乙/", "//srv/账套/客户甲", "/srv/账套/客户乙"],
            "tags": ["客户甲", "ledgerguard-backup"]}  # fmt: skip
    made = bm.made_snapshot(summary, base)
    if version == "014":
        assert made is None
        return
    assert made.id == summary["snapshot_id"] and made.short_id == made.id[:8] and len(made.id) == 64
    assert made.raw_time == "2026-12-06T00:49:27.850673143Z" and made.time.isoformat().startswith("2026-12-06T00:49:27")
    assert (made.hostname, made.tags) == ("books-hz01", ["客户甲", "ledgerguard-backup"])
    assert made.paths == ["/srv/账套/客户乙", "/srv/账套/客户乙", "/srv/账套/客户甲"]
    assert bm.made_snapshot(summary, dict(base, host="")) is None  # restic chose the host name
    assert bm.made_snapshot(dict(summary, snapshot_id=made.short_id), base) is None
    assert bm.made_snapshot(dict(summary, backup_start="not a time"), base) is None
