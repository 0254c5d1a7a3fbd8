"""The benchmark harness's own parsing and measuring helpers: bench/common.py, bench/module_host.py, bench/report.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench import common, report  # noqa: E402


def test_parse_time_output_plain():
    assert common.parse_time_output("12.34 3.50 0.25 20480\n") == {
        "wall_seconds": 12.34,
        "cpu_seconds": 3.75,
        "max_rss_kib": 20480,
    }


def test_parse_time_output_after_a_note():
    # GNU time writes "Command exited with non-zero status N" before the figures when the command fails
    text = "Command exited with non-zero status 1\n0.01 0.00 0.00 1536\n"
    assert common.parse_time_output(text)["max_rss_kib"] == 1536


def test_parse_time_output_rejects_short_output():
    with pytest.raises(ValueError, match="does not end with"):
        common.parse_time_output("1.0 2.0\n")


def test_parse_module_output_skips_noise_before_the_result():
    assert common.parse_module_output('warning: something\n{"changed": true, "files": 3}\n') == {
        "changed": True,
        "files": 3,
    }


def test_parse_module_output_without_json():
    with pytest.raises(ValueError, match="no JSON result"):
        common.parse_module_output("Traceback (most recent call last):\n  boom\n")


def test_parse_rss_report():
    assert common.parse_rss_report('{"module_kib": 30000, "children_kib": 0}') == {
        "module_kib": 30000,
        "children_kib": 0,
    }
    with pytest.raises(ValueError, match="children_kib is not a non-negative integer"):
        common.parse_rss_report('{"module_kib": 30000}')
    with pytest.raises(ValueError, match="module_kib"):
        common.parse_rss_report('{"module_kib": -1, "children_kib": 5}')
    assert common.parse_rss_report(
        '{"module_kib": 30000, "children_kib": 0, "module_cpu_s": 0.21, "children_cpu_s": 17}'
    ) == {"module_kib": 30000, "children_kib": 0, "module_cpu_s": 0.21, "children_cpu_s": 17.0}
    with pytest.raises(ValueError, match="children_cpu_s is not a non-negative number"):
        common.parse_rss_report('{"module_kib": 1, "children_kib": 0, "children_cpu_s": "1.0"}')


@pytest.mark.skipif(not Path(common.TIME).exists(), reason="GNU time (/usr/bin/time) is not installed")
def test_measure_module_splits_module_and_child_memory(tmp_path):
    """A real module process: 48 MiB held by the module itself, 96 MiB by a child it waits for, which also spends
    0.4 CPU seconds."""
    module = tmp_path / "memory_probe.py"
    module.write_text(
        textwrap.dedent(
            f"""
            import subprocess
            from ansible.module_utils.basic import AnsibleModule

            def main():
                module = AnsibleModule(argument_spec={{"mib": {{"type": "int"}}, "child_mib": {{"type": "int"}}}})
                held = bytearray(module.params["mib"] << 20)
                held[::4096] = b"x" * len(held[::4096])  # touch every page
                code = (
                    "import time; b = bytearray({{0}} << 20); b[::4096] = b'x' * len(b[::4096])\\n"
                    "while time.process_time() < 0.4: pass"
                )
                code = code.format(module.params["child_mib"])
                subprocess.run([{sys.executable!r}, "-c", code], check=True)
                module.exit_json(changed=False, held=len(held))

            if __name__ == "__main__":
                main()
            """
        )
    )
    res = common.measure_module(module, {"mib": 48, "child_mib": 96}, tmp_path)
    assert res["result"]["held"] == 48 << 20
    assert 48 * 1024 <= res["module_rss_kib"] < 96 * 1024
    assert res["children_rss_kib"] >= 96 * 1024
    assert res["max_rss_kib"] >= res["children_rss_kib"]
    assert res["children_cpu_seconds"] >= 0.4
    assert 0 < res["module_cpu_seconds"] < res["children_cpu_seconds"]
    # GNU time counts the whole tree (its figures have two decimals), and also the interpreter's teardown after the
    # module's atexit report: 0.054 s on a slow, loaded 2-core machine (a clean-clone make test, 2026-12-07)
    split = res["module_cpu_seconds"] + res["children_cpu_seconds"]
    assert split - 0.02 <= res["cpu_seconds"] < split + 0.15
    assert not list(tmp_path.glob("*.args.json")), "the args file (it may hold a password) must be removed"


@pytest.mark.skipif(not Path(common.TIME).exists(), reason="GNU time (/usr/bin/time) is not installed")
def test_measure_module_raises_with_the_module_message(tmp_path):
    module = tmp_path / "failing.py"
    module.write_text(
        "from ansible.module_utils.basic import AnsibleModule\n"
        "AnsibleModule(argument_spec={}).fail_json(msg='target /srv/x is not empty')\n"
    )
    with pytest.raises(RuntimeError, match="target /srv/x is not empty"):
        common.measure_module(module, {}, tmp_path)


def _run(scale: float, rows: list[tuple[str, float]]) -> dict:
    return {
        "scale": scale,
        "rows": [
            {"label": label, "module": label.split()[0], "module_rss_mib": rss, "children_rss_mib": 0.0}
            for label, rss in rows
        ],
    }


def test_largest_runs_and_growth():
    quick = _run(0.02, [("restic_restore", 26.0)])
    quarter = _run(0.25, [("restic_restore", 34.0), ("file_manifest", 27.0)])
    full = _run(1.0, [("restic_restore", 50.0), ("file_manifest", 27.2), ("write_freeze", 26.7)])
    big, small = report._largest_runs({"runs": {"0.02": quick, "0.25": quarter, "1.0": full}})
    assert big is full and small is quarter
    assert report.grown(big, small) == [("restic_restore", 34.0, 50.0)]
    assert report.grown(big, None) == []
    assert report._largest_runs({"runs": {}}) == (None, None)
    # the only smaller run is far smaller than an eighth: no comparison rather than a misleading one
    assert report._largest_runs({"runs": {"0.02": quick, "1.0": full}}) == (full, None)


def test_verification_text():
    res = {
        "verification_ratio": 1.21,
        "median_incident_seconds": 12.1,
        "median_restic_seconds": 10.0,
        "target_verification_ratio": 1.3,
        "meets_verification_target": True,
    }
    text = " ".join(report._verification(res))
    assert "**1.21x**" in text and "12.1 s against 10.0 s" in text and "met in this run" in text
    assert "not measured" in " ".join(report._verification({}))


def test_issue15_summary_rows():
    step = {"clients": 30, "rounds": 6}
    step["first"], step["unchanged"] = {"module_process_share": 0.0084}, {"module_process_share": 0.0096}
    whole = {"clients": 30, "rounds": 4, "contenders": ["role", "floor"]}
    for kind, role, floor in (("first", 0.084, 0.0114), ("unchanged", 0.1389, 0.0442)):
        whole[kind] = {"role": {"overhead_wall": role}, "floor": {"overhead_wall": floor}}
    assert report._issue15_summary(step, whole) == [
        "| backup: the role's step (`restic_backup`, no manifest) vs plain `restic backup`, 30 clients | < 5 % | "
        "module process 0.84 % / 0.96 % of its restic runs' CPU (first / unchanged, medians of 6 rounds; met) |",
        "| backup: the whole role (ansible-playbook) vs plain `restic backup`, 30 clients | reported (fixed cost per "
        "run) | first: role +8.4 %, one-task playbook +1.1 %; unchanged: role +13.9 %, one-task playbook +4.4 % "
        "(wall, medians of 4 rounds) |",
    ]
    step["unchanged"]["module_process_share"] = 0.051
    assert "; **missed**) |" in report._issue15_summary(step, None)[0]
    # a run without the floor (an older --contender role run) and no runs at all: no rows rather than half a claim
    assert report._issue15_summary(None, dict(whole, contenders=["role"])) == []
    assert report._issue15_summary(None, None) == []


def test_module_host_usage_message():
    proc = subprocess.run([sys.executable, str(common.MODULE_HOST)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "RSS_OUT MODULE_PATH ARGS_FILE" in proc.stderr


def test_report_keeps_hand_written_blocks(tmp_path, monkeypatch):
    """A re-rendered docs/benchmarks.md keeps every hand-written block in its section (at the section's slot, else at
    its end) and a block whose section is gone at the page's end, so `make bench` never erases an analysis."""
    doc = tmp_path / "benchmarks.md"
    analysis = [report.KEPT_OPEN, "### 客户成本分析", "", "Measured by hand: 0.49 CPU s.", report.KEPT_CLOSE]
    gone = [report.KEPT_OPEN, "An old section's note.", report.KEPT_CLOSE]
    fleet = [report.KEPT_OPEN, "Fleet note.", report.KEPT_CLOSE]
    doc.write_text(
        "\n".join(["# Benchmarks", "", "## Per-client cost: one host, 3 and 30 clients (issue 19)", "", "old text", "",
                   *analysis, "", "## Retired section", "", *gone, "", "## Fleet: the incident playbook", "", *fleet])
        + "\n",
        encoding="utf-8",
    )  # fmt: skip
    monkeypatch.setattr(report, "DOC", doc)
    monkeypatch.setattr(report, "IMG", tmp_path / "img")
    (tmp_path / "img").mkdir()
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "client_cost.json").write_text(
        json.dumps({"description": "The incident playbook, 3 and 30 clients.", "note": "Run note.", "points": []}),
        encoding="utf-8",
    )
    report.write()
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Per-client cost: one host, 3 and 30 clients (issue 19)")
    at = lines.index(report.KEPT_OPEN, start)
    # at the slot: after the description, before the generated run's own subsection
    assert lines[start + 2] == "The incident playbook, 3 and 30 clients."
    assert lines[at : at + len(analysis)] == analysis
    assert lines.index("### The last client_cost run") > at
    assert report.KEPT_SLOT not in lines
    assert "Fleet note." in lines[lines.index(next(x for x in lines if x.startswith("## Fleet"))) :]
    assert lines.index("An old section's note.") > lines.index("## Retired section")
    assert "old text" not in lines
    # and rendering twice changes nothing
    first = doc.read_text(encoding="utf-8")
    report.write()
    assert doc.read_text(encoding="utf-8") == first


def test_report_refuses_an_unclosed_hand_written_block():
    with pytest.raises(ValueError) as err:
        report.kept_blocks(f"## Fleet\n\n{report.KEPT_OPEN}\nnote\n")
    assert str(err.value) == (
        f"docs/benchmarks.md: a block opened with {report.KEPT_OPEN!r} in '## Fleet' is never closed"
    )


def test_drill_bench_counts_task_results_from_the_recap():
    from bench.drill_bench import RECAP

    out = (
        b"PLAY RECAP *****\n"
        b"books03      : ok=88   changed=12   unreachable=0    failed=0    skipped=9    rescued=0    ignored=0\n"
        b"localhost    : ok=2    changed=0    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0\n"
    )
    assert [tuple(map(int, m)) for m in RECAP.findall(out)] == [(88, 12, 0, 0, 9), (2, 0, 0, 0, 1)]
