"""The hash-chained timeline: appending, verifying, naming the first altered line."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeline


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "timeline.jsonl"
    for n in range(1, 6):
        timeline.append(str(path), {"event": "task", "task": f"step {n}", "host": "books01", "status": "ok"})
    return path


def test_append_chains_each_line_to_the_previous(chain):
    lines = chain.read_text().splitlines()
    assert len(lines) == 5
    first = json.loads(lines[0])
    assert first["prev_sha256"] == "0" * 64 and first["seq"] == 1
    for before, line in zip(lines, lines[1:], strict=False):
        assert json.loads(line)["prev_sha256"] == timeline.sha256_text(before)
    assert oct(chain.stat().st_mode & 0o777) == "0o600"


def test_verify_ok(chain):
    result = timeline.verify_chain(str(chain))
    assert result == {
        "ok": True,
        "lines": 5,
        "first_bad_line": None,
        "reason": "",
        "last_sha256": timeline.sha256_text(chain.read_text().splitlines()[-1]),
    }


def rewrite(chain, index, change, reseal=False):
    lines = chain.read_text().splitlines()
    record = json.loads(lines[index])
    change(record)
    if reseal:
        lines[index] = timeline.seal(record, record["prev_sha256"])
    else:
        lines[index] = timeline.canonical(record)
    chain.write_text("\n".join(lines) + "\n")


def test_edited_line_is_named(chain):
    rewrite(chain, 2, lambda r: r.update(status="failed"))
    result = timeline.verify_chain(str(chain))
    assert result["ok"] is False
    assert result["first_bad_line"] == 3
    assert result["reason"] == "line 3: its content does not match its own sha256"


def test_edited_and_resealed_line_is_named_by_its_successor(chain):
    rewrite(chain, 1, lambda r: r.update(task="something else"), reseal=True)
    result = timeline.verify_chain(str(chain))
    assert result["first_bad_line"] == 2
    assert result["reason"].startswith("line 3: prev_sha256 does not match the sha256 of line 2")


def test_deleted_line_is_found(chain):
    lines = chain.read_text().splitlines()
    del lines[3]
    chain.write_text("\n".join(lines) + "\n")
    assert timeline.verify_chain(str(chain))["first_bad_line"] == 3


def test_not_json_is_named(chain):
    lines = chain.read_text().splitlines()
    lines[0] = "garbage"
    chain.write_text("\n".join(lines) + "\n")
    result = timeline.verify_chain(str(chain))
    assert result["first_bad_line"] == 1 and "not valid JSON" in result["reason"]


def test_anchor_catches_a_rewritten_last_line(chain):
    anchor = timeline.verify_chain(str(chain))["last_sha256"]
    rewrite(chain, 4, lambda r: r.update(status="failed"), reseal=True)
    assert timeline.verify_chain(str(chain))["ok"] is True  # self-consistent...
    result = timeline.verify_chain(str(chain), anchor=anchor)  # ...but not what the report recorded
    assert result["ok"] is False and result["first_bad_line"] == 5


def test_append_continues_an_existing_chain(chain):
    timeline.append(str(chain), {"event": "run_start"})
    lines = chain.read_text().splitlines()
    assert json.loads(lines[-1])["seq"] == 6
    assert timeline.verify_chain(str(chain))["ok"]


def test_chinese_text_kept_readable(tmp_path):
    path = tmp_path / "t.jsonl"
    timeline.append(str(path), {"task": "恢复客户 杭州示例贸易有限公司"})
    assert "杭州示例贸易有限公司" in path.read_text(encoding="utf-8")
    assert timeline.verify_chain(str(path))["ok"]
