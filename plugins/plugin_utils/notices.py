# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Customer notices of an incident: which drafts to write, their index, and the approval rules. Pure functions.

The report role writes one draft per client, milestone and language into ``<evidence>/notices/`` and an index
``notices/index.json``; ``ledgerguard notices`` (src/ledgerguard/notices.py) lists, shows, approves and sends them, and
the compliance checklist closes its notice rows from the index (plugins/plugin_utils/compliance.py). Nothing here
sends anything.

Milestones, from the client's own result:

- ``confirmed``: the incident is confirmed; the notice with the PIPL Art. 57 content (kinds of information, cause,
  possible harm, measures, what the client can do, contact). Path ``notices/<client>.<lang>.md``.
- ``restoring``: the restore is under way, with an ETA (client not restored yet): the time the incident's restore
  queue expects from the drills' measured throughput (plugins/plugin_utils/filing.py), or, without a drill
  measurement, a plain statement that no time can be given yet (``eta_text``).
- ``restored``: the client's records are restored and verified (status ``ok``), with the data-loss window.
- ``final``: the final notice for the client (status ``ok``): what was done, what to check, the incident closed.

Each milestone is drafted when it happens (``plan(..., milestones=[...])``: ``confirmed`` after the declaration,
``restoring`` before the restore starts, ``restored`` after the client's restore is verified, all of them again at the
end with ``final``); a draft no person has acted on is re-rendered from the newest results, anything else is kept.

The other milestones' path is ``notices/<client>.<milestone>.<lang>.md``; a notice's id is
``<client>.<milestone>.<lang>``. Languages are those of the client's contacts (``zh-CN`` or ``en``); a client without
contacts gets its ``language`` or the report's default languages.

Index entry: ``id, client, client_name, host, milestone, language, recipients [{name, role, mail, phone}], path
(relative to the evidence folder), sha256 (of the draft's bytes as written), status (draft | approved | sent |
failed)``, for ``restoring`` also ``eta`` (RFC 3339, empty when none), ``eta_basis`` and ``eta_text`` (the sentence in
the draft), and once acted on ``approved_by, approved_at, approved_sha256, sent_at, deliveries`` (every attempt,
last one last).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Callable
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc
from ansible_collections.ledgerguard.recovery.plugins.plugin_utils.evidence_files import write_private

MILESTONES = ("confirmed", "restoring", "restored", "final")
STATUSES = ("draft", "approved", "sent", "failed")
LANGUAGES = ("zh-CN", "en")
INDEX_NAME = "index.json"
INDEX_VERSION = 1
CONTACT_KEYS = ("name", "role", "phone", "mail", "language")
# Text a person must remove or fill in before approving: the drafts' marker and footer, and the placeholders the
# report writes when report_agency_name / report_contact / report_notice_eta are not set.
UNFINISHED_MARKS = (
    "[DRAFT — to be reviewed by a person before sending]",
    "【草稿，须经人工审核后发送】",
    "This is a generated draft",
    "本函为系统生成的草稿",
    "[代理记账机构名称 / agency name]",
    "[联系人、电话、邮箱 / contact person, phone, e-mail]",
    "[ETA — to be filled in",  # drafts written before the ETA came from the restore queue
    "【预计完成时间",
)
NO_ETA = {
    "en": "cannot be given yet (none of our recovery drills has measured how long restoring your records takes)",
    "zh-CN": "暂时无法给出（我方的恢复演练尚未测得贵司资料的恢复用时）",
}
NOT_ESTIMATED = {"en": "cannot be given yet", "zh-CN": "暂时无法给出"}
DEFAULT_UTC_OFFSET = "+08:00"
_OFFSET_RE = re.compile(r"^([+-])([01][0-9]|2[0-3]):([0-5][0-9])$")
_MAIL_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


class NoticeError(Exception):
    """A refused action or bad input; the message names the input, what was expected and what to do."""


class NoticeIndexError(NoticeError):
    """The notices' index exists but cannot be read: the record of which notices were approved or sent is lost until
    it is restored, so nothing may be written."""


def not_written_tail(exc: Exception, again: str) -> str:
    """What to do after drafts were not written because of ``exc``; ``again``: when they will be written next."""
    if isinstance(exc, NoticeIndexError):
        return "Nothing was written; the incident goes on, and no draft is written until the index is restored."
    if isinstance(exc, NoticeError):
        return f"Fix ledgerguard_clients[].contacts; the incident goes on, and {again}."
    return f"The incident goes on, and {again}."


