"""``ledgerguard notices list|show|approve|send``: the customer notices of an incident, approved by a person.

The report role writes the drafts and their index into ``<evidence>/<incident>/notices/`` (index.json: id, client,
milestone, language, recipients, path, sha256, status). This command lists them, shows one, records a person's
approval of the exact text (name, time, sha256 of the file's bytes) and sends approved ones by mail (SMTP from this
machine). Rules (``plugins/plugin_utils/notices.py``): nothing is sent without an approval; a text changed after its
approval is refused at send; a sent notice is never sent twice. Every approval and delivery attempt is appended to
the incident's hash-chained timeline (``timeline.jsonl``, the collection's own writer), the index and the
``SHA256SUMS`` line of each file this command rewrites are updated, and the incident's compliance checklist
(``compliance.json``) has its notice rows recomputed from the records.

SMTP settings come from a YAML file given by ``--smtp-config`` or ``$LEDGERGUARD_SMTP_CONFIG``: ``host``, ``port``,
``security`` (``starttls`` (default), ``ssl`` or ``none``), ``from``, optional ``username``, ``password_file`` (a
0600 file) and ``timeout``. The password is read from ``password_file`` or ``$LEDGERGUARD_SMTP_PASSWORD``; it is never
an argument and never written anywhere.

Exit codes: 0 done, 1 a delivery failed, 2 bad input or a refused action (the message says why and what to do;
``send --all-approved`` names each approved notice it cannot send, sends the others, and exits 2 if it left one out).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import getpass
import json
import os
import re
import smtplib
import ssl
import sys
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from ledgerguard import collection
from ledgerguard.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInput, check_secret_file

SMTP_CONFIG_ENV = "LEDGERGUARD_SMTP_CONFIG"
SMTP_PASSWORD_ENV = "LEDGERGUARD_SMTP_PASSWORD"  # noqa: S105 - the name of a variable, not a password
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SMTP_KEYS = ("host", "port", "security", "from", "username", "password_file", "timeout")


def _n() -> ModuleType:
    return collection.module("plugins.plugin_utils.notices")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------ the incident


def incident_dir(args: argparse.Namespace) -> Path:
    if not _ID_RE.match(args.incident_id or ""):
        raise BadInput(
            f"notices: --incident-id '{args.incident_id}' is not an incident id; give the evidence folder's name, "
            "e.g. INC-20261126-001 (letters, digits, '.', '_', '-')"
        )
    if args.evidence_dir:
        root = Path(args.evidence_dir).expanduser().resolve()
    else:
        root = collection.module("plugins.plugin_utils.evidence_pack").default_evidence_root().resolve()
    folder = root / args.incident_id
    if not folder.is_dir():
        raise BadInput(
            f"notices: no evidence folder {folder} for incident {args.incident_id}; give the incident id of an "
            "existing incident and, if its evidence is elsewhere, --evidence-dir"
        )
    return folder


@contextlib.contextmanager
def _locked(folder: Path):
    """One writer at a time per incident's notices (two people approving at the same moment)."""
    lock = folder / "notices" / ".lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load(folder: Path) -> dict[str, Any]:
    try:
        return _n().load_index(str(folder))
    except _n().NoticeError as exc:
        raise BadInput(f"notices: {exc}") from None


def _entry(doc: dict[str, Any], notice_id: str) -> dict[str, Any]:
    try:
        return _n().find(doc, notice_id)
    except _n().NoticeError as exc:
        raise BadInput(f"notices: {exc}") from None


def _text(folder: Path, entry: dict[str, Any]) -> bytes:
    path = folder / entry["path"]
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(
            f"notices: the draft of {entry['id']} ({path}) cannot be read ({exc.strerror}); re-run the report"
        ) from None


