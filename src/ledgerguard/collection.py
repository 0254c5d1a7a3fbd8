"""Find the ``ledgerguard.recovery`` collection the way ``ansible-playbook`` does, and import its Python code.

The CLI is an ordinary consumer of the installed collection: it never edits ``sys.path`` and never guesses where the
checkout is. If ``ansible_collections.ledgerguard.recovery`` is already importable (a collection installed into a
Python ``site-packages``, as the ``ansible`` package installs community.general), that copy is used. Otherwise
Ansible's own collection loader is started with Ansible's own configuration -- ``ANSIBLE_COLLECTIONS_PATH``, the
``collections_path`` of the ``ansible.cfg`` in effect (``ANSIBLE_CONFIG``, ``./ansible.cfg``, ``~/.ansible.cfg``) or
the defaults ``~/.ansible/collections:/usr/share/ansible/collections`` -- so the CLI imports exactly the collection
the playbooks it starts will run. In the checkout, ``make setup`` links the repository at
``.collections/ansible_collections/ledgerguard/recovery`` and ``ansible.cfg`` names ``.collections``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from ledgerguard.common import BadInput

NAMESPACE, NAME = "ledgerguard", "recovery"
FQCN = f"{NAMESPACE}.{NAME}"
PACKAGE = f"ansible_collections.{NAMESPACE}.{NAME}"


class CollectionNotFound(BadInput, ImportError):
    """The collection is not installed where Ansible looks; the message says how to install it (the CLI prints it as
    one line and exits 2, like any bad input)."""


_found: list[ModuleType | CollectionNotFound] = []  # the one answer, found once per process


def _package() -> ModuleType:
    if not _found:
        try:
            _found.append(_find())
        except CollectionNotFound as exc:
            _found.append(exc)
    if isinstance(_found[0], CollectionNotFound):
        raise _found[0]
    return _found[0]


def _find() -> ModuleType:
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError:
        pass
    # Not on the Python path: let Ansible's collection loader find it on the configured collections path. A plain
    # namespace import of `ansible_collections` left behind by the attempt above would shadow the loader's.
    for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
        module = sys.modules[name]
        if getattr(module, "__loader__", None).__class__.__module__.startswith("ansible."):
            continue
        del sys.modules[name]
    from ansible import constants as C
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError:
        raise CollectionNotFound(
            f"the Ansible collection {FQCN} is not installed where Ansible looks ({':'.join(C.COLLECTIONS_PATHS)}); "
            f"install it with `ansible-galaxy collection install <{NAMESPACE}-{NAME}-VERSION.tar.gz>`, or set "
            "ANSIBLE_COLLECTIONS_PATH (or ANSIBLE_CONFIG) to where it is; in a checkout, run `make setup`"
        ) from None


def module(relative: str) -> ModuleType:
    """Import ``ansible_collections.ledgerguard.recovery.<relative>``, e.g. ``plugins.module_utils.timeline``."""
    _package()
    return importlib.import_module(f"{PACKAGE}.{relative}")


def root() -> Path:
    """The collection's folder (``.../ansible_collections/ledgerguard/recovery``), symlinks not resolved."""
    return Path(list(_package().__path__)[0])


def collections_dir() -> Path:
    """The collections-path entry holding the collection (the folder above ``ansible_collections``)."""
    return root().parents[2]


def playbook(name: str) -> str:
    """A playbook's FQCN: ``incident_respond.yml`` -> ``ledgerguard.recovery.incident_respond``."""
    return f"{FQCN}.{name.removesuffix('.yml').removesuffix('.yaml')}"


def has_playbook(name: str) -> bool:
    base = name.removesuffix(".yml").removesuffix(".yaml")
    return any((root() / "playbooks" / f"{base}{ext}").is_file() for ext in (".yml", ".yaml"))
