# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores of the database dumps ``db_dump_backup`` streams into restic (see dbcapture).

A dump snapshot is streamed out of the repository (``restic dump``) straight into the engine's restore program
(``pg_restore`` for PostgreSQL's custom format, the ``mariadb`` client for a ``mariadb-dump``): it never touches the
host's disk in clear. It is restored into a database that did not exist before (a scratch database for a drill, a
new database beside the damaged one for an incident), then checked: its tables and their exact row counts.

Swap (the quarantine rule for databases): the damaged database is renamed ``<name>_damaged_<incident>`` and the
checked restore takes its name. PostgreSQL renames both databases in one transaction. MariaDB has no RENAME DATABASE:
one ``RENAME TABLE`` statement (atomic) moves every table of the damaged database into the quarantine database and
every table of the restore into the emptied name; databases holding views, triggers, routines or events are refused
(they cannot move between databases by rename).

The SQL runs through the engines' own command-line clients (``psql``, ``mariadb``) so that no Python driver is needed
on the host; passwords come only from the environment (PGPASSWORD, PGPASSFILE, MYSQL_PWD) or an option file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as lg
from ansible_collections.ledgerguard.recovery.plugins.module_utils.dbcapture import clean_connection

NAME_RE = re.compile(r"^[A-Za-z0-9_.$-]+$")
MAX_NAME = {"postgresql": 63, "mariadb": 64}
MARKER = "ledgerguard restore"
MARKER_RE = re.compile(r"ledgerguard restore of snapshot ([0-9a-f]{8,64}) ")


class RestoreError(ValueError):
    """A database restore could not be done or did not check out; the message says what to do."""


def slug(text: str) -> str:
    """An incident id as a part of a database name: lower case, runs of other characters as one '_'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def check_name(engine: str, name: str, what: str) -> str:
    if not NAME_RE.match(name or ""):
        raise RestoreError(
            f"{what} {name!r} is not a database name this module handles: use letters, digits and _ . $ - only"
        )
    if len(name.encode("utf-8")) > MAX_NAME[engine]:
        raise RestoreError(
            f"{what} {name!r} is {len(name)} characters long; {engine} allows {MAX_NAME[engine]}: give a shorter "
            "target (or a shorter incident id for the quarantine name)"
        )
    return name


def quarantine_name(database: str, incident: str) -> str:
    """The name the damaged database keeps after the swap."""
    part = slug(incident)
    if not part:
        raise RestoreError(f"incident {incident!r} has no letter or digit to name the quarantined database with")
    return f"{database}_damaged_{part}"


def marker(snapshot_id: str, engine: str, database: str, tables: int, rows: int) -> str:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{MARKER} of snapshot {snapshot_id} ({engine}/{database}), checked {when}: {tables} tables, {rows} rows"


def marked_snapshot(comment: str | None) -> str:
    """The snapshot id a database's ledgerguard comment names ('' when none)."""
    found = MARKER_RE.search(comment or "")
    return found.group(1) if found else ""


def check_counts(
    counts: dict[str, int], min_tables: int, expect_tables: list[str], min_rows: dict[str, int]
) -> list[str]:
    """Problems of a restored database's tables against what the caller expects (empty when it checks out)."""
    problems = []
    if len(counts) < min_tables:
        problems.append(f"{len(counts)} table(s) restored, at least {min_tables} expected")
    for name in expect_tables:
        if name not in counts:
            problems.append(f"table {name} is missing")
    for name, least in sorted(min_rows.items()):
        if name not in counts:
            if name not in expect_tables:
                problems.append(f"table {name} is missing")
        elif counts[name] < int(least):
            problems.append(f"table {name} has {counts[name]} rows, at least {least} expected")
    return problems


