"""The retention_policy filter: the one retention variable, its deprecated aliases' warnings, the conflict error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ledgerguard.recovery.plugins.filter import backup as bf

POLICY = {"keep_daily": 14, "keep_yearly": 31}


@pytest.fixture
def notices(monkeypatch):
    seen = []
    monkeypatch.setattr(bf._display, "deprecated", lambda msg, **kw: seen.append((msg, kw)))
    return seen


def test_the_collection_policy_without_aliases_warns_nothing(notices):
    assert (
        bf.retention_policy({"retention": POLICY}, backup_verify_forget_policy=None, backup_forget_policy=None)
        == POLICY
    )
    assert bf.retention_policy({"retention": "keep-all"}) == "keep-all"
    assert bf.retention_policy({"retention": "keep-all"}, forget=True) is None
    assert bf.retention_policy({}, forget=True) is None
    assert notices == []


def test_an_alias_alone_is_used_with_a_deprecation_warning(notices):
    assert bf.retention_policy({}, forget=True, backup_verify_forget_policy=POLICY) == POLICY
    assert notices == [
        (
            "backup_verify_forget_policy is deprecated (its policy is in force): write the retention policy once in "
            "ledgerguard_backup_policy.retention, which backup_verify's lint, the backup role's forget and the "
            "compliance checklist all read, and remove backup_verify_forget_policy",
            {"version": "0.3.0", "collection_name": "ledgerguard.recovery"},
        )
    ]


def test_different_policies_fail_naming_both(notices):
    with pytest.raises(AnsibleFilterError, match=r"^retention_policy: two retention policies are set: ledgerguard_"):
        bf.retention_policy({"retention": POLICY}, backup_forget_policy={"keep_daily": 7})
    with pytest.raises(AnsibleFilterError, match=r"^retention_policy: backup_forget_policy 'ten years' is neither"):
        bf.retention_policy({}, forget=True, backup_forget_policy="ten years")
