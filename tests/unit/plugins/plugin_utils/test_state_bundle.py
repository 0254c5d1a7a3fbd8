"""A host's state bundle filed in the evidence folder on the controller (plugin_utils.evidence_files.unpack_bundle,
behind the state_capture action): the module's own archive unpacks into a 0700 folder, each file 0600 with its exact
bytes; an archive with anything but flat regular files (it comes from a host that may be compromised) is refused
before a file is written."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import state_capture
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return raw.getvalue()


def test_the_modules_archive_unpacks_private_and_exact(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    files = {"mounts.txt": "挂载 /srv/账套\n".encode(), "journal.txt": b"\xff not utf-8\n", "df.txt": b""}
    for name, data in files.items():
        (host / name).write_bytes(data)
    state_capture.pack(str(host), str(tmp_path / "state.tar.gz"), list(files))
    folder = tmp_path / "证据" / "hosts" / "会计服务器"
    written = ef.unpack_bundle((tmp_path / "state.tar.gz").read_bytes(), str(folder))
    assert sorted(written) == sorted(files)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct(folder.parent.stat().st_mode & 0o777) == "0o700"
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
        assert oct((folder / name).stat().st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(folder)) == sorted(files)  # no temporary file left


@pytest.mark.parametrize(
    "bad",
    [
        ("../escape.txt", tarfile.REGTYPE),
        ("sub/mounts.txt", tarfile.REGTYPE),
        (".hidden", tarfile.REGTYPE),
        ("link.txt", tarfile.SYMTYPE),
        ("folder", tarfile.DIRTYPE),
        ("fifo", tarfile.FIFOTYPE),
    ],
)
def test_anything_but_flat_regular_files_is_refused_before_writing(tmp_path, bad):
    name, kind = bad
    odd = tarfile.TarInfo(name)
    odd.type = kind
    odd.linkname = "/etc/shadow" if kind == tarfile.SYMTYPE else ""
    data = tar_gz([(tarfile.TarInfo("mounts.txt"), b"ok\n"), (odd, b"x")])
    folder = tmp_path / "ev"
    with pytest.raises(ValueError, match="which is not a plain file: nothing unpacked"):
        ef.unpack_bundle(data, str(folder))
    assert not folder.exists()
    assert not (tmp_path / "escape.txt").exists()


def test_a_broken_archive_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"the state bundle is not a readable \.tar\.gz"):
        ef.unpack_bundle(b"not a tar.gz at all", str(tmp_path / "ev"))
    assert not (tmp_path / "ev").exists()
