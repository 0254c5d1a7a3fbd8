"""Issue 13 item 8: the restore's work folder is created exclusively as root, mode 0700, checked with lstat; a planted
folder or link is refused with a clear message. Also safe_fs's building blocks."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import safe_fs
from ansible_collections.ledgerguard.recovery.plugins.modules import work_dir
from conftest import module_result

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the work folder is root's (chown to another user)")


def run(args: dict, capsys, check_mode: bool = False) -> dict:
    return module_result(work_dir.main, args, capsys, check_mode)


def test_creates_root_only_folders_idempotently(tmp_path, capsys):
    path = tmp_path / "客户账套" / ".ledgerguard-INC-1"
    path.parent.mkdir()
    os.chmod(path.parent, 0o1777)  # users can write the parent
    args = {"path": str(path), "subdirs": ["staging/c001/run-1", "quarantine/c001"]}
    planned = run(args, capsys, check_mode=True)
    assert planned["changed"] is True and not path.exists()
    assert str(path / "staging" / "c001" / "run-1") in planned["created"]
    first = run(args, capsys)
    assert first["changed"] is True and sorted(first["created"]) == sorted(planned["created"])
    for p in (path, path / "staging", path / "staging" / "c001" / "run-1", path / "quarantine" / "c001"):
        st = os.lstat(p)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700, p
    again = run(args, capsys)
    assert again["changed"] is False and again["created"] == []


@pytest.mark.parametrize("planted", ["other-owner", "symlink", "wide-mode", "file"])
def test_planted_work_folder_is_refused(tmp_path, capsys, planted):
    path = tmp_path / ".ledgerguard-INC-1"
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o700)
    if planted == "other-owner":
        path.mkdir(mode=0o700)
        os.chown(path, 1000, 1000)
    elif planted == "symlink":
        os.symlink(elsewhere, path)
    elif planted == "wide-mode":
        path.mkdir()
        os.chmod(path, 0o777)
    else:
        path.write_text("")
    result = run({"path": str(path), "subdirs": ["staging/c001/run-1"]}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(f"work_dir: {path} exists but is not ledgerguard's own folder: ")
    assert f"move it aside for inspection (mv '{path}' '{path}.suspect') and re-run" in result["msg"]
    assert list(elsewhere.iterdir()) == []  # nothing created through the link


def test_planted_subfolder_is_refused(tmp_path, capsys):
    path = tmp_path / ".ledgerguard-INC-1"
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    os.symlink("/etc", path / "staging")
    result = run({"path": str(path), "subdirs": ["staging/c001"]}, capsys)
    assert result["failed"] is True and "it is a symbolic link" in result["msg"]
    assert result["msg"].startswith(f"work_dir: {path / 'staging'} exists")


def test_bad_subdir(tmp_path, capsys):
    result = run({"path": str(tmp_path / "w"), "subdirs": ["../x"]}, capsys)
    assert result["msg"] == f"work_dir: subdir '../x' must be a relative path inside {tmp_path / 'w'} without '..'"


def test_parents_and_read_give_the_markers_of_an_earlier_run_in_one_run(tmp_path, capsys):
    """Issue 19: restore_clients creates its marker folder (and the folders above it) and reads the markers of an
    earlier run in one work_dir run; only regular files whose names match are read."""
    path = tmp_path / "state" / "incidents" / "INC-1" / "restore"
    args = {"path": str(path), "parents": True, "read": ["*.done.json"]}
    planned = run(args, capsys, check_mode=True)
    assert planned["changed"] is True and planned["files"] == {} and not (tmp_path / "state").exists()
    assert planned["created"] == [str(tmp_path / "state"), str(path.parent.parent), str(path.parent), str(path)]
    first = run(args, capsys)
    assert first["created"] == planned["created"] and first["files"] == {}
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700 and stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o755
    (path / "c001.done.json").write_text('{"id": "c001", "name": "杭州示例贸易有限公司"}\n', encoding="utf-8")
    (path / "c002.swapped.json").write_text("{}", encoding="utf-8")
    os.symlink("/etc/passwd", path / "c003.done.json")
    os.mkfifo(path / "c004.done.json")
    (path / "c005.done.json").mkdir()
    for check_mode in (True, False):
        again = run(args, capsys, check_mode=check_mode)
        assert again["changed"] is False and again["created"] == []
        assert again["files"] == {"c001.done.json": '{"id": "c001", "name": "杭州示例贸易有限公司"}\n'}


def test_read_refuses_a_planted_marker_folder_and_text_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "restore"
    path.mkdir()
    os.chmod(path, 0o755)
    (path / "c001.done.json").write_bytes(b"\xff\xfe")
    result = run({"path": str(path), "read": ["*.done.json"]}, capsys)
    assert result["failed"] is True and result["msg"].startswith(f"work_dir: {path} exists but is not ledgerguard's")
    os.chmod(path, 0o700)
    result = run({"path": str(path), "read": ["*.done.json"]}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(f"work_dir: {path / 'c001.done.json'} is not UTF-8 text (invalid start byte")


def test_parents_follow_no_link(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    path = tmp_path / "link" / "incidents" / "restore"
    result = run({"path": str(path), "parents": True}, capsys)
    assert result["failed"] is True and "each must be a folder reached without symbolic links" in result["msg"]
    assert list((tmp_path / "real").iterdir()) == []


# -- safe_fs ---------------------------------------------------------------------------------------------------------


def test_open_path_follows_no_link(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    os.close(safe_fs.open_path(str(tmp_path / "real")))
    with pytest.raises(OSError) as err:
        safe_fs.open_path(str(tmp_path / "link" / "x"))
    assert err.value.errno == errno.ELOOP and err.value.filename == str(tmp_path / "link")


def test_open_regular_refuses_fifo_and_link(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/etc/passwd", tmp_path / "link")
    dfd = safe_fs.open_path(str(tmp_path))
    try:
        for name in ("fifo", "link"):
            with pytest.raises(safe_fs.NotRegularFile):
                safe_fs.open_regular(name, dfd)
    finally:
        os.close(dfd)


def test_free_name_counts_dangling_links(tmp_path):
    os.symlink("/nonexistent", tmp_path / "a.txt")
    (tmp_path / "a.txt.1").write_text("")
    dfd = safe_fs.open_path(str(tmp_path))
    try:
        assert safe_fs.free_name(dfd, "a.txt") == "a.txt.2"
        assert safe_fs.free_name(dfd, "b.txt") == "b.txt"
    finally:
        os.close(dfd)


def test_rename_noreplace_never_replaces(tmp_path):
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("earlier")
    dfd = safe_fs.open_path(str(tmp_path))
    try:
        with pytest.raises(FileExistsError):
            safe_fs.rename_noreplace(dfd, "a", dfd, "b")
        safe_fs.rename_noreplace(dfd, "a", dfd, "c")
    finally:
        os.close(dfd)
    assert (tmp_path / "b").read_text() == "earlier" and (tmp_path / "c").read_text() == "new"
