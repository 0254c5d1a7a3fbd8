"""restore_swap with several clients in one run (clients=, issue 19), each right after its own write_freeze rescan
(rescan=): the order, one client stopped by its rescan while the others are swapped, check mode, idempotence."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import freeze
from ansible_collections.ledgerguard.recovery.plugins.modules import restore_swap
from conftest import module_result

SNAPSHOT_TIME = "2026-11-25T02:00:00Z"
IDS = ("c001", "客户002")


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(restore_swap.main, args, capsys, check_mode)


@pytest.fixture
def site(tmp_path):
    """Two clients; each lost one voucher file, which its staging folder (the snapshot) still holds."""
    clients, state = [], tmp_path / "state"
    (state / "restore").mkdir(parents=True)
    for cid in IDS:
        live = tmp_path / "books" / cid
        (live / "凭证").mkdir(parents=True)
        (live / "凭证" / "2026-09.csv").write_text(f"期间,凭证号,{cid}\n2026-09,1\n", encoding="utf-8")
        (live / "凭证" / "2026-10.csv").write_text(f"期间,凭证号,{cid}\n2026-10,1\n", encoding="utf-8")
        staging = tmp_path / "books" / ".lg" / "staging" / cid / "run1"
        shutil.copytree(live, staging / str(live).lstrip("/"))
        (live / "凭证" / "2026-09.csv").unlink()  # the loss
        clients.append(
            {
                "id": cid,
                "paths": [str(live)],
                "staging": str(staging),
                "quarantine": str(tmp_path / "books" / ".lg" / "quarantine" / cid),
                "snapshot_time": SNAPSHOT_TIME,
                "marker": {"path": str(state / "restore" / f"{cid}.swapped.json"), "record": {"id": cid}},
            }
        )
    return {"clients": clients, "state": state, "live": {cid: tmp_path / "books" / cid for cid in IDS}}


def restored(site, cid) -> bool:
    return (site["live"][cid] / "凭证" / "2026-09.csv").is_file()


def test_clients_swapped_in_one_run_each_recorded_right_after_and_idempotent(site, capsys):
    result = run({"clients": site["clients"]}, capsys)
    assert result["changed"] is True
    assert [e["id"] for e in result["clients"]] == list(IDS)
    for entry, spec in zip(result["clients"], site["clients"], strict=True):
        cid = entry["id"]
        assert not entry.get("failed"), entry
        assert entry["restored"] == [str(site["live"][cid] / "凭证" / "2026-09.csv")]
        assert entry["unchanged"] == 1 and entry["changed"] is True and "rescan" not in entry
        assert entry["marker"] == spec["marker"]["path"]
        record = json.loads(open(spec["marker"]["path"], encoding="utf-8").read())
        assert record["id"] == cid and record["restored"] == 1 and record["swapped_at"].endswith("Z")
        assert restored(site, cid)
    again = run({"clients": site["clients"]}, capsys)
    assert again["changed"] is False
    assert [(e["restored"], e["unchanged"]) for e in again["clients"]] == [([], 2), ([], 2)]


def test_clients_check_mode_plans_and_changes_nothing(site, capsys):
    result = run({"clients": site["clients"]}, capsys, check_mode=True)
    assert result["changed"] is True
    assert [len(e["restored"]) for e in result["clients"]] == [1, 1]
    assert not any(restored(site, cid) for cid in IDS)
    assert not any(os.path.exists(c["marker"]["path"]) for c in site["clients"])
    assert not any(os.path.exists(c["quarantine"]) for c in site["clients"])


def test_each_clients_rescan_runs_right_before_its_own_swap(site, capsys, monkeypatch):
    seen = []

    def fake_rescan(incident, state_dir, policy, allow, run_command, which, check_mode):
        seen.append((incident, policy, {cid: restored(site, cid) for cid in IDS}))
        return {"incident": incident, "state": "rescan", "changed": False, "writers": [], "held": []}

    monkeypatch.setattr(restore_swap, "rescan", fake_rescan)
    result = run({"clients": site["clients"], "rescan": {"incident": "INC-1", "containment": "kill"}}, capsys)
    # c001's rescan before any swap; 客户002's after c001's swap and before its own.
    assert seen == [
        ("INC-1", "kill", {"c001": False, "客户002": False}),
        ("INC-1", "kill", {"c001": True, "客户002": False}),
    ]
    assert [e["rescan"]["incident"] for e in result["clients"]] == ["INC-1", "INC-1"]
    assert all(restored(site, cid) for cid in IDS)


def test_a_failed_rescan_stops_that_client_only(site, capsys, monkeypatch):
    def fake_rescan(incident, state_dir, policy, allow, run_command, which, check_mode):
        if not restored(site, "c001") and not seen:
            seen.append(1)
            return {"incident": incident, "state": "rescan", "writers": [{"pid": 4242}], "failed": True, "msg": "held"}
        return {"incident": incident, "state": "rescan", "writers": [], "held": []}

    seen: list[int] = []
    monkeypatch.setattr(restore_swap, "rescan", fake_rescan)
    result = run({"clients": site["clients"], "rescan": {"incident": "INC-1"}}, capsys)
    first, second = result["clients"]
    assert first == {
        "id": "c001",
        "failed": True,
        "stage": "rescan",
        "msg": "held",
        "rescan": {"incident": "INC-1", "state": "rescan", "writers": [{"pid": 4242}], "failed": True, "msg": "held"},
    }
    assert not restored(site, "c001") and not os.path.exists(site["clients"][0]["marker"]["path"])
    assert not second.get("failed") and restored(site, "客户002")
    assert os.path.exists(site["clients"][1]["marker"]["path"])
    assert "c001 failed: held" in result["msg"]


def test_a_swap_failure_stops_that_client_only(site, capsys):
    shutil.rmtree(site["clients"][0]["staging"])
    result = run({"clients": site["clients"]}, capsys)
    first, second = result["clients"]
    assert first["failed"] is True and first["stage"] == "swap"
    assert "was not found in staging" in first["msg"]
    assert not second.get("failed") and restored(site, "客户002")


def test_options_are_checked(site, capsys):
    result = run({"clients": site["clients"], "paths": ["/srv/x"]}, capsys)
    assert result["failed"] is True and "mutually exclusive" in result["msg"]
    one = {k: v for k, v in site["clients"][0].items() if k != "id"}
    result = run({**one, "rescan": {"incident": "INC-1"}}, capsys)
    assert result["failed"] is True and "missing parameter(s) required by 'rescan': clients" in result["msg"]
    assert not restored(site, "c001")


@pytest.fixture
def writer(site):
    """The incident froze c001's folder (its registry); a process works in it (its working directory there)."""
    registry = freeze.new_registry("INC-T1", time.time())
    registry["targets"].append({"method": "readonly_bind", "path": str(site["live"]["c001"]), "label": "c001"})
    freeze.save_registry(str(site["state"]), registry)
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"],
        cwd=site["live"]["c001"] / "凭证",
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.3)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="the rescan signals other processes and needs root")
def test_real_rescan_stops_the_writer_right_before_the_first_swap(site, writer, capsys):
    """The write_freeze rescan code itself (module_utils/writers.rescan), policy stop: c001's rescan stops the writer
    (SIGSTOP) before c001's swap; 客户002's rescan finds nothing new; both are swapped."""
    rescan = {"incident": "INC-T1", "state_dir": str(site["state"])}
    result = run({"clients": site["clients"], "rescan": rescan}, capsys)
    first, second = result["clients"]
    assert [(w["pid"], w["action"]) for w in first["rescan"]["writers"]] == [(writer.pid, "stopped")]
    assert first["rescan"]["containment"]["stopped"] == [writer.pid]
    assert second["rescan"]["writers"] == [] and second["rescan"]["held"] == []
    assert not first.get("failed") and not second.get("failed")
    assert all(restored(site, cid) for cid in IDS)
    with open(f"/proc/{writer.pid}/stat", encoding="ascii") as fh:
        assert fh.read().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.skipif(os.geteuid() != 0, reason="the rescan signals other processes and needs root")
