"""What the CLI's commands share (``cli`` and ``schedule`` both import it; neither imports the other): exit codes,
the operator-error exception, and the check of a secret file given by path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TARGETS_MISSED = 0, 1, 2, 3


class BadInput(Exception):
    """Raised for operator errors; main() prints the message and exits 2."""


def check_secret_file(path: str | None, option: str) -> str | None:
    """Absolute path of a secret file after checking it exists, is a regular file and is not group/other readable."""
    if not path:
        return None
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise BadInput(f"{option} {path}: no such file; give the path of a file that holds the secret") from None
    except OSError as exc:
        raise BadInput(f"{option} {path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{option} {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise BadInput(
            f"{option} {path} has mode {mode:04o}: it holds a secret and must be readable by its owner only; "
            f"run 'chmod 600 {path}' and retry"
        )
    if not os.access(p, os.R_OK):
        raise BadInput(f"{option} {path} is not readable by this user")
    return str(p.resolve())
