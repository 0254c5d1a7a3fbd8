"""Connection plugin for the Molecule scenarios: containers.podman.podman with pipelining.

containers.podman's connection runs four podman processes for each module a task runs: `podman mount` (a new
connection per task), `podman exec` to make the temporary folder, `podman exec` to chmod the module, `podman exec`
to run it (and remove the folder). Each podman process costs about a quarter of a CPU second on the test machine,
which the scenarios pay hundreds of times. This connection pipelines instead: the module goes to the container's
python3 on the standard input of one `podman exec --interactive`, as ssh pipelining does it; the container's
filesystem is mounted only when a file is copied in or out (copy, template, script, fetch).

The scenarios' inventories name it through provisioner.connection_options in .config/molecule/config.yml
(ANSIBLE_CONNECTION_PLUGINS points at this folder).
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
name: lg_podman
short_description: Run modules in an existing podman container, pipelined
description:
  - containers.podman.podman with pipelining (one C(podman exec --interactive) per module) and a lazy mount.
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
    description: Send modules on the standard input of C(podman exec --interactive) instead of copying them.
    type: boolean
    default: true
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""


class Connection(PodmanConnection):
    """containers.podman.podman, pipelined, mounting the container only for file transfers."""

    transport = "lg_podman"
    has_pipelining = True

    def _connect(self):
        # No `podman mount` here: a pipelined module needs no file in the container.
        ConnectionBase._connect(self)
        self._connected = True

    def _mount(self) -> None:
        if self._mount_point is None:
            PodmanConnection._connect(self)

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        exec_args = ["exec"]
        if in_data is not None:
            # podman exec forwards its standard input only with --interactive.
            exec_args.append("--interactive")
        if self.user:
            exec_args.extend(("--user", self.user))
        return self._podman(exec_args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path, out_path):
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mount()
        super().fetch_file(in_path, out_path)
