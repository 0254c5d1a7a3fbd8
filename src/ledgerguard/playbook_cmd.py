"""What every ledgerguard command that runs a playbook shares: option types, ``-e`` variables, the variables a run
gets, the evidence root and the next incident id, and the ansible-runner run. ``cli`` and each subcommand module
(``survey``, ``backup``, ``review``, ...) import it; it imports none of them, so there is no import cycle."""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ledgerguard import collection
from ledgerguard.common import BadInput, check_secret_file
from ledgerguard.runner import PlaybookRun

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_runner_dir() -> Path:
    env = os.environ.get("LEDGERGUARD_RUNNER_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/ledgerguard/runner")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ledgerguard" / "runner"


@dataclass
class ExtraVars:
    """What -e gave: inline variables (key=value, JSON) and variable files passed through by path.

    ``file_keys`` are the names the files define (read here only to check them, e.g. for an incident id); the files'
    values are never copied into ``values``, so a secret in a file never reaches ansible-playbook's command line or
    ansible-runner's artifacts.
    """

    values: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    file_values: dict[str, Any] = field(default_factory=dict)


def read_vars_file(item: str) -> tuple[str, dict[str, Any]]:
    """Check an ``-e @file`` (exists, regular, a YAML/JSON mapping); return its absolute path and its variables."""
    path = Path(item[1:]).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadInput(f"-e {item}: {path} does not exist; give the path of a YAML or JSON variables file") from None
    except OSError as exc:
        raise BadInput(f"-e {item}: cannot read {path} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"-e {item}: {path} is not a regular file; give a YAML or JSON variables file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StringTimesLoader)  # noqa: S506 - safe loader
    except OSError as exc:
        raise BadInput(f"-e {item}: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadInput(f"-e {item}: {path} is not UTF-8 text; save it as UTF-8 YAML or JSON") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"-e {item}: {path} is not YAML/JSON ({exc.__class__.__name__}); fix the file") from None
    if not isinstance(data, dict):
        raise BadInput(f"-e {item}: {path} must hold a mapping of variables (name: value)")
    return str(path.resolve()), data


class _StringTimesLoader(yaml.SafeLoader):
    """A safe loader that keeps dates and times as the strings they were written as (as Ansible does)."""


_StringTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_extra_vars(items: list[str]) -> ExtraVars:
    """-e key=value (the value stays a string, as ansible-playbook keeps it), -e JSON object, or -e @file.yml|json
    (checked here, then passed to ansible-playbook by path)."""
    out = ExtraVars()
    for item in items or []:
        if item.startswith("@"):
            path, data = read_vars_file(item)
            out.files.append(path)
            out.file_values.update(data)
        elif item.lstrip().startswith("{"):
            try:
                data = json.loads(item)
            except ValueError:
                raise BadInput(
                    f'-e {item!r}: not valid JSON; give a JSON object such as \'{{"name": "value"}}\''
                ) from None
            if not isinstance(data, dict):
                raise BadInput(f"-e {item!r}: a JSON value must be an object of variables")
            out.values.update(data)
        elif "=" in item:
            key, _sep, value = item.partition("=")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise BadInput(f"-e {item!r}: '{key}' is not a valid variable name (letters, digits, '_')")
            out.values[key] = value
        else:
            raise BadInput(f"-e {item!r}: expected key=value, a JSON object or @file")
    return out


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must not be negative")
    return value


def duration(text: str) -> float:
    """Seconds from '90', '90s', '15m', '4h', '2d'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 900, 15m, 4h or 1d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def identifier(text: str) -> str:
    if not ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"'{text}' must be 1-64 letters, digits, '.', '_' or '-'")
    return text


def playbook_extravars(args: argparse.Namespace, extra: ExtraVars | None = None) -> dict[str, Any]:
    """The variables a run gets: connection paths (never secrets), evidence folder, command options, inline -e.

    Variable files (-e @file) are not read into it: they go to ansible-playbook by path (``ExtraVars.files``).
    """
    if extra is None:
        extra = parse_extra_vars(args.extra_vars)
    extravars: dict[str, Any] = {}
    password_file = check_secret_file(args.password_file, "--password-file")
    if password_file is None and os.environ.get("RESTIC_PASSWORD_FILE"):
        check_secret_file(os.environ["RESTIC_PASSWORD_FILE"], "RESTIC_PASSWORD_FILE")
    s3_file = check_secret_file(args.s3_credentials_file, "--s3-credentials-file")
    if args.repository:
        if re.search(r"://[^/@\s]+:[^/@\s]+@", args.repository):
            raise BadInput("--repository must not embed credentials (user:password@); use --s3-credentials-file")
        extravars["ledgerguard_repository"] = args.repository
    if password_file:
        extravars["ledgerguard_password_file"] = password_file
    if s3_file:
        extravars["ledgerguard_s3_credentials_file"] = s3_file
    if args.s3_profile:
        extravars["ledgerguard_s3_profile"] = args.s3_profile
    if args.evidence_dir:
        extravars["ledgerguard_evidence_dir"] = str(Path(args.evidence_dir).expanduser().resolve())

    cmd = args.command
    if cmd in ("incident", "freeze", "thaw") and args.incident_id:
        extravars["ledgerguard_incident_id"] = args.incident_id
    if cmd == "incident" and args.clients:
        extravars["incident_clients"] = split_list(args.clients)
    if cmd == "drill":
        extravars.update(drill_vars(args))
    extravars.update(extra.values)
    return extravars


def incident_id_given(extravars: dict[str, Any], extra: ExtraVars) -> bool:
    return bool(str(extravars.get("ledgerguard_incident_id") or extra.file_values.get("ledgerguard_incident_id") or ""))


def evidence_root(extravars: dict[str, Any], extra: ExtraVars) -> Path:
    """Where the playbook keeps evidence folders: ledgerguard_evidence_dir, else the roles' default (the collection's
    evidence_root rule: $LEDGERGUARD_EVIDENCE_DIR, /var/lib/ledgerguard/evidence for root, else XDG state)."""
    given = extravars.get("ledgerguard_evidence_dir") or extra.file_values.get("ledgerguard_evidence_dir")
    return Path(str(given)).expanduser().resolve() if given else default_evidence_root()


def default_evidence_root() -> Path:
    return collection.module("plugins.plugin_utils.evidence_pack").default_evidence_root().resolve()


def new_incident_id(root: Path, reserve: bool = True) -> str:
    """The next ``INC-<YYYYMMDD>-NNN`` under ``root`` (the playbook's own format and numbering, controller local
    date). With ``reserve`` its evidence folder is created exclusively (mode 0700), so two operators starting at the
    same moment get different ids."""
    today = datetime.now().strftime("%Y%m%d")  # noqa: DTZ005 - the playbook numbers by the controller's local date
    for _attempt in range(1000):
        try:
            existing = [p.name for p in root.iterdir()] if root.is_dir() else []
        except OSError as exc:
            raise BadInput(f"evidence folder {root} cannot be read ({exc.strerror}); give --evidence-dir") from None
        numbers = [0] + [int(m.group(1)) for n in existing if (m := re.fullmatch(rf"INC-{today}-([0-9]{{3}})", n))]
        number = max(numbers) + 1
        if number > 999:
            raise BadInput(f"more than 999 incidents on {today} in {root}; give --incident-id")
        incident_id = f"INC-{today}-{number:03d}"
        if not reserve:
            return incident_id
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.mkdir(root / incident_id, 0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise BadInput(
                f"cannot create the evidence folder {root / incident_id} ({exc.strerror}); "
                "give --evidence-dir with a writable folder"
            ) from None
        return incident_id
    raise BadInput(f"could not reserve a new incident id in {root}; give --incident-id")


def split_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def drill_vars(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    snap = (args.snapshot or "latest").strip()
    if snap in ("latest", "random"):
        out["drill_snapshot_selection"] = snap
    elif re.fullmatch(r"[0-9a-fA-F]{4,64}", snap):
        out["drill_snapshot_id"] = snap
    else:
        raise BadInput(f"--snapshot {snap!r}: expected latest, random or a snapshot id (4-64 hex characters)")
    if args.window_days is not None:
        out["drill_random_window_days"] = args.window_days
    if args.seed:
        out["drill_random_seed"] = args.seed
    if args.clients:
        out["drill_clients"] = split_list(args.clients)
    if args.sandbox:
        if not args.sandbox.startswith("/"):
            raise BadInput(f"--sandbox {args.sandbox!r} must be an absolute path on the hosts")
        out["drill_sandbox_dir"] = args.sandbox
    targets = {}
    if args.rto is not None:
        targets["rto_seconds"] = args.rto
    if args.rpo is not None:
        targets["rpo_seconds"] = args.rpo
    if args.min_throughput is not None:
        targets["min_throughput_bytes_per_second"] = args.min_throughput
    if targets:
        # Command-line targets win over the inventory's, for every client; targets not given keep their values.
        out["drill_target_overrides"] = targets
    if args.drill_id:
        out["drill_id"] = args.drill_id
    if args.keep_sandbox:
        out["drill_keep_sandbox"] = True
    if args.metrics_dir:
        out["drill_metrics_dir"] = args.metrics_dir
    return out


def resolve_inventory(inventory: str | None) -> str | None:
    if not inventory:
        return None
    p = Path(inventory).expanduser()
    if not p.exists():
        raise BadInput(f"--inventory {inventory}: no such file or directory")
    return str(p.resolve())


def playbook_run(
    args: argparse.Namespace,
    playbook: str,
    private_data_dir: Path,
    inventory: str | None,
    extravars: dict[str, Any],
    extra: ExtraVars,
    ident: str,
) -> PlaybookRun:
    """One ansible-runner run of a playbook with the options every subcommand shares (limit, check, verbosity,
    artifact rotation)."""
    return PlaybookRun(
        playbook=playbook,
        private_data_dir=private_data_dir,
        inventory=inventory,
        extravars=extravars,
        extravars_files=extra.files,
        limit=args.limit,
        ident=ident,
        check=args.check,
        verbosity=args.verbose,
        rotate_artifacts=max(1, args.rotate_artifacts),
    )


@dataclass
class FinishedRun:
    """A subcommand's finished playbook run: ansible-runner's result, the progress summary, its artifacts folder."""

    runner: Any
    progress: Any
    artifacts: Path


def run_with_progress(
    args: argparse.Namespace,
    command: str,
    playbook: str,
    extravars: dict[str, Any],
    extra: ExtraVars,
    what: str,
) -> FinishedRun:
    """Run ``playbook`` for a subcommand (``survey``, ``backup``) through ansible-runner with live progress (on stderr
    under --json): private data under <runner dir>/<command>, run id ``<command>-<UTC time>``, title naming ``what``."""
    from ledgerguard.progress import Progress
    from ledgerguard.runner import run_playbook

    base = Path(args.private_data_dir).expanduser() if args.private_data_dir else default_runner_dir()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    ident = f"{command}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    progress = Progress(
        stream=sys.stdout if not args.json else sys.stderr,
        tty=False if args.plain else None,
        title=f"ledgerguard {command}: playbooks/{playbook}, {what} (run {ident})",
        quiet=args.json,
    )
    pb = playbook_run(args, playbook, base / command, resolve_inventory(args.inventory), extravars, extra, ident)
    with progress:
        runner = run_playbook(pb, event_handler=progress)
    return FinishedRun(runner, progress, base / command / "artifacts" / ident)
