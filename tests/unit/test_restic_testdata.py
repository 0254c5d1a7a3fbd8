"""restic_check's diagnosis replayed on what real restic 0.14 and 0.18 printed for restic's OWN damaged test
repositories (tests/files/restic-testdata, captured by its capture.sh): ``restic check`` with and without
``--read-data``, and ``restic find --json --pack`` for each pack the check named (how restic_check's locate step tells
lost data from unused data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import restic as r

CAPTURED = Path(__file__).resolve().parents[1] / "files" / "restic-testdata" / "check"
SNAPSHOT = "d6f984f60d1449ecb15c64651c5ee766a1e67464eaccc83c6a42373de436dc35"  # repo-data-missing's one snapshot
LOST_PACK = "1959b7f2802f1d83c9eeda21f3d5c5f4ff6c4b122a59b5f5ca5e28a4970a37b4"
UNUSED = {
    "b2a0e6762aeeb8205967f326929e7f07f4997eed540fc8a759604f4baba43027",  # deleted
    "d05c81069fdf4616aaf89ddf530dd312633176e6ca8f24fd4c878e453aa57b81",  # deleted
    "f6a0bdd2515a5fc8d4253a4ba50abe03649d710cd2f6142837c86c760b94a43a",  # truncated to 0 bytes
}


def replay(repo: str, version: str, read_data: bool) -> tuple[dict, list[dict], list[dict]]:
    """(parse_check of the captured check, its lost packs, the diagnosis with the captured find --pack answers)."""
    base = CAPTURED / f"{repo}_{version}{'_read_data' if read_data else ''}"
    res = r.ResticResult(
        argv=["restic", "check"],
        rc=int(base.with_name(base.name + ".rc").read_text()),
        stdout=base.with_name(base.name + ".stdout").read_text(),
        stderr=base.with_name(base.name + ".stderr").read_text(),
    )
    parsed = r.parse_check(res)
    lost = r.lost_packs_from_check(parsed["errors"]) if not parsed["ok"] else []
    located: dict[str, dict] = {}
    for pack in lost:  # restic_check's locate step, answered by the captured 'restic find --json --pack <id>'
        found = r.parse_find_objects((CAPTURED / f"{repo}_{version}.find-{pack['id'][:8]}").read_text())
        for sid, paths in found.items():
            entry = located.setdefault(sid, {"id": sid, "short_id": sid[:8], "packs": [], "paths": []})
            entry["packs"].append(pack["id"])
            entry["paths"] += paths
    found = r.diagnose_check(parsed, res.stdout + "\n" + res.stderr, list(located.values()), (0, int(version[1:]), 0))
    return parsed, lost, found


def kinds(found: list[dict]) -> list[str]:
    return [f["kind"] for f in found]


@pytest.mark.parametrize("read_data", [False, True], ids=["structure", "read-data"])
@pytest.mark.parametrize("version", ["014", "018"])
def test_data_missing_is_data_lost_naming_the_snapshot(version, read_data):
    parsed, lost, found = replay("repo-data-missing", version, read_data)
    assert parsed["ok"] is False and [p["id"] for p in lost] == [LOST_PACK]
    assert kinds(found) == ["data_lost"] and found[0]["harmless"] is False and found[0]["repairable"] is False
    assert found[0]["packs"] == [LOST_PACK]
    assert found[0]["snapshots"] == [{"id": SNAPSHOT, "short_id": SNAPSHOT[:8], "paths": ["/home/thinkpad/data/test"]}]
    assert "Do not prune or forget" in found[0]["what_to_do"]


@pytest.mark.parametrize("read_data", [False, True], ids=["structure", "read-data"])
@pytest.mark.parametrize("version", ["014", "018"])
@pytest.mark.parametrize("repo", ["repo-index-missing", "repo-index-missing-blob"])
def test_index_missing_is_repairable_with_the_versions_command(repo, version, read_data):
    parsed, lost, found = replay(repo, version, read_data)
    assert parsed["ok"] is False and lost == []
    assert kinds(found) == ["index_incomplete"]
    finding = found[0]
    assert finding["repairable"] is True and finding["harmless"] is False and finding["extra_files"] == 2
    assert finding["repair_command"] == ("restic rebuild-index" if version == "014" else "restic repair index")
    assert finding["trees"] == (["c5897731"] if repo == "repo-index-missing" else ["705adc0d"])
    assert f"'{finding['repair_command']}'" in finding["what_to_do"]
    # the troubleshooting pointer of restic >= 0.17 and the 'additional files' hint are not repository errors
    assert not any("must be repaired" in e or "additional files" in e for e in parsed["errors"])


@pytest.mark.parametrize("read_data", [False, True], ids=["structure", "read-data"])
@pytest.mark.parametrize("version", ["014", "018"])
def test_unused_data_missing_is_harmless_truncated_pack_included(version, read_data):
    """Two packs deleted and one truncated to 0 bytes ('unexpected file size: got 0, expected 2974'), none needed by
    the snapshot: all three are found, none is data lost."""
    parsed, lost, found = replay("repo-unused-data-missing", version, read_data)
    assert parsed["ok"] is False and {p["id"] for p in lost} == UNUSED
    assert kinds(found) == ["unused_data_missing"] and found[0]["harmless"] is True
    assert set(found[0]["packs"]) == UNUSED


@pytest.mark.parametrize("read_data", [False, True], ids=["structure", "read-data"])
@pytest.mark.parametrize("version", ["014", "018"])
def test_duplicates_and_unreferenced_data_are_harmless(version, read_data):
    parsed, _lost, found = replay("repo-duplicates", version, read_data)
    assert parsed["ok"] is True and parsed["errors"] == [] and found == []
    parsed, _lost, found = replay("repo-unreferenced-data", version, read_data)
    assert parsed["ok"] is True and kinds(found) == ["unindexed_data"] and found[0]["harmless"] is True
    assert found[0]["extra_files"] == 1
