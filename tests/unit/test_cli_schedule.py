"""ledgerguard schedule install|remove: systemd units that systemd-analyze accepts, or a cron file."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ledgerguard import cli

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


@pytest.fixture
def secrets_files(tmp_path):
    pw = tmp_path / "restic-password"
    pw.write_text("unit-test-password-9f2\n")
    pw.chmod(0o600)
    s3 = tmp_path / "s3-credentials"
    s3.write_text("[default]\naws_access_key_id = AKIAUNITTEST\naws_secret_access_key = unit-secret-77\n")
    s3.chmod(0o600)
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    localhost: {}\n")
    return pw, s3, inv


def test_install_writes_timers_systemd_analyze_accepts_then_remove(tmp_path, capsys, secrets_files):
    pw, s3, inv = secrets_files
    units = tmp_path / "units"
    argv = [
        "schedule", "install", "--backend", "systemd", "--unit-dir", str(units),
        "-i", str(inv), "--repository", "s3:http://127.0.0.1:9000/bucket/restic",
        "--password-file", str(pw), "--s3-credentials-file", str(s3), "--drill-args", "--snapshot random --rto 4h",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "systemd-analyze verify: ok" in out and "not enabled" in out
    names = sorted(p.name for p in units.iterdir())
    assert names == [
        "ledgerguard-drill.service",
        "ledgerguard-drill.timer",
        "ledgerguard-verify.service",
        "ledgerguard-verify.timer",
    ]
    # systemd itself accepts them (exit 0, nothing printed).
    res = subprocess.run(
        ["systemd-analyze", "verify", *(str(units / n) for n in names)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == ""
    timer = (units / "ledgerguard-drill.timer").read_text()
    assert "OnCalendar=Sun *-*-* 02:00:00 Asia/Shanghai\n" in timer and "Unit=ledgerguard-drill.service" in timer
    assert "OnCalendar=*-*-* 01:30:00 Asia/Shanghai\n" in (units / "ledgerguard-verify.timer").read_text()
    service = (units / "ledgerguard-drill.service").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split()[1:4] == ["drill", "--plain", "-i"]
    assert f"--password-file {pw}" in exec_start and f"--s3-credentials-file {s3}" in exec_start
    assert exec_start.endswith("--snapshot random --rto 4h")
    for name in names:  # paths only: never the secrets themselves
        text = (units / name).read_text()
        assert "unit-test-password-9f2" not in text and "unit-secret-77" not in text and "AKIAUNITTEST" not in text

    assert cli.main(argv) == 0
    assert capsys.readouterr().out.count("unchanged ") == 4  # idempotent

    assert cli.main(["schedule", "remove", "--backend", "systemd", "--unit-dir", str(units)]) == 0
    assert list(units.iterdir()) == []
    assert cli.main(["schedule", "remove", "--backend", "systemd", "--unit-dir", str(units)]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_a_calendar_systemd_rejects_fails_the_install(tmp_path, capsys):
    units = tmp_path / "units"
    code = cli.main(
        ["schedule", "install", "--backend", "systemd", "--unit-dir", str(units), "--jobs", "drill",
         "--drill-on-calendar", "every sunday at noon"]
    )  # fmt: skip
    assert code == 1
    assert "systemd-analyze verify rejected the units" in capsys.readouterr().err


def test_cron_backend_writes_one_file_with_both_jobs(tmp_path, capsys, secrets_files):
    pw, _s3, inv = secrets_files
    cron = tmp_path / "cron.d" / "ledgerguard"
    argv = ["schedule", "install", "--backend", "cron", "--cron-file", str(cron), "--log-dir", str(tmp_path / "log"),
            "-i", str(inv), "--password-file", str(pw), "--drill-args", "--rto 30m"]  # fmt: skip
    assert cli.main(argv) == 0
    text = cron.read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[2] == "CRON_TZ=Asia/Shanghai"
    drill, verify = lines[3], lines[4]
    assert (
        drill.startswith("0 2 * * 0 root cd ")
        and " drill --plain -i " in drill
        and drill.endswith(f"--rto 30m >> {tmp_path / 'log' / 'drill.log'} 2>&1")
    )
    assert verify.startswith("30 1 * * * root ") and " verify --plain " in verify
    assert "unit-test-password-9f2" not in text
    assert cli.main(["schedule", "remove", "--backend", "cron", "--cron-file", str(cron)]) == 0
    assert not cron.exists()


def test_schedule_bad_input(tmp_path, capsys, secrets_files):
    pw, _s3, _inv = secrets_files
    pw.chmod(0o640)
    code = cli.main(
        ["schedule", "install", "--backend", "systemd", "--unit-dir", str(tmp_path), "--password-file", str(pw)]
    )
    assert code == 2 and "has mode 0640" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.service"))
    code = cli.main(
        ["schedule", "install", "--backend", "cron", "--cron-file", str(tmp_path / "c"), "--drill-cron", "weekly"]
    )
    assert code == 2 and "--drill-cron 'weekly': expected five cron fields" in capsys.readouterr().err
    assert cli.main(["schedule", "install", "--jobs", "backups", "--unit-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--jobs 'backups': expected a comma-separated list of drill, verify, backup, prune, compliance" in err


def test_backup_prune_and_monthly_compliance_jobs(tmp_path, capsys, secrets_files):
    pw, s3, inv = secrets_files
    units, cron = tmp_path / "units", tmp_path / "cron.d" / "ledgerguard"
    common = ["-i", str(inv), "--password-file", str(pw), "--s3-credentials-file", str(s3),
              "--jobs", "backup,prune,compliance",
              "--backup-args", "--forget --metrics-dir /var/lib/node_exporter"]  # fmt: skip
    assert cli.main(["schedule", "install", "--backend", "systemd", "--unit-dir", str(units), *common]) == 0
    assert "systemd-analyze verify: ok" in capsys.readouterr().out
    names = sorted(p.name for p in units.iterdir())
    assert names == [f"ledgerguard-{j}.{k}" for j in ("backup", "compliance", "prune") for k in ("service", "timer")]
    res = subprocess.run(
        ["systemd-analyze", "verify", *(str(units / n) for n in names)], capture_output=True, text=True, check=False
    )
    assert (res.returncode, res.stderr.strip()) == (0, "")
    expected = {
        "backup": (["backup", "--plain"], "*-*-* 23:30:00 Asia/Shanghai", "Daily"),
        "prune": (["backup", "--prune", "--plain"], "Sat *-*-* 03:30:00 Asia/Shanghai", "Weekly"),
        "compliance": (["compliance", "--plain"], "*-*-01 06:00:00 Asia/Shanghai", "Monthly"),
    }
    for job, (command, calendar, every) in expected.items():
        service = (units / f"ledgerguard-{job}.service").read_text()
        exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart=")).split()
        assert exec_start[1 : 1 + len(command)] == command
        assert exec_start[1 + len(command) : 3 + len(command)] == ["-i", str(inv)]
        timer = (units / f"ledgerguard-{job}.timer").read_text()
        assert f"OnCalendar={calendar}\n" in timer and f"Description={every} ledgerguard " in timer
    backup_exec = (units / "ledgerguard-backup.service").read_text()
    assert backup_exec.split("ExecStart=")[1].splitlines()[0].endswith("--forget --metrics-dir /var/lib/node_exporter")
    assert "Documentation=file://" in backup_exec and "/docs/backup.md" in backup_exec

    argv = ["schedule", "install", "--backend", "cron", "--cron-file", str(cron), "--log-dir", str(tmp_path / "log"),
            *common, "--prune-cron", "0 4 * * 0"]  # fmt: skip
    assert cli.main(argv) == 0
    lines = [line for line in cron.read_text().splitlines() if line and not line.startswith(("#", "SHELL", "PATH"))]
    assert lines[0] == "CRON_TZ=Asia/Shanghai"
    backup, prune, compliance = lines[1:]
    assert backup.startswith("30 23 * * * root cd ") and " backup --plain -i " in backup
    assert backup.endswith(f"--forget --metrics-dir /var/lib/node_exporter >> {tmp_path / 'log' / 'backup.log'} 2>&1")
    assert prune.startswith("0 4 * * 0 root cd ") and " backup --prune --plain -i " in prune
    assert prune.endswith(f">> {tmp_path / 'log' / 'prune.log'} 2>&1")
    assert compliance.startswith("0 6 1 * * root cd ") and " compliance --plain -i " in compliance
    assert "unit-test-password-9f2" not in cron.read_text()
