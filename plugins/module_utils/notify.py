# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Webhook payloads for chat bots (DingTalk, WeCom, Feishu/Lark, Slack, generic JSON) and their signing.

Pure functions: they build the URL and JSON body for one message, and judge a bot's answer. Sending is done by
``ansible.builtin.uri`` in the role's ``notify`` entry point, so proxies, TLS and timeouts follow Ansible's usual rules.

Formats (bot APIs as documented by each vendor):
- DingTalk custom robot: ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; optional "加签" signing adds
  ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")) to the URL query.
  Success: HTTP 200 and ``errcode == 0``.
- WeCom (企业微信) group robot: ``{"msgtype": "markdown", "markdown": {"content"}}`` (content at most 4096 bytes).
  Success: ``errcode == 0``.
- Feishu / Lark custom bot: an interactive card with a markdown element; optional signing puts ``timestamp`` (s)
  and ``sign`` = base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg="")) into the body. Success: ``code == 0``
  (older bots answer ``StatusCode == 0``).
- Slack incoming webhook: ``{"text", "blocks": [header, section(mrkdwn)]}``. Success: HTTP 200 (body ``ok``).
- generic: ``{"title", "status", "text", "data"}``, any 2xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

KINDS = ("dingtalk", "wecom", "feishu", "slack", "generic")
STATUS_ICON = {"OK": "✅", "WARN": "⚠️", "FAIL": "❌"}
# Bots cut or refuse long messages; stay below each limit (bytes for WeCom, characters elsewhere).
_LIMITS = {"dingtalk": 18000, "wecom": 4000, "feishu": 25000, "slack": 2900, "generic": 100000}


class NotifyError(ValueError):
    """A webhook definition cannot be used."""


def truncate_text(text: str, limit: int, by_bytes: bool = False) -> str:
    """Cut ``text`` to ``limit`` characters (or UTF-8 bytes), marking the cut; never splits a character."""
    suffix = "\n…(truncated)"
    if by_bytes:
        raw = text.encode("utf-8")
        if len(raw) <= limit:
            return text
        keep = raw[: limit - len(suffix.encode("utf-8"))]
        return keep.decode("utf-8", errors="ignore") + suffix
    if len(text) <= limit:
        return text
    return text[: limit - len(suffix)] + suffix


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signature (URL-encoded), for ``&timestamp=<ms>&sign=<this>``."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark bot signature for the body's ``sign`` field."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def webhook_request(
    kind: str,
    url: str,
    title: str,
    text: str,
    status: str = "WARN",
    secret: str | None = None,
    data: Any = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Build ``{url, body}`` for one message. ``text`` is Markdown; ``data`` is attached only to ``generic``."""
    if kind not in KINDS:
        raise NotifyError(f"webhook kind '{kind}' is not supported: use one of {', '.join(KINDS)}")
    if not url or not str(url).startswith(("http://", "https://")):
        raise NotifyError(f"webhook url '{url}' must start with http:// or https://")
    now = time.time() if now is None else now
    icon = STATUS_ICON.get(status, "")
    heading = f"{icon} [{status}] {title}".strip()
    limit = _LIMITS[kind]
    if kind == "dingtalk":
        body: dict[str, Any] = {
            "msgtype": "markdown",
            "markdown": {"title": f"[{status}] {title}", "text": truncate_text(f"### {heading}\n\n{text}", limit)},
        }
        if secret:
            ts = int(now * 1000)
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(secret, ts)}"
    elif kind == "wecom":
        body = {"msgtype": "markdown", "markdown": {"content": truncate_text(f"### {heading}\n{text}", limit, True)}}
    elif kind == "feishu":
        template = {"OK": "green", "WARN": "orange", "FAIL": "red"}.get(status, "blue")
        body = {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {"template": template, "title": {"tag": "plain_text", "content": heading}},
                "elements": [{"tag": "markdown", "content": truncate_text(text, limit)}],
            },
        }
        if secret:
            ts = int(now)
            body = {"timestamp": str(ts), "sign": feishu_sign(secret, ts), **body}
    elif kind == "slack":
        body = {
            "text": f"[{status}] {title}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": truncate_text(heading, 150)}},
                {"type": "section", "text": {"type": "mrkdwn", "text": truncate_text(to_slack_mrkdwn(text), limit)}},
            ],
        }
    else:
        body = {"title": title, "status": status, "text": truncate_text(text, limit), "data": data}
    return {"url": url, "body": body}


def to_slack_mrkdwn(text: str) -> str:
    """Slack's mrkdwn has no headings and uses *bold*: convert the few Markdown forms our summaries use."""
    out = []
    for line in text.splitlines():
        stripped = line.lstrip("#").strip() if line.startswith("#") else None
        if stripped is not None:
            out.append(f"*{stripped}*")
        else:
            out.append(line.replace("**", "*"))
    return "\n".join(out)


def response_ok(kind: str, status: int, body: Any) -> tuple[bool, str]:
    """Judge a bot's answer. Returns ``(delivered, reason)``; bots answer HTTP 200 with an error code in the body."""
    if not 200 <= int(status or 0) < 300:
        return False, f"HTTP {status}"
    if kind in ("dingtalk", "wecom"):
        if isinstance(body, dict) and body.get("errcode", 0) == 0:
            return True, "errcode 0"
        msg = body.get("errmsg") if isinstance(body, dict) else body
        return False, f"errcode {body.get('errcode') if isinstance(body, dict) else '?'}: {msg}"
    if kind == "feishu":
        if isinstance(body, dict):
            code = body.get("code", body.get("StatusCode", 0))
            if code == 0:
                return True, "code 0"
            return False, f"code {code}: {body.get('msg') or body.get('StatusMessage')}"
        return False, f"unexpected answer: {body!r}"
    return True, f"HTTP {status}"
