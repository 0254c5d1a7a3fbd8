"""ledger_verify never blocks on a FIFO named *.csv nor follows a *.csv symbolic link (to /etc/passwd): both are
reported as findings, the regular sources are still checked."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import ledger_verify
from ledgerguard import sampledata
from conftest import module_result


def run(args: dict, capsys) -> dict:
    def hung(_sig, _frame):
        raise AssertionError("ledger_verify hung (a FIFO was opened)")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        return module_result(ledger_verify.main, args, capsys)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("how", ["walked", "named"])
def test_fifo_and_passwd_link_named_csv_are_findings(tmp_path, capsys, how):
    tree = sampledata.make_client_tree(tmp_path, "c001", periods=["2024-03"], vouchers_per_period=5)
    client = dict(tree["client"])
    folder = tmp_path / "c001" / "凭证"
    os.mkfifo(folder / "2024-04.csv")
    os.symlink("/etc/passwd", folder / "passwd.csv")
    if how == "named":
        client["csv"] = ["凭证/2024-03.csv", "凭证/2024-04.csv", "凭证/passwd.csv"]
    out = run({"clients": [client], "fail_on_findings": False}, capsys)
    c1 = out["clients"]["c001"]
    found = {f["source"]: f for f in c1["findings"]}
    assert set(found) == {"凭证/2024-04.csv", "凭证/passwd.csv"}, c1["findings"]
    assert all(f["kind"] == "unreadable" for f in found.values())
    assert "fifo" in found["凭证/2024-04.csv"]["detail"].lower(), found
    assert "link" in found["凭证/passwd.csv"]["detail"].lower(), found
    assert "root:" not in json.dumps(out)
    assert "凭证/2024-03.csv" in [s["source"] for s in c1["sources"]]
