#!/usr/bin/env python3
"""Seconds per integration test file, from a pytest JUnit XML report, into tests/integration/timings.json.

    python -m pytest -n 4 --dist loadfile tests/integration --junitxml=/tmp/integration.xml
    python scripts/test-timings.py /tmp/integration.xml

tests/conftest.py starts the slowest files first with these figures (longest-processing-time-first: with
``--dist loadfile`` a long file that starts last keeps one worker busy after the others finished). A file that is not
listed runs after the listed ones. The figures are relative: a loaded machine stretches all of them.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET  # noqa: S405 (our own pytest report, not untrusted input)
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "integration" / "timings.json"


def main(report: str) -> int:
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (see above)
        parts = case.get("classname", "").split(".")  # tests.integration.test_x[.TestClass]
        last = next((i for i, part in enumerate(parts) if part.startswith("test_")), None)
        if last is not None:
            seconds["/".join(parts[: last + 1]) + ".py"] += float(case.get("time") or 0)
    ordered = dict(sorted(((name, round(value)) for name, value in seconds.items()), key=lambda kv: -kv[1]))
    OUT.write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")
    print(f"test-timings: {len(ordered)} files, {sum(ordered.values())} s in all, written to {OUT}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
