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
