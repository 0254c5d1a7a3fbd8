"""Run one collection module the way the AnsiballZ payload does, and record its peak memory split in two.

    python bench/module_host.py RSS_OUT MODULE_PATH ARGS_FILE

AnsiballZ runs a module with ``runpy`` as ``__main__`` inside its own Python process; this does the same with the
module's source file and an args file (``{"ANSIBLE_MODULE_ARGS": {...}}``, read by ``AnsibleModule`` from
``sys.argv[1]``). When the interpreter exits (``exit_json``/``fail_json`` end with ``sys.exit``), an ``atexit`` hook
writes ``{"module_kib": ..., "children_kib": ..., "module_cpu_s": ..., "children_cpu_s": ...}`` to RSS_OUT:
``getrusage(RUSAGE_SELF).ru_maxrss`` is the peak RSS of the module's own Python process,
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` that of the largest child it waited for (restic, sha256 worker processes,
mount, ...); the CPU seconds (user + system) are split the same way: the module's own process against everything it
ran and waited for. Nothing of Ansible's controller side runs here: this measures the
module, not Ansible. Standard library only.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import runpy
import sys


def _report(path: str, pid: int) -> None:
    if os.getpid() != pid:  # a forked child that exits through sys.exit must not overwrite the module's figures
        return
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "module_kib": own.ru_maxrss,
        "children_kib": children.ru_maxrss,
        "module_cpu_s": round(own.ru_utime + own.ru_stime, 3),
        "children_cpu_s": round(children.ru_utime + children.ru_stime, 3),
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(usage, handle)


def main() -> None:
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        sys.exit(2)
    out, module, args_file = sys.argv[1:4]
    # this file's folder (bench/) must not shadow anything the module imports
    del sys.path[0]
    sys.argv = [module, args_file]
    atexit.register(_report, out, os.getpid())
    runpy.run_path(module, run_name="__main__")


if __name__ == "__main__":
    main()
