"""AWX as code, tested without an AWX server: the configuration playbook passes syntax check and lint, its
schedules / survey / credential type follow AWX's rules, and the drill runs in a private data directory laid out
as AWX lays it, with the restic credential injected exactly as the custom credential type would inject it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from dateutil.rrule import rrulestr
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ledgerguard import sampledata

REPO_ROOT = Path(__file__).resolve().parents[2]

VENV_BIN = Path(sys.executable).parent
VARS = REPO_ROOT / "playbooks" / "vars" / "awx.yml"
# awx/main/constants.py ENV_BLOCKLIST (DOMAIN.md B5) and the survey types of awx/api/views (B4).
ENV_BLOCKLIST = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
                 "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
                 "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
                 "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH"}  # fmt: skip
SURVEY_TYPES = {"text", "textarea", "password", "multiplechoice", "multiselect", "integer", "float"}


class UnsafeLoader(yaml.SafeLoader):
    """Read the vars file as Ansible does, with `!unsafe` strings kept verbatim."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="module")
def awx_vars():
    return yaml.load(VARS.read_text(encoding="utf-8"), Loader=UnsafeLoader)  # noqa: S506 - SafeLoader subclass


def test_awx_configure_passes_syntax_check_and_lint():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    res = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "playbooks/awx_configure.yml"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "playbook: playbooks/awx_configure.yml" in res.stdout
    res = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--offline", "playbooks/awx_configure.yml", "playbooks/vars/awx.yml"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Profile 'production' was required, and it passed." in res.stderr + res.stdout


def test_schedules_are_valid_awx_rrules_in_shanghai_time(awx_vars):
    shanghai = ZoneInfo("Asia/Shanghai")
    after = datetime(2026, 3, 1, tzinfo=shanghai)
    # weekday (Sunday=6), hour, minute, days apart
    expected = {"drill": (6, 2, 0, 7), "verify": (None, 1, 30, 1), "backup": (None, 23, 30, 1), "prune": (5, 3, 30, 7)}
    assert set(awx_vars["awx_schedules"]) == set(expected)
    for job, sched in awx_vars["awx_schedules"].items():
        rule = sched["rrule"]
        dtstart, rrule = rule.split(" ")
        assert dtstart.startswith("DTSTART;TZID=Asia/Shanghai:")  # AWX: DTSTART must carry a zone
        assert "INTERVAL=" in rrule and "SECONDLY" not in rrule and "RDATE" not in rule and "EXDATE" not in rule
        assert not ("COUNT=" in rrule and "UNTIL=" in rrule)
        runs = rrulestr(rule.replace(" RRULE:", "\nRRULE:"), forceset=True)
        nxt = [runs.after(after)]
        for _step in range(2):
            nxt.append(runs.after(nxt[-1]))
        weekday, hour, minute, days = expected[job]
        for when in nxt:
            local = when.astimezone(shanghai)
            assert (local.hour, local.minute) == (hour, minute)
            assert weekday is None or local.weekday() == weekday
        assert (nxt[1] - nxt[0]).days == days


def test_incident_survey_is_what_awx_accepts(awx_vars):
    survey = awx_vars["awx_incident_survey"]
    assert isinstance(survey["name"], str) and isinstance(survey["description"], str) and survey["spec"]
    variables = [q["variable"] for q in survey["spec"]]
    assert len(variables) == len(set(variables))
    assert "ledgerguard_incident_id" in variables and "incident_clients" in variables
    for q in survey["spec"]:
        assert {"type", "question_name", "variable", "required"} <= set(q)
        assert q["type"] in SURVEY_TYPES and isinstance(q["required"], bool)
        if q["type"] in ("multiplechoice", "multiselect"):
            assert q["choices"]
        assert q["type"] != "password"  # nothing secret is asked: secrets live in the credential
    (clients,) = [q for q in survey["spec"] if q["variable"] == "incident_clients"]
    assert clients["choices"] == "{{ awx_incident_client_choices }}" and awx_vars["awx_incident_client_choices"]


def test_credential_type_injects_what_the_action_plugins_read(awx_vars):
    from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.restic_action import AWS_ENV

    ctype = awx_vars["awx_credential_type"]
    assert ctype["kind"] in ("cloud", "net")
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    assert "tower" not in fields and set(ctype["inputs"]["required"]) <= set(fields)
    assert fields["repo_password"]["secret"] is True and fields["s3_secret_key"]["secret"] is True
    env = ctype["injectors"]["env"]
    for name in env:
        assert not name.startswith("ANSIBLE_") and name not in ENV_BLOCKLIST
    assert env["RESTIC_PASSWORD_FILE"] == "{{ tower.filename.pw }}"  # the password travels as a file, not env
    assert "RESTIC_PASSWORD" not in env
    assert set(env) == {"RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE"} | (set(AWS_ENV) - {"AWS_SESSION_TOKEN"})
    assert list(ctype["injectors"]["file"]) == ["template.pw"] and "extra_vars" not in ctype["injectors"]


