"""Unit tests for the writer scan's pure parts (issue 14): secret masking, /proc parsing on a fake tree,
classification, and the watchdog's and boot command's resilience (freeze.py)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import freeze as fz
from ansible_collections.ledgerguard.recovery.plugins.module_utils import writers as wr


@pytest.mark.parametrize(
    ("argv", "masked"),
    [
        (["restic", "--password=hunter2", "backup"], ["restic", "--password=***", "backup"]),
        (["restic", "--password", "hunter2"], ["restic", "--password", "***"]),
        (["restic", "--password-file", "/etc/pw"], ["restic", "--password-file", "/etc/pw"]),
        (
            ["env", "PASSWORD=x", "AWS_SECRET_ACCESS_KEY=y", "LANG=C"],
            ["env", "PASSWORD=***", "AWS_SECRET_ACCESS_KEY=***", "LANG=C"],
        ),
        (["curl", "https://bob:s3cret@example.invalid/x"], ["curl", "https://bob:***@example.invalid/x"]),
        (["mysql", "-pS3cret", "-uroot"], ["mysql", "-p***", "-uroot"]),
        (["enc", "--key=abc", "--token", "t"], ["enc", "--key=***", "--token", "***"]),
        (["ls", "-p", "/srv"], ["ls", "-p", "/srv"]),
    ],
)
def test_mask_cmdline(argv, masked):
    assert wr.mask_cmdline(argv) == masked


def test_display_keeps_utf8_and_shows_other_bytes():
    assert wr.display("/srv/客户") == "/srv/客户"
    assert wr.display(os.fsdecode(b"/mnt/caf\xe9")) == "/mnt/caf\\xe9"


def fake_proc(tmp_path, pid=4242, comm="evil (x) y", state="S", ppid=7, flags="0100002"):
    d = tmp_path / "proc" / str(pid)
    (d / "fdinfo").mkdir(parents=True)
    fields = [state, str(ppid)] + ["0"] * 4 + ["4194304"] + ["0"] * 12 + ["123456"] + ["0"] * 10
    (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    (d / "fdinfo" / "3").write_text(f"pos:\t0\nflags:\t{flags}\nmnt_id:\t30\n")
    (tmp_path / "proc" / "stat").write_text("cpu 1 2 3\nbtime 1764000000\n")
    return str(tmp_path / "proc")


def test_proc_stat_with_parentheses_in_comm(tmp_path):
    proc = fake_proc(tmp_path)
    st = wr.proc_stat(4242, proc)
    assert (st["comm"], st["state"], st["ppid"], st["start_ticks"]) == ("evil (x) y", "S", 7, 123456)


@pytest.mark.parametrize(
    ("flags", "mode"), [("0100002", "rw"), ("02101", "w"), ("0100000", "r"), ("010000000", "path")]
)
def test_fd_mode_from_fdinfo(tmp_path, flags, mode):
    proc = fake_proc(tmp_path, flags=flags)
    assert wr._fd_mode(4242, "3", proc)[0] == mode


def rec(pid=50, exe="/usr/bin/python3.11", comm="python3", writing=True, units=()):
    return {"pid": pid, "exe": exe, "comm": comm, "writing": writing, "units": list(units), "start_ticks": 1}


def test_classify():
    assert wr.classify(rec(), [], {1, 99}) == "writer"
    assert wr.classify(rec(writing=False), [], set()) == "reader"
    assert wr.classify(rec(pid=99), [], {99}) == "protected"
    assert wr.classify(rec(pid=1), [], set()) == "protected"
    assert wr.classify(rec(), ["/usr/bin/python3.11"], set()) == "allowed"
    assert wr.classify(rec(), ["python3"], set()) == "allowed"
    assert wr.classify(rec(), ["python"], set()) == "writer"
    assert wr.classify(rec(exe="/usr/bin/python3.11 (deleted)"), ["/usr/bin/python3.11"], set()) == "allowed"
    assert wr.classify(rec(units=["smbd.service"]), [], set(), ["smbd.service"]) == "service"


def test_policy_is_checked():
    with pytest.raises(ValueError, match="not one of stop, kill, report"):
        wr.Containment("pause")


def test_registry_keeps_a_non_utf8_path_exactly(tmp_path):
    path = os.fsdecode(b"/mnt/caf\xe9/clients")
    reg = fz.new_registry("INC-L", 0)
    reg["targets"].append({"key": f"path:{path}", "path": path, "label": "客户"})
    fz.save_registry(str(tmp_path), reg)
    assert fz.load_registry(str(tmp_path), "INC-L")["targets"][0]["path"] == path


def test_watchdog_logs_any_error_and_rearms_itself(tmp_path, monkeypatch):
    state = str(tmp_path)
    fz.ensure_registry_dir(state)
    (tmp_path / "freeze" / "INC-W.json").write_text("{not json")
    calls = []
    monkeypatch.setattr(fz, "retry_later", lambda *a, **k: calls.append(a) or {"kind": "process", "pid": 1})
    assert fz.watchdog_main(["watchdog", "--state-dir", state, "--incident", "INC-W", "--retry-seconds", "7"]) == 1
    assert calls == [(state, "INC-W", "", 7)]
    (entry,) = [json.loads(x) for x in (tmp_path / "freeze" / "INC-W.watchdog.log").read_text().splitlines()]
    assert "cannot read the freeze registry" in entry["errors"][0] and entry["retry"]["kind"] == "process"

    def boom(*_a, **_k):
        raise KeyError("method")

    (tmp_path / "freeze" / "INC-W.json").write_text(json.dumps(fz.new_registry("INC-W", 0)))
    monkeypatch.setattr(fz, "apply_thaw", boom)
    assert fz.watchdog_main(["watchdog", "--state-dir", state, "--incident", "INC-W"]) == 1
    last = json.loads((tmp_path / "freeze" / "INC-W.watchdog.log").read_text().splitlines()[-1])
    assert last["errors"] == ["unexpected KeyError: 'method'"] and "Traceback" in last["traceback"]
    assert calls[-1] == (state, "INC-W", "", 60)


def test_boot_thaws_only_registries_of_an_earlier_boot(tmp_path, monkeypatch):
    state = str(tmp_path)
    target = {
        "method": "readonly_bind",
        "path": str(tmp_path / "gone"),
        "key": f"path:{tmp_path / 'gone'}",
        "label": "bind",
        "previous": {"read_only": False},
        "bind_mount_id": -1,
        "deadline": 4102444800,
    }
    for incident, boot in (("INC-OLD", "earlier"), ("INC-NOW", fz.boot_id())):
        reg = fz.new_registry(incident, 0)
        reg["boot_id"] = boot
        reg["targets"].append(dict(target, incident=incident))
        fz.save_registry(state, reg)
    monkeypatch.setattr(fz, "remove_boot_unit_if_idle", lambda host: None)
    assert fz.boot_main(state) == 0
    old = fz.load_registry(state, "INC-OLD")
    assert old["targets"] == [] and old["released"][0]["thawed_by"] == "boot"
    assert len(fz.load_registry(state, "INC-NOW")["targets"]) == 1


def test_boot_unit_text():
    host = fz.Host(lambda argv: (0, "", ""), state_dir="/var/lib/ledgerguard", python="/usr/bin/python3")
    text = fz.boot_unit_text(host, "/var/lib/ledgerguard/freeze/ledgerguard_freeze.py")
    assert "ExecStart=/usr/bin/python3 /var/lib/ledgerguard/freeze/ledgerguard_freeze.py boot --state-dir " in text
    assert "After=local-fs.target network.target postgresql.service" in text
    assert "WantedBy=multi-user.target" in text
    assert fz.boot_unit_name("/var/lib/ledgerguard") == "ledgerguard-freeze-boot.service"
    assert fz.boot_unit_name("/srv/lg").startswith("ledgerguard-freeze-boot-")


def test_one_set_of_masking_rules():
    """writers.mask_cmdline is redact's (the free-text masking is built on it): the same names mask both."""
    from ansible_collections.ledgerguard.recovery.plugins.module_utils import redact

    assert wr.mask_cmdline is redact.mask_cmdline
    assert redact.mask_secrets("backup --passphrase hunter2 --key-file /k") == "backup --passphrase *** --key-file /k"
    assert redact.mask_secrets("curl https://:tok3n@h.invalid/") == "curl https://:***@h.invalid/"


