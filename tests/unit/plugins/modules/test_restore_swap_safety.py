"""Issue 13 (items 1, 3, 4, 5, 6, 7, 12): restore_swap on hostile trees, Chinese mount points, interrupted runs and
cross-filesystem copies. Real trees in tmp_path, the module run in-process."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import stat
import time

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import restore_swap
from ansible.module_utils.testing import patch_module_args
from conftest import module_result

SNAPSHOT_TIME = "2026-11-25T02:00:00Z"


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(restore_swap.main, args, capsys, check_mode)


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def old(path):
    ts = time.mktime(time.strptime("2026-11-24", "%Y-%m-%d"))
    os.utime(path, (ts, ts), follow_symlinks=False)


def tree(root) -> dict:
    return {
        str(p.relative_to(root)): (sha(p) if p.is_file() and not p.is_symlink() else "other")
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def site(tmp_path):
    live = tmp_path / "客户账套" / "c001"
    (live / "凭证").mkdir(parents=True)
    (live / "账簿").mkdir()
    (live / "凭证" / "2026-09.csv").write_text("期间,凭证号\n2026-09,1\n" * 20, encoding="utf-8")
    (live / "凭证" / "2026-10.csv").write_text("期间,凭证号\n2026-10,1\n" * 20, encoding="utf-8")
    (live / "账簿" / "ledger.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x01" * 500)
    (live / "notes.txt").write_text("to do\n")
    staging = tmp_path / "客户账套" / ".lg" / "staging" / "c001" / "run1"
    shutil.copytree(live, staging / str(live).lstrip("/"), symlinks=True)
    for path in live.rglob("*"):
        old(path)
    (live / "凭证" / "2026-09.csv").rename(live / "凭证" / "2026-09.csv.locked")
    (live / "README_DECRYPT.txt").write_text("pay\n")
    (live / "账簿" / "ledger.sqlite").write_bytes(os.urandom(516))
    (live / "凭证" / "2026-10.csv").write_text("期间,凭证号\n2026-10,1\n" * 21, encoding="utf-8")
    (live / "凭证" / "2026-11.csv").write_text("期间,凭证号\n2026-11,1\n", encoding="utf-8")
    quarantine = tmp_path / "客户账套" / ".lg" / "quarantine" / "c001"
    return {
        "live": live,
        "snap": staging / str(live).lstrip("/"),
        "staging": staging,
        "quarantine": quarantine,
        "qlive": quarantine / str(live).lstrip("/"),
        "args": {
            "paths": [str(live)],
            "staging": str(staging),
            "quarantine": str(quarantine),
            "snapshot_time": SNAPSHOT_TIME,
        },
    }


@pytest.fixture
def deadline():
    """Fail (instead of hanging the suite) when the module blocks, e.g. on opening a FIFO."""

    def expired(_sig, _frame):
        raise TimeoutError("restore_swap blocked (opened a FIFO or a device?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# -- item 1: the mount table read as bytes ----------------------------------------------------------------------------


def test_readonly_bind_over_a_chinese_path_is_found(tmp_path, monkeypatch):
    books = "/srv/客户账套/C001"
    octal = books.encode("utf-8")  # the kernel leaves non-ASCII bytes as they are; only space, tab, \n, \\ escaped
    table = tmp_path / "mountinfo"
    table.write_bytes(
        b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        b"99 22 8:1 /srv/\xe5\xae\xa2\xe6\x88\xb7\xe8\xb4\xa6\xe5\xa5\x97/C001 "
        + octal
        + b" ro,relatime shared:1 - ext4 "
        b"/dev/sda1 rw\n"
        b"100 22 8:1 / /srv/with\\040space ro,relatime - ext4 /dev/sda1 rw\n"
    )
    monkeypatch.setattr(restore_swap, "MOUNTINFO", str(table))
    assert restore_swap._readonly_mounts([books]) == [books]
    assert restore_swap._readonly_mounts(["/srv/客户账套"]) == [books]
    assert restore_swap._readonly_mounts(["/srv/with space"]) == ["/srv/with space"]


# -- item 3: a cross-filesystem copy never leaves a truncated file at the live path -----------------------------------


def test_cross_filesystem_copy_failing_midway_leaves_no_truncated_file(site, capsys, monkeypatch):
    live, snap = site["live"], site["snap"]
    big = snap / "账簿" / "scan.pdf"
    big.write_bytes(os.urandom(600_000))
    real_link, real_write, real_sendfile = os.link, os.write, os.sendfile

    def link(src, dst, *a, **kw):
        if not str(src).startswith(".ledgerguard-tmp-"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **kw)

    def write(fd, data):
        if len(data) > 100_000:
            real_write(fd, bytes(data[:50_000]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def sendfile(out_fd, in_fd, offset, count):
        if os.fstat(in_fd).st_size > 100_000:
            real_sendfile(out_fd, in_fd, offset, 50_000)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "sendfile", sendfile)
    result = run(site["args"], capsys)
    monkeypatch.undo()
    assert result["failed"] is True
    assert "No space left on device" in result["msg"] and "nothing was deleted" in result["msg"]
    target = live / "账簿" / "scan.pdf"
    assert not target.exists() or sha(target) == sha(big)  # never a truncated file under the live name
    assert not [p for p in (live / "账簿").iterdir() if p.name.startswith(".ledgerguard-tmp-")]


def test_cross_filesystem_copy_puts_files_in_place(site, capsys, monkeypatch):
    real_link = os.link

    def link(src, dst, *a, **kw):
        if not str(src).startswith(".ledgerguard-tmp-"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **kw)

    monkeypatch.setattr(os, "link", link)
    result = run(site["args"], capsys)
    assert result["verified"] is True, result
    live, snap = site["live"], site["snap"]
    for rel in ("凭证/2026-09.csv", "账簿/ledger.sqlite"):
        assert sha(live / rel) == sha(snap / rel)
        assert os.stat(live / rel).st_ino != os.stat(snap / rel).st_ino  # a copy
    assert not list(live.rglob(".ledgerguard-tmp-*"))


# -- item 4: quarantine name clashes ----------------------------------------------------------------------------------


def test_quarantine_never_replaces_an_earlier_quarantined_file(site, capsys):
    live, qlive = site["live"], site["qlive"]
    locked = live / "凭证" / "2026-09.csv.locked"
    damaged = sha(locked)
    (qlive / "凭证").mkdir(parents=True)
    earlier = qlive / "凭证" / "2026-09.csv.locked"
    earlier.write_text("quarantined by an earlier run\n")
    # The old fallback name (<target>.<mtime>) taken too.
    by_mtime = qlive / "凭证" / f"2026-09.csv.locked.{int(os.path.getmtime(locked))}"
    by_mtime.write_text("earlier too\n")
    result = run(site["args"], capsys)
    assert result.get("failed") is not True, result
    assert earlier.read_text() == "quarantined by an earlier run\n"
    assert by_mtime.read_text() == "earlier too\n"
    entry = next(q for q in result["quarantined"] if q["path"] == str(locked))
    assert entry["to"] != str(earlier) and sha(entry["to"]) == damaged == entry["sha256"]


def test_dangling_symlink_with_a_taken_quarantine_name(site, capsys):
    live, qlive = site["live"], site["qlive"]
    (live / "README_DECRYPT.txt").unlink()
    os.symlink("/nonexistent/ledgerguard-test", live / "README_DECRYPT.txt")
    qlive.mkdir(parents=True)
    (qlive / "README_DECRYPT.txt").write_text("an earlier note\n")
    result = run(site["args"], capsys)
    assert result.get("failed") is not True, result
    entry = next(q for q in result["quarantined"] if q["path"] == str(live / "README_DECRYPT.txt"))
    assert os.readlink(entry["to"]) == "/nonexistent/ledgerguard-test"
    assert (qlive / "README_DECRYPT.txt").read_text() == "an earlier note\n"


# -- item 5: a resumed run reports what the killed run quarantined ----------------------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the module handles it."""


