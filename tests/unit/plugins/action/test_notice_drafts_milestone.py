"""One customer-notice milestone in one controller task (plugins/action/notice_drafts.py with ``milestone``): the
clients read from every host of the play, the restoring ETAs from the one restore queue and the drill histories found
under the evidence root (at most four levels down), and a problem turned into a warning, never a failure."""

from __future__ import annotations

import json
from types import SimpleNamespace

from ansible_collections.ledgerguard.recovery.plugins.action import notice_drafts as nd
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import notices as n

CLIENTS = {
    "books-a": [{"id": "c001", "name": "杭州示例贸易有限公司", "priority": 1}],
    "books-b": [{"id": "c002", "name": "宁波海风餐饮管理有限公司", "priority": 50}],
}


def action(check: bool = False):
    stub = object.__new__(nd.ActionModule)  # act() needs the task's check mode and the role's templates (stubbed)
    stub._task = SimpleNamespace(check_mode=check)
    stub.rendered = []

    def render(name, variables):
        stub.rendered.append((name, variables["__client"]["id"], variables["__report"]["incident"]["incident_id"]))
        return f"{name} {variables['__client']['id']} eta={variables['__client'].get('eta_basis', '-')}\n"

    stub.render = render
    return stub


def task_vars() -> dict:
    hostvars = {h: {"incident_result": {"clients": c}, "ledgerguard_clients": c} for h, c in CLIENTS.items()}
    return {"hostvars": hostvars, "ansible_play_hosts": list(CLIENTS), "ansible_play_hosts_all": list(CLIENTS)}


def args(tmp_path, milestone: str) -> dict:
    record = {
        "incident_id": "INC-20261206-001",
        "evidence_dir": str(tmp_path / "证据"),
        "detected_at": "2026-12-06T01:00:00Z",
    }
    base = dict.fromkeys(("clients", "drills_root", "configured", "evidence_dir", "incident_id"))
    return {**base, "milestone": milestone, "record": record, "calendar": "", "languages": ["zh-CN"], "milestones": []}


def test_confirmed_drafts_every_selected_client_of_every_host(tmp_path):
    stub = action()
    out = stub.act(args(tmp_path, "confirmed"), task_vars())
    assert out["changed"] is True and "warnings" not in out and "queue_lines" not in out
    assert sorted(out["written"]) == ["notices/c001.zh-CN.md", "notices/c002.zh-CN.md"]
    assert stub.rendered == [
        ("notice.zh-CN.md.j2", "c001", "INC-20261206-001"),
        ("notice.zh-CN.md.j2", "c002", "INC-20261206-001"),
    ]
    index = json.loads((tmp_path / "证据" / "notices" / "index.json").read_text(encoding="utf-8"))
    assert [(e["id"], e["host"], e["status"]) for e in index["notices"]] == [
        ("c001.confirmed.zh-CN", "books-a", "draft"),
        ("c002.confirmed.zh-CN", "books-b", "draft"),
    ]
    assert stub.act(args(tmp_path, "confirmed"), task_vars())["changed"] is False  # unchanged: kept


def test_restoring_takes_the_etas_from_the_queue_and_returns_its_lines(tmp_path):
    stub = action()
    out = stub.act(args(tmp_path, "restoring") | {"drills_root": str(tmp_path / "none")}, task_vars())
    assert out["queue_lines"][0].startswith("Restore queue of the incident (all hosts;")
    assert [line.split(" (", 1)[0] for line in out["queue_lines"] if line[0].isdigit()] == ["1. c001", "2. c002"]
    text = (tmp_path / "证据" / "notices" / "c001.restoring.zh-CN.md").read_text(encoding="utf-8")
    assert text == "notice_restoring.zh-CN.md.j2 c001 eta=no drill measurement\n"


def test_a_problem_is_a_warning_and_nothing_is_written(tmp_path):
    stub = action()
    vars_ = task_vars()
    vars_["hostvars"]["books-b"]["ledgerguard_clients"] = [
        {"id": "c002", "contacts": [{"name": "王"}]}
    ]  # no mail/phone
    out = stub.act(args(tmp_path, "confirmed"), vars_)
    assert "failed" not in out and out["changed"] is False
    assert out["warnings"] == [out["msg"].removeprefix("WARNING: ")]
    assert out["msg"].startswith("WARNING: customer notice drafts (confirmed) not written (writing the drafts): ")
    assert out["msg"].endswith("the incident goes on, and the report at its end writes every draft again.")
    assert not (tmp_path / "证据" / "notices").exists()


