# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""On-call messages of an incident (controller side): who is told, what, over which channel, and the record of it.

Used by the action plugin ``ledgerguard.recovery.oncall_notify`` (the incident role's ``oncall`` entry point).

- :func:`render` builds one milestone's message (title, Markdown text, status) in zh-CN or en from the incident's
  facts: ``declare`` (what, where, who leads, the report's future path), ``clients`` (each client's result after the
  restore), ``failure`` (a step failed: a person is needed) and ``end`` (RTO, data-loss window, report path).
- :func:`deliver` sends it to every channel of every person (chat webhooks through ``module_utils/notify.py``, the
  payloads ``backup_verify`` sends; ``mail`` through SMTP from the controller) with a short timeout. A channel that is
  down never raises: its delivery is recorded as failed with the reason. In check mode nothing is sent.
- Each delivery becomes one line of ``evidence/<id>/oncall.jsonl``, hash-chained like the timeline (the same
  ``module_utils/timeline.append``, so ``ledgerguard timeline verify`` checks it): time, milestone, person, channel
  kind, the masked target, ok/failed and why, and the sha256 of the exact text sent (``text_sha256``; the line's own
  ``sha256`` and ``prev_sha256`` are the chain's). Webhook tokens, signing secrets
  and SMTP passwords never reach the record, the timeline or the task result (:func:`mask_url`, :func:`scrub`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from collections.abc import Callable
from typing import Any

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.ledgerguard.recovery.plugins.module_utils import notify
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeline import append

MILESTONES = ("declare", "clients", "failure", "end")
KINDS = (*notify.KINDS, "mail")
LANGUAGES = ("zh-CN", "en")
RECORD_NAME = "oncall.jsonl"
DEFAULT_TIMEOUT = 5
_BEIJING = dt.timezone(dt.timedelta(hours=8))

CAUSES = {
    "zh-CN": {"ransomware": "勒索软件", "deleted": "文件被删除", "corruption": "数据损坏", "unknown": "未知"},
    "en": {
        "ransomware": "ransomware",
        "deleted": "files deleted",
        "corruption": "data corruption",
        "unknown": "unknown",
    },
}
STATUS = {
    "zh-CN": {"restored": "已全部恢复", "partial": "部分恢复", "failed": "未恢复"},
    "en": {"restored": "all restored", "partial": "partly restored", "failed": "not restored"},
}


class OncallError(ValueError):
    """An on-call entry cannot be used: names the entry, what was expected and what to do."""


# ---------------------------------------------------------------------------------------------------------------------
# The on-call list
# ---------------------------------------------------------------------------------------------------------------------


def person_errors(people: Any) -> list[str]:
    """Problems of ``ledgerguard_oncall`` that its argument spec cannot state (one sentence each)."""
    if not isinstance(people, list):
        return [f"ledgerguard_oncall must be a list of people, got {type(people).__name__}"]
    errors = []
    for n, person in enumerate(people, start=1):
        where = f"ledgerguard_oncall[{n}]"
        if not isinstance(person, dict) or not str(person.get("name") or "").strip():
            errors.append(f"{where} needs a name")
            continue
        where = f"{where} ({person['name']})"
        if str(person.get("language") or "zh-CN") not in LANGUAGES:
            errors.append(f"{where}: language must be one of {', '.join(LANGUAGES)}")
        for m, channel in enumerate(person.get("channels") or [], start=1):
            try:
                channel_problem(channel)
            except OncallError as exc:
                errors.append(f"{where} channel {m}: {exc}")
    return errors


def channel_problem(channel: Any) -> None:
    """Raise :class:`OncallError` when ``channel`` cannot be used (its secrets are never named)."""
    if not isinstance(channel, dict):
        raise OncallError("must be a dict with a kind")
    kind = channel.get("kind")
    if kind not in KINDS:
        raise OncallError(f"kind '{kind}' is not one of {', '.join(KINDS)}")
    if kind == "mail":
        for key in ("host", "from", "to"):
            if not channel.get(key):
                raise OncallError(f"a mail channel needs {key} (SMTP host, sender address, recipient address)")
        if channel.get("password"):
            raise OncallError(
                "a mail channel takes no password in the inventory; give password_file (a 0600 file on the "
                "controller) or password_env (an environment variable of the controller)"
            )
        return
    url = str(channel.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise OncallError(f"a {kind} channel needs url starting with http:// or https:// (got {mask_url(url)})")


def lead_of(people: list[dict[str, Any]], operator: str = "") -> str:
    """The name of the person who leads (the first with role lead), else the operator."""
    for person in people:
        if person.get("role") == "lead":
            return str(person["name"])
    return operator or "-"


# ---------------------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------------------


def _when(value: str, lang: str) -> str:
    """A UTC time for a reader: Beijing time in zh-CN, UTC in en."""
    if not value:
        return "-"
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if lang == "zh-CN":
        return when.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _client_label(client: dict[str, Any]) -> str:
    name = client.get("name") or ""
    return f"{client.get('id')} {name}".strip()


def _client_line(entry: dict[str, Any], host: str, lang: str) -> str:
    """One client's result: restored and verified, restored but not verified, failed (or planned in a dry run)."""
    label = _client_label(entry)
    snap = (entry.get("snapshot") or {}).get("short_id") or str((entry.get("snapshot") or {}).get("id") or "")[:8]
    status = entry.get("status")
    zh = lang == "zh-CN"
    if status == "ok" and entry.get("verified", True):
        text = f"已恢复并验证（快照 {snap}）" if zh else f"restored and verified (snapshot {snap})"
    elif status == "ok":
        text = (
            f"已恢复，未能验证（快照 {snap}），需人工复核"
            if zh
            else f"restored, NOT verified (snapshot {snap}): a person must re-check"
        )
    elif status == "planned":
        text = f"演练：将从快照 {snap} 恢复" if zh else f"dry run: would restore snapshot {snap}"
    else:
        msg = str(entry.get("msg") or "failed")
        text = f"失败，需人工处理：{msg}" if zh else f"FAILED, needs a person: {msg}"
    return f"- {label}（{host}）：{text}" if zh else f"- {label} ({host}): {text}"


def _hosts_clients(facts: dict[str, Any], lang: str) -> list[str]:
    lines = []
    for host, data in sorted((facts.get("hosts") or {}).items()):
        names = [_client_label(c) for c in data.get("clients") or []]
        sep = "、" if lang == "zh-CN" else ", "
        lines.append(f"- {host}{'：' if lang == 'zh-CN' else ': '}{sep.join(names) or '-'}")
    return lines


def failed_databases(host: Any) -> list[dict[str, Any]]:
    """The databases named for the incident that were not restored on one host (its ``databases``, the restore
    role's restore_database_results)."""
    if not isinstance(host, dict):
        return []
    return [d for d in host.get("databases") or [] if isinstance(d, dict) and not d.get("ok", False)]


def needs_a_person(hosts: dict[str, Any]) -> bool:
    """True when the ``failure`` milestone has something to tell: a step failed, or a database was not restored."""
    return any(isinstance(h, dict) and (h.get("failed_step") or failed_databases(h)) for h in hosts.values())


def render(milestone: str, lang: str, facts: dict[str, Any]) -> dict[str, str]:
    """The message of ``milestone`` in ``lang``: ``{title, text, status}`` (text in Markdown, status OK/WARN/FAIL).

    ``facts``: ``incident_id``, ``cause``, ``summary``, ``operator``, ``detected_at``, ``lead``, ``report_path``,
    ``check_mode``, ``hosts`` (per host: ``clients`` [{id, name}], ``results`` (restore_results), ``failed_step``,
    ``failed_msg``, ``databases`` (restore_database_results; ``failure`` names each one not restored)) and, for
    ``end``, ``report`` (report.json's ``status``, ``summary``, ``problems``; empty when no report was written).
    """
    if milestone not in MILESTONES:
        raise OncallError(f"milestone '{milestone}' is not one of {', '.join(MILESTONES)}")
    if lang not in LANGUAGES:
        raise OncallError(f"language '{lang}' is not one of {', '.join(LANGUAGES)}")
    zh = lang == "zh-CN"
    inc = facts.get("incident_id") or "?"
    report_path = facts.get("report_path") or "-"
    hosts = facts.get("hosts") or {}
    lines: list[str] = []
    dry = bool(facts.get("check_mode"))
    if dry:
        lines.append(
            "**演练（--check）：未做任何更改，本消息未发送。**"
            if zh
            else "**Dry run (--check): nothing changed, nothing sent.**"
        )
    if milestone == "declare":
        status = "WARN"
        title = f"事故 {inc} 已启动：客户数据恢复" if zh else f"Incident {inc} declared: client data recovery"
        cause = CAUSES[lang].get(str(facts.get("cause") or "unknown"), str(facts.get("cause")))
        if zh:
            lines += [
                f"- 事故编号：{inc}",
                f"- 情况：{facts.get('summary') or '客户资料丢失或损坏'}（初步原因：{cause}）",
                f"- 发现时间：{_when(facts.get('detected_at', ''), lang)}",
                f"- 负责人：{facts.get('lead') or '-'}；执行人：{facts.get('operator') or '-'}",
                "- 涉及主机与客户：",
                *_hosts_clients(facts, lang),
                f"- 完成后的报告：{report_path}",
            ]
        else:
            lines += [
                f"- Incident: {inc}",
                f"- What: {facts.get('summary') or 'client data lost or damaged'} (suspected cause: {cause})",
                f"- Detected: {_when(facts.get('detected_at', ''), lang)}",
                f"- Lead: {facts.get('lead') or '-'}; operator: {facts.get('operator') or '-'}",
                "- Hosts and clients:",
                *_hosts_clients(facts, lang),
                f"- Report (when done): {report_path}",
            ]
    elif milestone == "clients":
        entries = [(host, e) for host, data in sorted(hosts.items()) for e in data.get("results") or []]
        results = [entry for _host, entry in entries]
        done = [e for e in results if e.get("status") in ("ok", "planned")]
        failed = any(e.get("status") not in ("ok", "planned") for e in results)
        unverified = any(e.get("status") == "ok" and not e.get("verified", True) for e in results)
        status = "FAIL" if failed else "WARN" if unverified or not entries else "OK"
        if zh:
            title = f"事故 {inc}：客户恢复结果（{len(done)}/{len(entries)} 已恢复）"
        else:
            title = f"Incident {inc}: client results ({len(done)} of {len(entries)} restored)"
        lines += [_client_line(e, host, lang) for host, e in entries] or ["- （无结果）" if zh else "- (no results)"]
        if failed:
            lines.append(
                "失败的客户需要人工处理：修复原因后用同一事故编号重新运行。"
                if zh
                else "Failed clients need a person: fix the cause, then re-run with the same incident id."
            )
    elif milestone == "failure":
        status = "FAIL"
        title = f"事故 {inc}：步骤失败，需人工处理" if zh else f"Incident {inc}: a step failed, a person is needed"
        for host, data in sorted(hosts.items()):
            if data.get("failed_step"):
                if zh:
                    lines.append(f"- {host}：步骤「{data['failed_step']}」失败：{data.get('failed_msg') or '-'}")
                else:
                    lines.append(f'- {host}: step "{data["failed_step"]}" failed: {data.get("failed_msg") or "-"}')
            for db in failed_databases(data):
                name = f"{db.get('engine')}/{db.get('database')}"
                if zh:
                    lines.append(f"- {host}：数据库 {name} 恢复失败：{db.get('msg') or '-'}")
                else:
                    lines.append(f"- {host}: database {name} failed: {db.get('msg') or '-'}")
        lines.append(
            f"解冻和报告仍会执行；主机锁保留，修复后用 ledgerguard_incident_id={inc} 重新运行。报告：{report_path}"
            if zh
            else f"The thaw and the report still run; the host lock stays: fix the cause and re-run with "
            f"ledgerguard_incident_id={inc}. Report: {report_path}"
        )
    else:
        report = facts.get("report") or {}
        summary = report.get("summary") or {}
        verdict = str(report.get("status") or "")
        status = {"restored": "OK", "partial": "WARN"}.get(verdict, "FAIL")
        if not report:
            status = "WARN"
            title = f"事故 {inc}：演练结束" if zh else f"Incident {inc}: dry run finished"
            entries = [(host, e) for host, data in sorted(hosts.items()) for e in data.get("results") or []]
            lines += [_client_line(e, host, lang) for host, e in entries]
        elif zh:
            title = f"事故 {inc} 结束：{STATUS[lang].get(verdict, verdict)}"
            lines += [
                f"- 已恢复客户：{summary.get('clients_restored', 0)}/{summary.get('clients_total', 0)}",
                f"- 实际恢复时间（RTO，宣布至验证）：{_rto(summary, lang)}",
                f"- 数据丢失窗口（最长）：{summary.get('max_data_loss_window') or '未知'}",
                f"- 报告：{report_path}",
            ]
            lines += [f"- 待处理：{p}" for p in (report.get("problems") or [])[:10]]
        else:
            title = f"Incident {inc} ended: {STATUS[lang].get(verdict, verdict)}"
            lines += [
                f"- Clients restored: {summary.get('clients_restored', 0)} of {summary.get('clients_total', 0)}",
                f"- RTO achieved (declared to verified): {_rto(summary, lang)}",
                f"- Data-loss window (longest): {summary.get('max_data_loss_window') or 'unknown'}",
                f"- Report: {report_path}",
            ]
            lines += [f"- To do: {p}" for p in (report.get("problems") or [])[:10]]
    # Ends with a newline: a mail body is sent exactly as rendered (its sha256 is the record's text_sha256).
    return {"title": title, "text": "\n".join(lines) + "\n", "status": status}


def _rto(summary: dict[str, Any], lang: str) -> str:
    if summary.get("rto_seconds") is None:
        return "未达成（仍有客户未恢复）" if lang == "zh-CN" else "not reached (clients are still not restored)"
    return str(summary.get("rto"))


# ---------------------------------------------------------------------------------------------------------------------
# Secrets out of every output
# ---------------------------------------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """``scheme://host[:port]/…``: webhook paths and queries carry the bot's token, never shown."""
    try:
        parts = urllib.parse.urlsplit(str(url))
    except ValueError:
        return "(unreadable url)"
    if not parts.scheme or not parts.hostname:
        return "(no url)" if not url else "(not a url)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def target_of(channel: dict[str, Any]) -> str:
    """What the record shows of a channel: the masked URL, or the SMTP server and the recipients."""
    if channel.get("kind") == "mail":
        return f"smtp://{channel.get('host')}:{channel.get('port') or 25} -> {', '.join(_recipients(channel))}"
    return mask_url(channel.get("url", ""))


def scrub(text: str, channel: dict[str, Any], password: str = "") -> str:
    """``text`` without the channel's URL, its path and query, its signing secret and the SMTP password."""
    out = str(text)
    url = str(channel.get("url") or "")
    secrets = [url, password, str(channel.get("secret") or "")]
    if url:
        parts = urllib.parse.urlsplit(url)
        secrets += [parts.path, parts.query, urllib.parse.unquote(parts.query)]
        secrets += [value for _key, value in urllib.parse.parse_qsl(parts.query)]
    for secret in sorted({s for s in secrets if s and len(s) > 3}, key=len, reverse=True):
        out = out.replace(secret, "***")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------------------------------


def _recipients(channel: dict[str, Any]) -> list[str]:
    to = channel.get("to") or []
    return [str(to)] if isinstance(to, str) else [str(t) for t in to]


def _reason(exc: BaseException, timeout: float) -> str:
    """A short reason for a delivery that failed (what the operator needs to fix)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    # smtplib turns a server that stops answering into SMTPServerDisconnected("...: timed out").
    silent = isinstance(inner, smtplib.SMTPServerDisconnected) and "timed out" in str(inner)
    if silent or isinstance(inner, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s (timed out)"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, socket.gaierror):
        return f"host name not found ({inner.strerror})"
    return f"{type(inner).__name__}: {inner}"


def send_webhook(channel: dict[str, Any], message: dict[str, str], timeout: float, data: Any = None) -> str:
    """POST one message to a chat webhook; returns the bot's answer as a reason, raises on failure."""
    request = notify.webhook_request(
        channel["kind"],
        channel["url"],
        message["title"],
        message["text"],
        message["status"],
        secret=channel.get("secret"),
        data=data,
    )
    body = json.dumps(request["body"], ensure_ascii=False).encode("utf-8")
    answer = open_url(
        request["url"],
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=timeout,
    )
    try:
        raw = answer.read(65536)
        code = answer.status
    finally:
        answer.close()
    try:
        parsed: Any = json.loads(raw.decode("utf-8"))
    except ValueError:
        parsed = raw.decode("utf-8", errors="replace")
    ok, reason = notify.response_ok(channel["kind"], code, parsed)
    if not ok:
        raise RuntimeError(f"the bot refused the message: {reason}")
    return reason


def mail_password(channel: dict[str, Any]) -> str:
    """The SMTP password from ``password_file`` or ``password_env`` ("" when neither is given)."""
    if channel.get("password_file"):
        path = os.path.expanduser(str(channel["password_file"]))
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip("\r\n")
        except OSError as exc:
            raise OncallError(f"password_file {path} cannot be read ({exc.strerror})") from exc
    if channel.get("password_env"):
        name = str(channel["password_env"])
        if name not in os.environ:
            raise OncallError(f"password_env {name} is not set in the controller's environment")
        return os.environ[name]
    return ""


def send_mail(channel: dict[str, Any], message: dict[str, str], timeout: float, password: str = "") -> str:
    """Send one plain-text UTF-8 mail through SMTP from the controller; raises on failure."""
    mail = EmailMessage()
    mail["Subject"] = message["title"]
    mail["From"] = str(channel["from"])
    mail["To"] = ", ".join(_recipients(channel))
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="ledgerguard")
    mail.set_content(message["text"], charset="utf-8")
    host, port, secure = str(channel["host"]), int(channel.get("port") or 25), channel.get("secure") or "try"
    if secure == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        smtp.ehlo()
        if secure in ("try", "starttls") and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        elif secure == "starttls":
            raise RuntimeError(f"{host}:{port} does not offer STARTTLS (secure: starttls)")
        if channel.get("username"):
            smtp.login(str(channel["username"]), password)
        refused = smtp.send_message(mail)
    if refused:
        raise RuntimeError("recipients refused: " + ", ".join(sorted(refused)))
    return f"accepted by {host}:{port}"


Sender = Callable[[dict[str, Any], dict[str, str], float], str]


def send(channel: dict[str, Any], message: dict[str, str], timeout: float, data: Any = None) -> tuple[bool, str]:
    """Send over one channel; never raises: ``(delivered, reason)`` with every secret scrubbed from the reason."""
    password = ""
    try:
        channel_problem(channel)
        if channel["kind"] == "mail":
            password = mail_password(channel)
            reason = send_mail(channel, message, timeout, password)
        else:
            reason = send_webhook(channel, message, timeout, data)
        return True, scrub(reason, channel, password)
    except OncallError as exc:
        return False, scrub(str(exc), channel, password)
    except (
        OSError,
        smtplib.SMTPException,
        urllib.error.URLError,
        UrlsConnectionError,
        RuntimeError,
        ValueError,
    ) as exc:
        return False, scrub(_reason(exc, timeout), channel, password)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deliver(
    people: list[dict[str, Any]],
    milestone: str,
    facts: dict[str, Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check_mode: bool = False,
    record_path: str | None = None,
    sender: Callable[[dict[str, Any], dict[str, str], float, Any], tuple[bool, str]] = send,
) -> list[dict[str, Any]]:
    """Render ``milestone`` per person (in the person's language) and send it over each of their channels.

    Returns one record per (person, channel): ``time``, ``incident_id``, ``milestone``, ``person``, ``role``,
    ``language``, ``channel`` (kind), ``target`` (masked), ``title``, ``text_sha256`` (of the text sent), ``status``
    (``ok``, ``failed`` or ``would_send`` in check mode), ``reason``; in check mode also ``text``. Each record is
    appended to ``record_path`` (hash-chained) when given and not in check mode.
    """
    records = []
    for person in people:
        lang = str(person.get("language") or "zh-CN")
        message = render(milestone, lang, dict(facts, check_mode=check_mode))
        for channel in person.get("channels") or []:
            kind = channel.get("kind") if isinstance(channel, dict) else None
            record: dict[str, Any] = {
                "time": _now(),
                "incident_id": facts.get("incident_id"),
                "milestone": milestone,
                "person": person.get("name"),
                "role": person.get("role") or "oncall",
                "language": lang,
                "channel": kind,
                "target": target_of(channel) if isinstance(channel, dict) else "(not a channel)",
                "title": message["title"],
                "text_sha256": text_sha256(message["text"]),
            }
            if check_mode:
                record.update(status="would_send", reason="check mode: not sent", text=message["text"])
            else:
                data = {"incident_id": facts.get("incident_id"), "milestone": milestone}
                ok, reason = sender(channel if isinstance(channel, dict) else {}, message, timeout, data)
                record.update(status="ok" if ok else "failed", reason=reason)
                if record_path:
                    try:
                        append(record_path, record)
                    except OSError as exc:  # the message went out; its record failing must not stop the incident
                        record["record_error"] = f"not recorded in {record_path}: {exc.strerror or exc}"
            records.append(record)
    return records