def norm_lang(value: Any, where: str = "language") -> str:
    """``zh-CN`` or ``en`` from the spellings people write (``zh``, ``zh_CN``, ``cn``, ``en-US`` ...)."""
    text = str(value or "").strip().lower().replace("_", "-")
    if text in ("zh", "zh-cn", "zh-hans", "cn", "chinese"):
        return "zh-CN"
    if text == "en" or text.startswith("en-") or text == "english":
        return "en"
    raise NoticeError(f"{where}: '{value}' is not a supported language; write zh-CN or en")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    with open(path, "rb") as handle:
        return sha256_bytes(handle.read())


def contact_errors(client: dict[str, Any]) -> list[str]:
    """What is wrong with a client's ``contacts`` (empty list when nothing)."""
    cid = client.get("id", "?")
    contacts = client.get("contacts")
    if contacts is None:
        return []
    if not isinstance(contacts, list):
        return [f"ledgerguard_clients[{cid}].contacts must be a list of {{name, role, phone, mail, language}}"]
    errors = []
    for i, contact in enumerate(contacts):
        where = f"ledgerguard_clients[{cid}].contacts[{i}]"
        if not isinstance(contact, dict):
            errors.append(f"{where} must be a mapping with name, role, phone, mail, language")
            continue
        unknown = sorted(set(contact) - set(CONTACT_KEYS))
        if unknown:
            errors.append(f"{where} has unknown keys {', '.join(unknown)}; allowed: {', '.join(CONTACT_KEYS)}")
        if not str(contact.get("name") or "").strip():
            errors.append(f"{where}.name is empty; give the person's name (e.g. 张会计)")
        mail = str(contact.get("mail") or "").strip()
        if mail and not _MAIL_RE.match(mail):
            errors.append(f"{where}.mail '{mail}' is not a mail address; write it as name@example.com")
        if not mail and not str(contact.get("phone") or "").strip():
            errors.append(f"{where} has neither mail nor phone; give at least one way to reach the person")
        try:
            norm_lang(contact.get("language") or "zh-CN", f"{where}.language")
        except NoticeError as exc:
            errors.append(str(exc))
    return errors


def client_milestones(result: dict[str, Any]) -> list[str]:
    """The milestones a client has reached, from its own result: restored (status ok) or not (yet)."""
    if result.get("status") == "ok":
        return ["confirmed", "restored", "final"]
    return ["confirmed", "restoring"]


def notice_path(client_id: str, milestone: str, language: str) -> str:
    if milestone == "confirmed":
        return f"notices/{client_id}.{language}.md"
    return f"notices/{client_id}.{milestone}.{language}.md"