def test_check_mode_writes_nothing(tmp_path):
    out = action(check=True).act(args(tmp_path, "confirmed"), task_vars())
    assert out["changed"] is True and not (tmp_path / "证据").exists()
    # after the real run, check mode of the same milestone would change nothing, and says so
    action().act(args(tmp_path, "confirmed"), task_vars())
    again = action(check=True).act(args(tmp_path, "confirmed"), task_vars())
    assert again["changed"] is False and again["kept"] == [] and sorted(again["written"]) == sorted(out["written"])


def test_an_unreadable_index_stops_the_drafts_and_keeps_a_sent_notice(tmp_path):
    """The index records which notices were approved or sent: cut short, it must not be taken for "no notices yet"
    (every notice planned again as a draft, the sent one's text and status overwritten)."""
    action().act(args(tmp_path, "confirmed"), task_vars())
    notices = tmp_path / "证据" / "notices"
    index = json.loads((notices / "index.json").read_text(encoding="utf-8"))
    index["notices"][0]["status"] = "sent"
    sent_text = "尊敬的客户：您的账套已恢复。（已发送）\n"
    (notices / "c001.zh-CN.md").write_text(sent_text, encoding="utf-8")
    broken = json.dumps(index, ensure_ascii=False)[:-40]
    (notices / "index.json").write_text(broken, encoding="utf-8")
    out = action().act(args(tmp_path, "restoring"), task_vars())
    assert "failed" not in out and out["changed"] is False
    assert f"{notices / 'index.json'} is not valid JSON" in out["msg"]
    assert out["msg"].endswith(
        "restore it from the evidence pack. Nothing was written; the incident goes on, and no draft is written until "
        "the index is restored."
    )
    assert (notices / "c001.zh-CN.md").read_text(encoding="utf-8") == sent_text
    assert (notices / "index.json").read_text(encoding="utf-8") == broken
    assert sorted(p.name for p in notices.iterdir()) == ["c001.zh-CN.md", "c002.zh-CN.md", "index.json"]


def test_drill_histories_at_most_four_levels_down(tmp_path):
    for rel in (
        "history.jsonl",
        "a/b/c/history.jsonl",
        "a/b/c/d/history.jsonl",
        "x/history.jsonl.bak",
        "y/history.jsonl",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("", encoding="utf-8")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "history.jsonl").symlink_to(tmp_path / "history.jsonl")
    assert nd.drill_history_files(str(tmp_path)) == [
        str(tmp_path / "a/b/c/history.jsonl"),
        str(tmp_path / "history.jsonl"),
        str(tmp_path / "y/history.jsonl"),
    ]
    assert nd.drill_history_files(str(tmp_path / "missing")) == [] and nd.drill_history_files("") == []


def test_pending_clients_and_etas():
    pending = n.pending_clients(CLIENTS)
    assert [(c["id"], c["host"], c["status"]) for c in pending] == [
        ("c001", "books-a", "pending"),
        ("c002", "books-b", "pending"),
    ]
    queue = [
        {
            "host": "books-a",
            "id": "c001",
            "eta": "2026-12-07T01:00:00Z",
            "eta_basis": "drill",
            "next_deadline": {"utc_offset": "+09:00"},
        },
        {"host": "books-b", "id": "c002", "eta": "", "eta_basis": "no drill measurement", "next_deadline": None},
    ]
    etas = n.with_etas(pending, queue)
    assert [(c["eta"], c["eta_utc_offset"]) for c in etas] == [("2026-12-07T01:00:00Z", "+09:00"), ("", "+08:00")]
    try:
        n.with_etas(pending, queue[:1])
    except n.NoticeError as exc:
        assert str(exc) == "client c002 on books-b is not in the restore queue"
    else:
        raise AssertionError("a client missing from the queue was not refused")
