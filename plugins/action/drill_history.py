# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.drill_history: the module appends the drill record on the host and returns the
history's bytes; the plugin parses them into ``history`` (the drill report's trend) and, with ``copy_to``, writes them
on the controller (the drill's evidence folder) in the same task. The drill role took eight tasks per host for this
(history folder, lineinfile, slurp, a set_fact to parse it, the metrics folder and file, the evidence folder and a
copy; issue 19). The bytes are kept out of the task's result.

Documentation: plugins/modules/drill_history.py.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.module_utils import drill as _drill


def make_folders(folder: str, mode: int) -> None:
    """``folder`` and its missing parents, each created with ``mode`` (as ansible.builtin.file state=directory)."""
    missing = []
    cur = folder
    while not os.path.lexists(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    for path in reversed(missing):
        os.mkdir(path)
        os.chmod(path, mode)
    os.chmod(folder, mode)


def copy_bytes(path: str, data: bytes, check: bool = False) -> bool:
    """Write ``data`` to the controller file ``path`` (mode 0640, atomically) when it differs, its folders made
    mode 0750; whether it was (or would be) written."""
    try:
        with open(path, "rb") as handle:
            same = handle.read() == data
    except FileNotFoundError:
        same = False
    if same:
        if not check:
            os.chmod(path, 0o640)
        return False
    if check:
        return True
    folder = os.path.dirname(path)
    make_folders(folder, 0o750)
    fd, tmp = tempfile.mkstemp(prefix=".history.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        copy_to = args.pop("copy_to", None)
        if copy_to is not None and (not isinstance(copy_to, str) or not os.path.isabs(copy_to)):
            result.update(
                failed=True,
                msg=f"drill_history: copy_to must be an absolute path on the controller (the history's copy in the "
                f"evidence folder), got {copy_to!r}.",
            )
            return result
        module_name = self._task.resolved_action or self._task.action
        result.update(self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        encoded = result.pop("content", None)
        if result.get("failed"):
            return result
        try:
            data = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            result.update(failed=True, msg=f"drill_history: the module returned history that is not base64: {exc}")
            return result
        result["history"] = _drill.parse_history(data.decode("utf-8", errors="replace"))
        if copy_to is not None:
            try:
                result["copied"] = copy_bytes(copy_to, data, check=bool(self._task.check_mode))
            except OSError as exc:
                result.update(
                    failed=True,
                    msg=f"drill_history: cannot copy the host's history to {copy_to} on the controller: "
                    f"{exc.strerror or exc} ({exc.filename or copy_to}); check that the evidence folder is writable "
                    "by the user running the playbook",
                )
                return result
            result["changed"] = bool(result.get("changed")) or result["copied"]
        return result
