"""``ledgerguard schedule install|remove``: unattended backups, prunes, drills, verification and the monthly
compliance report without AWX (``JOBS_TABLE``: the command of each job and its default times).

systemd (default where systemd runs): one ``<prefix>-<job>.service`` (Type=oneshot, runs the ledgerguard CLI with
``--plain`` output for the journal) and one ``<prefix>-<job>.timer`` per job, written to ``--unit-dir``
(default /etc/systemd/system), checked with ``systemd-analyze verify`` and, in the system directory, enabled.
Without systemd: one ``/etc/cron.d``-style file (``--cron-file``) with a line per job.

Secrets are never written into the units or the cron file: they name the 0600 files (``--password-file``,
``--s3-credentials-file``) that the CLI validates and passes on as paths.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ledgerguard import collection
from ledgerguard.common import EXIT_FAILED, EXIT_OK, BadInput, check_secret_file

SYSTEM_UNIT_DIR = "/etc/systemd/system"
DEFAULT_CRON_FILE = "/etc/cron.d/ledgerguard"


@dataclass(frozen=True)
class Job:
    """One schedulable job: the ledgerguard command it runs, when, and its documentation page."""

    command: tuple[str, ...]
    description: str
    calendar: str  # systemd OnCalendar
    cron: str  # five cron fields
    every: str  # the timer's description: Daily, Weekly, Monthly
    doc: str


JOBS_TABLE: dict[str, Job] = {
    "drill": Job(
        ("drill",),
        "ledgerguard recovery drill (restore into a sandbox, verify, measure RTO/RPO)",
        "Sun *-*-* 02:00:00 Asia/Shanghai",
        "0 2 * * 0",
        "Weekly",
        "drill",
    ),
    "verify": Job(
        ("verify",),
        "ledgerguard backup verification (restic check, freshness, coverage)",
        "*-*-* 01:30:00 Asia/Shanghai",
        "30 1 * * *",
        "Daily",
        "cli",
    ),
    "backup": Job(
        ("backup",),
        "ledgerguard backup of every client (restic, manifest, retention, off-site copy)",
        "*-*-* 23:30:00 Asia/Shanghai",
        "30 23 * * *",
        "Daily",
        "backup",
    ),
    "prune": Job(
        ("backup", "--prune"),
        "ledgerguard repository prune (restic prune; refused during an incident)",
        "Sat *-*-* 03:30:00 Asia/Shanghai",
        "30 3 * * 6",
        "Weekly",
        "backup",
    ),
    "compliance": Job(
        ("compliance",),
        "ledgerguard periodic compliance report",
        "*-*-01 06:00:00 Asia/Shanghai",
        "0 6 1 * *",
        "Monthly",
        "compliance",
    ),
}
JOBS = tuple(JOBS_TABLE)
DESCRIPTIONS = {name: job.description for name, job in JOBS_TABLE.items()}
DEFAULT_CALENDAR = {name: job.calendar for name, job in JOBS_TABLE.items()}
DEFAULT_CRON = {name: job.cron for name, job in JOBS_TABLE.items()}
CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z]+$")


def add_arguments(p: argparse.ArgumentParser, install: bool) -> None:
    p.add_argument("--backend", choices=["auto", "systemd", "cron"], default="auto", help="default: systemd if it runs")
    p.add_argument(
        "--jobs", default="drill,verify", help=f"comma-separated jobs: {', '.join(JOBS)} (default drill,verify)"
    )
    p.add_argument("--unit-dir", default=SYSTEM_UNIT_DIR, help="where the systemd units go (default %(default)s)")
    p.add_argument("--cron-file", default=DEFAULT_CRON_FILE, help="cron file (default %(default)s)")
    p.add_argument("--prefix", default="ledgerguard", help="unit / job name prefix (default %(default)s)")
    p.add_argument(
        "--no-enable",
        action="store_true",
        help="only write / delete files: no systemctl (implied when --unit-dir is not the system directory)",
    )
    if not install:
        return
    for name, job in JOBS_TABLE.items():
        p.add_argument(f"--{name}-on-calendar", default=job.calendar, help=f"systemd OnCalendar of {name}")
        p.add_argument(f"--{name}-cron", default=job.cron, help=f"cron schedule of {name} ('{job.cron}')")
        p.add_argument(f"--{name}-args", default="", help=f"extra arguments for 'ledgerguard {' '.join(job.command)}'")
    p.add_argument("--cron-timezone", default="Asia/Shanghai", help="CRON_TZ of the cron file ('' = system zone)")
    p.add_argument("--user", help="run the jobs as this user (default root)")
    p.add_argument("-i", "--inventory", help="inventory the scheduled runs use")
    p.add_argument("--repository", help="restic repository (not a secret: it must not embed credentials)")
    p.add_argument("--password-file", help="0600 file holding the restic password (path only is written)")
    p.add_argument("--s3-credentials-file", help="0600 AWS shared-credentials file (path only is written)")
    p.add_argument("--evidence-dir", help="evidence folder for the runs")
    p.add_argument("--private-data-dir", help="ansible-runner private data dir parent for the runs")
    p.add_argument("--log-dir", default="/var/log/ledgerguard", help="cron only: where job output is appended")
    p.add_argument("--ledgerguard-bin", help="the ledgerguard executable (default: the one running)")
    p.add_argument("--no-verify", action="store_true", help="do not run systemd-analyze verify on the units")


def systemd_running() -> bool:
    return os.path.isdir("/run/systemd/system")


def choose_backend(backend: str) -> str:
    if backend != "auto":
        return backend
    return "systemd" if systemd_running() else "cron"


def parse_jobs(text: str) -> list[str]:
    jobs = [j.strip() for j in text.split(",") if j.strip()]
    bad = [j for j in jobs if j not in JOBS]
    if bad or not jobs:
        raise BadInput(f"--jobs {text!r}: expected a comma-separated list of {', '.join(JOBS)}")
    return jobs


def ledgerguard_argv(args: argparse.Namespace) -> list[str]:
    if args.ledgerguard_bin:
        return [str(Path(args.ledgerguard_bin).resolve())]
    script = Path(sys.executable).parent / "ledgerguard"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ledgerguard"]


def job_argv(args: argparse.Namespace, job: str) -> list[str]:
    """The command line a scheduled job runs (paths only; the CLI validates the secret files at run time)."""
    argv = ledgerguard_argv(args) + [*JOBS_TABLE[job].command, "--plain"]
    if args.inventory:
        inv = Path(args.inventory).expanduser()
        if not inv.exists():
            raise BadInput(f"--inventory {args.inventory}: no such file or directory")
        argv += ["-i", str(inv.resolve())]
    if args.repository:
        if re.search(r"://[^/@\s]+:[^/@\s]+@", args.repository):
            raise BadInput("--repository must not embed credentials (user:password@); use --s3-credentials-file")
        argv += ["--repository", args.repository]
    for option, value in (("--password-file", args.password_file), ("--s3-credentials-file", args.s3_credentials_file)):
        if value:
            argv += [option, check_secret_file(value, option)]
    for option, value in (("--evidence-dir", args.evidence_dir), ("--private-data-dir", args.private_data_dir)):
        if value:
            argv += [option, str(Path(value).expanduser().resolve())]
    extra = getattr(args, f"{job}_args")
    try:
        argv += shlex.split(extra or "")
    except ValueError as exc:
        raise BadInput(f"--{job}-args {extra!r}: {exc}") from None
    return argv


def systemd_quote(word: str) -> str:
    """Quote one ExecStart word for systemd (specifiers % and variables $ escaped)."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not re.search(r'[\s"\'\\;]', word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_unit(args: argparse.Namespace, job: str) -> str:
    exec_start = " ".join(systemd_quote(w) for w in job_argv(args, job))
    lines = [
        "# Written by 'ledgerguard schedule install'; remove with 'ledgerguard schedule remove'.",
        "# Exit codes of the command: 0 success, 1 a step failed, 2 bad input, 3 the drill missed its targets.",
        "[Unit]",
        f"Description={DESCRIPTIONS[job]}",
        f"Documentation=file://{collection.root().resolve()}/docs/{JOBS_TABLE[job].doc}.md",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={systemd_quote(str(collection.root().resolve()))}",
        f"ExecStart={exec_start}",
        "UMask=0077",
        "Nice=10",
        "IOSchedulingClass=idle",
        "TimeoutStartSec=12h",
    ]
    if args.user:
        lines.append(f"User={args.user}")
    return "\n".join(lines) + "\n"


