"""Run a command inside a running podman container with nsenter instead of `podman exec` (standard library only).

`podman exec` is three programs (podman, conmon, runc exec): about 0.11 CPU s and 0.3 s of wall time on the test
machine for each command, which the Molecule scenarios pay for every module and every testinfra command. nsenter
enters the container's namespaces directly (mount, UTS, IPC, network, PID, cgroup; its root and working folder), and
inside the command runs as podman exec runs it: as root, with only the container's bounding capability set (setpriv:
a non-privileged container's command gets no more power than podman exec gives it) and with exactly the container's
environment (env -i, then podman's Config.Env: nothing of the controller's environment, such as the S3 keys, reaches
the container). Unlike podman exec, the command stays in the caller's cgroup (its CPU is counted there) and runs
without podman's seccomp filter.

Used by the lg_podman connection plugin (connection_plugins/lg_podman.py) and by the testinfra verifiers
(molecule/conftest.py). What a container needs (process id, id, capabilities, environment) comes from one
`podman inspect` and is kept in the scenario's ephemeral folder (MOLECULE_EPHEMERAL_DIRECTORY) as
lg_podman-<name>.json; every use checks the cached process is still that container's (its /proc/<pid>/cgroup names
the container's id), so a re-created container is inspected again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

# The namespaces and state nsenter takes from the container's first process (no user namespace: rootful podman).
NSENTER_ARGS = ["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd"]


def container_owns(pid: int, container_id: str) -> bool:
    """True when process pid lives in the cgroup podman made for container_id (libpod-<id>, also as a .scope)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            return f"libpod-{container_id}" in f.read()
    except OSError:
        return False


def _cache_path(name: str) -> str | None:
    folder = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not folder or not os.path.isdir(folder) or "/" in name or not shutil.which("nsenter"):
        return None
    return os.path.join(folder, f"lg_podman-{name}.json")


def cached_target(name: str) -> dict | None:
    """The cached target of container name, when it is still that running container; else None."""
    cache = _cache_path(name)
    if cache is None:
        return None
    try:
        with open(cache, encoding="utf-8") as f:
            target = json.load(f)
        if container_owns(int(target["pid"]), str(target["id"])):
            return target
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def inspect_target(name: str, podman: list[str]) -> dict | None:
    """Inspect container name with the podman command line podman (a list), cache and return its target.

    None when there is no cache folder (the caller then uses podman exec). Raises RuntimeError when the container
    is not running or its process is not in its cgroup.
    """
    cache = _cache_path(name)
    if cache is None:
        return None
    proc = subprocess.run(
        [*podman, "inspect", "--type", "container", "--format", "json", name], capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"podman inspect {name} failed ({proc.stderr.decode(errors='replace').strip()}): is the container "
            "running? (scripts/molecule.sh creates it in the create step)"
        )
    info = json.loads(proc.stdout)[0]
    state = info.get("State") or {}
    if not state.get("Running") or not state.get("Pid"):
        raise RuntimeError(f"container {name} is not running (podman inspect: {state})")
    caps = info.get("BoundingCaps") or info.get("EffectiveCaps") or []
    target = {
        "id": info["Id"],
        "pid": state["Pid"],
        "env": (info.get("Config") or {}).get("Env") or [],
        # setpriv names capabilities without the cap_ prefix: CAP_CHOWN -> chown
        "caps": [c.lower().removeprefix("cap_") for c in caps],
    }
    if not container_owns(target["pid"], target["id"]):
        raise RuntimeError(f"process {target['pid']} of container {name} is not in the container's cgroup")
    tmp = f"{cache}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(target, f)
    os.replace(tmp, cache)
    return target


def command(target: dict, argv: list[str]) -> list[str]:
    """The host command line that runs argv inside the target container, as podman exec would (see the docstring)."""
    caps = ",".join(["-all"] + [f"+{c}" for c in target["caps"]])
    return [
        "nsenter",
        f"--target={target['pid']}",
        *NSENTER_ARGS,
        "--",
        "/usr/bin/setpriv",
        f"--bounding-set={caps}",
        "--inh-caps=-all",
        "--",
        "/usr/bin/env",
        "-i",
        *target["env"],
        *argv,
    ]