def test_resumed_run_reports_files_the_killed_run_quarantined(site, capsys, monkeypatch):
    live = site["live"]
    locked = live / "凭证" / "2026-09.csv.locked"
    locked_sha = sha(locked)
    real = restore_swap.file_damage

    def damage_then_die(path, *a, **kw):
        if path.endswith("2026-11.csv"):  # judged after the .locked file was moved
            raise Killed()
        return real(path, *a, **kw)

    monkeypatch.setattr(restore_swap, "file_damage", damage_then_die)
    with patch_module_args(site["args"]), pytest.raises(Killed):
        restore_swap.main()
    capsys.readouterr()
    monkeypatch.undo()
    assert not locked.exists()
    result = run(site["args"], capsys)
    assert result.get("failed") is not True, result
    earlier = {q["path"]: q for q in result["quarantined_earlier"]}
    assert str(locked) in earlier
    assert earlier[str(locked)]["reason"] == "ransomware extension .locked"
    assert earlier[str(locked)]["sha256"] == locked_sha and sha(earlier[str(locked)]["to"]) == locked_sha
    assert str(locked) not in {q["path"] for q in result["quarantined"]}
    # A later run changes nothing and still reports every file in quarantine.
    again = run(site["args"], capsys)
    assert again["changed"] is False and again["quarantined"] == []
    assert {q["path"] for q in again["quarantined_earlier"]} == {
        str(locked),
        str(live / "README_DECRYPT.txt"),
        str(live / "账簿" / "ledger.sqlite"),
    }