def eta_text(eta: Any, language: str, utc_offset: Any = None) -> str:
    """The expected completion as the ``restoring`` draft says it: the ETA (RFC 3339) in the firm's local time (the
    filing calendar's offset, default UTC+08:00), or, without one, a plain statement that none can be given yet."""
    text = str(eta or "").strip()
    if not text:
        return NO_ETA[language]
    match = _OFFSET_RE.match(str(utc_offset or DEFAULT_UTC_OFFSET))
    if not match:
        match = _OFFSET_RE.match(DEFAULT_UTC_OFFSET)
    sign = -1 if match.group(1) == "-" else 1
    zone = datetime.timezone(sign * datetime.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NoticeError(f"eta '{text}' is not an RFC 3339 time (e.g. 2026-11-26T10:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    local = when.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    offset = match.group(0)
    if language == "zh-CN":
        return f"约 {local}（UTC{offset}），按我方恢复演练实测的恢复速度估算"
    return f"about {local} (UTC{offset}), estimated from the restore speed our recovery drills measured"


def _eta_fields(result: dict[str, Any], prev: dict[str, Any] | None, language: str) -> dict[str, str]:
    """The ``restoring`` entry's ETA: the result's own (the restore queue's, before the restore) or the one the
    draft was first written with (a later milestone re-renders it from results that no longer carry one). A draft
    written without any (a run with no restoring milestone, e.g. playbooks/restore.yml) says only that none can be
    given yet: nothing was estimated, so it does not blame the drills."""
    source = result if "eta" in result else (prev if prev and "eta" in prev else None)
    if source is None:
        return {"eta": "", "eta_basis": "not estimated", "eta_utc_offset": DEFAULT_UTC_OFFSET,
                "eta_text": NOT_ESTIMATED[language]}  # fmt: skip
    eta = str(source.get("eta") or "")
    basis = str(source.get("eta_basis") or ("" if eta else "no drill measurement"))
    offset = source.get("eta_utc_offset") or DEFAULT_UTC_OFFSET
    return {"eta": eta, "eta_basis": basis, "eta_utc_offset": str(offset), "eta_text": eta_text(eta, language, offset)}


def _recipients(contacts: list[dict[str, Any]], language: str) -> list[dict[str, str]]:
    out = []
    for contact in contacts:
        if norm_lang(contact.get("language") or "zh-CN") == language:
            out.append({k: str(contact.get(k) or "") for k in ("name", "role", "mail", "phone")})
    return out


def plan(
    clients: list[dict[str, Any]],
    configured: list[dict[str, Any]],
    default_languages: list[str],
    existing: dict[str, Any] | None = None,
    milestones: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The drafts to write: one per client result (``report.clients``), milestone and language.

    ``milestones`` limits the drafts to the milestones that just happened (each among those the client reached); none
    drafts every milestone each client reached (the end of the incident).

    ``configured`` is every host's ``ledgerguard_clients`` (contacts, language); ``existing`` the current index, whose
    entries that are no longer drafts (approved, sent, failed) are kept as they are (``keep: true``: the role does
    not rewrite their file, so an approved or sent text never changes under its record), and whose entries this run
    does not produce (clients not in this run) are kept too."""
    by_id: dict[str, dict[str, Any]] = {}
    for client in configured or []:
        if isinstance(client, dict) and client.get("id") is not None:
            by_id.setdefault(str(client["id"]), client)
    errors = [e for c in by_id.values() for e in contact_errors(c)]
    if errors:
        raise NoticeError("; ".join(errors))
    defaults = [norm_lang(x, "report_notice_languages") for x in (default_languages or LANGUAGES)]
    old = {e.get("id"): e for e in ((existing or {}).get("notices") or []) if isinstance(e, dict)}
    wanted = list(milestones) if milestones else list(MILESTONES)
    unknown = [m for m in wanted if m not in MILESTONES]
    if unknown:
        raise NoticeError(
            f"milestones: {', '.join(map(str, unknown))} unknown; expected some of {', '.join(MILESTONES)}"
        )
    out = []
    for result in clients or []:
        cid = str(result.get("id"))
        cfg = by_id.get(cid, {})
        contacts = [c for c in cfg.get("contacts") or [] if isinstance(c, dict)]
        if contacts:
            langs = [lang for lang in LANGUAGES if _recipients(contacts, lang)]
        elif cfg.get("language"):
            langs = [norm_lang(cfg["language"], f"ledgerguard_clients[{cid}].language")]
        else:
            langs = defaults
        for milestone in [m for m in client_milestones(result) if m in wanted]:
            for lang in langs:
                nid = f"{cid}.{milestone}.{lang}"
                prev = old.get(nid)
                if prev and prev.get("status") != "draft":
                    out.append(dict(prev, keep=True))
                    continue
                entry = {
                    "id": nid,
                    "client": cid,
                    "client_name": str(result.get("name") or cfg.get("name") or cid),
                    "host": str(result.get("host") or ""),
                    "milestone": milestone,
                    "language": lang,
                    "recipients": _recipients(contacts, lang),
                    "path": notice_path(cid, milestone, lang),
                    "status": "draft",
                    "keep": False,
                }
                if milestone == "restoring":
                    entry.update(_eta_fields(result, prev, lang))
                out.append(entry)
    # A re-run restores only some clients: the notices of the others stay in the index as they are.
    made = {e["id"] for e in out}
    out.extend(dict(e, keep=True) for nid, e in old.items() if nid not in made)
    return out


def build_index(incident_id: str, entries: list[dict[str, Any]], evidence_dir: str, generated_at: str) -> dict:
    """The index document: each entry with the sha256 of its file as it is now on disk."""
    notices = []
    for entry in entries:
        item = {k: v for k, v in entry.items() if k != "keep"}
        path = os.path.join(evidence_dir, item["path"])
        if not entry.get("keep") or not item.get("sha256"):
            item["sha256"] = sha256_file(path)
        notices.append(item)
    return {"version": INDEX_VERSION, "incident_id": incident_id, "generated_at": generated_at, "notices": notices}


# ------------------------------------------------------------------------------------------- the index on disk


def index_path(evidence_dir: str) -> str:
    return os.path.join(evidence_dir, "notices", INDEX_NAME)


def load_index(evidence_dir: str) -> dict[str, Any]:
    path = index_path(evidence_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        raise NoticeError(
            f"{path} does not exist: this incident has no notice drafts; the incident report writes them "
            "(report_notices_enabled: true)"
        ) from None
    except ValueError as exc:
        raise NoticeIndexError(f"{path} is not valid JSON ({exc}); restore it from the evidence pack") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("notices"), list):
        raise NoticeIndexError(f"{path} has no 'notices' list; restore it from the evidence pack")
    return doc


def save_index(evidence_dir: str, doc: dict[str, Any]) -> str:
    """Write the index atomically (0600); returns the sha256 of the bytes written."""
    path = index_path(evidence_dir)
    data = (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return sha256_bytes(data)


def find(doc: dict[str, Any], notice_id: str) -> dict[str, Any]:
    for entry in doc.get("notices") or []:
        if entry.get("id") == notice_id:
            return entry
    ids = ", ".join(e.get("id", "?") for e in doc.get("notices") or []) or "none"
    raise NoticeError(f"notice '{notice_id}' is not in this incident's notices/index.json; its notices: {ids}")


# ------------------------------------------------------------------------------------------- approval rules


def unfinished(text: str) -> list[str]:
    """The draft marks and placeholders still in ``text`` (see ``UNFINISHED_MARKS``)."""
    return [mark for mark in UNFINISHED_MARKS if mark in text]


def approve(entry: dict[str, Any], by: str, at: str, text: bytes) -> bool:
    """Record an approval of the draft's exact text (``text``, the file's bytes). Returns False when the same text
    was already approved (nothing to record). Refuses an empty name, a notice already sent, and a text that still
    holds the draft marker or a placeholder (a person must check and complete it first)."""
    current_sha256 = sha256_bytes(text)
    if not str(by or "").strip():
        raise NoticeError("--by is empty: give the name of the person who approves the notice (e.g. --by 李经理)")
    if entry.get("status") == "sent":
        raise NoticeError(
            f"notice {entry['id']} was already sent at {entry.get('sent_at')}; a sent notice cannot be approved "
            "again (write a new notice for a correction)"
        )
    if entry.get("status") in ("approved", "failed") and entry.get("approved_sha256") == current_sha256:
        return False
    left = unfinished(text.decode("utf-8", errors="replace"))
    if left:
        raise NoticeError(
            f"notice {entry['id']} is not ready to approve: {entry.get('path')} still holds "
            + "; ".join(f"'{mark}'" for mark in left)
            + ". Edit the file (remove the draft marker and footer, fill in the placeholders), then approve it"
        )
    entry.update(
        status="approved",
        approved_by=str(by).strip(),
        approved_at=at,
        approved_sha256=current_sha256,
        sha256=current_sha256,
    )
    return True


def check_sendable(entry: dict[str, Any], current_sha256: str) -> None:
    """Refuse to send a notice that no person approved, one already sent, one changed since its approval, and one
    without a mail recipient."""
    nid = entry.get("id")
    status = entry.get("status")
    if status == "sent":
        raise NoticeError(f"notice {nid} was already sent at {entry.get('sent_at')}; it is not sent twice")
    if status not in ("approved", "failed") or not entry.get("approved_sha256"):
        raise NoticeError(
            f"notice {nid} is not approved (status {status}): nothing reaches a customer without a person's "
            f"approval; review it with 'ledgerguard notices show {nid}', then 'ledgerguard notices approve {nid} "
            "--by NAME'"
        )
    if entry["approved_sha256"] != current_sha256:
        raise NoticeError(
            f"notice {nid} was changed after its approval by {entry.get('approved_by')} (approved sha256 "
            f"{entry['approved_sha256']}, now {current_sha256}); review the text and approve it again"
        )
    if not [r for r in entry.get("recipients") or [] if r.get("mail")]:
        raise NoticeError(
            f"notice {nid} has no mail recipient: add contacts with a mail address and language "
            f"{entry.get('language')} to ledgerguard_clients[{entry.get('client')}].contacts and re-run the report, "
            "or send it by hand"
        )


def record_delivery(entry: dict[str, Any], delivery: dict[str, Any]) -> None:
    """Record a delivery attempt: ``delivery.result`` is ``sent`` or ``failed``."""
    entry.setdefault("deliveries", []).append(delivery)
    if delivery.get("result") == "sent":
        entry["status"] = "sent"
        entry["sent_at"] = delivery.get("at")
    else:
        entry["status"] = "failed"


# ------------------------------------------------------------------------------------------- writing the drafts


def template_name(notice: dict[str, Any]) -> str:
    """The report role's template of a draft: ``notice.<lang>.md.j2`` (confirmed), else
    ``notice_<milestone>.<lang>.md.j2``."""
    prefix = "notice." if notice["milestone"] == "confirmed" else f"notice_{notice['milestone']}."
    return f"{prefix}{notice['language']}.md.j2"


def pending_clients(selected: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The selected clients of every host (``{host: incident_result.clients}``, in play order), not restored yet: the
    clients of the ``confirmed`` and ``restoring`` drafts, each with its ``host`` and status ``pending``."""
    return [{**client, "host": host, "status": "pending"} for host, clients in selected.items() for client in clients]


def with_etas(clients: list[dict[str, Any]], queue: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each client with its ETA from the incident's restore queue (plugin_utils/filing.py ``restore_queue``): ``eta``,
    ``eta_basis``, ``eta_utc_offset`` (its next deadline's UTC offset, +08:00 without one) and ``next_deadline``.
    Raises ``NoticeError`` for a client the queue does not hold."""
    out = []
    for client in clients:
        entry = next((q for q in queue if q["host"] == client["host"] and q["id"] == str(client["id"])), None)
        if entry is None:
            raise NoticeError(f"client {client['id']} on {client['host']} is not in the restore queue")
        deadline = entry.get("next_deadline")
        out.append(
            {
                **client,
                "eta": entry["eta"],
                "eta_basis": entry["eta_basis"],
                "eta_utc_offset": (deadline or {}).get("utc_offset", "+08:00"),
                "next_deadline": deadline,
            }
        )
    return out


def write_drafts(
    evidence_dir: str,
    incident_id: str,
    clients: list[dict[str, Any]],
    configured: list[dict[str, Any]],
    languages: list[str],
    milestones: list[str],
    render: Callable[[str, dict[str, Any], dict[str, Any]], str],
    check: bool = False,
) -> dict[str, Any]:
    """Plan the drafts (``plan``), render each with ``render(template, notice, client)`` and write it (0600, only when
    its bytes change), then the index. Returns ``{changed, written, kept, index}`` (in check mode: what would be
    written, nothing written). Raises ``NoticeError``, ``OSError`` or whatever ``render`` raises.

    An index that exists but cannot be read stops the run before anything is written: it is the record of which
    notices were approved or sent, and without it those would be planned again as drafts and overwritten."""
    existing = load_index(evidence_dir) if os.path.lexists(index_path(evidence_dir)) else {}
    planned = plan(clients, configured, languages, existing, milestones)
    written = [n for n in planned if not n.get("keep")]
    changed = False
    for notice in written:
        client = next(
            (c for c in clients if c["id"] == notice["client"] and c["host"] == notice["host"]),
            None,
        )
        if client is None:
            raise NoticeError(f"notice {notice['id']}: no result for client {notice['client']} on {notice['host']}")
        text = render(template_name(notice), notice, client)
        changed |= write_private(os.path.join(evidence_dir, notice["path"]), text, check)
    # the index hashes the drafts as written: in check mode it is compared only when no draft would change
    if not (check and changed):
        index = build_index(incident_id, planned, evidence_dir, format_utc())
        before = existing.get("notices") if existing else None
        if changed or before != index["notices"]:
            if not check:
                save_index(evidence_dir, index)
            changed = True
    return {
        "changed": changed,
        "written": [n["path"] for n in written],
        "kept": [n["path"] for n in planned if n.get("keep")],
        "index": index_path(evidence_dir),
    }
