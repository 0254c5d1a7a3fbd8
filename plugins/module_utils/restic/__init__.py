# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic engine: a small, private wrapper around the restic binary, in six parts (lowest first):

- ``url``: repository strings (backend, credentials in a URL, redaction, sftp parts and ssh command);
- ``run``: the child's environment, the 0600 password file, safe argv, the subprocess, version/feature detection,
  the reachability probes;
- ``errors``: ResticError and the classifier, a table of restic's messages -> kind, message, hint;
- ``parsers``: restic's JSON / JSON-lines / check output -> snapshots, listings, summaries, findings (times
  through module_utils/timeutil.py);
- ``engine``: the Restic class (snapshots, listings, map_path / layout, covering, stale locks);
- ``module``: the shared argument spec, the engine built from a module's options, run_module.

Code imports from the submodule that defines a name. The package itself loads none of them: an action plugin that
needs only ``url`` (plugin_utils/restic_action.py, loaded by the worker process of every restic task) does not pay
for the engine, and the payload Ansible builds for a module holds only the parts its imports name. For the tests and
the interactive reader, ``restic.X`` still finds X in whichever part defines it (loaded on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

# In dependency order: the first part that defines a name answers for it.
PARTS = ("url", "run", "errors", "parsers", "engine", "module")


def __getattr__(name: str) -> Any:
    """``restic.X``: X from the part that defines it, for code outside the collection's plugins (tests, a shell)."""
    if not name.startswith("__"):
        for part in PARTS:
            module = importlib.import_module(f"{__name__}.{part}")
            if name in vars(module):
                return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
