"""The write_freeze module: its documentation matches its argument spec, and main() runs end to end (check mode and
thaw of an unknown incident, which touch nothing) with real AnsibleModule argument handling."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from ansible_collections.ledgerguard.recovery.plugins.modules import write_freeze


def documented_options() -> dict:
    return yaml.safe_load(write_freeze.DOCUMENTATION)["options"]


def test_documentation_matches_argument_spec():
    doc = documented_options()
    assert set(doc) == {
        "incident",
        "state",
        "targets",
        "max_duration",
        "fsfreeze_max_duration",
        "extend",
        "verify",
        "state_dir",
        "watchdog_backend",
        "containment",
        "allow",
        "services",
        "rescan_before_thaw",
        "evidence_dir",
        "label",
        "rollback_of",
        "fail_msg",
    }
    assert set(doc["targets"]["suboptions"]) == set(write_freeze.TARGET_SPEC)
    for name, spec in write_freeze.TARGET_SPEC.items():
        documented = doc["targets"]["suboptions"][name]
        assert documented["type"] == spec["type"], name
        assert documented.get("default") == spec.get("default"), name
        assert documented.get("choices") == spec.get("choices"), name
    assert doc["max_duration"]["default"] == 14400
    assert doc["fsfreeze_max_duration"]["default"] == 60
    assert yaml.safe_load(write_freeze.DOCUMENTATION)["attributes"]["check_mode"]["support"] == "full"
    yaml.safe_load(write_freeze.EXAMPLES)
    yaml.safe_load(write_freeze.RETURN)


def run_main(args: dict, capsys) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        write_freeze.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.skipif(os.geteuid() != 0, reason="the module runs as root")
def test_thaw_of_unknown_incident_changes_nothing(tmp_path, capsys):
    out = run_main({"incident": "INC-NONE", "state": "thawed", "state_dir": str(tmp_path)}, capsys)
    assert out["changed"] is False
    assert out["targets"] == []
    assert out["watchdog"] is None
    assert os.listdir(tmp_path) == []


def test_check_mode_plan_for_a_missing_path_is_a_refusal(tmp_path, capsys):
    args = {
        "incident": "INC-1",
        "targets": [{"method": "readonly_bind", "path": str(tmp_path / "nope")}],
        "state_dir": str(tmp_path / "state"),
        "_ansible_check_mode": True,
    }
    out = run_main(args, capsys)
    assert out["failed"] is True
    assert out["msg"] == (
        f"target 1 (readonly_bind {tmp_path}/nope): path {tmp_path}/nope does not exist on this host. Check the "
        "host's write_freeze_targets in the inventory (a typo, or a filesystem that is not mounted)."
    )
    assert not (tmp_path / "state").exists()


def test_frozen_without_targets_fails_with_guidance(tmp_path, capsys):
    out = run_main({"incident": "INC-1", "state_dir": str(tmp_path), "_ansible_check_mode": True}, capsys)
    assert out["failed"] is True
    assert out["msg"].startswith("state=frozen needs at least one target in 'targets'")


def test_check_mode_plan_for_a_directory(tmp_path, capsys):
    client = tmp_path / "clients" / "acme"
    client.mkdir(parents=True)
    args = {
        "incident": "INC-1",
        "targets": [{"method": "readonly_bind", "path": str(client), "name": "客户 acme"}],
        "state_dir": str(tmp_path / "state"),
        "_ansible_check_mode": True,
    }
    out = run_main(args, capsys)
    assert out["changed"] is True
    assert [(p["name"], p["method"], p["action"]) for p in out["plan"]] == [("客户 acme", "readonly_bind", "freeze")]
    assert out["plan"][0]["previous"]["mount_point"] is False
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("state", ["frozen", "thawed", "rescan"])
def test_a_bad_incident_id_is_refused_before_anything_runs(tmp_path, capsys, state):
    """The role's old assert, now the module's own argument check (issue 19): the same rule, for every state."""
    args = {"incident": "", "state": state, "state_dir": str(tmp_path / "state"), "_ansible_check_mode": True}
    out = run_main({**args, "targets": [{"method": "readonly_bind", "path": str(tmp_path)}]}, capsys)
    assert out["failed"] is True
    assert out["msg"] == (
        "incident '' is not a valid incident id: expected 1 to 128 characters, letters, digits, '_', '.' or '-', "
        "starting with a letter or digit (it names the registry file and the watchdog unit). Use the id the "
        "incident role declared (ledgerguard_incident_id)."
    )
    assert not (tmp_path / "state").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the module runs as root")
def test_thaw_with_the_rescan_first_returns_both(tmp_path, capsys):
    """rescan_before_thaw: the rescan's result comes back as rescan (here: nothing frozen, nothing to scan), the thaw
    still ran, and a thaw that changed nothing stays unchanged."""
    args = {"incident": "INC-NONE", "state": "thawed", "state_dir": str(tmp_path), "rescan_before_thaw": True}
    out = run_main(args, capsys)
    assert out["changed"] is False and out["targets"] == []
    assert out["rescan"]["state"] == "rescan" and out["rescan"]["failed"] is False
    assert out["rescan"]["msg"] == "incident INC-NONE froze nothing here"
    assert out["rescan"]["writers"] == [] and out["rescan"]["changed"] is False
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the module runs as root")
def test_thaw_runs_even_when_the_rescan_before_it_breaks(tmp_path, capsys, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("registry unreadable")

    monkeypatch.setattr(write_freeze, "rescan", broken)
    args = {"incident": "INC-NONE", "state": "thawed", "state_dir": str(tmp_path), "rescan_before_thaw": True}
    out = run_main(args, capsys)
    assert "failed" not in out or out["failed"] is False
    assert out["rescan"]["failed"] is True
    assert out["rescan"]["msg"] == "the rescan before the thaw failed: RuntimeError('registry unreadable')"
    assert out["msg"].startswith("Nothing to thaw: incident INC-NONE froze nothing on this host")