def published_results(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One published entry per database (the restore role's restore_database_results) from the results of its
    db_restore loop (each result carries its loop item: the database entry, under ``ansible_loop_var``). A database is
    ``ok`` when its task did not fail; ``line`` says what was done, or ``FAILED:`` and the reason."""
    out = []
    for run in runs or []:
        entry = run.get(run.get("ansible_loop_var") or "item") or {}
        ok = not run.get("failed", False)
        name = f"{entry.get('engine')}/{entry.get('database')}"
        if ok:
            kept = (
                f", damaged database kept as {run['quarantine']}"
                if run.get("swapped") and run.get("quarantine")
                else ""
            )
            line = (
                f"{name}: {run.get('state')} from dump {run.get('short_id')} ({run.get('total_rows')} rows){kept}: "
                + "; ".join(run.get("actions") or [])
            )
        else:
            line = f"{name}: FAILED: {run.get('msg') or 'restore failed'}"
        out.append(
            {
                "engine": entry.get("engine"),
                "database": entry.get("database"),
                "ok": ok,
                "state": run.get("state", "failed"),
                "changed": run.get("changed", False),
                "snapshot_id": run.get("snapshot_id", ""),
                "short_id": run.get("short_id", ""),
                "snapshot_time": run.get("snapshot_time", ""),
                "target": run.get("target", ""),
                "quarantine": run.get("quarantine", ""),
                "swapped": run.get("swapped", False),
                "tables": run.get("tables", {}),
                "total_rows": run.get("total_rows", 0),
                "damaged_tables": run.get("damaged_tables"),
                "actions": run.get("actions", []),
                "seconds": run.get("restore_seconds", 0),
                "msg": run.get("msg", ""),
                "ledger": run.get("ledger"),
                "line": line,
            }
        )
    return out


# ------------------------------------------------------------------------------------------------- servers


class Server:
    """One database server reached through its command-line client."""

    engine = ""

    def __init__(self, client: str, restore: str, connection: dict[str, Any], env: dict[str, str]):
        self.client = client
        self.restore_binary = restore
        self.conn = clean_connection(self.engine, connection)
        self.env = env

    def _run(self, argv: list[str], what: str) -> str:
        proc = subprocess.run(argv, env=self.env, capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()[-800:]
            raise RestoreError(f"{self.engine} could not {what}: {err}")
        return proc.stdout.decode("utf-8", "replace")

    def pipe_into(self, database: str, source: Any) -> subprocess.Popen:
        raise NotImplementedError

    def ledger_table(self, database: str, table: str) -> tuple[str, list[str], list[str], list[str]]:
        """(name as reported, its quoted parts, its columns, its primary key's columns) of ``table``."""
        raise NotImplementedError

    def ledger_select(self, database: str, parts: list[str], columns: list[str], order: list[str]) -> list[str]:
        """argv printing one JSON array per row: the values of ``columns``, rows in ``order`` (quoted identifiers)."""
        raise NotImplementedError

    def _stream(self, argv: list[str], what: str) -> Iterator[bytes]:
        """The lines ``argv`` prints, read as they come (a ledger table need not fit in memory twice). Raises
        SourceError with the program's stderr when it fails."""
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            try:
                yield from proc.stdout
                proc.stdout.close()
                proc.wait()
            finally:
                if proc.poll() is None:  # the reader stopped early: end the client
                    proc.kill()
                    proc.wait()
            if proc.returncode != 0:
                err.seek(0)
                text = err.read().decode("utf-8", "replace").strip()[-800:]
                raise lg.SourceError(f"{self.engine} could not {what}: {text}")

    def read_ledger(
        self, database: str, table: str, mapping: dict[str, str] | None
    ) -> tuple[str, Iterator[tuple[int, dict[str, Any]]]]:
        """(the table's name, its rows as (row number, logical row)) for module_utils/ledger.check_rows: the
        columns mapped as for a SQLite ledger (ledger.select_columns; the user maps them with ``ledger.columns``),
        read through the engine's client as one JSON array per row. Raises SourceError."""
        name, parts, have, key = self.ledger_table(database, table)
        selected = lg.select_columns(name, have, mapping, "ledger.columns")
        keys = list(selected)
        columns = [self.ident(selected[k]) for k in keys]
        argv = self.ledger_select(database, parts, columns, [self.ident(c) for c in key])
        return name, lg.json_rows(self._stream(argv, f"read table {name} of database {database}"), keys, name)

    def restore(self, database: str, dump_argv: list[str], dump_env: dict[str, str]) -> tuple[int, str, int, str]:
        """Stream ``dump_argv``'s stdout (restic dump) into this server's restore program for ``database``.

        Returns (restic exit code, restic stderr, restore exit code, restore stderr)."""
        with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err:
            dump = subprocess.Popen(
                dump_argv, env=dump_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=dump_err
            )
            try:
                proc = self.pipe_into(database, dump.stdout, restore_err)
            finally:
                dump.stdout.close()  # restore program keeps its own copy; restic gets EPIPE when it stops reading
            proc.wait()
            if proc.returncode != 0 and dump.poll() is None:
                dump.terminate()
            dump.wait()
            dump_err.seek(0)
            restore_err.seek(0)
            return (
                dump.returncode,
                dump_err.read().decode("utf-8", "replace"),
                proc.returncode,
                restore_err.read().decode("utf-8", "replace"),
            )


class Postgres(Server):
    engine = "postgresql"

    def __init__(self, client, restore, connection, env, maintenance_db: str = "postgres"):
        super().__init__(client, restore, connection, env)
        self.maintenance_db = maintenance_db

    def _where(self) -> list[str]:
        argv = [f"--host={self.conn['host']}"] if "host" in self.conn else []
        argv += [f"--port={self.conn['port']}"] if "port" in self.conn else []
        argv += [f"--username={self.conn['user']}"] if "user" in self.conn else []
        return argv + ["--no-password"]

    @staticmethod
    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    @staticmethod
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def sql(self, statements: list[str], database: str | None = None, what: str = "run SQL") -> str:
        argv = [self.client, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *self._where()]
        argv += [f"--dbname={database or self.maintenance_db}"]
        for statement in statements:
            argv += ["-c", statement]
        return self._run(argv, what).strip()

    def exists(self, name: str) -> bool:
        out = self.sql(
            [f"SELECT count(*) FROM pg_database WHERE datname = {self.literal(name)}"],  # noqa: S608
            what="list databases",
        )
        return out == "1"

    def comment(self, name: str) -> str:
        return self.sql(
            [f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = {self.literal(name)}"],  # noqa: S608
            what=f"read the comment of database {name}",
        )

    def create(self, name: str, like: str | None) -> None:
        options = " TEMPLATE template0"
        if like and self.exists(like):
            info = self.sql(
                [
                    "SELECT json_build_object('owner', pg_get_userbyid(datdba), 'encoding', "  # noqa: S608
                    "pg_encoding_to_char(encoding), 'collate', datcollate, 'ctype', datctype) FROM pg_database "
                    f"WHERE datname = {self.literal(like)}"  # noqa: S608
                ],
                what=f"read the settings of database {like}",
            )
            got = json.loads(info)
            options += f" OWNER {self.ident(got['owner'])} ENCODING {self.literal(got['encoding'])}"
            options += f" LC_COLLATE {self.literal(got['collate'])} LC_CTYPE {self.literal(got['ctype'])}"
        self.sql([f"CREATE DATABASE {self.ident(name)}{options}"], what=f"create database {name}")

    def pipe_into(self, database, source, err_file):
        argv = [self.restore_binary, *self._where(), "--exit-on-error", "--single-transaction", f"--dbname={database}"]
        return subprocess.Popen(argv, env=self.env, stdin=source, stdout=subprocess.DEVNULL, stderr=err_file)

    def relations(self, database: str) -> list[list[str]]:
        """[schema, table] of every ordinary and partitioned table (partitions counted through their parent)."""
        out = self.sql(
            [
                "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname) ORDER BY n.nspname, c.relname), "
                "'[]') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
                "AND NOT c.relispartition"
            ],
            database,
            what=f"list the tables of database {database}",
        )
        return json.loads(out)

    def tables(self, database: str) -> list[str]:
        return [f"{schema}.{table}" for schema, table in self.relations(database)]

    def ledger_table(self, database: str, table: str) -> tuple[str, list[str], list[str], list[str]]:
        """``table`` as C(schema.table), or a table name found in one schema only (tables, views, partitioned)."""
        lit = self.literal(table)
        out = self.sql(
            [
                "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname, c.relkind, (SELECT "  # noqa: S608
                "coalesce(json_agg(a.attname ORDER BY a.attnum), '[]') FROM pg_attribute a WHERE a.attrelid = c.oid "
                "AND a.attnum > 0 AND NOT a.attisdropped), (SELECT coalesce(json_agg(a.attname ORDER BY k.n), '[]') "
                "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = c.oid AND i.indisprimary)) ORDER BY n.nspname), '[]') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                f"AND (n.nspname || '.' || c.relname = {lit} OR c.relname = {lit})"
            ],
            database,
            what=f"look up table {table} in database {database}",
        )
        found = json.loads(out)
        hits = [f for f in found if f"{f[0]}.{f[1]}" == table] or found
        if not hits:
            raise lg.SourceError(
                f"no table {table!r} in the restore (tables: {self.tables(database)}); set ledger.table (schema.table)"
            )
        if len(hits) > 1:
            raise lg.SourceError(
                f"table {table!r} is in several schemas ({', '.join(f'{h[0]}.{h[1]}' for h in hits)}); "
                "give ledger.table as schema.table"
            )
        schema, name, _kind, columns, key = hits[0]
        return f"{schema}.{name}", [self.ident(schema), self.ident(name)], columns, key

    def ledger_select(self, database: str, parts: list[str], columns: list[str], order: list[str]) -> list[str]:
        # Identifiers are quoted (ident) and were looked up in the catalog. Primary key order is the entry order a
        # SQLite ledger's rowid gives (a serial id); the stored order is not (an updated row moves to the end).
        sql = f"SELECT json_build_array({', '.join(columns)}) FROM {'.'.join(parts)}"  # noqa: S608
        sql += f" ORDER BY {', '.join(order)}" if order else ""
        argv = [self.client, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "FETCH_COUNT=10000"]
        return [*argv, *self._where(), f"--dbname={database}", "-c", sql]

    def counts(self, database: str) -> dict[str, int]:
        relations = self.relations(database)
        if not relations:
            return {}
        parts = [
            f"SELECT {index}, count(*) FROM {self.ident(schema)}.{self.ident(table)}"  # noqa: S608
            for index, (schema, table) in enumerate(relations)
        ]
        out = self.sql([" UNION ALL ".join(parts)], database, what=f"count the rows of database {database}")
        counts = {}
        for line in out.splitlines():
            index, count = line.split("|", 1)
            schema, table = relations[int(index)]
            counts[f"{schema}.{table}"] = int(count)
        return counts

    def mark(self, name: str, text: str) -> None:
        self.sql([f"COMMENT ON DATABASE {self.ident(name)} IS {self.literal(text)}"], what=f"mark database {name}")

    def drop(self, name: str) -> None:
        self.sql([f"DROP DATABASE IF EXISTS {self.ident(name)} WITH (FORCE)"], what=f"drop database {name}")

    def swap(self, database: str, target: str, quarantine: str | None) -> None:
        """``database`` -> ``quarantine`` and ``target`` -> ``database`` in one transaction (after ending the sessions
        on both: a rename needs a database nobody is connected to). ``quarantine`` None: ``database`` does not
        exist, only ``target`` is renamed."""
        names = f"{self.literal(database)}, {self.literal(target)}"
        kick = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "  # noqa: S608
            f"WHERE datname IN ({names}) AND pid <> pg_backend_pid()"  # noqa: S608
        )
        first = f"ALTER DATABASE {self.ident(database)} RENAME TO {self.ident(quarantine)}; " if quarantine else ""
        block = f"BEGIN; {first}ALTER DATABASE {self.ident(target)} RENAME TO {self.ident(database)}; COMMIT;"
        last = ""
        for _attempt in range(5):
            try:
                self.sql([kick, block], what=f"swap database {database} with {target}")
                return
            except RestoreError as exc:  # a client reconnected between the two statements: end it and retry
                last = str(exc)
                if "is being accessed by other users" not in last:
                    raise
                time.sleep(0.5)
        raise RestoreError(
            f"{last}. Clients keep reconnecting to {database}: stop the application (or freeze the host) and run again"
        )


class MariaDB(Server):
    engine = "mariadb"

    def _base(self) -> list[str]:
        argv = [self.client]
        if "defaults_extra_file" in self.conn:  # must be the first option
            argv.append(f"--defaults-extra-file={self.conn['defaults_extra_file']}")
        argv += [f"--host={self.conn['host']}"] if "host" in self.conn else []
        argv += [f"--port={self.conn['port']}"] if "port" in self.conn else []
        argv += [f"--socket={self.conn['socket']}"] if "socket" in self.conn else []
        argv += [f"--user={self.conn['user']}"] if "user" in self.conn else []
        return argv + ["--default-character-set=utf8mb4"]

    @staticmethod
    def ident(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    @staticmethod
    def literal(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    def sql(self, statements: list[str], database: str | None = None, what: str = "run SQL") -> str:
        argv = [*self._base(), "--batch", "--skip-column-names", "--raw"]
        argv += [f"--database={database}"] if database else []
        argv += ["-e", "; ".join(statements)]
        return self._run(argv, what).strip()

    def exists(self, name: str) -> bool:
        out = self.sql(
            [f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {self.literal(name)}"],  # noqa: S608
            what="list databases",
        )
        return out == "1"

    def comment(self, name: str) -> str:
        return self.sql(
            [f"SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {self.literal(name)}"],  # noqa: S608
            what=f"read the comment of database {name}",
        )

    def create(self, name: str, like: str | None) -> None:
        """Nothing to do: the dump's own CREATE DATABASE (renamed to ``name``) creates it with its character set."""

    def pipe_into(self, database, source, err_file):
        """The mariadb client fed by a filter that renames the dump's CREATE DATABASE and USE lines."""
        proc = subprocess.Popen(
            [*self._base(), "--batch"], env=self.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err_file
        )
        header = re.compile(rb"^(CREATE DATABASE /\*!32312 IF NOT EXISTS\*/ |USE )`((?:[^`]|``)*)`")
        target = self.ident(database).encode("utf-8")
        try:
            used = False
            while not used:
                line = source.readline()
                if not line:
                    break
                found = header.match(line)
                if found:
                    line = found.group(1) + target + line[found.end() :]
                    used = found.group(1) == b"USE "
                proc.stdin.write(line)
            shutil.copyfileobj(source, proc.stdin, 1 << 20)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped (its stderr says why)
        return proc

    def tables(self, database: str) -> list[str]:
        out = self.sql(
            [
                "SELECT COALESCE(JSON_ARRAYAGG(TABLE_NAME ORDER BY TABLE_NAME), '[]') FROM information_schema.TABLES "  # noqa: S608
                f"WHERE TABLE_SCHEMA = {self.literal(database)} AND TABLE_TYPE = 'BASE TABLE'"  # noqa: S608
            ],
            what=f"list the tables of database {database}",
        )
        return json.loads(out)

    def ledger_table(self, database: str, table: str) -> tuple[str, list[str], list[str], list[str]]:
        out = self.sql(
            [
                "SELECT COALESCE(JSON_ARRAYAGG(COLUMN_NAME ORDER BY ORDINAL_POSITION), '[]') "  # noqa: S608
                f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {self.literal(database)} "
                f"AND TABLE_NAME = {self.literal(table)}"
            ],
            what=f"look up table {table} in database {database}",
        )
        columns = json.loads(out)
        if not columns:
            raise lg.SourceError(
                f"no table {table!r} in the restore (tables: {self.tables(database)}); set ledger.table"
            )
        # InnoDB reads a table in primary key order already
        return table, [self.ident(database), self.ident(table)], columns, []

    def ledger_select(self, database: str, parts: list[str], columns: list[str], order: list[str]) -> list[str]:
        # Identifiers are quoted (ident) and were looked up in information_schema; JSON_ARRAY escapes tabs and
        # newlines inside values, so --raw prints one row per line.
        sql = f"SELECT JSON_ARRAY({', '.join(columns)}) FROM {'.'.join(parts)}"  # noqa: S608
        return [*self._base(), "--batch", "--raw", "--skip-column-names", "--quick", "-e", sql]

    def counts(self, database: str) -> dict[str, int]:
        names = self.tables(database)
        if not names:
            return {}
        parts = [
            f"SELECT {index}, COUNT(*) FROM {self.ident(database)}.{self.ident(name)}"  # noqa: S608
            for index, name in enumerate(names)
        ]
        out = self.sql([" UNION ALL ".join(parts)], what=f"count the rows of database {database}")
        counts = {}
        for line in out.splitlines():
            index, count = line.split("\t", 1)
            counts[names[int(index)]] = int(count)
        return counts

    def mark(self, name: str, text: str) -> None:
        self.sql([f"ALTER DATABASE {self.ident(name)} COMMENT = {self.literal(text[:1024])}"], what=f"mark {name}")

    def drop(self, name: str) -> None:
        self.sql([f"DROP DATABASE IF EXISTS {self.ident(name)}"], what=f"drop database {name}")

    def _movable(self, name: str) -> None:
        lit = self.literal(name)
        out = self.sql(
            [
                "SELECT CONCAT_WS(',', "  # noqa: S608
                f"(SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {lit}), "
                f"(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {lit}), "
                f"(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {lit}), "
                f"(SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {lit}))"  # noqa: S608
            ],
            what=f"list the views, triggers, routines and events of database {name}",
        )
        views, triggers, routines, events = (int(x) for x in out.split(","))
        if views or triggers or routines or events:
            raise RestoreError(
                f"MariaDB database {name} holds {views} view(s), {triggers} trigger(s), {routines} routine(s) and "
                f"{events} event(s): MariaDB cannot move them to another database by rename, so no swap was made. "
                "The checked restore stays beside the damaged database: point the application at it, or swap by "
                "hand (mariadb-dump of both, restore under the other name)"
            )

    def _create_like(self, name: str, like: str) -> None:
        charset = self.sql(
            [
                "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) "  # noqa: S608
                "FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME = {self.literal(like)}"  # noqa: S608
            ],
            what=f"read the character set of database {like}",
        ).split()
        create = f"CREATE DATABASE {self.ident(name)}"
        if len(charset) == 2:
            create += f" CHARACTER SET {charset[0]} COLLATE {charset[1]}"
        self.sql([create], what=f"create database {name}")

    def swap(self, database: str, target: str, quarantine: str | None) -> None:
        """Every table of ``database`` into ``quarantine`` and of ``target`` into ``database``, in one RENAME TABLE.
        ``quarantine`` None: ``database`` does not exist; it is created and receives ``target``'s tables."""
        self._movable(target)
        restored = self.tables(target)
        pairs = []
        made = quarantine if quarantine else database
        if quarantine:
            self._movable(database)
            damaged = self.tables(database)
            self._create_like(quarantine, database)
            pairs += [
                f"{self.ident(database)}.{self.ident(t)} TO {self.ident(quarantine)}.{self.ident(t)}" for t in damaged
            ]
        else:
            self._create_like(database, target)
        pairs += [f"{self.ident(target)}.{self.ident(t)} TO {self.ident(database)}.{self.ident(t)}" for t in restored]
        if pairs:
            try:
                self.sql(["RENAME TABLE " + ", ".join(pairs)], what=f"swap database {database} with {target}")
            except RestoreError:
                self.drop(made)  # still empty: RENAME TABLE moved nothing
                raise
        self.drop(target)


def server(engine: str, client: str, restore: str, connection: dict[str, Any], env: dict[str, str], **more) -> Server:
    if engine == "postgresql":
        return Postgres(client, restore, connection, env, **more)
    return MariaDB(client, restore, connection, env)