# -- item 6: a folder swapped for a symbolic link while the swap runs -------------------------------------------------


def test_folder_swapped_for_a_link_mid_swap_writes_nothing_outside(tmp_path, capsys, monkeypatch):
    live = tmp_path / "books" / "c001"
    (live / "凭证").mkdir(parents=True)
    (live / "凭证" / "a.csv").write_text("期间\n2026-09\n", encoding="utf-8")
    (live / "凭证" / "b.csv").write_text("期间\n2026-10\n", encoding="utf-8")
    staging = tmp_path / "books" / ".lg" / "staging" / "c001" / "run1"
    shutil.copytree(live, staging / str(live).lstrip("/"))
    for path in live.rglob("*"):
        old(path)
    (live / "凭证" / "a.csv").write_text("期间\n2026-09\n2026-09\n", encoding="utf-8")  # a legitimate edit
    (live / "凭证" / "b.csv").unlink()  # deleted: to be put back
    outside = tmp_path / "outside"  # stands for /etc
    outside.mkdir()
    (outside / "sentinel.txt").write_text("keep\n")
    before = tree(outside)
    real = restore_swap.file_damage

    def race(path, *a, **kw):
        if path.endswith("a.csv") and not (live / "凭证").is_symlink():
            (live / "凭证").rename(live / "凭证.moved")
            os.symlink(outside, live / "凭证")
        return real(path, *a, **kw)

    monkeypatch.setattr(restore_swap, "file_damage", race)
    args = {
        "paths": [str(live)],
        "staging": str(staging),
        "quarantine": str(tmp_path / "books" / ".lg" / "quarantine" / "c001"),
        "snapshot_time": SNAPSHOT_TIME,
    }
    run(args, capsys)
    assert tree(outside) == before
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    assert (live / "凭证.moved" / "b.csv").read_text(encoding="utf-8") == "期间\n2026-10\n"


