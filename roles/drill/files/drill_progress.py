# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report the progress of a running drill restore (run by the drill role through ansible.builtin.script).

Usage: drill_progress.py [--collect] TARGET RESULTS_FILE [TOTAL_BYTES] [LABEL]

Prints one JSON object: {"ledgerguard_progress": {"done", "total", "unit", "label"}, "finished": bool} where done is
the bytes of regular files under TARGET so far and finished tells whether the async job behind RESULTS_FILE (the
`results_file` of an `async` task) has ended. The ledgerguard CLI draws it as a progress bar.

With --collect, the run that sees the job ended also prints the job's own result as "result" and removes
RESULTS_FILE, as async_status (status, then cleanup) would.
"""

import json
import os
import sys


def tree_bytes(root):
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def job_result(results_file):
    """The job's final result once it ended, else None."""
    try:
        with open(results_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # being written
    return data if "started" not in data or bool(data.get("finished")) else None


def main(argv):
    collect = "--collect" in argv[1:2]
    args = argv[:1] + argv[2:] if collect else argv
    if len(args) < 3:
        usage = "usage: drill_progress.py [--collect] TARGET RESULTS_FILE [TOTAL] [LABEL]"
        print(json.dumps({"failed": True, "msg": usage}))
        return 2
    target, results_file = args[1], args[2]
    total = int(args[3]) if len(args) > 3 and args[3].isdigit() and int(args[3]) > 0 else None
    label = args[4] if len(args) > 4 else "restore"
    result = job_result(results_file)
    finished = result is not None
    done = tree_bytes(target) if os.path.isdir(target) else 0
    if total is not None and finished:
        done = max(done, total)
    progress = {"done": done, "total": total, "unit": "bytes", "label": label}
    out = {"ledgerguard_progress": progress, "finished": finished}
    if finished and collect:
        out["result"] = result
        try:
            os.unlink(results_file)
        except FileNotFoundError:
            pass
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
