"""The generated reference docs (docs/modules.md, docs/filters.md, roles/*/README.md) match their sources.

scripts/gen-docs.py --check regenerates everything into a temporary folder and diffs it with the committed files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_match_their_sources():
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_HOME": str(ROOT / ".cache/ansible-home")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-docs.py"), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, (
        "The committed docs drifted from the modules' DOCUMENTATION, the filters' docs or the roles' "
        "meta/argument_specs.yml. Regenerate with `make docs` (python scripts/gen-docs.py) and commit.\n"
        + run.stdout[-20000:]
        + run.stderr[-3000:]
    )
    undocumented = [line for line in run.stderr.splitlines() if "has no documentation of its own" in line]
    assert not undocumented, "filters without documentation:\n" + "\n".join(undocumented)