def inject(ctype: dict, inputs: dict, env_dir: Path) -> dict[str, str]:
    """What AWX's CredentialType.inject_credential does (awx/main/models/credential.py): render `file` templates
    into 0600 files under <pdd>/env and `env` templates with tower.filename.<label> pointing at them."""
    sandbox = ImmutableSandboxedEnvironment()
    files = {}
    for key, template in ctype["injectors"].get("file", {}).items():
        label = key.split(".", 1)[1]
        fd = os.open(env_dir / f"tmp_{label}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(sandbox.from_string(template).render(**inputs))
        files[label] = str(env_dir / f"tmp_{label}")
    ctx = dict(inputs, tower={"filename": files})
    return {k: sandbox.from_string(v).render(**ctx) for k, v in ctype["injectors"]["env"].items()}


@pytest.mark.slow
def test_drill_runs_in_an_awx_private_data_dir_with_the_injected_credential(
    tmp_path, awx_vars, s3_server, s3_repo, restic_password_file, restic_cmd
):
    import ansible_runner

    prod = tmp_path / "prod"
    c = sampledata.make_client_tree(prod, "c001", "杭州示例贸易有限公司", periods=["2024-03"], pdfs=1)
    restic_cmd(s3_repo, restic_password_file, "backup", str(prod), env=s3_server.env())
    aws = s3_server.env()
    password = restic_password_file.read_text().strip()

    # The private data dir as AWX builds it (awx/main/tasks/jobs.py): project/, inventory/, env/ (settings and
    # the credential's files only: suppress_env_files keeps envvars/extravars off disk), artifacts/<job id>/.
    pdd = tmp_path / "awx_job_42"
    (pdd / "env").mkdir(parents=True, mode=0o700)
    (pdd / "inventory").mkdir()
    (pdd / "project").symlink_to(REPO_ROOT)
    (pdd / "env" / "settings").write_text(json.dumps({"job_timeout": 0, "suppress_ansible_output": True}))
    hostvars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ledgerguard_clients": [{"id": "c001", "name": c["client"]["name"], "paths": c["client"]["paths"]}],
        "ledgerguard_state_dir": str(tmp_path / "state"),
    }
    (pdd / "inventory" / "hosts").write_text(json.dumps({"all": {"hosts": {"books1": hostvars}}}))
    inputs = {
        "repository": s3_repo,
        "repo_password": password,
        "s3_access_key": aws["AWS_ACCESS_KEY_ID"],
        "s3_secret_key": aws["AWS_SECRET_ACCESS_KEY"],
        "s3_region": aws.get("AWS_DEFAULT_REGION", ""),
    }
    env = inject(awx_vars["awx_credential_type"], inputs, pdd / "env")
    assert Path(env["RESTIC_PASSWORD_FILE"]).read_text() == password
    assert stat.S_IMODE(Path(env["RESTIC_PASSWORD_FILE"]).stat().st_mode) == 0o600

    # Only the job template's extra_vars (no repository, no password, no keys): the action plugins must take the
    # connection from the injected environment.
    extravars = {"drill_sandbox_dir": str(tmp_path / "sandbox"), "drill_id": "awx-drill-42",
                 "ledgerguard_evidence_dir": str(tmp_path / "evidence"), "drill_progress_interval": 0}  # fmt: skip
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith(("RESTIC_", "AWS_", "ANSIBLE_"))]:
        os.environ.pop(k)
    os.environ["PATH"] = f"{VENV_BIN}:{os.environ['PATH']}"  # ansible-playbook on PATH, as in an execution environment
    try:
        r = ansible_runner.run(
            private_data_dir=str(pdd),
            ident="42",
            playbook="playbooks/drill.yml",
            inventory=str(pdd / "inventory" / "hosts"),
            extravars=extravars,
            envvars=env,
            suppress_env_files=True,
            rotate_artifacts=0,
            quiet=True,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert r.status == "successful", (pdd / "artifacts" / "42" / "stdout").read_text()[-3000:]
    # AWX stores set_stats as job.artifacts: the last event carries them.
    stats = [e for e in r.events if e["event"] == "playbook_on_stats"][0]["event_data"]["artifact_data"]
    assert stats["ledgerguard_drill"]["drill_id"] == "awx-drill-42" and stats["ledgerguard_drill"]["passed"] is True
    record = json.loads((tmp_path / "state" / "drills" / "history.jsonl").read_text())
    assert record["clients"][0]["files"] == 3 and record["passed"] is True
    # The credential's secrets are in no job event and no extravars (AWX removes env/ with the job's directory).
    assert sorted(p.name for p in (pdd / "env").iterdir()) == ["settings", "tmp_pw"]
    for path in (pdd / "artifacts" / "42" / "job_events").iterdir():
        text = path.read_text()
        assert password not in text and aws["AWS_SECRET_ACCESS_KEY"] not in text
    assert stat.S_IMODE((pdd / "artifacts" / "42" / "command").stat().st_mode) == 0o600