def test_real_rescan_refusing_a_writer_swaps_nothing_while_it_runs(site, writer, capsys):
    """Policy report: every rescan of the incident's frozen folders refuses the writer (named, not signalled), so no
    client is swapped while it runs; each entry says why (as write_freeze's rescan fails)."""
    rescan = {"incident": "INC-T1", "state_dir": str(site["state"]), "containment": "report"}
    result = run({"clients": site["clients"], "rescan": rescan}, capsys)
    for entry in result["clients"]:
        assert entry["failed"] is True and entry["stage"] == "rescan"
        assert "containment policy 'report'" in entry["msg"] and str(writer.pid) in entry["msg"]
        assert [(w["pid"], w["action"]) for w in entry["rescan"]["writers"]] == [(writer.pid, "refused")]
        assert entry["rescan"]["containment"]["refused"] == [writer.pid]
    assert writer.poll() is None  # not signalled
    assert not any(restored(site, cid) for cid in IDS)
    assert result["changed"] is False


def test_an_unexpected_error_in_one_clients_swap_or_rescan_stops_that_client_only(site, capsys, monkeypatch):
    real = restore_swap.Swapper.swap_path

    def swap_path(self, root):
        if root == str(site["live"]["c001"]):
            raise RuntimeError("bad entry")
        return real(self, root)

    monkeypatch.setattr(restore_swap.Swapper, "swap_path", swap_path)
    first, second = run({"clients": site["clients"]}, capsys)["clients"]
    assert first["failed"] is True and first["stage"] == "swap"
    assert first["msg"].startswith(
        "restore_swap: the swap of c001 failed: RuntimeError: bad entry; nothing was deleted"
    )
    assert not second.get("failed") and restored(site, "客户002")

    def fake_rescan(incident, state_dir, policy, allow, run_command, which, check_mode):
        raise ValueError("registry unreadable")

    monkeypatch.setattr(restore_swap, "rescan", fake_rescan)
    entries = run({"clients": site["clients"], "rescan": {"incident": "INC-1"}}, capsys)["clients"]
    assert [(e["failed"], e["stage"]) for e in entries] == [(True, "rescan"), (True, "rescan")]
    assert entries[0]["msg"] == "write_freeze for incident INC-1 failed on the host: ValueError: registry unreadable"