def _update_sums(folder: Path, changed: dict[str, str]) -> None:
    """Rewrite the SHA256SUMS lines of the files this command changed (relative path -> sha256)."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return
    lines = sums.read_text(encoding="utf-8").splitlines()
    seen = set()
    out = []
    for line in lines:
        digest, _sep, rel = line.partition("  ")
        if rel in changed:
            out.append(f"{changed[rel]}  {rel}")
            seen.add(rel)
        else:
            out.append(line)
    out.extend(f"{changed[rel]}  {rel}" for rel in sorted(set(changed) - seen))
    tmp = sums.with_name("SHA256SUMS.new")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, sums)


def _refresh_compliance(folder: Path, doc: dict[str, Any]) -> str | None:
    """Recompute the notice rows of the incident's compliance.json from the records; its new sha256 (None: none)."""
    path = folder / "compliance.json"
    if not path.is_file():
        return None
    comp = collection.module("plugins.plugin_utils.compliance")
    checklist = json.loads(path.read_text(encoding="utf-8"))
    if checklist.get("mode") != "incident" or "notice_inputs" not in checklist:
        return None
    fresh = comp.refresh_notice_rows(checklist, doc["notices"])
    data = (json.dumps(fresh, ensure_ascii=False, indent=4, sort_keys=True) + "\n").encode("utf-8")
    tmp = path.with_name("compliance.json.new")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return _n().sha256_bytes(data)


def _commit(folder: Path, doc: dict[str, Any], record: dict[str, Any]) -> None:
    """Save the index, refresh the checklist and SHA256SUMS (the index, the checklist and the notice's text as the
    person approved it), and append the record to the timeline."""
    changed = {"notices/index.json": _n().save_index(str(folder), doc)}
    if record.get("path") and record.get("text_sha256"):
        changed[record["path"]] = record["text_sha256"]
    comp_sha = _refresh_compliance(folder, doc)
    if comp_sha:
        changed["compliance.json"] = comp_sha
    _update_sums(folder, changed)
    record.setdefault("incident_id", doc.get("incident_id") or folder.name)
    record["index_sha256"] = changed["notices/index.json"]
    collection.module("plugins.module_utils.timeline").append(str(folder / "timeline.jsonl"), record)


def _record(event: str, entry: dict[str, Any], operator: str, **extra: Any) -> dict[str, Any]:
    out = {
        "time": _now(),
        "event": event,
        "status": "failed" if event == "notice_send_failed" else "ok",
        "task": f"{event.replace('_', ' ')}: {entry['id']}",
        "operator": operator,
        "notice": entry["id"],
        "client": entry.get("client"),
        "milestone": entry.get("milestone"),
        "language": entry.get("language"),
        "path": entry.get("path"),
    }
    out.update(extra)
    return out


# ------------------------------------------------------------------------------------------------ list / show


