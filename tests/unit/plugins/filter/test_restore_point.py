"""Choosing the restore point from damage assessments."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.filter.restore_point import clean_restore_point


def snap(sid, time, clean=True, reasons=(), after=False, assessed=True):
    return {
        "id": sid * 8,
        "short_id": sid * 8,
        "time": time,
        "clean": None if after else clean,
        "reasons": list(reasons),
        "assessed": assessed and not after,
        "after_cutoff": after,
        "stats": {"predecessor": "prev"},
    }


HISTORY = [
    snap("d", "2026-11-26T02:00:00Z", clean=False, reasons=["ransom note present: README.txt"]),
    snap("c", "2026-11-25T02:00:00Z"),
    snap("b", "2026-11-24T02:00:00Z"),
]


def test_newest_clean_wins_and_damaged_is_skipped_with_reasons():
    got = clean_restore_point(HISTORY)
    assert got["found"] and got["chosen"]["id"] == "cccccccc"
    assert got["skipped"] == [
        {
            "id": "dddddddd",
            "short_id": "dddddddd",
            "time": "2026-11-26T02:00:00Z",
            "reasons": ["ransom note present: README.txt"],
        }
    ]
    assert (
        got["why"]
        == "newest snapshot before the loss with no sign of damage (compared with prev); 1 newer snapshot skipped"
    )


def test_order_of_input_does_not_matter():
    assert clean_restore_point(list(reversed(HISTORY)))["chosen"]["id"] == "cccccccc"


def test_loss_start_skips_newer_snapshots():
    got = clean_restore_point(HISTORY, "2026-11-25T01:00:00+00:00")
    assert got["chosen"]["id"] == "bbbbbbbb"
    assert [s["id"] for s in got["skipped"]] == ["dddddddd", "cccccccc"]
    assert got["skipped"][1]["reasons"] == [
        "taken at 2026-11-25T02:00:00Z, after the loss may have started (2026-11-25T01:00:00+00:00)"
    ]


def test_module_result_dict_accepted_and_after_cutoff_reported():
    result = {"snapshots": [snap("e", "2026-11-27T02:00:00Z", after=True)] + HISTORY}
    got = clean_restore_point(result)
    assert [s["id"] for s in got["skipped"]] == ["eeeeeeee", "dddddddd"]


def test_pin_wins_and_damage_becomes_a_warning():
    got = clean_restore_point(HISTORY, None, "dddd")
    assert got["chosen"]["id"] == "dddddddd"
    assert got["why"] == "pinned by the operator"
    assert got["warnings"] == ["pinned snapshot shows damage: ransom note present: README.txt"]


def test_unknown_pin():
    got = clean_restore_point(HISTORY, "", "ffff")
    assert got["found"] is False and got["why"] == "pinned snapshot ffff was not found among the 3 snapshots assessed"


def test_nothing_clean():
    got = clean_restore_point([HISTORY[0]])
    assert got["found"] is False
    assert got["why"] == "no clean snapshot before the loss: 1 snapshot assessed, all skipped"


def test_time_without_timezone_refused():
    with pytest.raises(AnsibleFilterError, match="has no timezone"):
        clean_restore_point(HISTORY, "2026-11-25 01:00:00")


def test_fractional_restic_times_with_zone():
    """restic prints nanoseconds; the zone after them must survive the parse."""
    history = [snap("c", "2026-11-25T02:00:00.070923123Z"), snap("b", "2026-11-24T02:00:00.5+08:00")]
    got = clean_restore_point(history, "2026-11-25T09:30:00.250+08:00")
    assert got["chosen"]["id"] == "bbbbbbbb"  # c at 02:00Z is after 01:30Z
    assert [s["id"] for s in got["skipped"]] == ["cccccccc"]


def test_unusable_snapshot_is_skipped_and_a_pin_on_it_fails_naming_the_pack():
    lost = "88338adcb6eb2e7e59a1f178cd2fdc2af3cc3a607c212fa4911d001289dbca47"
    reason = f"needs pack {lost}, which the repository lost (restic check: pack {lost}: does not exist)"
    unusable = dict(snap("e", "2026-11-26T03:00:00Z", clean=False, reasons=[reason]), unusable=True, lost_packs=[lost])
    got = clean_restore_point([unusable, *HISTORY])
    assert got["found"] and got["chosen"]["id"] == "cccccccc"
    assert got["skipped"][0] == {
        "id": "eeeeeeee",
        "short_id": "eeeeeeee",
        "time": "2026-11-26T03:00:00Z",
        "reasons": [reason],
        "unusable": True,
        "lost_packs": [lost],
    }
    pinned = clean_restore_point([unusable, *HISTORY], None, "eeee")
    assert pinned["found"] is False and pinned["chosen"] == {}
    assert pinned["why"] == (
        f"pinned snapshot eeeeeeee (2026-11-26T03:00:00Z) cannot be restored: the repository lost data it needs "
        f"(lost pack: {lost}): {reason}. Pin another snapshot, or remove the pin to let the restore point move to an "
        "older intact snapshot"
    )
