#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_dump_backup
short_description: Stream a PostgreSQL or MariaDB dump straight into restic, never onto the host's disk
description:
  - Runs C(pg_dump -Fc) (O(engine=postgresql)) or C(mariadb-dump --single-transaction) (O(engine=mariadb)) of
    O(database) and pipes its output into C(restic backup --stdin --stdin-filename <name>), so the dump is never
    written to the host's disk in clear. The snapshot holds one file, C(/ledgerguard-db/<engine>/<database>.<ext>),
    and carries the dump tag C(db-<engine>-<database>) besides O(tags) - the name the backup role's off-site copy
    copies the dumps by (in YAML the filter P(ledgerguard.recovery.db_dump_tag#filter) gives it).
  - When the dump program fails (even after restic stored what it had received), the snapshot is forgotten again and
    the task fails with the dump program's message - a truncated dump never stays as the newest snapshot.
  - Database credentials reach the dump program only through its environment (O(dump_env), for example
    E(PGPASSWORD) or E(PGPASSFILE), E(MYSQL_PWD)) or its own option files, never its command line.
version_added: 0.2.0
author: ledgerguard contributors (@ledgerguard)
options:
  engine:
    description: The database server.
    type: str
    choices: [postgresql, mariadb]
    required: true
  database:
    description: The database to dump.
    type: str
    required: true
  connection:
    description:
      - Where the server is. For PostgreSQL C(host) (a host name or a socket folder), C(port), C(user); for MariaDB
        C(host), C(port), C(user), C(socket), C(defaults_extra_file) (an option file with the password).
    type: dict
    default: {}
  dump_env:
    description: Extra environment for the dump program (passwords, for example E(PGPASSWORD)). Not logged.
    type: dict
    default: {}
  dump_binary:
    description: The dump program; default C(pg_dump) or C(mariadb-dump) (then C(mysqldump)) found on E(PATH).
    type: path
  tags:
    description: Further tags for the snapshot (the client, the job); the dump tag C(db-<engine>-<database>) is always
      added.
    type: list
    elements: str
    default: []
  host:
    description: Host name recorded in the snapshot.
    type: str
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: In check mode the schema alone is dumped (to nothing) to prove the connection; no snapshot is made.
"""

EXAMPLES = r"""
- name: Dump the ledger database into restic
  ledgerguard.recovery.db_dump_backup:
    engine: postgresql
    database: ledger
    connection: {host: /run/postgresql, user: backup}
    tags: [c001, ledgerguard-backup]  # the snapshot also gets db-postgresql-ledger
"""

RETURN = r"""
snapshot_id:
  description: Full ID of the new snapshot; empty in check mode.
  returned: success
  type: str
short_id:
  description: Short ID of the new snapshot; empty in check mode.
  returned: success
  type: str
path:
  description: The dump's path inside the snapshot.
  returned: success
  type: str
  sample: /ledgerguard-db/postgresql/ledger.dump
tags:
  description: The snapshot's tags - O(tags) and the dump tag.
  returned: success
  type: list
  elements: str
  sample: [c001, ledgerguard-backup, db-postgresql-ledger]
dump_tag:
  description: The dump tag C(db-<engine>-<database>).
  returned: success
  type: str
  sample: db-postgresql-ledger
bytes:
  description: Size of the dump (bytes restic read).
  returned: success
  type: int
summary:
  description: restic's backup summary.
  returned: success
  type: dict
seconds:
  description: Wall-clock seconds of the dump and backup.
  returned: success
  type: float
"""

import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import (  # noqa: E402
    dump_argv,
    dump_path,
    dump_tag,
    stream_dump,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import classify_error  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import parse_backup_summary  # noqa: E402


def forget_partial(restic, short: str, full: str) -> str:
    """Forget the truncated dump's snapshot (restic stored what the failed dump wrote); what happened, as said."""
    if full:
        gone = restic.run("forget", "--", full)
        if gone.rc == 0 and not gone.timed_out:
            return f"The partial snapshot {full[:8]} was forgotten; "
        return (
            f"The partial snapshot {full[:8]} could NOT be forgotten (restic forget exit {gone.rc}): forget it by hand "
            f"('restic forget {full}') before trusting this database's newest snapshot; "
        )
    if short:
        return f"restic reported snapshot {short}, not in the repository's list: check 'restic snapshots'; "
    return "No snapshot was kept; "


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        engine={"type": "str", "choices": ["postgresql", "mariadb"], "required": True},
        database={"type": "str", "required": True},
        connection={"type": "dict", "default": {}},
        dump_env={"type": "dict", "default": {}, "no_log": True},
        dump_binary={"type": "path"},
        tags={"type": "list", "elements": "str", "default": []},
        host={"type": "str"},
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    p = module.params
    if not re.match(r"^[A-Za-z0-9_.$-]+$", p["database"]):
        module.fail_json(msg=f"database {p['database']!r} holds characters a dump name cannot carry")
    binary = p["dump_binary"]
    if not binary:
        names = ["pg_dump"] if p["engine"] == "postgresql" else ["mariadb-dump", "mysqldump"]
        binary = next((b for b in (module.get_bin_path(n) for n in names) if b), None)
        if not binary:
            module.fail_json(msg=f"{' or '.join(names)} was not found on this host; install the database client")
    env = {k: os.environ[k] for k in ("PATH", "HOME", "TZ") if k in os.environ}
    env.update({"LC_ALL": "C", **{str(k): str(v) for k, v in p["dump_env"].items()}})
    try:
        argv = dump_argv(p["engine"], binary, p["database"], p["connection"], schema_only=module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    name = dump_path(p["engine"], p["database"])
    tag = dump_tag(p["engine"], p["database"])
    tags = [t for t in p["tags"] if t != tag] + [tag]

    def body(restic):
        base = {"path": "/" + name, "tags": tags, "dump_tag": tag, "restic_version": restic.features.version_string}
        if module.check_mode:
            rc, _out, err = module.run_command(argv, environ_update=env)
            if rc != 0:
                raise ValueError(f"{os.path.basename(binary)} cannot dump {p['database']}: {err[-800:]}")
            restic.config()
            return dict(base, changed=True, snapshot_id="", short_id="", bytes=0, summary={}, seconds=0.0)
        restic.snapshots()  # opens the repository (and clears a provably stale lock) before the dump starts
        args = ["backup", "--json", "--stdin", "--stdin-filename", name]
        if p["host"]:
            args += ["--host", p["host"]]
        for t in tags:
            args += ["--tag", t]
        started = time.monotonic()
        dump_rc, err, res = stream_dump(argv, env, lambda pipe: restic.run(*args, stdin=pipe))
        action = f"store the {p['engine']} dump of {p['database']}"
        if dump_rc != 0:  # whatever restic stored is a truncated dump: forget it
            try:
                short = parse_backup_summary(res.stdout + "\n" + res.stderr).get("snapshot_id", "")
            except ValueError:
                short = ""
            full = next((s.id for s in restic.snapshots() if short and s.id.startswith(short)), "")
            raise ValueError(
                f"{os.path.basename(binary)} of database {p['database']} failed (exit {dump_rc}): "
                f"{err.strip()[-800:]}. {forget_partial(restic, short, full)}nothing of this database was backed up."
            )
        if res.rc != 0 or res.timed_out:
            raise classify_error(res, restic.repository, restic.features, action=action)
        summary = parse_backup_summary(res.stdout + "\n" + res.stderr)
        short = summary.get("snapshot_id", "")
        full = next((s.id for s in restic.snapshots() if short and s.id.startswith(short)), short)
        return dict(
            base,
            changed=True,
            snapshot_id=full,
            short_id=full[:8],
            bytes=int(summary.get("total_bytes_processed") or 0),
            summary=summary,
            seconds=round(time.monotonic() - started, 3),
        )

    run_module(module, body)


if __name__ == "__main__":
    main()
