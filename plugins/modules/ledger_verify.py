#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ledger_verify
short_description: Bookkeeping checks on restored voucher data (CSV files and SQLite ledgers)
version_added: "0.1.0"
description:
  - Reads each client's voucher sources read-only and reports, per client, vouchers whose debits do not equal their
    credits (借贷不平, exact decimal arithmetic), gaps in voucher numbers within a period and voucher word (凭证字),
    voucher numbers used twice, values that are not amounts, SQLite databases that fail C(PRAGMA integrity_check),
    and row counts that differ from a baseline.
  - "CSV sources: one row per entry line (分录); the lines of one voucher share period, voucher word and number.
    Default headers (see O(csv_columns)): C(期间) period, C(凭证字) voucher word, C(凭证号) voucher number,
    C(日期) date, C(摘要) memo, C(科目编码) account, C(借方金额) debit, C(贷方金额) credit; the English names
    C(period), C(voucher_word), C(voucher_no), C(date), C(memo), C(account), C(debit), C(credit) also work.
    Voucher number, debit and credit are required, and a period or a date (the period is then its YYYY-MM).
    A voucher number may carry its word (C(记-0007), C(记字第7号)). Amounts may hold thousands separators,
    C(¥), or parentheses for negatives; an empty cell is zero. UTF-8 with or without a BOM; GB18030 is detected."
  - "SQLite sources: table O(sqlite_table) with columns named by O(sqlite_columns); money stored as TEXT decimals,
    REAL, or INTEGER in units of 10^-O(sqlite_amount_scale)."
  - Only regular files are read (C(lstat), then C(O_NOFOLLOW|O_NONBLOCK), confirmed with C(fstat)). A FIFO, device,
    socket or symbolic link among the sources (a FIFO named C(*.csv), a C(*.csv) link to C(/etc/passwd)) is never
    opened or followed; it is reported as an C(unreadable) finding naming what it is.
  - Nothing is ever written; the module always reports C(changed=false).
author: ledgerguard contributors (@ledgerguard)
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same checks in check mode.
  diff_mode:
    support: none
    description: No diff is produced.
