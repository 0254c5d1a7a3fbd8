"""ledger_verify through a real playbook run: unbalanced voucher and gap found per client, read-only."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import failed_messages, task_result

from ledgerguard import sampledata

PLAYBOOKS = Path(__file__).parent / "playbooks"


def digests(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_finds_unbalanced_voucher_and_gap(tmp_path, localhost_inventory, playbook):
    data = tmp_path / "restore"
    good = sampledata.make_client_tree(data, "c001", periods=["2024-02", "2024-03"], vouchers_per_period=12)
    bad = sampledata.make_client_tree(
        data,
        "c002",
        "宁波示例餐饮有限公司",
        periods=["2024-03"],
        vouchers_per_period=12,
        seed=5,
        unbalanced=[("2024-03", 9)],
        missing=[("2024-03", 4), ("2024-03", 5)],
    )
    before = digests(data)
    runner = playbook(
        str(PLAYBOOKS / "ledger_verify.yml"),
        inventory=localhost_inventory(),
        extravars={
            "lv_clients": [good["client"], bad["client"]],
            "lv_baseline": {"c001": good["baseline"], "c002": bad["baseline"]},
        },
    )
    assert runner.status == "failed"
    assert failed_messages(runner) == [
        "Ledger checks found 4 problem(s): c002 宁波示例餐饮有限公司: 4 findings (2 gap, 2 unbalanced). "
        "See 'clients' for each finding."
    ]
    res = task_result(runner, "Verify vouchers and ledgers")
    assert res["changed"] is False
    assert res["clients"]["c001"]["ok"] is True
    findings = res["clients"]["c002"]["findings"]
    csv_unbalanced = findings[0]
    assert csv_unbalanced["kind"] == "unbalanced" and csv_unbalanced["source"] == "凭证/2024-03.csv"
    assert csv_unbalanced["voucher"] == "记-9" and csv_unbalanced["difference"] == "0.01"
    assert findings[1]["detail"] == "2024-03 记: missing voucher numbers 4-5 (found 10 vouchers numbered up to 12)"
    assert [f["source"] for f in findings[2:]] == ["账簿/ledger.sqlite", "账簿/ledger.sqlite"]
    assert res["counts"] == {"c001": good["baseline"], "c002": bad["baseline"]}
    assert digests(data) == before  # read-only


def test_healthy_clients_pass_in_check_mode(tmp_path, localhost_inventory, playbook):
    good = sampledata.make_client_tree(tmp_path, "c001", periods=["2024-03"], vouchers_per_period=8)
    runner = playbook(
        str(PLAYBOOKS / "ledger_verify.yml"),
        inventory=localhost_inventory(),
        extravars={"lv_clients": [good["client"]], "lv_baseline": {"c001": good["baseline"]}},
        check=True,
    )
    assert runner.status == "successful", failed_messages(runner)
    res = task_result(runner, "Verify vouchers and ledgers")
    assert res["ok"] is True and res["changed"] is False
    assert res["summary"] == [
        f"c001 杭州示例贸易有限公司: ok (2 sources, {sum(good['baseline'].values())} rows, 16 vouchers)"
    ]
