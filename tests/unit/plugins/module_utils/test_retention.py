"""Retention lint against the 会计档案管理办法 附表1 minimum periods."""

from __future__ import annotations

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import retention as r


def _by_id(result):
    return {c["id"]: c for c in result["classes"]}


def test_keep_yearly_10_fails_30_year_and_permanent_classes():
    res = r.lint_policy({"keep_daily": 7, "keep_monthly": 12, "keep_yearly": 10})
    cls = _by_id(res)
    assert res["status"] == "FAIL"
    assert cls["vouchers"]["status"] == "FAIL"
    assert cls["ledgers"]["status"] == "FAIL"
    assert cls["annual_reports"]["status"] == "FAIL"
    assert cls["vouchers"]["guaranteed_years"] == 9.0
    assert "use keep_yearly: 31 or keep_within_yearly: 30y" in cls["vouchers"]["reason"]
    # 10-year classes: keep_yearly 10 keeps a year-end snapshot only 9 years -> FAIL too.
    assert cls["periodic_reports"]["status"] == "FAIL"
    assert cls["fixed_asset_cards"]["status"] == "OK"
    assert res["reason"].startswith("forget policy could delete the last copy of: vouchers, ledgers")


def test_keep_yearly_31_with_permanent_tag_passes():
    classes = [dict(c) for c in r.DEFAULT_RECORD_CLASSES]
    for c in classes:
        if c["years"] is None:
            c["tag"] = "archive-permanent"
    res = r.lint_policy({"keep-yearly": 31, "--keep-tag": "archive-permanent,other"}, classes)
    assert res["status"] == "OK", res
    assert _by_id(res)["annual_reports"]["reason"].startswith("snapshots tagged 'archive-permanent' are kept")


@pytest.mark.parametrize(
    "policy,status",
    [
        ({"keep_within_yearly": "30y"}, "OK"),
        ({"keep_within": "29y11m"}, "FAIL"),
        ({"keep_yearly": 30}, "FAIL"),
        ({"keep_yearly": -1}, "OK"),
        ({"keep_last": 100000}, "FAIL"),
        ({"keep_monthly": 361}, "OK"),
    ],
)
def test_thirty_year_class(policy, status):
    res = r.lint_policy(policy, [{"id": "vouchers", "years": 30}])
    assert res["status"] == status, res


def test_permanent_class_needs_unlimited_rule_or_tag():
    assert r.lint_policy({"keep_within": "100y"}, [{"id": "annual", "years": None}])["status"] == "FAIL"
    assert r.lint_policy({"keep_yearly": -1}, [{"id": "annual", "years": None}])["status"] == "OK"


def test_no_policy_means_nothing_is_forgotten():
    res = r.lint_policy(None)
    assert res["status"] == "OK"
    assert all(c["status"] == "OK" for c in res["classes"])


@pytest.mark.parametrize("bad", ["30 years", "y", "30x", ""])
def test_bad_duration(bad):
    with pytest.raises(r.RetentionPolicyError, match="is not a restic duration"):
        r.parse_duration_days(bad)


def test_bad_count():
    with pytest.raises(r.RetentionPolicyError, match="keep_yearly must be an integer, got 'ten'"):
        r.lint_policy({"keep_yearly": "ten"})


def test_durations():
    assert r.parse_duration_days("1y6m") == pytest.approx(365.2425 * 1.5)
    assert r.parse_duration_days("36h") == pytest.approx(1.5)


# --- the one retention variable (ledgerguard_backup_policy.retention) and its deprecated aliases ----------------------
POLICY = {"keep_daily": 14, "keep_monthly": 24, "keep_yearly": 31, "keep_tag": ["permanent"]}


def test_the_collection_policy_is_the_one_in_force():
    found = r.resolve_retention({"method": "restic", "retention": POLICY}, {})
    assert found == {"retention": POLICY, "source": "ledgerguard_backup_policy.retention", "deprecated": []}
    assert r.resolve_retention({"retention": "keep-all"})["retention"] == "keep-all"
    assert r.resolve_retention(None, {"backup_verify_forget_policy": None, "backup_forget_policy": {}}) == {
        "retention": None,
        "source": None,
        "deprecated": [],
    }


def test_an_alias_is_read_only_when_the_collection_policy_is_not_set():
    found = r.resolve_retention({"method": "restic"}, {"backup_verify_forget_policy": POLICY})
    assert found == {
        "retention": POLICY,
        "source": "backup_verify_forget_policy",
        "deprecated": ["backup_verify_forget_policy"],
    }
    found = r.resolve_retention({}, {"backup_forget_policy": POLICY})
    assert found["source"] == "backup_forget_policy"


def test_an_alias_with_the_same_policy_in_other_spellings_is_no_conflict():
    same = {"keep-daily": 14, "--keep-monthly": 24, "keep_yearly": 31, "keep-tag": ["permanent"]}
    found = r.resolve_retention(
        {"retention": POLICY}, {"backup_verify_forget_policy": same, "backup_forget_policy": POLICY}
    )
    assert found["retention"] == POLICY
    assert found["source"] == "ledgerguard_backup_policy.retention"
    assert found["deprecated"] == ["backup_verify_forget_policy", "backup_forget_policy"]


def test_two_different_policies_are_refused_naming_both_variables():
    with pytest.raises(r.RetentionPolicyError) as err:
        r.resolve_retention({"retention": POLICY}, {"backup_verify_forget_policy": {"keep_daily": 7}})
    assert str(err.value) == (
        "two retention policies are set: ledgerguard_backup_policy.retention = {keep_daily: 14, keep_monthly: 24, "
        "keep_yearly: 31, keep_tag: ['permanent']} and backup_verify_forget_policy = {keep_daily: 7}. Keep one: write "
        "the policy only in ledgerguard_backup_policy.retention and remove backup_verify_forget_policy (deprecated), "
        "so that backup_verify lints the policy the backup role applies"
    )
    with pytest.raises(r.RetentionPolicyError, match="backup_verify_forget_policy = .* and backup_forget_policy = "):
        r.resolve_retention({}, {"backup_verify_forget_policy": POLICY, "backup_forget_policy": {"keep_daily": 7}})
    with pytest.raises(r.RetentionPolicyError, match="ledgerguard_backup_policy.retention = 'keep-all' and backup_"):
        r.resolve_retention({"retention": "keep-all"}, {"backup_forget_policy": POLICY})
    with pytest.raises(r.RetentionPolicyError, match="not a retention alias: drill_forget_policy"):
        r.resolve_retention({}, {"drill_forget_policy": POLICY})
    with pytest.raises(r.RetentionPolicyError, match="ledgerguard_backup_policy must be a mapping"):
        r.resolve_retention(["keep-all"])


@pytest.mark.parametrize(
    ("retention", "expected"),
    [(None, None), ("", None), ("keep-all", None), ("Forever", None), (POLICY, POLICY)],
)
def test_forget_policy_of_a_retention_value(retention, expected):
    assert r.forget_policy(retention) == expected


def test_forget_policy_refuses_what_is_neither_a_mapping_nor_keep_all():
    with pytest.raises(r.RetentionPolicyError) as err:
        r.forget_policy("ten years", "backup_forget_policy")
    assert str(err.value) == (
        "backup_forget_policy 'ten years' is neither a restic forget policy mapping (keep_daily, keep_yearly, "
        "keep_tag, ...) nor 'keep-all'"
    )
