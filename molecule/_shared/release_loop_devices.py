"""Thaw, unmount and detach the loop-device filesystems of THIS container (Molecule's shared cleanup).

A privileged container shares the host's loop devices: a device set up inside it stays attached after the container
is destroyed, and the machine has only eight. A frozen filesystem must be thawed before anything else: a writer
blocked on it cannot be killed. This script therefore, inside the container:

1. for every mount whose source is a loop device: `fsfreeze --unfreeze` (harmless when not frozen), then `umount`;
2. detaches every loop device whose backing file is a file of this container: same device and inode as seen from
   inside (devices of other containers or of the host never match, so they are left alone).

Prints one JSON object: {"changed": bool, "thawed": [...], "unmounted": [...], "detached": [...], "errors": [...]}.
Exit code 1 when something could not be released.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run(*argv: str) -> subprocess.CompletedProcess:
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env)


def loop_mounts() -> list[tuple[str, str]]:
    """(source, target) of loop-backed mounts, deepest target first."""
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            target = left.split()[4].encode().decode("unicode_escape")
            source = right.split()[1]
            if source.startswith("/dev/loop"):
                mounts.append((source, target))
    return sorted(mounts, key=lambda m: m[1].count("/"), reverse=True)


def own_loop_devices() -> list[str]:
    out = run("losetup", "--list", "--json", "--output", "NAME,BACK-FILE,BACK-INO,BACK-MAJ:MIN")
    if out.returncode != 0 or not out.stdout.strip():
        return []
    devices = []
    for dev in json.loads(out.stdout).get("loopdevices", []):
        path, ino, majmin = dev.get("back-file") or "", dev.get("back-ino"), (dev.get("back-maj:min") or "").strip()
        path = path.removesuffix(" (deleted)")
        try:
            st = os.stat(path)
        except OSError:
            continue
        if str(st.st_ino) == str(ino) and majmin == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}":
            devices.append(dev["name"])
    return devices


def main() -> int:
    result: dict = {"thawed": [], "unmounted": [], "detached": [], "errors": []}
    for source, target in loop_mounts():
        if run("fsfreeze", "--unfreeze", target).returncode == 0:
            result["thawed"].append(target)
        umount = run("umount", target)
        if umount.returncode == 0:
            result["unmounted"].append(target)
        else:
            result["errors"].append(f"umount {target} ({source}): {umount.stderr.strip()}")
    for device in own_loop_devices():
        detach = run("losetup", "--detach", device)
        if detach.returncode == 0:
            result["detached"].append(device)
        else:
            result["errors"].append(f"losetup --detach {device}: {detach.stderr.strip()}")
    result["changed"] = bool(result["thawed"] or result["unmounted"] or result["detached"])
    print(json.dumps(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