options:
  clients:
    description:
      - The clients to check. Each is a dict with C(id) (required), C(name), C(root) (relative sources resolve
        against it, and sources are reported relative to it), C(csv) (list of CSV files, directories searched
        recursively for C(*.csv), or glob patterns) and C(sqlite) (list of SQLite files or globs). Other keys
        (for example C(priority) of C(ledgerguard_clients)) are ignored.
      - "C(ledger), the client's one declaration of its books (C(ledgerguard_clients[].ledger)), overrides the
        module-level options for that client, e.g.
        C({csv: {sources: [凭证], columns: {voucher_no: 凭证编号}, encoding: gbk, delimiter: ';'},
        sqlite: {sources: [账簿/ledger.sqlite], table: gl_entries, columns: {...}, amount_scale: 2},
        number_start: 1, baseline: {'凭证/2024-03.csv': 60}}). Its relative sources resolve against C(root), or
        the client's first C(paths) entry."
      - C(restored_under) reads the client where a restore put it (a drill's sandbox); absolute sources and
        C(root) are looked up below that folder.
    type: list
    elements: dict
    required: true
  csv_columns:
    description:
      - Header name for each logical column, overriding the defaults. Keys are C(period), C(voucher_word),
        C(voucher_no), C(date), C(memo), C(account), C(debit), C(credit).
    type: dict
    default: {}
  csv_encoding:
    description: Encoding of the CSV files; V(auto) reads UTF-8 (BOM tolerated) and falls back to GB18030.
    type: str
    default: auto
  csv_delimiter:
    description: Field delimiter of the CSV files.
    type: str
    default: ","
  sqlite_table:
    description: Table (or view) holding one row per voucher entry line.
    type: str
    default: voucher_entries
  sqlite_columns:
    description:
      - Column name for each logical column, overriding the defaults C(period), C(voucher_word), C(voucher_no),
        C(date), C(memo), C(account_code) (for C(account)), C(debit), C(credit).
    type: dict
    default: {}
  sqlite_amount_scale:
    description: Integer amounts are in units of 10^-scale (V(2) for cents).
    type: int
    default: 0
  sqlite_integrity_check:
    description: Run C(PRAGMA integrity_check) on each SQLite source.
    type: bool
    default: true
  number_start:
    description: First voucher number of every period; numbers from it up to the highest found must all exist.
    type: int
    default: 1
  baseline:
    description:
      - "Expected row counts, C({client id: {source: rows}}), sources named as in RV(counts) (relative to the
        client's C(root)). The RV(counts) of a run on the source data is a baseline. A client's entry here (or in
        O(baseline_file)) wins over the C(baseline) of its C(ledger) declaration, which applies only when this gives
        none for the client."
    type: dict
  baseline_file:
    description: JSON file holding the O(baseline) dict (on the managed host).
    type: path
  max_findings:
    description: Most findings listed per client in the result (counts stay exact).
    type: int
    default: 100
  fail_on_findings:
    description: Fail the task when any client has a finding (the result still lists them).
    type: bool
    default: true
  deprecated_notice:
    description:
      - A deprecation notice to show with this run (the drill role sets it when the old C(drill_ledger_checks)
        variable was used instead of C(ledgerguard_clients[].ledger)).
    type: str
"""

EXAMPLES = r"""
- name: Check restored vouchers of two clients against the baseline taken at backup time
  ledgerguard.recovery.ledger_verify:
    clients:
      - id: c001
        name: 杭州示例贸易有限公司
        root: /srv/restore/c001
        csv: [凭证]
        sqlite: [账簿/ledger.sqlite]
      - id: c002
        name: 宁波示例餐饮有限公司
        root: /srv/restore/c002
        csv: ["vouchers/*.csv"]
    baseline_file: /var/lib/ledgerguard/baselines/2024-03.json

- name: CSV exported with other headers, amounts in cents in SQLite
  ledgerguard.recovery.ledger_verify:
    clients: "{{ ledgerguard_clients }}"
    csv_columns: {voucher_no: 凭证编号, debit: 借方本币, credit: 贷方本币, date: 制单日期}
    sqlite_table: gl_entries
    sqlite_columns: {voucher_no: vno, debit: dr_cents, credit: cr_cents, period: fperiod}
    sqlite_amount_scale: 2
    fail_on_findings: false
  register: ledger
"""

RETURN = r"""
ok:
  description: True when no client has a finding.
  returned: always
  type: bool
  sample: false
findings_count:
  description: Number of findings over all clients.
  returned: always
  type: int
  sample: 2
clients:
  description:
    - Per client id, C(name), C(ok), C(rows), C(vouchers), C(sources) (each C(source), C(kind) csv or sqlite,
      C(rows), C(vouchers), C(periods)), C(findings_count), C(findings) (at most O(max_findings), each with C(kind),
      C(source), C(detail) and where it applies C(period), C(voucher), C(line), C(debit), C(credit),
      C(difference), C(missing), C(expected), C(found)), C(truncated), and a one-line C(summary).
  returned: always
  type: dict
  sample:
    c001:
      name: 杭州示例贸易有限公司
      ok: false
      rows: 240
      vouchers: 80
      findings_count: 2
      summary: "c001 杭州示例贸易有限公司: 2 findings (1 unbalanced, 1 gap)"
      findings:
        - kind: unbalanced
          source: 凭证/2024-03.csv
          voucher: 记-7
          period: 2024-03
          detail: "voucher 记-7 of 2024-03 does not balance: debit 1130.00 != credit 1129.99 (difference 0.01)"
        - kind: gap
          source: 凭证/2024-03.csv
          period: 2024-03
          missing: [5]
          detail: "2024-03 记: voucher numbers 5 are missing (found 19 vouchers up to 20)"
counts:
  description: "Rows per source per client, C({client id: {source: rows}}); usable as a later O(baseline)."
  returned: always
  type: dict
  sample: {"c001": {"凭证/2024-03.csv": 60, "账簿/ledger.sqlite": 180}}
summary:
  description: One line per client.
  returned: always
  type: list
  elements: str
  sample: ["c001 杭州示例贸易有限公司: ok (4 sources, 240 rows, 80 vouchers)"]
"""

import sqlite3
import glob
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ledgerguard.recovery.plugins.module_utils import ledger as lg


def _expand(entries: list, root: str | None, suffix: str | None) -> tuple[list[str], list[str]]:
    """(files found, entries that matched nothing) for csv/sqlite entries: files, directories, globs."""
    found: list[str] = []
    unmatched: list[str] = []
    for entry in entries:
        path = str(entry)
        if root and not os.path.isabs(path):
            path = os.path.join(root, path)
        if os.path.isdir(path) and suffix:
            hits = sorted(
                os.path.join(d, f) for d, _dirs, files in os.walk(path) for f in files if f.lower().endswith(suffix)
            )
        elif glob.has_magic(path):
            # Not only regular files: a FIFO or a symbolic link matched is reported (ledger.open_source never opens
            # or follows it), not silently skipped.
            hits = sorted(p for p in glob.glob(path, recursive=True) if not os.path.isdir(p) or os.path.islink(p))
        else:
            hits = [path] if os.path.lexists(path) and (not os.path.isdir(path) or os.path.islink(path)) else []
        if not hits:
            unmatched.append(str(entry))
        found.extend(h for h in hits if h not in found)
    return found, unmatched


def _source_name(path: str, root: str | None) -> str:
    if root:
        rel = os.path.relpath(path, root)
        if not rel.startswith(".."):
            return rel
    return path


def _relocate(path: str, under: str | None) -> str:
    """Where an absolute production path landed in a restore target (restic recreates it below the target)."""
    return os.path.join(under, path.lstrip("/")) if under and os.path.isabs(path) else path


def check_client(module: AnsibleModule, client: dict, baseline: dict) -> dict:
    try:
        p = lg.ledger_declaration(client, module.params)
    except ValueError as exc:
        module.fail_json(msg=f"ledger_verify: {exc}")
    if p["baseline"] is not None and not baseline:
        baseline = p["baseline"]
    under = client.get("restored_under")
    root = client.get("root")
    if not root and client.get("ledger") and client.get("paths"):
        root = client["paths"][0]  # a declared ledger's relative sources are relative to the client's folder
    root = os.path.abspath(_relocate(root, under)) if root else None
    findings: list[dict] = []
    sources: list[dict] = []
    counts: dict[str, int] = {}

    for kind, suffix in (("csv", ".csv"), ("sqlite", None)):
        entries = p[kind] or []
        if isinstance(entries, str):
            entries = [entries]
        entries = [_relocate(str(e), under) for e in entries]
        files, unmatched = _expand(entries, root, suffix)
        for entry in unmatched:
            findings.append(
                {"kind": "missing_source", "source": entry, "detail": f"{kind} source {entry!r} matched no file"}
            )
        for path in files:
            name = _source_name(path, root)
            try:
                if kind == "csv":
                    rows = lg.read_csv(path, p["csv_columns"], p["csv_encoding"], p["csv_delimiter"])
                    res = lg.check_rows(rows, name, kind, p["number_start"])
                else:
                    conn = lg.connect_ro(path)
                    try:
                        if p["sqlite_integrity_check"]:
                            problems = lg.integrity_check(conn)
                            if problems:
                                findings.append(
                                    {
                                        "kind": "integrity",
                                        "source": name,
                                        "detail": f"PRAGMA integrity_check: {'; '.join(problems[:5])}",
                                    }
                                )
                        rows = lg.read_sqlite(conn, p["sqlite_table"], p["sqlite_columns"])
                        res = lg.check_rows(rows, name, kind, p["number_start"], p["sqlite_amount_scale"])
                    finally:
                        conn.close()
            except (lg.SourceError, OSError, sqlite3.DatabaseError) as exc:
                findings.append({"kind": "unreadable", "source": name, "detail": f"{name}: {exc}"})
                continue
            counts[name] = res.rows
            findings.extend(res.findings)
            sources.append(
                {"source": name, "kind": kind, "rows": res.rows, "vouchers": res.vouchers, "periods": res.periods}
            )
    if baseline:
        findings.extend(lg.compare_counts(counts, baseline))

    label = f"{client['id']} {client.get('name') or ''}".strip()
    rows_total = sum(s["rows"] for s in sources)
    vouchers_total = sum(s["vouchers"] for s in sources)
    if findings:
        summary = lg.findings_head(label, findings)
    else:
        summary = f"{label}: ok ({len(sources)} sources, {rows_total} rows, {vouchers_total} vouchers)"
    if not sources and not findings:
        findings.append(
            {"kind": "missing_source", "source": "", "detail": "no csv or sqlite sources are declared for this client"}
        )
        summary = f"{label}: 1 finding (no sources declared)"
    return {
        "name": client.get("name") or "",
        "ok": not findings,
        "rows": rows_total,
        "vouchers": vouchers_total,
        "sources": sources,
        "findings_count": len(findings),
        "findings": findings[: p["max_findings"]],
        "truncated": len(findings) > p["max_findings"],
        "summary": summary,
        "_counts": counts,
    }


def load_baseline(module: AnsibleModule) -> dict:
    p = module.params
    if p["baseline_file"]:
        try:
            with open(p["baseline_file"], encoding="utf-8-sig") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            module.fail_json(
                msg=f"baseline_file {p['baseline_file']!r} cannot be read as JSON ({exc}); give the "
                f"'counts' of an earlier ledger_verify run, {{client id: {{source: rows}}}}."
            )
    else:
        data = p["baseline"] or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        module.fail_json(
            msg="baseline must be a dict {client id: {source: rows}} (the 'counts' of a ledger_verify run)."
        )
    return data


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "clients": {"type": "list", "elements": "dict", "required": True},
            "csv_columns": {"type": "dict", "default": {}},
            "csv_encoding": {"type": "str", "default": "auto"},
            "csv_delimiter": {"type": "str", "default": ","},
            "sqlite_table": {"type": "str", "default": lg.SQLITE_DEFAULT_TABLE},
            "sqlite_columns": {"type": "dict", "default": {}},
            "sqlite_amount_scale": {"type": "int", "default": 0},
            "sqlite_integrity_check": {"type": "bool", "default": True},
            "number_start": {"type": "int", "default": 1},
            "baseline": {"type": "dict"},
            "baseline_file": {"type": "path"},
            "max_findings": {"type": "int", "default": 100},
            "fail_on_findings": {"type": "bool", "default": True},
            "deprecated_notice": {"type": "str"},
        },
        mutually_exclusive=[("baseline", "baseline_file")],
        supports_check_mode=True,
    )
    p = module.params
    if p.get("deprecated_notice"):
        module.deprecate(p["deprecated_notice"], version="2.0.0", collection_name="ledgerguard.recovery")
    for option in ("csv_columns", "sqlite_columns"):
        unknown = sorted(set(p[option]) - set(lg.LOGICAL_COLUMNS))
        if unknown:
            module.fail_json(msg=f"{option} has unknown keys {unknown}; allowed: {list(lg.LOGICAL_COLUMNS)}.")
    if len(p["csv_delimiter"]) != 1:
        module.fail_json(msg=f"csv_delimiter {p['csv_delimiter']!r} must be one character, e.g. ',' or ';'.")
    seen = set()
    for index, client in enumerate(p["clients"]):
        if not client.get("id"):
            module.fail_json(
                msg=f"clients[{index}] has no 'id': every client needs an id, e.g. {{id: c001, csv: [..]}}."
            )
        if str(client["id"]) in seen:
            module.fail_json(msg=f"clients[{index}]: id {client['id']!r} is used twice; client ids must be unique.")
        seen.add(str(client["id"]))
    baseline = load_baseline(module)

    clients: dict[str, dict] = {}
    counts: dict[str, dict] = {}
    for client in p["clients"]:
        cid = str(client["id"])
        res = check_client(module, client, baseline.get(cid) or {})
        counts[cid] = res.pop("_counts")
        clients[cid] = res
    total = sum(c["findings_count"] for c in clients.values())
    result = {
        "changed": False,
        "ok": total == 0,
        "findings_count": total,
        "clients": clients,
        "counts": counts,
        "summary": [c["summary"] for c in clients.values()],
    }
    if total and p["fail_on_findings"]:
        bad = [c["summary"] for c in clients.values() if not c["ok"]]
        module.fail_json(
            msg=f"Ledger checks found {total} problem(s): " + "; ".join(bad) + ". See 'clients' for each finding.",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
