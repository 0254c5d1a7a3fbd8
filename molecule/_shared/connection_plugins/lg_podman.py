"""Connection plugin for the Molecule scenarios: run modules in a podman container through nsenter, pipelined.

containers.podman's connection runs four podman processes for each module a task runs (`podman mount`, then three
`podman exec`), and each `podman exec` is itself three programs (podman, conmon, runc exec): about 0.11 CPU s and
0.3 s of wall time on the test machine, paid hundreds of times per scenario. This connection instead:

- pipelines: the module goes to the container's python3 on standard input, as ssh pipelining does it;
- runs it through nsenter (molecule/_shared/lg_nsenter.py: the container's namespaces, root, bounding capabilities
  and environment, as podman exec would run it), so no podman process runs per task;
- copies files in and out through the same nsenter (`cat`), so paths resolve inside the container.

The container's process and settings come from one `podman inspect`, kept in the scenario's ephemeral folder. Without
that folder (outside Molecule), or for a task with a remote user, it falls back to one `podman exec --interactive`
per module and `podman mount` for files.

The scenarios' inventories name it through provisioner.connection_options in .config/molecule/config.yml
(ANSIBLE_CONNECTION_PLUGINS points at this folder).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
name: lg_podman
short_description: Run modules in a running podman container through nsenter, pipelined
description:
  - containers.podman.podman with pipelining, entering the container's namespaces with C(nsenter) instead of running
    C(podman exec) for each module (C(podman exec) without Molecule's ephemeral folder or with a remote user).
options:
  remote_addr:
    description: The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: The user that runs the commands inside the container (the container's default when unset).
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments for every podman command.
    default: ''
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description: Send modules on the standard input of the command instead of copying them.
    type: boolean
    default: true
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""

display = Display()

# The plugin loader imports this file by path: load its helper from molecule/_shared the same way.
_spec = importlib.util.spec_from_file_location(
    "lg_nsenter", os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lg_nsenter.py")
)
lg_nsenter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lg_nsenter)


class Connection(PodmanConnection):
    """containers.podman.podman, pipelined, entering the container with nsenter."""

    transport = "lg_podman"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._target = None

    def _connect(self):
        # No `podman mount` here: a pipelined module needs no file in the container.
        ConnectionBase._connect(self)
        self._connected = True

    def _container(self) -> dict | None:
        """The container as nsenter needs it (lg_nsenter), or None to use podman exec."""
        if self._target is None and not self.user:
            name = self._container_id
            self._target = lg_nsenter.cached_target(name)
            if self._target is None:
                podman = [shutil.which(self.get_option("podman_executable")) or "podman"]
                podman += shlex.split(to_native(self.get_option("podman_extra_args") or ""))
                try:
                    self._target = lg_nsenter.inspect_target(name, podman)
                except RuntimeError as e:
                    raise AnsibleConnectionFailure(str(e)) from e
        return self._target

    def _nsenter(self, target: dict, argv: list, stdin) -> tuple[int, bytes, bytes]:
        """Run argv in the container; stdin is bytes, an open file or None."""
        local = [to_bytes(a, errors="surrogate_or_strict") for a in lg_nsenter.command(target, argv)]
        display.vvv(f"RUN {local}", host=self._container_id)
        data = stdin if isinstance(stdin, bytes) else None
        with subprocess.Popen(
            local,
            stdin=subprocess.PIPE if data is not None else (stdin or subprocess.DEVNULL),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as p:
            out, err = p.communicate(input=data)
        return p.returncode, out, err

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        target = self._container()
        if target is not None:
            return self._nsenter(target, argv, in_data)
        exec_args = ["exec"]
        if in_data is not None:
            # podman exec forwards its standard input only with --interactive.
            exec_args.append("--interactive")
        if self.user:
            exec_args.extend(("--user", self.user))
        return self._podman(exec_args, argv, in_data)

    def put_file(self, in_path, out_path):
        target = self._container()
        if target is None:
            if self._mount_point is None:
                PodmanConnection._connect(self)
            return super().put_file(in_path, out_path)
        ConnectionBase.put_file(self, in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container_id)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as src:
            rc, _out, err = self._nsenter(target, ["/bin/sh", "-c", 'cat > "$1"', "sh", out_path], src)
        if rc != 0:
            raise AnsibleError(f"Failed to copy {in_path} to {out_path} in {self._container_id}: {to_native(err)}")
        return None

    def fetch_file(self, in_path, out_path):
        target = self._container()
        if target is None:
            if self._mount_point is None:
                PodmanConnection._connect(self)
            return super().fetch_file(in_path, out_path)
        ConnectionBase.fetch_file(self, in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container_id)
        rc, out, err = self._nsenter(target, ["cat", "--", in_path], None)
        if rc != 0:
            raise AnsibleError(f"Failed to fetch {in_path} from {self._container_id} to {out_path}: {to_native(err)}")
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as dst:
            dst.write(out)
        return None
