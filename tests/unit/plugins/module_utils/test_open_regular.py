"""Issue 13 item 7: FIFOs and device nodes never hang or get opened by hashing (manifest.hash_file, the walk behind
file_manifest) or by damage sampling (damage.read_sample). Everything goes through safe_fs.open_regular (the one
helper; manifest and damage import it): lstat, O_NOFOLLOW|O_NONBLOCK, fstat."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import damage
from ansible_collections.ledgerguard.recovery.plugins.module_utils import manifest as mf
from ansible_collections.ledgerguard.recovery.plugins.module_utils import safe_fs


class BlockedWriter(threading.Thread):
    """Opens the FIFO for writing, which blocks until someone opens it for reading: if it returns, the code under
    test opened the FIFO."""

    def __init__(self, fifo):
        super().__init__(daemon=True)
        self.fifo = fifo
        self.opened = threading.Event()

    def run(self):
        fd = os.open(self.fifo, os.O_WRONLY)
        self.opened.set()
        os.close(fd)

    def release(self):
        if not self.opened.is_set():
            fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
            self.opened.wait(5)
            os.close(fd)
        self.join(5)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "ledger.csv"
    os.mkfifo(path)
    return path


def in_thread(fn, *args, timeout=5.0):
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("value", fn(*args)), daemon=True)
    worker.start()
    worker.join(timeout)
    return (not worker.is_alive()), out.get("value")


def test_read_sample_of_a_fifo_returns_at_once_without_opening_it(fifo):
    writer = BlockedWriter(fifo)
    writer.start()
    try:
        done, value = in_thread(damage.read_sample, str(fifo), 4096, timeout=3)
        assert done, "read_sample blocked on a FIFO"
        assert value is None
        assert not writer.opened.wait(0.3), "read_sample opened the FIFO"
    finally:
        writer.release()


def test_read_sample_without_a_writer_does_not_hang(fifo):
    done, value = in_thread(damage.read_sample, str(fifo), 4096, timeout=3)
    try:
        assert done and value is None, "read_sample blocked on a FIFO nobody writes to"
    finally:
        if not done:  # unblock the stuck thread so the test run can end
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_hash_file_never_opens_a_fifo(fifo):
    writer = BlockedWriter(fifo)
    writer.start()
    try:
        result = mf.hash_file(os.fsencode(fifo))
        assert result[0] is None and "not a regular file (fifo)" in result[1]
        assert not writer.opened.wait(0.3), "hash_file opened the FIFO"
    finally:
        writer.release()


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_node_is_neither_read_nor_hashed(tmp_path):
    dev = tmp_path / "books.db"
    os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    assert damage.read_sample(str(dev), 16) is None
    result = mf.hash_file(os.fsencode(dev))
    assert result[0] is None and "char device" in result[1]


def test_symlink_is_not_followed(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("secret books")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert damage.read_sample(str(link), 100) is None
    assert mf.hash_file(os.fsencode(link))[0] is None
    assert damage.read_sample(str(target), 100) == b"secret books"


def test_tree_with_fifo_and_device_is_hashed_and_they_are_reported(tmp_path):
    tree = tmp_path / "客户账套"
    tree.mkdir()
    (tree / "凭证.csv").write_text("1,借,100\n", encoding="utf-8")
    os.mkfifo(tree / "pipe")
    if os.geteuid() == 0:
        os.mknod(tree / "tty", 0o600 | stat.S_IFCHR, os.makedev(5, 0))
    writer = BlockedWriter(tree / "pipe")
    writer.start()
    try:
        done, records = in_thread(
            lambda: list(mf.hashed_entries(os.fsencode(tree), parallel="none")),
            timeout=10,
        )
        assert done
        by_name = {r["path"].decode(): r for r in records}
        assert by_name["凭证.csv"]["sha256"]
        assert by_name["pipe"]["type"] == "other" and "sha256" not in by_name["pipe"]
        if os.geteuid() == 0:
            assert by_name["tty"]["type"] == "other" and "sha256" not in by_name["tty"]
        assert not writer.opened.wait(0.3)
    finally:
        writer.release()


def test_open_regular_confirms_with_fstat(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc")
    fd, st = safe_fs.open_regular(str(path))
    try:
        assert os.read(fd, 10) == b"abc" and st.st_size == 3
    finally:
        os.close(fd)
    with pytest.raises(safe_fs.NotRegularFile, match="directory"):
        safe_fs.open_regular(str(tmp_path))
    # relative to a folder descriptor, as the swap opens files
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd, _st = safe_fs.open_regular("a.txt", dfd, noatime=True)
        os.close(fd)
        with pytest.raises(safe_fs.NotRegularFile, match="directory"):
            safe_fs.open_regular(".", dfd)
    finally:
        os.close(dfd)


def test_one_open_regular():
    """One helper: manifest and damage use safe_fs's (no second copy to drift)."""
    assert mf.open_regular is safe_fs.open_regular and damage.open_regular is safe_fs.open_regular
    assert mf.NotRegularFile is safe_fs.NotRegularFile and mf.file_kind is safe_fs.file_kind


def test_fifo_swapped_in_after_the_lstat_is_caught_by_fstat(tmp_path, monkeypatch, fifo):
    """The race: lstat saw a regular file, then a FIFO took its name. O_NONBLOCK keeps the open from blocking and
    fstat refuses it."""
    regular = tmp_path / "was-regular"
    regular.write_bytes(b"x")
    real_lstat = os.lstat
    monkeypatch.setattr(safe_fs.os, "lstat", lambda p, dir_fd=None: real_lstat(regular))
    done, result = in_thread(mf.hash_file, os.fsencode(fifo), timeout=3)
    assert done, "hash_file blocked on a FIFO swapped in after the check"
    assert result[0] is None and "fifo swapped in after the check" in result[1]
    done, value = in_thread(damage.read_sample, str(fifo), 10, timeout=3)
    assert done and value is None