def test_controller_root_is_the_outermost_ansible_playbook(tmp_path):
    """Module processes of the same run (local connection, several hosts on one machine) descend from one
    ansible-playbook process through the workers it forks (the same name): the root is the outermost, so the module
    process of another host (under another worker) is under it too; a process outside it (pytest's child, malware)
    is not."""
    proc = fake_proc(tmp_path, pid=300, comm="ansible-playboo", ppid=200)
    fake_proc(tmp_path, pid=200, comm="python", ppid=1)
    fake_proc(tmp_path, pid=310, comm="ansible-playboo", ppid=300)  # the worker of host 1
    fake_proc(tmp_path, pid=320, comm="ansible-playboo", ppid=300)  # the worker of host 2
    fake_proc(tmp_path, pid=400, comm="sh", ppid=310)
    fake_proc(tmp_path, pid=401, comm="python", ppid=400)  # host 1's module process
    fake_proc(tmp_path, pid=402, comm="python", ppid=320)  # host 2's module process
    fake_proc(tmp_path, pid=500, comm="python", ppid=200)
    assert wr.controller_root(401, proc) == 300
    assert wr.controller_root(402, proc) == 300
    assert wr.controller_root(500, proc) is None
    assert 300 in wr.ancestors(402, proc) and 300 not in wr.ancestors(500, proc)


