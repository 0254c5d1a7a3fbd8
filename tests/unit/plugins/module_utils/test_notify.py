"""Webhook payload formats and signatures for DingTalk, WeCom, Feishu, Slack and generic receivers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils import notify as n

NOW = 1_700_000_000.5


def test_dingtalk_markdown_and_signature():
    req = n.webhook_request(
        "dingtalk", "https://oapi.example/robot/send?access_token=T", "备份检查", "- 失败", "FAIL", "SEC", now=NOW
    )
    assert req["body"] == {
        "msgtype": "markdown",
        "markdown": {"title": "[FAIL] 备份检查", "text": "### ❌ [FAIL] 备份检查\n\n- 失败"},
    }
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(req["url"]).query)
    assert query["access_token"] == ["T"]
    assert query["timestamp"] == ["1700000000500"]
    expected = base64.b64encode(hmac.new(b"SEC", b"1700000000500\nSEC", hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]


def test_wecom_markdown_is_cut_to_4096_bytes():
    req = n.webhook_request("wecom", "https://qyapi.example/send?key=K", "t", "账" * 3000, "WARN")
    content = req["body"]["markdown"]["content"]
    assert req["body"]["msgtype"] == "markdown"
    assert len(content.encode("utf-8")) <= 4096
    assert content.endswith("…(truncated)")


def test_feishu_card_and_signature():
    req = n.webhook_request("feishu", "https://open.feishu.example/hook/x", "t", "**x**", "WARN", "S", now=NOW)
    body = req["body"]
    assert body["msg_type"] == "interactive"
    assert body["card"]["header"]["template"] == "orange"
    assert body["card"]["elements"] == [{"tag": "markdown", "content": "**x**"}]
    assert body["timestamp"] == "1700000000"
    key = b"1700000000\nS"
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def test_slack_blocks_use_mrkdwn():
    req = n.webhook_request("slack", "https://hooks.slack.example/services/x", "t", "## Head\n**bold**", "OK")
    assert req["body"]["text"] == "[OK] t"
    assert req["body"]["blocks"][1]["text"] == {"type": "mrkdwn", "text": "*Head*\n*bold*"}


def test_generic_carries_data():
    req = n.webhook_request("generic", "http://127.0.0.1:1/x", "t", "x", "FAIL", data={"a": 1})
    assert req["body"] == {"title": "t", "status": "FAIL", "text": "x", "data": {"a": 1}}


@pytest.mark.parametrize(
    "kind,url,msg",
    [("teams", "https://x", "kind 'teams' is not supported"), ("slack", "ftp://x", "must start with http")],
)
def test_bad_webhooks(kind, url, msg):
    with pytest.raises(n.NotifyError, match=msg):
        n.webhook_request(kind, url, "t", "x")


@pytest.mark.parametrize(
    "kind,status,body,ok",
    [
        ("dingtalk", 200, {"errcode": 0, "errmsg": "ok"}, True),
        ("dingtalk", 200, {"errcode": 310000, "errmsg": "sign not match"}, False),
        ("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, False),
        ("feishu", 200, {"code": 19021, "msg": "sign match fail"}, False),
        ("feishu", 200, {"StatusCode": 0}, True),
        ("slack", 200, "ok", True),
        ("slack", 404, "no_service", False),
    ],
)
def test_response_ok(kind, status, body, ok):
    assert n.response_ok(kind, status, body)[0] is ok
