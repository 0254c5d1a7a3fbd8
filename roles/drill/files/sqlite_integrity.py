# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run SQLite's PRAGMA integrity_check on restored files, read-only (run by the drill role via ansible.builtin.script).

Usage: sqlite_integrity.py FILE [FILE...]

Prints one JSON object: {"ok": bool, "files": [{"path", "ok", "result"}]}. A file that is not a SQLite database
(or cannot be opened) is reported as not ok with the error. The database is opened with mode=ro&immutable=1 so no
journal or WAL file is created inside the sandbox.
"""

import json
import sqlite3
import sys
from urllib.parse import quote


def check(path):
    uri = "file:" + quote(path) + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {"path": path, "ok": False, "result": f"cannot check: {exc}"}
    lines = [str(r[0]) for r in rows]
    return {"path": path, "ok": lines == ["ok"], "result": "; ".join(lines[:20])}


def main(argv):
    results = [check(p) for p in argv[1:]]
    print(json.dumps({"ok": all(r["ok"] for r in results), "files": results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