def timer_unit(args: argparse.Namespace, job: str, calendar: str) -> str:
    when = JOBS_TABLE[job].every
    return (
        "# Written by 'ledgerguard schedule install'; remove with 'ledgerguard schedule remove'.\n"
        "[Unit]\n"
        f"Description={when} {DESCRIPTIONS[job]}\n\n"
        "[Timer]\n"
        f"OnCalendar={calendar}\n"
        "Persistent=true\n"
        "RandomizedDelaySec=10min\n"
        f"Unit={args.prefix}-{job}.service\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


def cron_text(args: argparse.Namespace, jobs: list[str]) -> str:
    lines = [
        "# ledgerguard schedules: written by 'ledgerguard schedule install', removed by 'ledgerguard schedule remove'.",
        "# Exit codes: 0 success, 1 a step failed, 2 bad input, 3 the drill missed its targets.",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    if args.cron_timezone:
        lines.append(f"CRON_TZ={args.cron_timezone}")
    log_dir = Path(args.log_dir)
    for job in jobs:
        spec = getattr(args, f"{job}_cron")
        fields = spec.split()
        if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
            raise BadInput(f"--{job}-cron {spec!r}: expected five cron fields such as '{DEFAULT_CRON[job]}'")
        command = " ".join(shlex.quote(w) for w in job_argv(args, job))
        log = shlex.quote(str(log_dir / f"{job}.log"))
        line = f"cd {shlex.quote(str(collection.root().resolve()))} && {command} >> {log} 2>&1"
        lines.append(f"{' '.join(fields)} {args.user or 'root'} {line.replace('%', chr(92) + '%')}")
    return "\n".join(lines) + "\n"


def write_file(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write atomically; True when the content changed."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def systemctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)


def manage_units(args: argparse.Namespace, unit_dir: Path) -> bool:
    """Whether to call systemctl: only for the system unit directory with systemd running."""
    if args.no_enable or str(unit_dir) != SYSTEM_UNIT_DIR:
        return False
    return systemd_running() and bool(shutil.which("systemctl"))


def verify_units(paths: list[Path]) -> tuple[bool, str]:
    tool = shutil.which("systemd-analyze")
    if not tool:
        return True, "systemd-analyze not found: units not verified"
    res = subprocess.run([tool, "verify", *map(str, paths)], capture_output=True, text=True, check=False)
    return res.returncode == 0, (res.stderr + res.stdout).strip()


def install(args: argparse.Namespace) -> int:
    jobs = parse_jobs(args.jobs)
    backend = choose_backend(args.backend)
    if backend == "cron":
        path = Path(args.cron_file)
        if "." in path.name and str(path.parent) == "/etc/cron.d":
            print(f"ledgerguard: warning: cron ignores files in /etc/cron.d whose name has a dot ({path.name})")
        changed = write_file(path, cron_text(args, jobs))
        Path(args.log_dir).mkdir(parents=True, exist_ok=True, mode=0o750)
        print(f"{'wrote' if changed else 'unchanged'} {path} ({', '.join(jobs)})")
        return EXIT_OK
    unit_dir = Path(args.unit_dir)
    written: list[Path] = []
    changed_any = False
    for job in jobs:
        calendar = getattr(args, f"{job}_on_calendar")
        service = unit_dir / f"{args.prefix}-{job}.service"
        timer = unit_dir / f"{args.prefix}-{job}.timer"
        for path, text in ((service, service_unit(args, job)), (timer, timer_unit(args, job, calendar))):
            changed = write_file(path, text)
            changed_any |= changed
            print(f"{'wrote' if changed else 'unchanged'} {path}")
            written.append(path)
    if not args.no_verify:
        ok, output = verify_units(written)
        if not ok:
            print(f"ledgerguard: systemd-analyze verify rejected the units:\n{output}", file=sys.stderr)
            return EXIT_FAILED
        print("systemd-analyze verify: ok" if not output else f"systemd-analyze verify: {output}")
    if manage_units(args, unit_dir):
        if changed_any:
            systemctl("daemon-reload")
        for job in jobs:
            res = systemctl("enable", "--now", f"{args.prefix}-{job}.timer")
            if res.returncode != 0:
                print(f"ledgerguard: systemctl enable {args.prefix}-{job}.timer failed: {res.stderr.strip()}")
                return EXIT_FAILED
            print(f"enabled {args.prefix}-{job}.timer")
    else:
        timers = " ".join(f"{args.prefix}-{j}.timer" for j in jobs)
        print(f"not enabled (unit dir {unit_dir}); to enable: systemctl daemon-reload; systemctl enable --now {timers}")
    return EXIT_OK


def remove(args: argparse.Namespace) -> int:
    jobs = parse_jobs(args.jobs)
    backend = choose_backend(args.backend)
    if backend == "cron":
        path = Path(args.cron_file)
        if path.exists():
            path.unlink()
            print(f"removed {path}")
        else:
            print(f"nothing to remove: {path} does not exist")
        return EXIT_OK
    unit_dir = Path(args.unit_dir)
    manage = manage_units(args, unit_dir)
    removed = 0
    for job in jobs:
        timer = unit_dir / f"{args.prefix}-{job}.timer"
        service = unit_dir / f"{args.prefix}-{job}.service"
        if manage and timer.exists():
            systemctl("disable", "--now", timer.name)
        for path in (timer, service):
            if path.exists():
                path.unlink()
                removed += 1
                print(f"removed {path}")
    if manage and removed:
        systemctl("daemon-reload")
    if not removed:
        print(f"nothing to remove in {unit_dir}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.schedule_command == "install":
        return install(args)
    return remove(args)
