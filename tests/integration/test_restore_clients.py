"""restore_clients on its own (one playbook, no incident around it): three clients under a Chinese folder name,
one nightly snapshot. c001 and c002 restore with ONE restic restore into a shared staging folder, c003 (its own work
folder) alone; all come back byte-identical, the markers are written, the steps are listed per client; the dry run
plans and changes nothing; a re-run keeps the finished results (resumed) and restores nothing again.
One playbook file, three runs (check, real, re-run): about 1 minute on 2 CPUs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from ledgerguard import sampledata

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="restore_swap and work_dir run as root")

PLAY = """
- name: Restore the clients of one host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Restore every client
      ledgerguard.recovery.restore_clients:
        clients: "{{ clients }}"
        cutoff: "{{ cutoff }}"
        snapshot_host: pytest-host
        work_name: .ledgerguard-INC-20261126-777
        marker_dir: "{{ marker_dir }}"
      register: restored

    - name: Show the result
      ansible.builtin.debug:
        var: restored
"""


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def result_of(runner) -> dict:
    for ev in runner.events:
        data = ev.get("event_data", {})
        if ev.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task") == "Restore every client":
            return data["res"]
    raise AssertionError("no result of restore_clients")


def test_restore_clients_batches_restores_and_resumes(
    tmp_path, local_repo, restic_cmd, restic_password_file, localhost_inventory, playbook
):
    books, other = tmp_path / "客户账套", tmp_path / "另一个盘"
    clients = []
    for root, cid, name in ((books, "c001", "杭州示例贸易有限公司"), (books, "c002", "宁波样例会计服务部"),
                            (other, "c003", "温州测试制造厂")):  # fmt: skip
        info = sampledata.make_client_tree(root, cid, name, periods=("2026-09",), vouchers_per_period=4, pdfs=1)
        client = info["client"]
        client.update(priority=10, declared_paths=client["paths"], restore_paths=client["paths"])
        clients.append(client)
    when = (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")  # noqa: DTZ005 - restic's local
    restic_cmd(local_repo, restic_password_file, "backup", "--host", "pytest-host", "--time", when, str(books),
               str(other))  # fmt: skip
    clean = {c["id"]: tree(Path(c["root"])) for c in clients}
    for c in clients:
        shutil.rmtree(Path(c["root"]) / "凭证")  # the loss
    damaged = {c["id"]: tree(Path(c["root"])) for c in clients}
    play = tmp_path / "restore_clients.yml"
    play.write_text(PLAY, encoding="utf-8")
    marker_dir = tmp_path / "state" / "restore"
    extravars = {
        "clients": clients,
        "cutoff": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "marker_dir": str(marker_dir),
        "ledgerguard_repository": local_repo,
        "ledgerguard_password_file": str(restic_password_file),
    }

    def run(check: bool = False):
        runner = playbook(str(play), inventory=localhost_inventory(), extravars=extravars, check=check)
        assert runner.rc == 0, [ev["event_data"].get("res", {}).get("msg") for ev in runner.events][-5:]
        return result_of(runner)

    # The dry run: the plan names each restore point; nothing is created.
    plan = run(check=True)
    planned = [(e["id"], e["status"]) for e in plan["clients"]]
    assert planned == [("c001", "planned"), ("c002", "planned"), ("c003", "planned")]
    assert plan["clients"][0]["action"].startswith("restore ") and plan["clients"][0]["why"].startswith("newest")
    assert plan["clients"][0]["staging"] == f"{books}/.ledgerguard-INC-20261126-777/staging/c001/<run id>"
    assert not marker_dir.exists() and not (books / ".ledgerguard-INC-20261126-777").exists()
    assert {c["id"]: tree(Path(c["root"])) for c in clients} == damaged

    # The real run.
    res = run()
    by_id = {e["id"]: e for e in res["clients"]}
    assert [e["status"] for e in res["clients"]] == ["ok", "ok", "ok"], res["clients"]
    for c in clients:
        assert tree(Path(c["root"])) == clean[c["id"]]  # byte-identical
        assert by_id[c["id"]]["verified"] is True and by_id[c["id"]]["files"] == len(clean[c["id"]])
        assert json.loads((marker_dir / f"{c['id']}.done.json").read_text(encoding="utf-8")) == by_id[c["id"]]
        swapped = json.loads((marker_dir / f"{c['id']}.swapped.json").read_text(encoding="utf-8"))
        assert swapped["restored"] == len(by_id[c["id"]]["restored"]) > 0
    assert (marker_dir / "c001.done.json").stat().st_mode & 0o777 == 0o600
    # snapshot_damage's listing of the restore point, kept for restic_restore (issue 19): root's alone, one file
    listings = marker_dir / "listings"
    assert listings.stat().st_mode & 0o777 == 0o700
    (kept,) = listings.iterdir()
    assert kept.name.endswith(f"-{by_id['c001']['snapshot']['id']}.json") and kept.stat().st_mode & 0o777 == 0o600
    roots = json.loads(kept.read_text(encoding="utf-8"))["roots"]
    assert all(any(c["root"].endswith(r) for r in roots) for c in clients), roots
    shared = by_id["c001"]["staging"]
    assert shared == by_id["c002"]["staging"] and Path(shared).parent.name == "c001+c002"
    assert Path(by_id["c003"]["staging"]).parent.name == "c003"
    assert by_id["c001"]["ledger"] == {"ok": True, "findings": 0}
    restores = [s for s in res["ledgerguard_steps"] if s["task"].startswith("Restore the chosen snapshot")]
    assert [s["clients"] for s in restores] == [["c001", "c002"], ["c003"]]
    # one restore_swap run swaps every client of the host, in the restore order, each after its own rescan
    swaps = [s["clients"] for s in res["ledgerguard_steps"] if s["task"].startswith("Swap the restored files")]
    assert swaps == [["c001", "c002", "c003"]]

    # A re-run of the same incident keeps the finished results and restores nothing again.
    again = run()
    assert [e.get("resumed") for e in again["clients"]] == [True, True, True]
    assert not any(s["task"].startswith(("Restore the chosen", "Swap")) for s in again["ledgerguard_steps"])
    assert again["changed"] is False
