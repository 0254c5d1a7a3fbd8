"""job_progress (issue 15): the progress of an async job from its progress file and its async results file, as the
backup role polls restic_backup's progress_file."""

from __future__ import annotations

import importlib
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args


def run(args: dict, capsys) -> dict:
    module = importlib.import_module("ansible_collections.ledgerguard.recovery.plugins.modules.job_progress")
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def job(tmp_path):
    folder = tmp_path / "状态"
    folder.mkdir()
    return {
        "results_file": str(folder / "j123.456"),
        "progress_file": str(folder / "backup-progress.json"),
        "unit": "clients",
        "label": "backup",
    }


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def test_before_the_job_wrote_anything_nothing_is_done_and_it_runs(job, capsys):
    result = run(job, capsys)
    assert result["changed"] is False and result["finished"] is False
    assert result["ledgerguard_progress"] == {"done": 0, "total": None, "unit": "clients", "label": "backup"}
    assert result["progress"] == {}


def test_a_running_job_shows_the_client_it_backs_up(job, capsys):
    write(job["results_file"], json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j123.456"}))
    state = {"done": 1, "total": 3, "current": "c002", "finished": [{"id": "c001", "status": "ok"}]}
    write(job["progress_file"], json.dumps(state))
    result = run(job, capsys)
    assert result["finished"] is False and result["progress"] == state
    assert result["ledgerguard_progress"] == {"done": 1, "total": 3, "unit": "clients", "label": "backup c002"}


def test_half_written_files_count_as_no_news(job, capsys):
    write(job["results_file"], '{"started": 1, "fin')
    write(job["progress_file"], '{"done": 2, "tot')
    result = run(job, capsys)
    assert result["finished"] is False and result["ledgerguard_progress"]["done"] == 0


def test_a_finished_job_shows_its_last_client(job, capsys):
    write(job["results_file"], json.dumps({"changed": True, "clients": []}))  # the module's result replaced "started"
    finished = [{"id": "c001", "status": "ok"}, {"id": "杭州02", "status": "failed"}]
    write(job["progress_file"], json.dumps({"done": 2, "total": 2, "current": "", "finished": finished}))
    result = run(dict(job, label=""), capsys)
    assert result["finished"] is True
    assert result["ledgerguard_progress"] == {"done": 2, "total": 2, "unit": "clients", "label": "杭州02"}


def test_a_job_that_failed_before_its_progress_is_finished(job, capsys):
    write(job["results_file"], json.dumps({"failed": 1, "finished": 1, "msg": "Job reached maximum time limit"}))
    result = run(job, capsys)
    assert result["finished"] is True and result["ledgerguard_progress"]["done"] == 0


def test_the_client_being_backed_up_with_restics_figures(job, capsys):
    """Issue 15: while restic backs up a client, the label names it (name cut at 16 characters) with restic's
    percentage, the size and restic's estimate, and ``part`` is restic's share done."""
    write(job["results_file"], json.dumps({"started": 1, "finished": 0}))
    client = {"id": "c003", "name": "示例客户03有限公司（杭州西湖分公司）", "percent_done": 0.4537,
              "bytes_done": 584600000, "total_bytes": 1288490188, "files_done": 1210, "total_files": 4900,
              "seconds_elapsed": 150, "seconds_remaining": 170, "error_count": 0}  # fmt: skip
    state = {"done": 2, "total": 10, "current": "c003", "finished": [], "client": client}
    write(job["progress_file"], json.dumps(state, ensure_ascii=False))
    result = run(job, capsys)
    assert result["progress"] == state
    assert result["ledgerguard_progress"] == {
        "done": 2,
        "total": 10,
        "unit": "clients",
        "label": "backup c003 (示例客户03有限公司（杭州西湖分…): 45 % of 1.2 GiB, about 3 min left",
        "part": 0.4537,
    }

    # before restic's first status of the client: its ID and name, nothing of it done yet
    write(job["progress_file"], json.dumps(dict(state, client={"id": "c003", "name": "宁波"}), ensure_ascii=False))
    result = run(job, capsys)
    shown = result["ledgerguard_progress"]
    assert shown["label"] == "backup c003 (宁波)" and shown["part"] == 0.0


def test_the_clients_finished_since_the_previous_poll_each_once_then_the_file_is_removed(job, capsys):
    """Issue 15: the records restic_backup appended to <progress file>.finished since the previous poll become
    ``lines`` (in order, each once); no line, no ``lines``; the poll that sees the job ended removes the file."""
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import progress_file as pf

    write(job["results_file"], json.dumps({"started": 1, "finished": 0}))
    write(job["progress_file"], json.dumps({"done": 2, "total": 3, "current": "c003"}))
    pf.start_finished(job["progress_file"])
    for cid, name, snap in (("c001", "客户甲", "1a2b3c4d"), ("c002", "客户乙", "5e6f7a8b")):
        pf.append_finished(job["progress_file"], {"id": cid, "name": name, "status": "ok", "files_new": 2,
                                                  "files_changed": 0, "data_added": 2048, "seconds": 0.3,
                                                  "snapshot": snap, "manifest": ""})  # fmt: skip
    first = run(job, capsys)["ledgerguard_progress"]
    assert first["lines"] == [
        "c001 (客户甲): 2 new, 0 changed, 2.0 KiB added in 0.3 s, snapshot 1a2b3c4d",
        "c002 (客户乙): 2 new, 0 changed, 2.0 KiB added in 0.3 s, snapshot 5e6f7a8b",
    ]
    assert "lines" not in run(job, capsys)["ledgerguard_progress"]  # already shown
    pf.append_finished(job["progress_file"], {"id": "c003", "name": "", "status": "failed", "error_kind": "failed"})
    write(job["results_file"], json.dumps({"changed": True, "clients": []}))
    last = run(job, capsys)
    assert last["finished"] is True and last["ledgerguard_progress"]["lines"] == ["c003: failed (failed)"]
    assert not os.path.exists(pf.finished_path(job["progress_file"]))


def test_a_poll_that_waits_returns_when_the_job_ends(job, capsys):
    """With wait, the poll sees the job's end as it comes (read every 0.05 s), not after the whole wait."""
    import threading
    import time

    write(job["results_file"], json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j123.456"}))
    write(job["progress_file"], json.dumps({"done": 0, "total": 1, "current": "c001"}))

    def end() -> None:
        write(job["progress_file"], json.dumps({"done": 1, "total": 1, "current": ""}))
        write(job["results_file"], json.dumps({"changed": True, "clients": [], "finished": 1}))

    timer = threading.Timer(0.6, end)
    timer.start()
    begun = time.monotonic()
    try:
        result = run({**job, "wait": 60}, capsys)
    finally:
        timer.join()
    assert result["finished"] is True and result["ledgerguard_progress"]["done"] == 1
    assert 0.6 <= time.monotonic() - begun < 60


def test_a_poll_that_waits_for_a_running_job_reports_its_progress_after_the_wait(job, capsys):
    import time

    write(job["results_file"], json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j123.456"}))
    write(job["progress_file"], json.dumps({"done": 1, "total": 3, "current": "c002"}))
    begun = time.monotonic()
    result = run({**job, "wait": 0.5}, capsys)
    assert time.monotonic() - begun >= 0.5
    assert result["finished"] is False
    assert result["ledgerguard_progress"] == {"done": 1, "total": 3, "unit": "clients", "label": "backup c002"}


def test_the_poll_that_sees_the_end_removes_both_files(job, capsys):
    write(job["results_file"], json.dumps({"changed": True, "clients": [], "finished": 1}))
    write(job["progress_file"], json.dumps({"done": 1, "total": 1, "current": ""}))
    write(job["progress_file"] + ".finished", json.dumps({"id": "c001", "status": "ok"}) + "\n")
    result = run(job, capsys)
    assert result["finished"] is True and result["progress"] == {"done": 1, "total": 1, "current": ""}
    assert not os.path.exists(job["progress_file"]) and not os.path.exists(job["progress_file"] + ".finished")
    # the results file is async_status's to collect and clean up
    assert os.path.exists(job["results_file"])


def test_collect_returns_the_ended_jobs_result_and_removes_its_results_file(job, capsys):
    final = {"changed": True, "clients": [{"id": "c001", "name": "杭州示例贸易有限公司", "status": "ok"}]}
    write(job["results_file"], json.dumps(final, ensure_ascii=False))
    write(job["progress_file"], json.dumps({"done": 1, "total": 1, "current": ""}))
    result = run({**job, "collect": True}, capsys)
    assert result["finished"] is True and result["result"] == final
    assert result["changed"] is False and "failed" not in result
    assert not os.path.exists(job["results_file"]) and not os.path.exists(job["progress_file"])


def test_collect_returns_a_failed_job_without_failing_the_poll(job, capsys):
    final = {"failed": 1, "msg": "restic_backup: repository s3:http://127.0.0.1:9/lg is locked", "finished": 1}
    write(job["results_file"], json.dumps(final))
    result = run({**job, "collect": True}, capsys)
    assert result["finished"] is True and result["result"] == final and "failed" not in result
    assert not os.path.exists(job["results_file"])


def test_collect_leaves_a_running_job_alone(job, capsys):
    running = {"started": 1, "finished": 0, "ansible_job_id": "j123.456"}
    write(job["results_file"], json.dumps(running))
    write(job["progress_file"], json.dumps({"done": 0, "total": 2, "current": "c001"}))
    result = run({**job, "collect": True}, capsys)
    assert result["finished"] is False and "result" not in result
    assert json.loads(open(job["results_file"], encoding="utf-8").read()) == running
    assert os.path.exists(job["progress_file"])


# ----------------------------------------------------------------------------------------------------------------------
# target: a job that writes files into a folder (the drill's restore into its sandbox)
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def restore(tmp_path):
    target = tmp_path / "沙箱" / "c001"
    return {
        "results_file": str(tmp_path / "j77.1"),
        "target": str(target),
        "total": 2048,
        "unit": "bytes",
        "label": "restore c001",
    }


def test_target_counts_the_bytes_restored_so_far_until_the_job_ends(restore, tmp_path, capsys):
    result = run(restore, capsys)  # neither the folder nor the results file yet
    assert result["finished"] is False
    assert result["ledgerguard_progress"] == {"done": 0, "total": 2048, "unit": "bytes", "label": "restore c001"}
    books = tmp_path / "沙箱" / "c001" / "srv" / "账套"
    books.mkdir(parents=True)
    (books / "凭证.csv").write_bytes(b"x" * 1000)
    (books / "报表.pdf").write_bytes(b"y" * 24)
    (books / "link").symlink_to("凭证.csv")  # a link is neither followed nor counted
    (books / "outside").symlink_to(tmp_path)  # nor is a linked folder walked
    (tmp_path / "big").write_bytes(b"z" * 4096)
    write(restore["results_file"], json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j77.1"}))
    result = run(restore, capsys)
    assert result["finished"] is False and result["progress"] == {}
    assert result["ledgerguard_progress"] == {"done": 1024, "total": 2048, "unit": "bytes", "label": "restore c001"}
    write(restore["results_file"], json.dumps({"changed": True, "files": 2, "bytes": 1024}))  # the job ended
    result = run(restore, capsys)
    assert result["finished"] is True and "result" not in result
    assert result["ledgerguard_progress"]["done"] == 2048  # the total, once the job ended
    assert os.path.exists(restore["results_file"])  # without collect the results file is async_status's


def test_target_collects_a_failed_restore_and_removes_its_results_file(restore, capsys):
    restore.update(total=0, collect=True)
    write(restore["results_file"], json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j77.1"}))
    result = run(restore, capsys)
    assert result["finished"] is False and "result" not in result and os.path.exists(restore["results_file"])
    failed = {"failed": True, "msg": "Snapshot 1a2b3c4d cannot be restored", "finished": 1}
    write(restore["results_file"], json.dumps(failed))
    result = run(restore, capsys)
    assert result["changed"] is False and "failed" not in result
    assert result["finished"] is True and result["result"] == failed
    assert result["ledgerguard_progress"] == {"done": 0, "total": None, "unit": "bytes", "label": "restore c001"}
    assert not os.path.exists(restore["results_file"])


def test_target_and_progress_file_exclude_each_other(restore, job, capsys):
    result = run({**restore, "progress_file": job["progress_file"]}, capsys)
    assert result["failed"] is True
    assert result["msg"] == "parameters are mutually exclusive: progress_file|target"
    result = run({"results_file": restore["results_file"]}, capsys)
    assert result["failed"] is True
    assert result["msg"] == "one of the following is required: progress_file, target"
