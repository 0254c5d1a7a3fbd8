"""ledger_verify run in-process over sample clients: findings per client, baseline, read-only, error texts."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import ledger_verify
from ledgerguard import sampledata
from conftest import module_result


def run(args: dict, capsys) -> dict:
    return module_result(ledger_verify.main, args, capsys)


def test_healthy_and_damaged_clients(tmp_path, capsys):
    good = sampledata.make_client_tree(tmp_path, "c001", periods=["2024-03"], vouchers_per_period=10)
    bad = sampledata.make_client_tree(
        tmp_path,
        "c002",
        "宁波示例餐饮有限公司",
        periods=["2024-03"],
        vouchers_per_period=10,
        unbalanced=[("2024-03", 4)],
        missing=[("2024-03", 7)],
    )
    out = run({"clients": [good["client"], bad["client"]], "fail_on_findings": False}, capsys)
    assert out["changed"] is False and out["ok"] is False and out["findings_count"] == 4
    assert out["clients"]["c001"]["ok"] is True
    assert out["clients"]["c001"]["summary"] == (
        f"c001 杭州示例贸易有限公司: ok (2 sources, {good['baseline']['凭证/2024-03.csv'] * 2} rows, 20 vouchers)"
    )
    c2 = out["clients"]["c002"]
    assert c2["summary"] == "c002 宁波示例餐饮有限公司: 4 findings (2 gap, 2 unbalanced)"
    assert [(f["kind"], f["source"]) for f in c2["findings"]] == [
        ("unbalanced", "凭证/2024-03.csv"),
        ("gap", "凭证/2024-03.csv"),
        ("unbalanced", "账簿/ledger.sqlite"),
        ("gap", "账簿/ledger.sqlite"),
    ]
    assert out["counts"]["c001"] == good["baseline"]


def test_fail_on_findings_and_baseline_file(tmp_path, capsys):
    tree = sampledata.make_client_tree(tmp_path, "c001", periods=["2024-01", "2024-02"], vouchers_per_period=5)
    baseline = {"c001": dict(tree["baseline"], **{"凭证/2024-02.csv": tree["baseline"]["凭证/2024-02.csv"] + 3})}
    baseline["c001"]["凭证/2024-04.csv"] = 9
    (tmp_path / "baseline.json").write_text(json.dumps(baseline, ensure_ascii=False), encoding="utf-8")
    out = run({"clients": [tree["client"]], "baseline_file": str(tmp_path / "baseline.json")}, capsys)
    assert out["failed"] is True and out["changed"] is False
    assert out["msg"] == (
        "Ledger checks found 2 problem(s): c001 杭州示例贸易有限公司: 2 findings (1 missing_source, 1 row_count). "
        "See 'clients' for each finding."
    )
    details = [f["detail"] for f in out["clients"]["c001"]["findings"]]
    rows = tree["baseline"]["凭证/2024-02.csv"]
    assert details == [
        f"凭证/2024-02.csv has {rows} rows, 3 fewer than the baseline's {rows + 3}",
        "凭证/2024-04.csv is in the baseline (9 rows) but was not found",
    ]


def test_unreadable_and_missing_sources(tmp_path, capsys):
    (tmp_path / "broken.sqlite").write_bytes(b"garbage" * 200)
    client = {"id": "c9", "root": str(tmp_path), "csv": ["nothing/*.csv"], "sqlite": ["broken.sqlite"]}
    out = run({"clients": [client], "fail_on_findings": False}, capsys)
    findings = out["clients"]["c9"]["findings"]
    assert findings[0] == {
        "kind": "missing_source",
        "source": "nothing/*.csv",
        "detail": "csv source 'nothing/*.csv' matched no file",
    }
    assert findings[1]["kind"] == "integrity"
    assert findings[2] == {
        "kind": "unreadable",
        "source": "broken.sqlite",
        "detail": "broken.sqlite: not a readable SQLite database: file is not a database",
    }


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ({"clients": [{"name": "x"}]}, "clients[0] has no 'id': every client needs an id, e.g. {id: c001, csv: [..]}."),
        ({"clients": [{"id": "a"}, {"id": "a"}]}, "clients[1]: id 'a' is used twice; client ids must be unique."),
        (
            {"clients": [{"id": "a"}], "csv_columns": {"amount": "x"}},
            "csv_columns has unknown keys ['amount']; allowed: ['period', 'voucher_word', 'voucher_no', 'date', "
            "'memo', 'account', 'debit', 'credit'].",
        ),
    ],
)
def test_bad_input_messages(args, msg, capsys):
    out = run(args, capsys)
    assert out["failed"] is True and out["msg"] == msg
