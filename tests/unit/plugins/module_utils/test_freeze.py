"""Unit tests for the freeze registry, mount parsing, refusals and the engine, with a scripted host."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import freeze as fz

MOUNTINFO = (
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "30 22 7:0 / /srv/data rw,nosuid,relatime shared:5 - ext4 /dev/loop0 rw\n"
    "31 22 7:1 / /srv/with\\040space ro,relatime - xfs /dev/loop1 ro,inode64\n"
    "32 30 7:0 /clients/acme /srv/data/clients/acme ro,relatime - ext4 /dev/loop0 rw\n"
    "40 22 0:50 / /var/lib/ledgerguard rw,relatime - tmpfs tmpfs rw\n"
)


def test_parse_mountinfo_fields_and_escapes():
    mounts = fz.parse_mountinfo(MOUNTINFO)
    assert [m.mountpoint for m in mounts] == [
        "/",
        "/srv/data",
        "/srv/with space",
        "/srv/data/clients/acme",
        "/var/lib/ledgerguard",
    ]
    data = mounts[1]
    assert (data.mount_id, data.parent_id, data.fstype, data.source) == (30, 22, "ext4", "/dev/loop0")
    assert data.options == ["rw", "nosuid", "relatime"]
    assert not data.read_only
    assert mounts[2].read_only
    assert mounts[3].root == "/clients/acme"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/srv/data/x/y", "/srv/data"),
        ("/srv/data", "/srv/data"),
        ("/srv/database", "/"),
        ("/srv/data/clients/acme/2026", "/srv/data/clients/acme"),
        ("/srv/with space/a", "/srv/with space"),
        ("/etc", "/"),
    ],
)
def test_mount_for_longest_prefix(path, expected):
    assert fz.mount_for(path, fz.parse_mountinfo(MOUNTINFO)).mountpoint == expected


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("path:/srv/data", "path:/srv/data", True),
        ("path:/srv/data", "path:/srv/data/clients/acme", True),
        ("path:/srv/data/clients/acme", "path:/srv/data", True),
        ("path:/srv/data", "path:/srv/database", False),
        ("service:smbd.service", "service:smbd.service", True),
        ("service:smbd.service", "service:nmbd.service", False),
        ("postgresql::5432", "postgresql::5433", False),
        ("path:/srv", "service:srv.service", False),
    ],
)
def test_keys_overlap(a, b, overlap):
    assert fz.keys_overlap(a, b) is overlap


@pytest.mark.parametrize("incident", ["INC-2026-0042", "a", "x.y_z-1"])
def test_valid_incident(incident):
    assert fz.validate_incident(incident) == incident


@pytest.mark.parametrize("incident", ["", "../etc", "-x", "a/b", "事故1", "x" * 129, ".hidden"])
def test_invalid_incident(incident):
    with pytest.raises(fz.FreezeError, match="is not a valid incident id"):
        fz.validate_incident(incident)


def test_deadline_for_fsfreeze_is_bounded():
    assert fz.deadline_for("fsfreeze", 1000.0, 14400, 60) == 1060.0
    assert fz.deadline_for("fsfreeze", 1000.0, 30, 60) == 1030.0
    assert fz.deadline_for("remount_ro", 1000.0, 14400, 60) == 15400.0


def test_target_key_and_label():
    assert fz.target_key({"method": "service", "unit": "smbd.service"}) == "service:smbd.service"
    assert fz.target_key({"method": "postgresql"}) == "postgresql::5432"
    assert fz.target_key({"method": "postgresql", "port": 5433, "socket_dir": "/run/pg"}) == "postgresql:/run/pg:5433"
    assert fz.target_label({"method": "readonly_bind", "path": "/srv/a"}) == "readonly_bind /srv/a"
    assert fz.target_label({"method": "mariadb"}) == "mariadb default socket"
    assert fz.target_label({"method": "service", "unit": "x", "name": "账务系统"}) == "账务系统"


def test_next_deadline_ignores_left_alone():
    reg = {"targets": [{"deadline": None}, {"deadline": 50.0}, {"deadline": 20.0}]}
    assert fz.next_deadline(reg) == 20.0
    assert fz.next_deadline({"targets": [{"deadline": None}]}) is None


@pytest.mark.parametrize(("value", "on"), [("on", True), ("off", False), ("ON", True), ("1", True), ("0", False)])
def test_pg_bool(value, on):
    assert fz.pg_bool(value) is on


@pytest.mark.parametrize(("value", "on"), [("0", False), ("1", True), ("OFF", False), ("ON", True), ("NO_LOCK", True)])
def test_mariadb_read_only_on(value, on):
    assert fz.mariadb_read_only_on(value) is on


@pytest.mark.parametrize(
    ("load_state", "exists"), [("loaded", True), ("not-found", False), ("masked", False), ("", False)]
)
def test_unit_exists(load_state, exists):
    assert fz.unit_exists(load_state + "\n") is exists


# ----------------------------------------------------------------------------------------------------------------
# Normalisation and refusals
# ----------------------------------------------------------------------------------------------------------------


def test_normalise_refuses_root():
    with pytest.raises(fz.FreezeError, match=r"target 1 \(remount_ro /\): refusing to freeze '/'"):
        fz.normalise_target({"method": "remount_ro", "path": "/"}, 0)
    with pytest.raises(fz.FreezeError, match="refusing to freeze '/'"):
        fz.normalise_target({"method": "readonly_bind", "path": "/./"}, 0)


def test_normalise_refuses_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(fz.FreezeError, match=f"path {missing} does not exist on this host"):
        fz.normalise_target({"method": "readonly_bind", "path": str(missing)}, 2)


def test_normalise_requires_fields():
    with pytest.raises(fz.FreezeError, match="method service needs 'unit'"):
        fz.normalise_target({"method": "service"}, 0)
    with pytest.raises(fz.FreezeError, match="needs 'path', an absolute path"):
        fz.normalise_target({"method": "fsfreeze", "path": "relative/dir"}, 0)
    with pytest.raises(fz.FreezeError, match="is not one of service"):
        fz.normalise_target({"method": "chattr"}, 0)
    with pytest.raises(fz.FreezeError, match="not a valid systemd unit name"):
        fz.normalise_target({"method": "service", "unit": "a b"}, 0)


def test_normalise_keeps_only_method_fields(tmp_path):
    t = fz.normalise_target({"method": "service", "unit": "smbd", "path": "/x", "os_user": "postgres"}, 0)
    assert t == {
        "method": "service",
        "unit": "smbd.service",
        "key": "service:smbd.service",
        "label": "service smbd.service",
    }
    p = fz.normalise_target({"method": "postgresql", "port": 5433, "unit": None, "os_user": "postgres"}, 0)
    assert p["key"] == "postgresql::5433" and "unit" not in p


class FakeHost(fz.Host):
    """A host whose commands are scripted and whose mount table is given."""

    def __init__(self, state_dir, mountinfo=MOUNTINFO, responses=None, systemd=True):
        self.calls: list[list[str]] = []
        self.responses = responses or {}
        super().__init__(self._run, state_dir=str(state_dir), which=lambda n: f"/usr/bin/{n}", now=lambda: 1000.0)
        self._mountinfo = mountinfo
        self._systemd = systemd

    def _run(self, argv):
        self.calls.append(argv)
        joined = " ".join(argv)
        for needle, answer in self.responses.items():
            if needle in joined:
                return answer(argv) if callable(answer) else answer
        return 0, "", ""

    def mounts(self):
        return fz.parse_mountinfo(self._mountinfo)

    def systemd_running(self):
        return self._systemd


def test_refuses_state_dir_filesystem(tmp_path):
    (tmp_path / "state").mkdir()
    host = FakeHost(tmp_path / "state", mountinfo=MOUNTINFO + f"41 22 0:51 / {tmp_path} rw,relatime - tmpfs tmpfs rw\n")
    t = {"method": "fsfreeze", "path": str(tmp_path), "key": f"path:{tmp_path}", "label": "fsfreeze tmp"}
    with pytest.raises(fz.FreezeError) as err:
        fz.check_target(host, t, host.mounts())
    assert str(err.value).startswith(
        f"target fsfreeze tmp: refusing to freeze {tmp_path}: it is the filesystem that holds the state directory "
        f"{tmp_path}/state, where the freeze registry and the watchdog live (thaw would be impossible)."
    )


def test_refuses_non_mount_point_for_remount(tmp_path):
    host = FakeHost(tmp_path / "state")
    t = {"method": "remount_ro", "path": str(tmp_path), "key": "k", "label": "remount_ro tmp"}
    with pytest.raises(fz.FreezeError, match="is not a mount point; remount_ro works on a whole filesystem"):
        fz.check_target(host, t, host.mounts())


def test_refuses_bind_over_state_dir(tmp_path):
    state = tmp_path / "data" / "state"
    state.mkdir(parents=True)
    host = FakeHost(state)
    t = {"method": "readonly_bind", "path": str(tmp_path / "data"), "key": "k", "label": "bind data"}
    with pytest.raises(fz.FreezeError, match="it holds the state directory"):
        fz.check_target(host, t, host.mounts())


def test_refuses_unknown_unit(tmp_path):
    host = FakeHost(tmp_path, responses={"LoadState": (0, "not-found\n", "")})
    t = fz.normalise_target({"method": "service", "unit": "nope"}, 0)
    with pytest.raises(fz.FreezeError, match=r"the systemd unit nope.service does not exist on this host \(LoadState="):
        fz.check_target(host, t, host.mounts())
    assert host.calls == [["/usr/bin/systemctl", "show", "--property=LoadState", "--value", "nope.service"]]


# ----------------------------------------------------------------------------------------------------------------
# Engine with the service method (scripted systemctl)
# ----------------------------------------------------------------------------------------------------------------


class Units:
    """A scripted systemctl: units and their ActiveState."""

    def __init__(self, **states):
        self.states = dict(states)
        self.stopped: set[str] = set()

    def __call__(self, argv):
        verb = argv[1]
        unit = argv[-1]
        if verb == "show" and argv[2] == "--property=LoadState":
            return 0, ("loaded" if unit in self.states else "not-found") + "\n", ""
        if verb == "show":
            return 0, self.states[unit] + "\n", ""
        if unit not in self.states:  # the watchdog's timers: armed once started, until stopped
            if verb == "is-active":
                return 0, ("inactive" if unit in self.stopped else "active") + "\n", ""
            if verb == "stop":
                self.stopped.add(unit)
            return 0, "", ""
        if verb == "stop":
            self.states[unit] = "inactive"
        elif verb == "start":
            self.states[unit] = "active"
        return 0, "", ""


def service_host(tmp_path, units):
    host = FakeHost(tmp_path / "state", responses={"systemctl": units, "systemd-run": (0, "", "")})
    host.systemd_running = lambda: True
    return host


def test_freeze_thaw_services_restores_only_running(tmp_path):
    units = Units(**{"ledger-app.service": "active", "smbd.service": "inactive"})
    host = service_host(tmp_path, units)
    targets = [{"method": "service", "unit": "ledger-app"}, {"method": "service", "unit": "smbd.service"}]

    plan = fz.apply_freeze(host, "INC-1", targets, check_mode=True)
    assert plan["changed"] is True
    assert [(p["name"], p["action"]) for p in plan["plan"]] == [
        ("service ledger-app.service", "freeze"),
        ("service smbd.service", "left_alone"),
    ]
    assert units.states == {"ledger-app.service": "active", "smbd.service": "inactive"}
    assert not os.path.exists(fz.registry_path(host.state_dir, "INC-1"))

    out = fz.apply_freeze(host, "INC-1", targets, max_duration=600)
    assert out["changed"] is True
    assert units.states == {"ledger-app.service": "inactive", "smbd.service": "inactive"}
    assert out["proof"] == [
        {
            "target": "service ledger-app.service",
            "method": "service",
            "at": "1970-01-01T00:16:40Z",
            "kind": "service_stopped",
            "detail": "ledger-app.service ActiveState=inactive",
        }
    ]
    run = [c for c in host.calls if c[0].endswith("systemd-run")]
    assert len(run) == 1
    assert run[0][1:4] == ["--unit=ledgerguard-thaw-INC-1-1", "--on-active=600s", "--timer-property=AccuracySec=1s"]
    assert run[0][-9:] == [
        host.python,
        os.path.join(host.state_dir, "freeze", "ledgerguard_freeze.py"),
        "watchdog",
        "--state-dir",
        host.state_dir,
        "--incident",
        "INC-1",
        "--token",
        out["watchdog"]["token"],
    ]
    registry = json.loads(open(fz.registry_path(host.state_dir, "INC-1")).read())
    assert [(t["unit"], t["status"], t["deadline"]) for t in registry["targets"]] == [
        ("ledger-app.service", "frozen", 1600.0),
        ("smbd.service", "left_alone", None),
    ]
    assert oct(os.stat(fz.registry_path(host.state_dir, "INC-1")).st_mode & 0o777) == "0o600"

    # Freezing again changes nothing (the timer is reported active).
    units_calls = len(host.calls)
    again = fz.apply_freeze(host, "INC-1", targets, max_duration=600)
    assert again["changed"] is False
    assert [t["action"] for t in again["targets"]] == ["already_frozen", "left_alone"]
    assert not any(c[0].endswith("systemd-run") for c in host.calls[units_calls:])

    # Thaw starts only the unit that was running, disarms the timer, and a second thaw changes nothing.
    thaw = fz.apply_thaw(host, "INC-1")
    assert thaw["changed"] is True
    assert [(t["name"], t["action"]) for t in thaw["targets"]] == [
        ("service smbd.service", "left_alone"),
        ("service ledger-app.service", "thawed"),
    ]
    assert units.states == {"ledger-app.service": "active", "smbd.service": "inactive"}
    assert ["/usr/bin/systemctl", "stop", "ledgerguard-thaw-INC-1-1.timer"] in host.calls
    assert thaw["watchdog"] is None
    assert fz.apply_thaw(host, "INC-1")["changed"] is False
    registry = json.loads(open(fz.registry_path(host.state_dir, "INC-1")).read())
    assert registry["targets"] == []
    assert [r["unit"] for r in registry["released"]] == ["smbd.service", "ledger-app.service"]


def test_second_incident_refused_on_held_target(tmp_path):
    units = Units(**{"ledger-app.service": "active"})
    host = service_host(tmp_path, units)
    fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "ledger-app"}])
    with pytest.raises(fz.FreezeError) as err:
        fz.apply_freeze(host, "INC-2", [{"method": "service", "unit": "ledger-app.service"}], check_mode=True)
    assert str(err.value).startswith(
        "target service ledger-app.service: incident INC-1 already holds service ledger-app.service (frozen "
        "1970-01-01T00:16:40Z); one incident at a time may freeze a target. Thaw incident INC-1 first"
    )
    assert not os.path.exists(fz.registry_path(host.state_dir, "INC-2"))


def test_extend_moves_deadline_and_rearms(tmp_path):
    units = Units(**{"a.service": "active"})
    host = service_host(tmp_path, units)
    fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}], max_duration=60)
    host.now = lambda: 1030.0
    out = fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}], max_duration=3600, extend=True)
    assert out["changed"] is True
    registry = fz.load_registry(host.state_dir, "INC-1")
    assert registry["targets"][0]["deadline"] == 4630.0
    assert registry["watchdog"]["unit"] == "ledgerguard-thaw-INC-1-2"
    assert ["/usr/bin/systemctl", "stop", "ledgerguard-thaw-INC-1-1.timer"] in host.calls


def test_thaw_selected_targets_only(tmp_path):
    units = Units(**{"a.service": "active", "b.service": "active"})
    host = service_host(tmp_path, units)
    fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}, {"method": "service", "unit": "b"}])
    out = fz.apply_thaw(host, "INC-1", [{"method": "service", "unit": "b"}])
    assert [t["name"] for t in out["targets"]] == ["service b.service"]
    assert out["remaining"] == ["service a.service"]
    assert units.states == {"a.service": "inactive", "b.service": "active"}
    assert out["watchdog"]["unit"] == "ledgerguard-thaw-INC-1-2"


def test_watchdog_thaws_only_expired(tmp_path):
    units = Units(**{"a.service": "active", "b.service": "active"})
    host = service_host(tmp_path, units)
    fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}], max_duration=60)
    fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "b"}], max_duration=600)
    host.now = lambda: 1061.0
    out = fz.apply_thaw(host, "INC-1", expired_only=True, actor="watchdog")
    assert [t["name"] for t in out["targets"]] == ["service a.service"]
    assert units.states == {"a.service": "active", "b.service": "inactive"}
    registry = fz.load_registry(host.state_dir, "INC-1")
    assert registry["released"][0]["thawed_by"] == "watchdog"
    assert registry["watchdog"]["fires_at"] == "1970-01-01T00:26:40Z"


def test_failed_thaw_keeps_target_and_retries(tmp_path):
    units = Units(**{"a.service": "active"})
    host = service_host(tmp_path, units)
    fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}], max_duration=60)
    host.responses = {"start a.service": (5, "", "Job failed"), **host.responses}
    host.now = lambda: 1100.0
    out = fz.apply_thaw(host, "INC-1", expired_only=True, actor="watchdog")
    assert out["errors"] == [
        "service a.service: starting a.service failed: `/usr/bin/systemctl start a.service` exited 5: Job failed"
    ]
    registry = fz.load_registry(host.state_dir, "INC-1")
    assert registry["targets"][0]["deadline"] == 1100.0 + fz.WATCHDOG_RETRY_SECONDS
    assert registry["history"][-1]["event"] == "thaw_failed"


def test_freeze_failure_records_and_names_registry(tmp_path):
    units = Units(**{"a.service": "active", "b.service": "active"})
    host = service_host(tmp_path, units)
    host.responses = {"stop b.service": (1, "", "Access denied"), **host.responses}
    with pytest.raises(fz.FreezeError) as err:
        fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}, {"method": "service", "unit": "b"}])
    assert "freezing service b.service failed: stopping b.service failed" in str(err.value)
    assert "Targets frozen before it stay frozen and are recorded in" in str(err.value)
    registry = fz.load_registry(host.state_dir, "INC-1")
    assert [(t["unit"], t["status"]) for t in registry["targets"]] == [("a.service", "frozen"), ("b.service", "failed")]
    # The watchdog was armed before anything was frozen.
    assert registry["watchdog"]["kind"] == "systemd"
    thaw = fz.apply_thaw(host, "INC-1")
    assert units.states["a.service"] == "active"
    assert thaw["remaining"] == []


def test_duplicate_targets_refused(tmp_path):
    host = service_host(tmp_path, Units(**{"a.service": "active"}))
    with pytest.raises(fz.FreezeError, match=r"target service a.service is listed twice \(also as service a.service\)"):
        fz.apply_freeze(host, "INC-1", [{"method": "service", "unit": "a"}, {"method": "service", "unit": "a.service"}])


def test_registry_of_other_incident_is_refused(tmp_path):
    os.makedirs(fz.registry_dir(str(tmp_path)))
    with open(fz.registry_path(str(tmp_path), "INC-1"), "w") as fh:
        json.dump({"incident": "INC-9", "targets": []}, fh)
    with pytest.raises(fz.FreezeError, match="does not belong to incident 'INC-1'"):
        fz.load_registry(str(tmp_path), "INC-1")


# ----------------------------------------------------------------------------------------------------------------
# Command lines
# ----------------------------------------------------------------------------------------------------------------


def test_psql_argv(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    host = FakeHost(tmp_path)
    rec = {"os_user": "postgres", "database": "postgres", "port": 5433, "socket_dir": "/run/pg"}
    assert fz.psql_argv(host, rec, "SELECT 1", "SELECT 2") == [
        "/usr/bin/runuser",
        "-u",
        "postgres",
        "--",
        "/usr/bin/psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
        "-p",
        "5433",
        "-h",
        "/run/pg",
        "-c",
        "SELECT 1",
        "-c",
        "SELECT 2",
    ]


def test_pg_thaw_restores_previous_auto_conf(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    state = {"value": "on"}

    def psql(argv):
        sql = argv[argv.index("-c") + 1]
        if sql.startswith("ALTER SYSTEM"):
            state["value"] = "off"
        if sql.startswith("SELECT current_setting"):
            return 0, f"{state['value']}|\n", ""
        return 0, "", ""

    host = FakeHost(tmp_path, responses={"psql": psql})
    rec = {"previous": {"setting": "off", "auto_conf": "off", "read_only": False}}
    fz.pg_thaw(host, rec)
    assert host.calls[0][-4:] == [
        "-c",
        "ALTER SYSTEM SET default_transaction_read_only = 'off'",
        "-c",
        "SELECT pg_reload_conf()",
    ]
    rec = {"previous": {"setting": "off", "auto_conf": "", "read_only": False}}
    host.calls.clear()
    fz.pg_thaw(host, rec)
    assert host.calls[0][-3] == "ALTER SYSTEM RESET default_transaction_read_only"


def test_mariadb_argv_and_restore(tmp_path):
    host = FakeHost(tmp_path)
    rec = {"socket": "/run/mysqld/mysqld.sock", "previous": {"read_only_value": "0", "read_only": False}}
    fz.mariadb_thaw(host, rec)
    assert host.calls == [
        [
            "/usr/bin/mariadb",
            "--batch",
            "--skip-column-names",
            "--socket=/run/mysqld/mysqld.sock",
            "-e",
            "SET GLOBAL read_only = OFF",
        ]
    ]
    with pytest.raises(fz.FreezeError, match="unexpected MariaDB read_only value"):
        fz.mariadb_thaw(host, {"previous": {"read_only_value": "0; DROP", "read_only": False}})


def test_probe_write_succeeding_is_a_failure(tmp_path):
    with pytest.raises(fz.FreezeError, match="still succeeds"):
        fz.probe_write(str(tmp_path), "INC-1")
    assert list(tmp_path.iterdir()) == []


def test_own_source_is_this_module():
    assert "def watchdog_main" in fz.own_source()


def test_watchdog_script_standalone_help(tmp_path):
    import subprocess
    import sys

    path = fz.install_script(str(tmp_path))
    assert oct(os.stat(path).st_mode & 0o777) == "0o700"
    out = subprocess.run(
        [sys.executable, "-I", path, "watchdog", "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "--incident" in out.stdout
