#!/usr/bin/python
# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_restore
short_description: Restore a PostgreSQL or MariaDB dump snapshot into a new database, check it, optionally swap it in
description:
  - Restores a dump that M(ledgerguard.recovery.db_dump_backup) streamed into restic. The snapshot (the newest one
    holding the database's dump path, or O(snapshot)) is streamed out with C(restic dump) straight into C(pg_restore
    --single-transaction --exit-on-error) or the C(mariadb) client, never written to the host's disk in clear, into
    the database O(target), which must not exist yet (PostgreSQL creates it from C(template0) with the owner,
    encoding and locale of O(database) when that exists; MariaDB with the dump's own character set).
  - The restore is then checked - its tables (PostgreSQL C(schema.table), MariaDB C(table)) and their exact row
    counts, at least O(min_tables) tables, every table of O(expect_tables), and O(min_rows) - and returned. A restore
    that fails or does not check out is dropped again and the task fails with the reason.
  - O(mode=scratch) (the drill) drops O(target) after the check unless O(keep_target).
  - O(mode=beside) (the incident path) keeps the checked restore beside the damaged database and, with O(swap=true),
    swaps by rename - O(database) becomes C(<database>_damaged_<incident>) (the quarantine rule for databases) and
    O(target) becomes O(database). PostgreSQL renames both in one transaction (ending the sessions on both first);
    MariaDB moves every table with one atomic C(RENAME TABLE) and refuses databases with views, triggers, routines
    or events. With O(swap=false) it stops before the swap. A re-run after the swap (the quarantine database exists,
    or O(database) carries this snapshot's restore mark) changes nothing; a re-run after O(swap=false) finds the
    marked restore and does not restore it again.
  - With O(ledger) in O(mode=beside), the ledger checks run on the restore before the swap (on every run, also on a
    restore found again). When they find anything the task fails (RV(state) C(ledger_failed)) and nothing is
    swapped - O(database) stays in service unchanged and O(target) is kept beside it for inspection.
  - Credentials reach the database programs only through their environment (O(db_env)) or a MariaDB option file.
version_added: 0.2.0
author: ledgerguard contributors (@ledgerguard)
options:
  engine:
    description: The database server.
    type: str
    choices: [postgresql, mariadb]
    required: true
  database:
    description: The database whose dump is restored (the name it was dumped under, and the live database the incident
      path replaces).
    type: str
    required: true
  target:
    description: The new database the dump is restored into; must not exist (except a marked restore of the same
      snapshot in O(mode=beside)).
    type: str
    required: true
  mode:
    description: C(scratch) restores, checks and drops (drill); C(beside) restores beside O(database) and swaps.
    type: str
    choices: [scratch, beside]
    default: scratch
  incident:
    description: Incident id; names the quarantine database C(<database>_damaged_<incident>). Required with
      O(mode=beside).
    type: str
  swap:
    description: With O(mode=beside), swap the checked restore in by rename; false stops before the swap.
    type: bool
    default: true
  keep_target:
    description: With O(mode=scratch), keep the scratch database after the check.
    type: bool
    default: false
  snapshot:
    description: Snapshot ID (or unique prefix), or C(latest) - the newest snapshot holding this database's dump path
      (C(/ledgerguard-db/<engine>/<database>.<dump|sql>)), made by O(snapshot_host), with O(snapshot_tags).
    type: str
    default: latest
  snapshot_host:
    description: Host name the dump snapshot was made by (filters C(latest)).
    type: str
  before:
    description:
      - With O(snapshot=latest), only dumps made strictly before this time count (ISO 8601 with C(Z) or an offset;
        a time without a timezone is refused). The incident path passes the time the loss started (or was detected),
        so the dump restored is the newest clean one, not a dump of the damaged database.
    type: str
  snapshot_tags:
    description: Further tags the dump snapshot must carry (filters C(latest)).
    type: list
    elements: str
    default: []
  min_tables:
    description: Fewest tables the restore must hold.
    type: int
    default: 1
  expect_tables:
    description: Tables the restore must hold (PostgreSQL C(schema.table), MariaDB C(table)).
    type: list
    elements: str
    default: []
  min_rows:
    description: Per table, the fewest rows it must hold.
    type: dict
    default: {}
  ledger:
    description:
      - The restore's ledger table, checked with the bookkeeping checks of M(ledgerguard.recovery.ledger_verify)
        (module_utils C(ledger) - vouchers whose debits and credits differ, gaps and reused voucher numbers, values
        that are not amounts) after the tables and row counts; the check fails when it finds anything (RV(ledger)
        says what). With O(mode=scratch) the restore is then dropped; with O(mode=beside) it is checked before the
        swap and, failing, not swapped in but kept beside O(database).
      - "The mapping is that of a client's SQLite ledger (C(ledgerguard_clients[].ledger.sqlite)): C(table)
        (PostgreSQL C(schema.table), or a table name found in one schema only; MariaDB C(table)), C(columns)
        (logical column -> column name, overriding the defaults C(period), C(voucher_word), C(voucher_no), C(date),
        C(memo), C(account_code), C(debit), C(credit)), C(amount_scale) (integer amounts are in units of
        10^-scale), C(number_start) (default 1)."
      - The rows are read through the SQL client (C(psql), C(mariadb)), one JSON array per row; identifiers are
        quoted. Rows are read in primary key order (the entry order, as a SQLite ledger's C(rowid) gives it; the
        check for a voucher number used twice depends on it), a PostgreSQL table without a primary key in its stored
        order.
    type: dict
  connection:
    description:
      - Where the server is, as in M(ledgerguard.recovery.db_dump_backup). PostgreSQL C(host), C(port), C(user);
        MariaDB C(host), C(port), C(user), C(socket), C(defaults_extra_file).
    type: dict
    default: {}
  db_env:
    description: Extra environment of the database programs (for example E(PGPASSWORD), E(MYSQL_PWD)). Not logged.
    type: dict
    default: {}
    aliases: [dump_env]
  maintenance_db:
    description: PostgreSQL database to connect to for CREATE, DROP and RENAME.
    type: str
    default: postgres
  client_binary:
    description: The SQL client; default C(psql) or C(mariadb) (then C(mysql)) found on E(PATH).
    type: path
  restore_binary:
    description: PostgreSQL's restore program; default C(pg_restore) on E(PATH). MariaDB restores with the client.
    type: path
extends_documentation_fragment:
  - ledgerguard.recovery.restic
attributes:
  check_mode:
    support: full
    description: Plans only - resolves the snapshot, reads which databases exist, returns RV(actions); nothing is
      created, restored, renamed or dropped.
"""

EXAMPLES = r"""
- name: Drill - restore the ledger database into a scratch database, count, drop
  ledgerguard.recovery.db_restore:
    engine: postgresql
    database: ledger
    target: ledger_drill
    connection: {host: /run/postgresql, user: postgres}
    expect_tables: [public.vouchers]

- name: Drill - the same, and the bookkeeping checks on the ledger table (columns named by the firm's software)
  ledgerguard.recovery.db_restore:
    engine: postgresql
    database: ledger
    target: ledger_drill
    connection: {host: /run/postgresql, user: postgres}
    ledger:
      table: 账务.凭证分录
      columns: {period: 会计期间, voucher_word: 凭证字, voucher_no: 凭证号, debit: 借方, credit: 贷方}

- name: Incident - restore beside the damaged database and swap by rename
  ledgerguard.recovery.db_restore:
    engine: mariadb
    database: ledger
    target: ledger_restored
    mode: beside
    incident: INC-20261126-001
    min_rows: {vouchers: 1}

- name: Incident - swap only when the restore's ledger table checks out (else keep it beside, no swap)
  ledgerguard.recovery.db_restore:
    engine: postgresql
    database: books
    target: books_restored_inc_20261126_001
    mode: beside
    incident: INC-20261126-001
    connection: {host: /run/postgresql, user: postgres}
    ledger: {table: 账务.凭证分录, columns: {voucher_no: 凭证号, debit: 借方, credit: 贷方}}
"""

RETURN = r"""
state:
  description: What was done - C(planned) (check mode), C(checked_and_dropped), C(restored) (kept, not swapped),
    C(swapped), C(already_swapped); C(ledger_failed) (the task fails) when the ledger checks found problems - the
    scratch restore dropped (O(mode=scratch)), or the restore kept beside O(database) and not swapped in
    (O(mode=beside)).
  returned: success
  type: str
actions:
  description: The steps of the run (in check mode, the steps it would take).
  returned: success
  type: list
  elements: str
snapshot_id:
  description: Full ID of the dump snapshot.
  returned: success
  type: str
short_id:
  description: Short ID of the dump snapshot.
  returned: success
  type: str
snapshot_time:
  description: Time of the dump snapshot, as restic records it.
  returned: success
  type: str
path:
  description: The dump's path inside the snapshot.
  returned: success
  type: str
  sample: /ledgerguard-db/postgresql/ledger.dump
target:
  description: The database restored into.
  returned: success
  type: str
quarantine:
  description: The name the damaged database keeps after the swap (O(mode=beside)); empty otherwise.
  returned: success
  type: str
swapped:
  description: Whether the swap is done (now or by an earlier run).
  returned: success
  type: bool
tables:
  description: Exact row count of each table of the checked restore (after a swap, of O(database)); empty in check
    mode.
  returned: success
  type: dict
  sample: {public.vouchers: 500}
table_count:
  description: Number of tables in RV(tables).
  returned: success
  type: int
total_rows:
  description: Sum of RV(tables).
  returned: success
  type: int
damaged_tables:
  description: Row counts of the damaged database before the swap (O(mode=beside)), or C(null) when it could not
    be read or does not exist.
  returned: success
  type: dict
ledger:
  description:
    - "With O(ledger), the verdict of the ledger checks on the restore (C(null) without O(ledger) or in check mode):
      C(table), C(ok), C(rows), C(vouchers), C(periods), C(findings_count), C(findings) (at most 100, each with
      C(kind), C(detail) and where it applies C(period), C(voucher), C(line) (row number), C(debit), C(credit),
      C(difference), C(missing)), and one-line C(summary)."
    - Also returned when the ledger check fails the task.
  returned: success
  type: dict
  sample:
    table: 账务.凭证分录
    ok: false
    rows: 6
    vouchers: 3
    findings_count: 1
    summary: "账务.凭证分录: 1 finding (1 unbalanced): voucher 记-2 of 2024-03 does not balance: debit 500.00 !=
      credit 450.00 (difference 50.00)"
restore_seconds:
  description: Wall-clock seconds of the restore and the check.
  returned: success
  type: float
"""

import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as lg  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import dump_path, dump_tag  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbrestore import (  # noqa: E402
    RestoreError,
    check_counts,
    check_name,
    marked_snapshot,
    marker,
    quarantine_name,
    server,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import filter_snapshots  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import classify_error  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.module import (  # noqa: E402
    RESTIC_MUTUALLY_EXCLUSIVE,
    restic_argument_spec,
    run_module,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import ResticResult  # noqa: E402
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import parse_time  # noqa: E402


def find_binary(module, given, names):
    if given:
        return given
    found = next((b for b in (module.get_bin_path(n) for n in names) if b), None)
    if not found:
        module.fail_json(msg=f"{' or '.join(names)} was not found on this host; install the database client")
    return found


def main() -> None:
    spec = restic_argument_spec()
    spec.update(
        engine={"type": "str", "choices": ["postgresql", "mariadb"], "required": True},
        database={"type": "str", "required": True},
        target={"type": "str", "required": True},
        mode={"type": "str", "choices": ["scratch", "beside"], "default": "scratch"},
        incident={"type": "str"},
        swap={"type": "bool", "default": True},
        keep_target={"type": "bool", "default": False},
        snapshot={"type": "str", "default": "latest"},
        snapshot_host={"type": "str"},
        before={"type": "str"},
        snapshot_tags={"type": "list", "elements": "str", "default": []},
        min_tables={"type": "int", "default": 1},
        expect_tables={"type": "list", "elements": "str", "default": []},
        min_rows={"type": "dict", "default": {}},
        ledger={"type": "dict"},
        connection={"type": "dict", "default": {}},
        db_env={"type": "dict", "default": {}, "no_log": True, "aliases": ["dump_env"]},
        maintenance_db={"type": "str", "default": "postgres"},
        client_binary={"type": "path"},
        restore_binary={"type": "path"},
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=RESTIC_MUTUALLY_EXCLUSIVE,
        required_if=[("mode", "beside", ["incident"])],
        supports_check_mode=True,
    )
    p = module.params
    engine, database, target = p["engine"], p["database"], p["target"]
    if engine == "postgresql":
        client = find_binary(module, p["client_binary"], ["psql"])
        restore = find_binary(module, p["restore_binary"], ["pg_restore"])
    else:
        client = find_binary(module, p["client_binary"], ["mariadb", "mysql"])
        restore = client
    env = {k: os.environ[k] for k in ("PATH", "HOME", "TZ") if k in os.environ}
    env.update({"LC_ALL": "C.UTF-8", **{str(k): str(v) for k, v in p["db_env"].items()}})

    try:
        ledger = lg.database_ledger(p["ledger"], f"{engine} database {database}") if p["ledger"] is not None else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    def body(restic):
        started = time.monotonic()
        check_name(engine, database, "database")
        check_name(engine, target, "target")
        if target == database:
            raise RestoreError(f"target {target!r} is the database itself; restore into a new database")
        quarantine = ""
        if p["mode"] == "beside":
            quarantine = check_name(engine, quarantine_name(database, p["incident"]), "the quarantine name")
        srv = server(
            engine,
            client,
            restore,
            p["connection"],
            env,
            **({"maintenance_db": p["maintenance_db"]} if engine == "postgresql" else {}),
        )
        tag = dump_tag(engine, database)
        hosts = [p["snapshot_host"]] if p["snapshot_host"] else []
        path = "/" + dump_path(engine, database)
        before = parse_time(p["before"], "before") if p["before"] else None
        if p["snapshot"] == "latest":
            chosen = filter_snapshots(restic.snapshots(), hosts=hosts, tags=p["snapshot_tags"], before=before)
            found = [s for s in chosen if path in s.paths]
            if not found:
                raise RestoreError(
                    f"no dump of {engine} database {database} ({path}) in the repository"
                    + (f" made by host {p['snapshot_host']}" if hosts else "")
                    + (f" with tags {', '.join(p['snapshot_tags'])}" if p["snapshot_tags"] else "")
                    + (f" before {p['before']}" if before else "")
                    + ": back it up first (role backup, backup_databases) or give the snapshot ID"
                )
            snap = found[-1]
        else:
            snap = restic.resolve_snapshot(p["snapshot"])
        if path not in snap.paths:
            raise RestoreError(
                f"snapshot {snap.short_id} is not a dump of {engine} database {database}: it holds "
                f"{', '.join(snap.paths)}, not {path}. Give a snapshot tagged {tag} (or snapshot: latest)"
            )
        short = snap.id[:8]
        out = {
            "changed": False,
            "snapshot_id": snap.id,
            "short_id": short,
            "snapshot_time": snap.raw_time,
            "path": path,
            "target": target,
            "quarantine": quarantine,
            "swapped": False,
            "tables": {},
            "damaged_tables": None,
            "ledger": None,
            "actions": [],
            "restore_seconds": 0.0,
            "restic_version": restic.features.version_string,
        }
        actions = out["actions"]

        def finish(state, tables):
            return dict(
                out,
                state=state,
                tables=tables,
                table_count=len(tables),
                total_rows=sum(tables.values()),
                restore_seconds=round(time.monotonic() - started, 3),
            )

        def restore_and_check():
            srv.create(target, database)
            try:
                dump_rc, dump_err, rc, err = srv.restore(target, restic.argv("dump", snap.id, path), restic.env)
                broken = dump_rc != 0 and (rc != 0 and ("broken pipe" in dump_err.lower() or dump_rc < 0))
                if dump_rc != 0 and not broken:
                    result = ResticResult(restic.argv("dump", snap.id, path), dump_rc, "", dump_err, 0.0, False)
                    raise classify_error(result, restic.repository, restic.features, snapshot=snap.id,
                                         action=f"stream the dump {path} out of snapshot {short}")  # fmt: skip
                if rc != 0:
                    raise RestoreError(
                        f"{os.path.basename(restore)} could not restore the {engine} dump of {database} from snapshot "
                        f"{short} into {target} (exit {rc}): {err.strip()[-800:]}"
                    )
                counts = srv.counts(target)
                problems = check_counts(counts, p["min_tables"], p["expect_tables"], p["min_rows"])
                if problems:
                    raise RestoreError(
                        f"the restore of {engine} database {database} from snapshot {short} into {target} does not "
                        f"check out: {'; '.join(problems)}"
                    )
                if ledger and p["mode"] == "scratch":
                    out["ledger"] = check_ledger(counts)
            except RestoreError as exc:
                srv.drop(target)
                raise RestoreError(f"{exc}. The partial database {target} was dropped; nothing else changed") from None
            except Exception:
                srv.drop(target)
                raise
            actions.append(f"restored snapshot {short} into {target} and checked it: {len(counts)} tables")
            return counts

        def check_ledger(counts, changed=False):
            """The ledger checks on the restore's ledger table; on findings the task fails (LedgerFailed) with the
            verdict in the result. A drill's scratch restore is then dropped (by restore_and_check); the incident's
            restore beside the damaged database is kept for inspection and NOT swapped in (claim only what was
            checked): the damaged database stays in service."""
            try:
                name, rows = srv.read_ledger(target, ledger["table"], ledger["columns"])
                result = lg.check_rows(rows, name, "database", ledger["number_start"], ledger["amount_scale"])
            except lg.SourceError as exc:
                result = lg.SourceResult(source=ledger["table"], kind="database")
                result.findings.append({"kind": "unreadable", "source": ledger["table"], "detail": str(exc)})
            checked = lg.verdict(result)
            if checked["ok"]:
                actions.append(f"ledger {checked['summary']}")
                return checked
            # rstrip: an unreadable table's detail (the reader's error) may end its sentence itself
            head = (
                f"the ledger of the restore of {engine} database {database} from snapshot {short} into {target} does "
                f"not check out: {checked['summary'].rstrip('.')}."
            )
            if p["mode"] == "scratch":  # restore_and_check drops the restore
                actions.append(f"restored snapshot {short} into {target}; its ledger does not check out; dropped it")
                tail = f" The restore {target} was dropped; nothing else changed"
            else:
                actions.append(
                    f"the ledger of {target} does not check out: not swapped; {target} kept beside {database}"
                )
                tail = (
                    f" Not swapped in: {database} is unchanged and still in service, the restore {target} is kept "
                    "beside it for inspection; drop it before restoring another dump"
                )
            raise LedgerFailed(
                dict(finish("ledger_failed", counts), changed=changed, ledger=checked, failed=True, msg=head + tail)
            )

        if p["mode"] == "scratch":
            if srv.exists(target):
                raise RestoreError(
                    f"scratch database {target} already exists on the server; a drill restores only into a database "
                    "it creates: drop it (an interrupted drill leaves it) or choose another target"
                )
            if module.check_mode:
                actions.append(f"restore snapshot {short} into new database {target}, count its rows")
                actions.append(f"keep {target}" if p["keep_target"] else f"drop {target}")
                return dict(finish("planned", {}), changed=True)
            counts = restore_and_check()
            if p["keep_target"]:
                srv.mark(target, marker(snap.id, engine, database, len(counts), sum(counts.values())))
                actions.append(f"kept {target}")
                return dict(finish("restored", counts), changed=True)
            srv.drop(target)
            actions.append(f"dropped {target}")
            return finish("checked_and_dropped", counts)

        # beside: the incident path
        live = srv.exists(database)
        if srv.exists(quarantine) or (live and marked_snapshot(srv.comment(database)) == snap.id):
            actions.append(f"nothing to do: {database} was already swapped in from snapshot {short}")
            return dict(finish("already_swapped", srv.counts(database)), swapped=True)
        have = srv.exists(target)
        again = have and marked_snapshot(srv.comment(target)) == snap.id
        if have and not again:
            raise RestoreError(
                f"database {target} already exists and is not a checked ledgerguard restore of snapshot {short}; "
                f"nothing was changed. Drop it (it may be a restore that stopped half-way) or give another target"
            )
        if module.check_mode:
            if not again:
                actions.append(f"restore snapshot {short} into new database {target} beside {database}, check it")
            if ledger:
                actions.append(f"check the ledger table {ledger['table']} of {target} before the swap")
            if p["swap"]:
                actions.append(
                    f"rename {database} to {quarantine} (kept) and {target} to {database}"
                    if live
                    else f"rename {target} to {database} ({database} does not exist)"
                )
            return dict(finish("planned", {}), changed=bool(actions))
        if live:
            try:
                out["damaged_tables"] = srv.counts(database)
            except RestoreError:
                out["damaged_tables"] = None
        if again:
            counts = srv.counts(target)
            actions.append(f"{target} holds the checked restore of snapshot {short} already")
        else:
            counts = restore_and_check()
            srv.mark(target, marker(snap.id, engine, database, len(counts), sum(counts.values())))
        if ledger:  # before the swap, on every run: a restore kept after a failed check is checked again
            out["ledger"] = check_ledger(counts, changed=not again)
        if not p["swap"]:
            actions.append(f"stopped before the swap (swap: false): {database} untouched, {target} kept beside it")
            return dict(finish("restored", counts), changed=not again)
        if live:
            srv.swap(database, target, quarantine)
            actions.append(f"renamed {database} to {quarantine} (quarantine) and {target} to {database}")
        else:
            srv.swap(database, target, None)
            actions.append(f"renamed {target} to {database} ({database} did not exist)")
            quarantine = ""
        if engine == "mariadb":  # the target's mark went with it: the live database carries it from now on
            srv.mark(database, marker(snap.id, engine, database, len(counts), sum(counts.values())))
        return dict(finish("swapped", counts), changed=True, swapped=True, quarantine=quarantine)

    def guarded(restic):
        try:
            return body(restic)
        except LedgerFailed as failed:
            return failed.result

    run_module(module, guarded)


class LedgerFailed(Exception):
    """The restore's ledger has findings: carries the failed result (with its ledger verdict)."""

    def __init__(self, result):
        super().__init__(result["msg"])
        self.result = result


if __name__ == "__main__":
    main()
