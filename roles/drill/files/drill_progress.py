# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report the progress of a running drill restore (run by the drill role through ansible.builtin.script).

Usage: drill_progress.py TARGET RESULTS_FILE [TOTAL_BYTES] [LABEL]

Prints one JSON object: {"ledgerguard_progress": {"done", "total", "unit", "label"}, "finished": bool} where done is
the bytes of regular files under TARGET so far and finished tells whether the async job behind RESULTS_FILE (the
`results_file` of an `async` task) has ended. The ledgerguard CLI draws it as a progress bar.
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


def job_finished(results_file):
    try:
        with open(results_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return False
    except ValueError:
        return False  # being written
    return "started" not in data or bool(data.get("finished"))


def main(argv):
    if len(argv) < 3:
        print(json.dumps({"failed": True, "msg": "usage: drill_progress.py TARGET RESULTS_FILE [TOTAL] [LABEL]"}))
        return 2
    target, results_file = argv[1], argv[2]
    total = int(argv[3]) if len(argv) > 3 and argv[3].isdigit() and int(argv[3]) > 0 else None
    label = argv[4] if len(argv) > 4 else "restore"
    finished = job_finished(results_file)
    done = tree_bytes(target) if os.path.isdir(target) else 0
    if total is not None and finished:
        done = max(done, total)
    progress = {"done": done, "total": total, "unit": "bytes", "label": label}
    print(json.dumps({"ledgerguard_progress": progress, "finished": finished}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
