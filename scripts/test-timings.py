#!/usr/bin/env python3
"""Seconds per integration test file, from a pytest JUnit XML report, into tests/integration/timings.json; and the
CPU seconds per file (recorded by tests/conftest.py), printed.

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

CPU_PROPS = ("cpu_s", "server_cpu_s")
OUT = Path(__file__).resolve().parents[1] / "tests" / "integration" / "timings.json"


def main(report: str) -> int:
    seconds: dict[str, float] = defaultdict(float)
    cpu: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (see above)
        parts = case.get("classname", "").split(".")  # tests.integration.test_x[.TestClass]
        last = next((i for i, part in enumerate(parts) if part.startswith("test_")), None)
        if last is None:
            continue
        name = "/".join(parts[: last + 1]) + ".py"
        seconds[name] += float(case.get("time") or 0)
        # tests/conftest.py records each test's CPU seconds as the properties cpu_s and server_cpu_s
        for prop in case.iter("property"):
            if prop.get("name") in CPU_PROPS:
                cpu[name][CPU_PROPS.index(prop.get("name"))] += float(prop.get("value") or 0)
    ordered = dict(sorted(((name, round(value)) for name, value in seconds.items()), key=lambda kv: -kv[1]))
    OUT.write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")
    print(f"test-timings: {len(ordered)} files, {sum(ordered.values())} s in all, written to {OUT}")
    if cpu:
        total = [sum(pair[0] for pair in cpu.values()), sum(pair[1] for pair in cpu.values())]
        print(
            f"CPU seconds: {total[0]:.0f} by the tests and what they ran, {total[1]:.0f} by the moto servers; per file:"
        )
        print(f"{'wall s':>8} {'CPU s':>8} {'moto s':>8}  file")
        for name, (own, server) in sorted(cpu.items(), key=lambda kv: -sum(kv[1])):
            print(f"{seconds[name]:8.0f} {own:8.1f} {server:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
