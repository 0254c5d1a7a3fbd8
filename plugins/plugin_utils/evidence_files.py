# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing one file of an incident's evidence folder on the controller: private (folders 0700, file 0600), atomic,
and only when its bytes change (a re-run over the same evidence changes nothing). Used by the controller actions
evidence_file (a role's record, e.g. write_freeze's freeze.json), notice_drafts (the customer notice drafts) and
state_capture (a host's state bundle, unpacked into the evidence folder)."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import tempfile
from typing import Any


def nice_json(data: Any) -> str:
    """``data`` as Ansible's ``to_nice_json(ensure_ascii=False)`` writes it (sorted keys, 4-space indent), plus a
    final newline."""
    return json.dumps(data, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def not_absolute(owner: str, option: str, value: Any) -> str | None:
    """The message for a controller-side path option ``option`` of ``owner`` that is not absolute; None when it is."""
    if os.path.isabs(str(value)):
        return None
    return f"{owner}: {option} {value} is not absolute; give the full path."


def private_folder(folder: str, check: bool = False) -> bool:
    """Make ``folder`` a folder of mode 0700: created with its missing parents (each 0700), or given mode 0700, as
    ``ansible.builtin.file`` with ``state=directory`` and ``mode=0700`` would. Whether it changed (would, in check
    mode). A file or a link in the way raises ``NotADirectoryError``."""
    missing = []
    probe = folder
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not missing and not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise NotADirectoryError(f"{folder} is not a folder (a link or a file is in the way)")
    if check:
        return bool(missing) or stat.S_IMODE(os.stat(folder).st_mode) != 0o700
    for path in reversed(missing):
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # the umask may have narrowed it
    if stat.S_IMODE(os.stat(folder).st_mode) != 0o700:
        os.chmod(folder, 0o700)
        return True
    return bool(missing)


def write_private(path: str, text: str, check: bool = False) -> bool:
    """Write ``text`` (UTF-8) to ``path`` (mode 0600, atomically: a temporary file in the same folder, renamed) when
    the file's bytes differ, creating its folder (0700) when missing. Whether it changed (would, in check mode)."""
    return write_private_bytes(path, text.encode("utf-8"), check)


def write_private_bytes(path: str, data: bytes, check: bool = False) -> bool:
    """``write_private`` for bytes (a file fetched from a host, which need not be UTF-8)."""
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    except FileNotFoundError:
        pass
    if check:
        return True
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        private_folder(folder)
    fd, tmp = tempfile.mkstemp(prefix=".evidence-", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def unpack_bundle(data: bytes, folder: str) -> list[str]:
    """Unpack a host's state bundle (the ``.tar.gz`` that the state_capture module packs: flat, regular files only)
    into ``folder`` (made 0700), each file written by ``write_private_bytes`` (0600, atomic). The archive comes from
    a host that may be compromised, so anything else in it (a folder, a link, a device, a name with a ``/`` or
    starting with ``.``) is refused with ``ValueError`` before any file is written. The names written, in order."""
    files: list[tuple[str, bytes]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = member.name
                if not member.isreg() or not name or "/" in name or name.startswith("."):
                    raise ValueError(f"the state bundle holds {name!r}, which is not a plain file: nothing unpacked")
                handle = tar.extractfile(member)
                files.append((name, handle.read() if handle else b""))
    except (tarfile.TarError, EOFError) as exc:
        raise ValueError(f"the state bundle is not a readable .tar.gz ({exc})") from None
    private_folder(folder)
    for name, content in files:
        write_private_bytes(os.path.join(folder, name), content)
    return [name for name, _content in files]