def _ancestry_walker(monkeypatch):
    """Count the '..' opens of the ancestry walks."""
    real_open = os.open
    steps = []

    def counting_open(path, flags, *args, **kwargs):
        if path == "..":
            steps.append(kwargs.get("dir_fd"))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(wr.os, "open", counting_open)
    return steps


def _lookup(targets, folder):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return targets.by_ancestry(fd)
    finally:
        os.close(fd)


def test_ancestry_walks_each_folder_once_per_scan(tmp_path, monkeypatch):
    target = tmp_path / "账套" / "客户甲"
    deep = target / "2026年" / "凭证" / "十二月"
    other = tmp_path / "别处" / "下载"
    for d in (deep, deep.parent / "十一月", other / "子"):
        d.mkdir(parents=True)
    targets = wr.Targets([str(target)])
    steps = _ancestry_walker(monkeypatch)
    assert _lookup(targets, deep) == str(target)
    assert len(steps) == 3  # 十二月 -> 凭证 -> 2026年 -> 客户甲 (the target)
    # A sibling stops at the folder the first walk passed: one step, the same answer.
    assert _lookup(targets, deep.parent / "十一月") == str(target)
    assert len(steps) == 4
    assert _lookup(targets, deep) == str(target)
    assert len(steps) == 4
    # Outside the target: the walk goes to the root once, then its folders answer "no target" at once.
    assert _lookup(targets, other / "子") is None
    walked = len(steps)
    assert walked > 4
    assert _lookup(targets, other) is None
    assert _lookup(targets, tmp_path) is None
    assert len(steps) == walked


def test_ancestry_memo_lasts_one_scan(tmp_path):
    """A folder moved under a target between two scans is found by the second: each scan has its own memo."""
    target = tmp_path / "客户乙"
    outside = tmp_path / "外面" / "加密中"
    target.mkdir()
    outside.mkdir(parents=True)
    first = wr.Targets([str(target)])
    assert _lookup(first, outside) is None
    moved = target / "加密中"
    outside.rename(moved)
    assert _lookup(wr.Targets([str(target)]), moved) == str(target)


def test_a_folder_a_walk_passed_is_answered_by_one_stat_with_the_walks_answer(tmp_path, monkeypatch):
    """file_under and dir_under open a folder and walk only when no walk of the scan passed it: a second file in a
    folder (or a folder held twice) is answered by a stat, with the same answer as the walk's."""
    target = tmp_path / "账套" / "客户丙"
    (target / "凭证").mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    alias = tmp_path / "别名"  # a name that is not under the target, for a folder that is
    alias.symlink_to(target)
    targets = wr.Targets([str(target)])
    opened: list[str] = []
    real_open = os.open

    def recording_open(path, flags, *args, **kwargs):
        opened.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(wr.os, "open", recording_open)
    pid, root = os.getpid(), f"/proc/{os.getpid()}/root"
    dev = os.stat(target).st_dev
    assert targets.file_under(pid, f"{alias}/凭证/甲.csv", dev) == str(target)
    assert opened[0] == f"{root}{alias}/凭证"
    walked = len(opened)
    assert targets.file_under(pid, f"{alias}/凭证/乙.csv", dev) == str(target)
    assert targets.file_under(pid, f"{alias}/凭证/丙.csv (deleted)", dev) == str(target)
    assert len(opened) == walked  # no open: answered by the stat
    assert targets.file_under(pid, f"{tmp_path}/lib/libc.so", dev) is None
    walked = len(opened)
    assert targets.file_under(pid, f"{tmp_path}/lib/libm.so", dev) is None
    assert targets.dir_under(f"{tmp_path}/lib", f"{tmp_path}/lib") is None
    assert targets.dir_under(f"{alias}/凭证", f"{alias}/凭证") == str(target)
    assert len(opened) == walked
    # A folder no walk passed is opened and walked as before.
    (tmp_path / "新").mkdir()
    assert targets.dir_under(f"{tmp_path}/新", f"{tmp_path}/新") is None
    assert opened[walked] == f"{tmp_path}/新"
