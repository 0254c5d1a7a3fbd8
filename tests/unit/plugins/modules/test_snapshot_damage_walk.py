"""snapshot_damage's walk: damage persists, candidates are compared with the newest clean snapshot."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.ledgerguard.recovery.plugins.modules import snapshot_damage as sd


class FakeAssessor:
    """Each snapshot holds a set of damage tokens; a snapshot is damaged against a reference when it holds a token
    the reference does not (what ls/diff/validators find between two real snapshots)."""

    def __init__(self, tokens: list[set[str]]):
        self.history = [SimpleNamespace(id=f"{n:064x}", short_id=f"{n:08x}") for n in range(1, len(tokens) + 1)]
        self.tokens = {s.id: t for s, t in zip(self.history, tokens, strict=True)}
        self.calls: list[tuple[str, str | None]] = []

    def readable_predecessor(self, history, index):
        return history[index - 1] if index > 0 else None

    def assess(self, snap, reference, carried_from=None):
        self.calls.append((snap.short_id, reference.short_id if reference else None))
        new = sorted(self.tokens[snap.id] - (self.tokens[reference.id] if reference else set()))
        reasons = [f"damage {t}" for t in new]
        if reasons and carried_from is not None:
            reasons.append(f"still carries the damage first seen in snapshot {carried_from.short_id}")
        return {"id": snap.id, "short_id": snap.short_id, "clean": not reasons, "reasons": reasons, "unusable": False}

    def assess_or_unusable(self, history, index):
        return self.assess(history[index], self.readable_predecessor(history, index))


def run(tokens, mode="until_clean", lookback=7):
    fake = FakeAssessor(tokens)
    items = sd.walk(fake, fake.history, list(range(len(tokens))), mode, lookback)
    return fake, items


def chosen(items):
    return next((i["short_id"] for i in items if i["clean"]), None)


def test_damage_that_persists_is_skipped_until_the_newest_clean_snapshot():
    # nights 1, 2 clean; damage A arrives in night 3 and is still there in nights 4 and 5
    fake, items = run([set(), set(), {"A"}, {"A"}, {"A"}])
    assert chosen(items) == fake.history[1].short_id
    by = {i["short_id"]: i for i in items}
    for night in (3, 4):
        assert "still carries the damage first seen in snapshot 00000003" in by[fake.history[night].short_id]["reasons"]
    assert by["00000003"]["reasons"] == ["damage A"]


def test_lookback_zero_trusts_the_predecessor_alone():
    fake, items = run([set(), set(), {"A"}, {"A"}], lookback=0)
    assert chosen(items) == "00000004"


def test_repaired_damage_lets_the_newer_snapshot_be_clean():
    fake, items = run([set(), {"A"}, set()])
    assert chosen(items) == "00000003"


def test_new_damage_on_top_of_older_damage():
    fake, items = run([set(), {"A"}, {"A", "B"}, {"A", "B"}])
    assert chosen(items) == "00000001"
    assert [i["short_id"] for i in items] == ["00000004", "00000003", "00000002", "00000001"]


@pytest.mark.parametrize("lookback", [0, 2, 7])
def test_damage_older_than_the_lookback_window_extends_it_when_nothing_is_clean(lookback):
    fake, items = run([set(), {"A"}, {"A", "B"}], lookback=lookback)
    assert chosen(items) == "00000001"


def test_mode_all_assesses_every_candidate_newest_first():
    fake, items = run([set(), set(), {"A"}, {"A"}], mode="all")
    assert [i["clean"] for i in items] == [False, False, True, True]


def test_clean_history_costs_lookback_extra_assessments_only():
    fake, items = run([set()] * 30, lookback=3)
    assert chosen(items) == "0000001e"
    assert len(fake.calls) == 4


# --------------------------------------------------------------------------------------------------- content signs

ROOT = "/srv/books/c001"


def assessor(ledger_paths=()):
    params = {
        "paths": [ROOT],
        "thresholds": {},
        "ransom_note_patterns": [],
        "ransom_extensions": [],
        "unusable": [],
        "validate": True,
        "ledger": {},
        "ledger_paths": list(ledger_paths),
    }
    a = sd.Assessor(SimpleNamespace(params=params), restic=None)
    a.fetches = []  # prefetch stand-in: records (snapshot, paths) instead of running restic restore
    a.prefetch = lambda snapshot_id, wanted: a.fetches.append((snapshot_id, sorted(wanted)))
    return a


def verdicts(table):
    """A verdict_of stand-in: table maps (snapshot short id, path) to a status."""

    def verdict_of(snapshot_id, path, node):
        status = table.get((snapshot_id, path), "unknown")
        reason = "SQLite quick_check failed: database disk image is malformed" if status == "invalid" else "ok"
        return sd.validators.Verdict(status, reason, "builtin:sqlite", "sqlite")

    return verdict_of


def listing(*paths, mtime="m1"):
    return {"listing": {p: {"size": 100, "mtime": mtime} for p in paths}}


def test_a_file_that_passed_and_now_fails_is_a_sign_naming_file_and_reason():
    a = assessor()
    ledger, other = f"{ROOT}/账簿/ledger.sqlite", f"{ROOT}/old.db"
    a.verdict_of = verdicts(
        {("new", ledger): "invalid", ("old", ledger): "valid", ("new", other): "invalid", ("old", other): "invalid"}
    )
    snap, ref = SimpleNamespace(id="new", short_id="new"), SimpleNamespace(id="old", short_id="old")
    reasons, validated = a.content_signs(
        snap,
        ref,
        listing(ledger, other, mtime="m2"),
        listing(ledger, other),
        {"modified": [ledger, other], "added": []},
    )
    assert reasons == [
        f"{ledger} fails validation in this snapshot: SQLite quick_check failed: database disk image is malformed "
        "(builtin:sqlite); it passed in snapshot old"
    ]
    assert {v["path"] for v in validated} == {ledger, other}
    # the older versions of both failing files come from the reference in one fetch, not one restic run each
    assert a.fetches == [("old", sorted([ledger, other]))]


def test_declared_ledger_that_fails_is_never_clean_even_unchanged():
    ledger = f"{ROOT}/账簿/ledger.sqlite"
    a = assessor(ledger_paths=[f"{ROOT}/账簿"])
    a.verdict_of = verdicts({("new", ledger): "invalid"})
    snap = SimpleNamespace(id="new", short_id="new")
    reasons, _validated = a.content_signs(snap, snap, listing(ledger), listing(ledger), {"modified": [], "added": []})
    assert reasons and reasons[0].startswith(f"ledger {ledger} fails validation in this snapshot: ")


def test_new_invalid_file_outside_the_ledgers_is_not_a_sign():
    a = assessor()
    path = f"{ROOT}/新.pdf"
    a.verdict_of = verdicts({("new", path): "invalid"})
    snap = SimpleNamespace(id="new", short_id="new")
    reasons, validated = a.content_signs(snap, None, listing(path), listing(), {"modified": [], "added": [path]})
    assert reasons == [] and validated[0]["status"] == "invalid"


def test_with_no_clean_snapshot_newer_damage_is_judged_against_the_oldest():
    # the oldest snapshot already holds damage A, B arrives in the second and persists in the third: the third is
    # compared with the oldest (its own predecessor carries B too), so it is not clean either
    fake, items = run([{"A"}, {"A", "B"}, {"A", "B"}], mode="all")
    assert [i["clean"] for i in items] == [False, False, False]
    assert ("00000003", "00000001") in fake.calls
