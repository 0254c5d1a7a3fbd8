# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin ledgerguard.recovery.state_capture: the module runs on the host as before; with ``evidence_dir``
the plugin then brings the packed bundle (``archive``) to the controller and files it in the incident's evidence
folder in the same task: the folder made 0700, ``state-bundle.tar.gz`` and every file of it written 0600, then the
folder's ``SHA256SUMS``. Before, that was four more tasks (a folder task, fetch, unarchive, evidence_sums) and, in a
dry run, a message task. The bundle's bytes come back in the module's own result (return_archive, issue 19: no
second module run, a slurp, to read it) and are kept out of the task's result.

Documentation: plugins/modules/state_capture.py. Unpacking is plugin_utils/evidence_files.py's, the sums
plugin_utils/evidence_pack.py's.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_files as ef
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils import evidence_pack as ep

BUNDLE_NAME = "state-bundle.tar.gz"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        evidence_dir = args.pop("evidence_dir", None)
        if evidence_dir and not args.get("archive"):
            result.update(failed=True, msg="state_capture: evidence_dir needs archive (the bundle to bring into it).")
            return result
        problem = evidence_dir and ef.not_absolute("state_capture", "evidence_dir", evidence_dir)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        module_name = self._task.resolved_action or self._task.action
        if evidence_dir and not self._task.check_mode:
            args["return_archive"] = True
        result.update(self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        content = result.pop("archive_content", None)
        if not evidence_dir or result.get("failed"):
            return result
        evidence_dir = str(evidence_dir)
        result["evidence_dir"] = evidence_dir
        if self._task.check_mode:
            hashed = ", ".join(args.get("manifest_paths") or []) or "no existing path"
            result["msg"] = (
                f"Dry run: the state bundle (mounts, disk usage, services, processes, journal, sha256 manifest of "
                f"{hashed}) would be collected into {evidence_dir}/."
            )
            return result
        result.update(self._file_bundle(str(args["archive"]), evidence_dir, content))
        return result

    def _file_bundle(self, archive: str, evidence_dir: str, content: str | None) -> dict[str, Any]:
        """The archive as the module returned it (read on the host by the module that packed it: works with become
        and every connection), unpacked and summed."""
        if not content:
            msg = f"state_capture: the bundle {archive} could not be read from the host: the module returned no content"
            return {"failed": True, "msg": msg}
        data = base64.b64decode(content)
        try:
            files = ef.unpack_bundle(data, evidence_dir)
            ef.write_private_bytes(os.path.join(evidence_dir, BUNDLE_NAME), data)
            sums = ep.write_sums(evidence_dir)
        except (OSError, ValueError, ep.EvidenceError) as exc:
            msg = f"state_capture: the bundle was not filed in {evidence_dir}: {exc}. Check the folder and run again."
            return {"failed": True, "msg": msg}
        return {"evidence_files": [BUNDLE_NAME, *files], "evidence_sums": sums["path"]}