def cmd_list(args: argparse.Namespace) -> int:
    folder = incident_dir(args)
    doc = _load(folder)
    rows = []
    for entry in doc["notices"]:
        try:
            now_sha = _n().sha256_bytes((folder / entry["path"]).read_bytes())
        except OSError:
            now_sha = None
        item = dict(entry, current_sha256=now_sha)
        item["changed_since_approval"] = bool(entry.get("approved_sha256")) and now_sha != entry["approved_sha256"]
        rows.append(item)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"Notices of {doc.get('incident_id') or folder.name} ({folder / 'notices'}):")
    for r in rows:
        who = ", ".join(x.get("mail") or x.get("phone") or x.get("name") for x in r.get("recipients") or [])
        state = r["status"]
        if state in ("approved", "failed") and r["changed_since_approval"]:
            state += " (changed since approval: approve again)"
        if r.get("approved_by"):
            state += f", approved by {r['approved_by']} {r.get('approved_at')}"
        if r.get("sent_at"):
            state += f", sent {r['sent_at']}"
        print(f"  {r['id']:<28} {state}; to: {who or 'no contact (add ledgerguard_clients[].contacts)'}")
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in _n().STATUSES}
    print("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    folder = incident_dir(args)
    entry = _entry(_load(folder), args.notice_id)
    text = _text(folder, entry)
    now_sha = _n().sha256_bytes(text)
    print(f"Notice:     {entry['id']} ({entry.get('milestone')}, {entry.get('language')}), status {entry['status']}")
    print(f"Client:     {entry.get('client_name')} ({entry.get('client')})")
    for r in entry.get("recipients") or []:
        print(f"Recipient:  {r.get('name')} ({r.get('role') or '-'}) {r.get('mail') or '-'} {r.get('phone') or ''}")
    print(f"File:       {folder / entry['path']}")
    print(f"sha256:     {now_sha}")
    if entry.get("approved_sha256"):
        same = "the text shown" if entry["approved_sha256"] == now_sha else "NOT the text shown: approve again"
        print(
            f"Approved:   by {entry['approved_by']} at {entry['approved_at']}, "
            f"sha256 {entry['approved_sha256']} ({same})"
        )
    if entry.get("sent_at"):
        print(f"Sent:       {entry['sent_at']}")
    left = _n().unfinished(text.decode("utf-8", errors="replace"))
    if left and entry["status"] == "draft":
        print("To finish:  remove or fill in " + "; ".join(f"'{m}'" for m in left))
    print("-" * 80)
    sys.stdout.write(text.decode("utf-8", errors="replace"))
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ approve


def cmd_approve(args: argparse.Namespace) -> int:
    folder = incident_dir(args)
    with _locked(folder):
        doc = _load(folder)
        entry = _entry(doc, args.notice_id)
        text = _text(folder, entry)
        try:
            recorded = _n().approve(entry, args.by, _now(), text)
        except _n().NoticeError as exc:
            raise BadInput(f"notices: {exc}") from None
        if not recorded:
            print(
                f"notice {entry['id']} is already approved by {entry['approved_by']} at {entry['approved_at']} "
                "(same text); nothing recorded"
            )
            return EXIT_OK
        _commit(
            folder,
            doc,
            _record(
                "notice_approved",
                entry,
                entry["approved_by"],
                approved_by=entry["approved_by"],
                approved_at=entry["approved_at"],
                text_sha256=entry["approved_sha256"],
            ),
        )
    print(
        f"approved {entry['id']} by {entry['approved_by']} at {entry['approved_at']} "
        f"(sha256 {entry['approved_sha256']}); send it with: "
        f"ledgerguard notices send {entry['id']} --incident-id {args.incident_id}"
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ send


def smtp_settings(option: str | None) -> dict[str, Any]:
    """The SMTP settings (checked) from --smtp-config or $LEDGERGUARD_SMTP_CONFIG; the password is read here."""
    source = option or os.environ.get(SMTP_CONFIG_ENV)
    name = "--smtp-config" if option else SMTP_CONFIG_ENV
    if not source:
        raise BadInput(
            f"notices send: no SMTP settings; give --smtp-config FILE or set {SMTP_CONFIG_ENV} to a YAML file with "
            "host, port, security (starttls, ssl or none), from, and username / password_file if the server needs them"
        )
    path = Path(source).expanduser()
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(
            f"notices send: {name} {path} cannot be read ({exc.strerror}); give the SMTP settings file"
        ) from None
    except yaml.YAMLError as exc:
        raise BadInput(f"notices send: {name} {path} is not YAML ({exc.__class__.__name__}); fix the file") from None
    if not isinstance(cfg, dict):
        raise BadInput(f"notices send: {name} {path} must be a mapping (host, port, security, from, ...)")
    if "password" in cfg:
        raise BadInput(
            f"notices send: {name} {path} holds a 'password': put it in a 0600 file named by password_file "
            f"(or set {SMTP_PASSWORD_ENV}) instead"
        )
    unknown = sorted(set(cfg) - set(SMTP_KEYS))
    if unknown:
        raise BadInput(
            f"notices send: {name} {path}: unknown keys {', '.join(unknown)}; allowed: {', '.join(SMTP_KEYS)}"
        )
    if not cfg.get("host") or not cfg.get("from"):
        raise BadInput(f"notices send: {name} {path} needs 'host' (the SMTP server) and 'from' (the sender address)")
    security = str(cfg.get("security") or "starttls")
    if security not in ("starttls", "ssl", "none"):
        raise BadInput(f"notices send: {name} {path}: security '{security}' must be starttls, ssl or none")
    try:
        port = int(cfg.get("port") or {"ssl": 465, "starttls": 587, "none": 25}[security])
        timeout = float(cfg.get("timeout") or 30)
    except (TypeError, ValueError):
        raise BadInput(f"notices send: {name} {path}: port and timeout must be numbers") from None
    password = None
    if cfg.get("password_file"):
        secret = check_secret_file(str(cfg["password_file"]), f"{name} {path}: password_file")
        password = Path(secret).read_text(encoding="utf-8").strip()
    elif os.environ.get(SMTP_PASSWORD_ENV):
        password = os.environ[SMTP_PASSWORD_ENV]
    if cfg.get("username") and not password:
        raise BadInput(
            f"notices send: {name} {path} has a username but no password: set password_file (a 0600 file) "
            f"or {SMTP_PASSWORD_ENV}"
        )
    return {
        "host": str(cfg["host"]),
        "port": port,
        "security": security,
        "from": str(cfg["from"]),
        "username": str(cfg.get("username") or ""),
        "password": password,
        "timeout": timeout,
    }


def build_message(entry: dict[str, Any], text: bytes, sender: str) -> MIMEText:
    """The mail: the approved text's exact bytes as a base64 UTF-8 text/plain body (so what the server receives
    hashes to the approved sha256), the first heading as subject."""
    body = text.decode("utf-8")
    subject = body.lstrip().splitlines()[0].lstrip("# ").strip() if body.strip() else entry["id"]
    msg = MIMEText(body, "plain", "utf-8")
    msg["Subject"] = Header(subject, "utf-8")
    msg["From"] = sender
    msg["To"] = ", ".join(
        formataddr((r.get("name") or "", r["mail"]), charset="utf-8") for r in entry["recipients"] if r.get("mail")
    )
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(idstring=entry["id"].replace(".", "-"), domain=sender.rpartition("@")[2] or None)
    msg["X-Ledgerguard-Notice"] = entry["id"]
    msg["X-Ledgerguard-Sha256"] = _n().sha256_bytes(text)
    return msg


def deliver(settings: dict[str, Any], msg: MIMEText, to: list[str]) -> dict[str, Any]:
    """Send one message; the delivery record (result sent or failed, the server's refusals, the error)."""
    where = f"{settings['host']}:{settings['port']}"
    record: dict[str, Any] = {"server": where, "from": settings["from"], "to": to, "message_id": msg["Message-ID"]}
    try:
        if settings["security"] == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings["host"], settings["port"], timeout=settings["timeout"], context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings["host"], settings["port"], timeout=settings["timeout"])
        with smtp:
            if settings["security"] == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings["username"]:
                smtp.login(settings["username"], settings["password"])
            refused = smtp.sendmail(settings["from"], to, msg.as_bytes())
    except (OSError, smtplib.SMTPException) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        record.update(result="failed", error=f"{exc.__class__.__name__}: {detail}", refused={})
        return record
    record["refused"] = {k: f"{v[0]} {v[1].decode('utf-8', 'replace')}" for k, v in (refused or {}).items()}
    record["result"] = "failed" if len(record["refused"]) == len(to) else "sent"
    return record


def _send_one(folder: Path, doc: dict[str, Any], entry: dict[str, Any], settings: dict[str, Any]) -> bool:
    text = _text(folder, entry)
    try:
        _n().check_sendable(entry, _n().sha256_bytes(text))
    except _n().NoticeError as exc:
        raise BadInput(f"notices: {exc}") from None
    to = [r["mail"] for r in entry["recipients"] if r.get("mail")]
    msg = build_message(entry, text, settings["from"])
    delivery = deliver(settings, msg, to)
    delivery["at"] = _now()
    delivery["sha256"] = _n().sha256_bytes(text)
    _n().record_delivery(entry, delivery)
    event = "notice_sent" if delivery["result"] == "sent" else "notice_send_failed"
    _commit(
        folder,
        doc,
        _record(
            event,
            entry,
            getpass.getuser(),
            text_sha256=delivery["sha256"],
            approved_by=entry.get("approved_by"),
            approved_at=entry.get("approved_at"),
            delivery=delivery,
        ),
    )
    if delivery["result"] == "sent":
        partial = f"; refused by the server: {delivery['refused']}" if delivery["refused"] else ""
        print(f"sent {entry['id']} to {', '.join(to)} via {delivery['server']} at {delivery['at']}{partial}")
        return True
    print(
        f"ledgerguard notices: sending {entry['id']} via {delivery['server']} failed: "
        f"{delivery.get('error') or delivery['refused']}; the failure is recorded; fix the SMTP settings or the "
        f"addresses and run 'ledgerguard notices send {entry['id']} --incident-id {doc.get('incident_id')}' again",
        file=sys.stderr,
    )
    return False


def cmd_send(args: argparse.Namespace) -> int:
    if bool(args.notice_id) == bool(args.all_approved):
        raise BadInput("notices send: give one notice id, or --all-approved (every approved notice not sent yet)")
    folder = incident_dir(args)
    refused = 0
    with _locked(folder):
        doc = _load(folder)
        if args.notice_id:
            entries = [_entry(doc, args.notice_id)]
            # Refuse before reading the SMTP settings: an unapproved notice is refused whatever the configuration.
            try:
                _n().check_sendable(entries[0], _n().sha256_bytes(_text(folder, entries[0])))
            except _n().NoticeError as exc:
                raise BadInput(f"notices: {exc}") from None
        else:
            # Every approved notice; one that cannot go (changed since its approval, no mail recipient) is named and
            # left out, the others are sent.
            entries, refused = [], 0
            for entry in [e for e in doc["notices"] if e.get("status") == "approved"]:
                try:
                    _n().check_sendable(entry, _n().sha256_bytes(_text(folder, entry)))
                    entries.append(entry)
                except _n().NoticeError as exc:
                    print(f"ledgerguard notices: {exc}", file=sys.stderr)
                    refused += 1
            if not entries:
                if not refused:
                    print(f"no approved notice waiting to be sent in {folder / 'notices'}")
                return EXIT_BAD_INPUT if refused else EXIT_OK
        settings = smtp_settings(args.smtp_config)
        ok = [_send_one(folder, doc, entry, settings) for entry in entries]
    if not all(ok):
        return EXIT_FAILED
    return EXIT_BAD_INPUT if args.all_approved and refused else EXIT_OK


# ------------------------------------------------------------------------------------------------ CLI


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``notices list|show|approve|send``; each sets ``func``."""
    parser = subparsers.add_parser("notices", help="customer notices of an incident: list, show, approve, send")
    sub = parser.add_subparsers(dest="notices_command", metavar="ACTION", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--incident-id", required=True, help="the incident (its evidence folder's name)")
    where.add_argument(
        "--evidence-dir", help="evidence folder root (default: $LEDGERGUARD_EVIDENCE_DIR or ~/.local/state)"
    )

    p = sub.add_parser("list", parents=[where], help="the incident's notice drafts with their status")
    p.add_argument("--json", action="store_true", help="print the index entries as JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[where], help="one notice: recipients, status, sha256 and its text")
    p.add_argument("notice_id", metavar="ID", help="notice id, e.g. c001.final.zh-CN")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("approve", parents=[where], help="record a person's approval of a notice's exact text")
    p.add_argument("notice_id", metavar="ID", help="notice id")
    p.add_argument("--by", required=True, help="name of the person who approves (recorded)")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("send", parents=[where], help="mail an approved notice (SMTP) and record the delivery")
    p.add_argument("notice_id", metavar="ID", nargs="?", help="notice id")
    p.add_argument("--all-approved", action="store_true", help="send every approved notice not sent yet")
    p.add_argument("--smtp-config", help=f"SMTP settings file (YAML; default ${SMTP_CONFIG_ENV})")
    p.set_defaults(func=cmd_send)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except BadInput as exc:
        print(
            f"ledgerguard {exc}" if str(exc).startswith("notices") else f"ledgerguard notices: {exc}", file=sys.stderr
        )
        return EXIT_BAD_INPUT