def test_link_in_place_of_a_folder_is_quarantined_not_followed(site, capsys, tmp_path):
    live = site["live"]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("keep\n")
    shutil.rmtree(live / "账簿")
    os.symlink(outside, live / "账簿")
    result = run(site["args"], capsys)
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    assert (live / "账簿").is_dir() and not (live / "账簿").is_symlink()
    entry = next(q for q in result["quarantined"] if q["path"] == str(live / "账簿"))
    assert entry["reason"] == "a symlink stands where the snapshot has a directory"
    assert os.readlink(entry["to"]) == str(outside)


# -- item 7: FIFOs, device nodes and links to /etc planted in the live tree -------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device node needs root")
def test_fifos_devices_and_links_never_opened(site, capsys, deadline):  # noqa: ARG001
    live = site["live"]
    os.mkfifo(live / "凭证" / "pipe.csv")  # new: not in the snapshot
    (live / "notes.txt").unlink()
    os.mkfifo(live / "notes.txt")  # where the snapshot has a file
    os.mknod(live / "账簿" / "zero.dev", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    os.symlink("/etc", live / "etc-link")
    os.symlink("/etc/passwd", live / "passwd.csv")
    etc_before = {p: os.lstat(os.path.join("/etc", p)).st_mtime_ns for p in os.listdir("/etc")}
    result = run(site["args"], capsys)
    assert result.get("failed") is not True, result
    kept = {k["path"]: k for k in result["kept_new"]}
    assert kept[str(live / "凭证" / "pipe.csv")]["type"] == "fifo"
    assert kept[str(live / "账簿" / "zero.dev")]["type"] == "char device"
    assert kept[str(live / "etc-link")]["type"] == "symlink"
    assert stat.S_ISFIFO(os.lstat(live / "凭证" / "pipe.csv").st_mode)
    q = next(q for q in result["quarantined"] if q["path"] == str(live / "notes.txt"))
    assert q["reason"] == "a fifo stands where the snapshot has a file" and stat.S_ISFIFO(os.lstat(q["to"]).st_mode)
    assert sha(live / "notes.txt") == sha(site["snap"] / "notes.txt")
    assert {p: os.lstat(os.path.join("/etc", p)).st_mtime_ns for p in os.listdir("/etc")} == etc_before


# -- item 12: the new-file sweep with many quarantined files ---------------------------------------------------------


def test_sweep_with_20000_quarantined_files(tmp_path, capsys):
    live = tmp_path / "books" / "c001"
    live.mkdir(parents=True)
    (live / "a.csv").write_text("x\n")
    staging = tmp_path / "books" / ".lg" / "staging" / "c001" / "run1"
    shutil.copytree(live, staging / str(live).lstrip("/"))
    # 20,000 empty files made with one mknod(2) each: about 7 times faster than Path.write_bytes (open, write,
    # close), which made this set-up the larger part of the test on a loaded machine.
    for n in range(20_000):
        os.mknod(live / f"{n:05d}.txt.locked")
    args = {
        "paths": [str(live)],
        "staging": str(staging),
        "quarantine": str(tmp_path / "books" / ".lg" / "quarantine" / "c001"),
        "snapshot_time": SNAPSHOT_TIME,
    }
    result = run(args, capsys)
    assert len(result["quarantined"]) == 20_000
    assert sorted(p.name for p in live.iterdir()) == ["a.csv"]


def test_sweep_checks_quarantined_paths_by_set_membership(site):
    class Module:
        params = {**site["args"], "sample_bytes": 65536, "entropy_bits": 7.2}
        check_mode = True

    swapper = restore_swap.Swapper(Module())
    assert isinstance(swapper.quarantined_paths, set)


# -- check mode still changes nothing ---------------------------------------------------------------------------------


def test_check_mode_creates_no_quarantine_and_no_journal(site, capsys):
    before = tree(site["live"])
    result = run(site["args"], capsys, check_mode=True)
    assert result["changed"] is True and result["quarantined"]
    assert tree(site["live"]) == before
    assert not site["quarantine"].exists()
