# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing one file of an incident's evidence folder on the controller: private (folders 0700, file 0600), atomic,
and only when its bytes change (a re-run over the same evidence changes nothing). Used by the controller actions
evidence_file (a role's record, e.g. write_freeze's freeze.json), notice_drafts (the customer notice drafts) and
state_capture and pre_restore_snapshot (a host's state bundle, unpacked into the evidence folder: ``capture_state``)."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep


def nice_json(data: Any) -> str:
    """``data`` as Ansible's ``to_nice_json(ensure_ascii=False)`` writes it (sorted keys, 4-space indent), plus a
    final newline."""
    return json.dumps(data, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def not_absolute(owner: str, option: str, value: Any) -> str | None:
    """The message for a controller-side path option ``option`` of ``owner`` that is not absolute; None when it is."""
    if os.path.isabs(str(value)):
        return None
    return f"{owner}: {option} {value} is not absolute; give the full path."


def private_folder(folder: str, check: bool = False, mode: int = 0o700) -> bool:
    """Make ``folder`` a folder of mode 0700 (or ``mode``): created with its missing parents (each 0700), or given mode
    0700, as ``ansible.builtin.file`` with ``state=directory`` and ``mode=0700`` would. Whether it changed (would, in
    check mode). A file or a link in the way raises ``NotADirectoryError``."""
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
        return bool(missing) or stat.S_IMODE(os.stat(folder).st_mode) != mode
    for path in reversed(missing):
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
            # made meanwhile by another host's task of the same run (a shared parent), as ansible.builtin.file allows
        os.chmod(path, mode)  # the umask may have narrowed it
    if stat.S_IMODE(os.stat(folder).st_mode) != mode:
        os.chmod(folder, mode)
        return True
    return bool(missing)


def write_private(path: str, text: str, check: bool = False) -> bool:
    """Write ``text`` (UTF-8) to ``path`` (mode 0600, atomically: a temporary file in the same folder, renamed) when
    the file's bytes differ, creating its folder (0700) when missing. Whether it changed (would, in check mode)."""
    return write_private_bytes(path, text.encode("utf-8"), check)


def write_private_bytes(
    path: str, data: bytes, check: bool = False, mode: int = 0o600, folder_mode: int = 0o700
) -> bool:
    """``write_private`` for bytes (a file fetched from a host, which need not be UTF-8); ``mode`` and ``folder_mode``
    for evidence others may read (the drill's history copy: 0640 in 0750 folders)."""
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
        private_folder(folder, mode=folder_mode)
    fd, tmp = tempfile.mkstemp(prefix=".evidence-", dir=folder)
    try:
        os.fchmod(fd, mode)
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


BUNDLE_NAME = "state-bundle.tar.gz"


def capture_state(
    execute: Callable[[dict[str, Any]], dict[str, Any]],
    module_args: dict[str, Any],
    evidence_dir: str | None,
    check: bool,
    owner: str = "state_capture",
) -> dict[str, Any]:
    """Run the state_capture module (``execute(module_args)``, its ``archive`` packed on the host) and, with
    ``evidence_dir``, file the bundle in the incident's evidence folder on the controller: the folder made 0700,
    ``state-bundle.tar.gz`` and every file of it written 0600, then the folder's ``SHA256SUMS``. The bundle's bytes come
    back in the module's own result (``return_archive``: no second module run to read it) and are kept out of the
    result. In a dry run nothing is asked for or filed, and ``msg`` says what the bundle would hold. Failures name
    ``owner`` (the action that ran it)."""
    args = dict(module_args)
    if evidence_dir and not args.get("archive"):
        return {"failed": True, "msg": f"{owner}: evidence_dir needs archive (the bundle to bring into it)."}
    problem = evidence_dir and not_absolute(owner, "evidence_dir", evidence_dir)
    if problem:
        return {"failed": True, "msg": problem}
    if evidence_dir and not check:
        args["return_archive"] = True
    result = dict(execute(args))
    content = result.pop("archive_content", None)
    if not evidence_dir or result.get("failed"):
        return result
    evidence_dir = str(evidence_dir)
    result["evidence_dir"] = evidence_dir
    if check:
        hashed = ", ".join(args.get("manifest_paths") or []) or "no existing path"
        result["msg"] = (
            f"Dry run: the state bundle (mounts, disk usage, services, processes, journal, sha256 manifest of "
            f"{hashed}) would be collected into {evidence_dir}/."
        )
        return result
    if not content:
        archive = args["archive"]
        msg = f"{owner}: the bundle {archive} could not be read from the host: the module returned no content"
        return {**result, "failed": True, "msg": msg}
    data = base64.b64decode(content)
    try:
        files = unpack_bundle(data, evidence_dir)
        write_private_bytes(os.path.join(evidence_dir, BUNDLE_NAME), data)
        sums = ep.write_sums(evidence_dir)
    except (OSError, ValueError, ep.EvidenceError) as exc:
        msg = f"{owner}: the bundle was not filed in {evidence_dir}: {exc}. Check the folder and run again."
        return {**result, "failed": True, "msg": msg}
    return {**result, "evidence_files": [BUNDLE_NAME, *files], "evidence_sums": sums["path"]}
