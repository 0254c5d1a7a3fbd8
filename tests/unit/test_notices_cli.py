"""`ledgerguard notices` without a playbook: an evidence folder laid out as the report writes it, the refusals with
their exact messages, the SMTP settings' checks and the records an approval leaves (index, timeline, SHA256SUMS)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeline

from ledgerguard import cli
from ledgerguard import notices as lgn

TEXT = "# 关于贵司会计资料安全事件的告知\n\n致：温州三江五金制品厂（客户编号 c003）\n".encode()


@pytest.fixture
def folder(tmp_path):
    inc = tmp_path / "INC-20261126-007"
    (inc / "notices").mkdir(parents=True)
    (inc / "notices" / "c003.zh-CN.md").write_bytes(TEXT)
    entry = {
        "id": "c003.confirmed.zh-CN",
        "client": "c003",
        "client_name": "温州三江五金制品厂",
        "host": "books-b",
        "milestone": "confirmed",
        "language": "zh-CN",
        "recipients": [{"name": "陈会计", "role": "会计", "mail": "chen@example.cn", "phone": ""}],
        "path": "notices/c003.zh-CN.md",
        "sha256": hashlib.sha256(TEXT).hexdigest(),
        "status": "draft",
    }
    doc = {"version": 1, "incident_id": inc.name, "generated_at": "2026-11-26T08:00:00Z", "notices": [entry]}
    (inc / "notices" / "index.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    timeline.append(str(inc / "timeline.jsonl"), {"time": "2026-11-26T08:00:00Z", "event": "run_start"})
    sums = f"{'0' * 64}  notices/index.json\n{hashlib.sha256(TEXT).hexdigest()}  notices/c003.zh-CN.md\n"
    (inc / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return inc


def run(folder, capsys, *argv):
    code = cli.main(["notices", *argv, "--incident-id", folder.name, "--evidence-dir", str(folder.parent)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_incident_and_notice_are_named(folder, capsys):
    code, _out, err = (
        cli.main(["notices", "list", "--incident-id", "INC-0", "--evidence-dir", str(folder)]),
        *[capsys.readouterr().err] * 2,
    )
    assert code == 2 and err == (
        f"ledgerguard notices: no evidence folder {folder / 'INC-0'} for incident INC-0; give the incident id of an "
        "existing incident and, if its evidence is elsewhere, --evidence-dir\n"
    )
    assert cli.main(["notices", "list", "--incident-id", "../etc", "--evidence-dir", str(folder)]) == 2
    assert capsys.readouterr().err == (
        "ledgerguard notices: --incident-id '../etc' is not an incident id; give the evidence folder's name, "
        "e.g. INC-20261126-001 (letters, digits, '.', '_', '-')\n"
    )
    code, _out, err = run(folder, capsys, "show", "c003.final.zh-CN")
    assert code == 2 and err == (
        "ledgerguard notices: notice 'c003.final.zh-CN' is not in this incident's notices/index.json; its notices: "
        "c003.confirmed.zh-CN\n"
    )


def test_approve_records_index_timeline_and_sums(folder, capsys):
    code, out, _err = run(folder, capsys, "approve", "c003.confirmed.zh-CN", "--by", "李经理")
    assert code == 0 and out.startswith("approved c003.confirmed.zh-CN by 李经理 at ")
    entry = json.loads((folder / "notices" / "index.json").read_text(encoding="utf-8"))["notices"][0]
    assert entry["approved_sha256"] == hashlib.sha256(TEXT).hexdigest() and entry["status"] == "approved"
    assert timeline.verify_chain(str(folder / "timeline.jsonl"))["ok"]
    last = json.loads((folder / "timeline.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (last["event"], last["operator"], last["text_sha256"], last["approved_at"]) == (
        "notice_approved",
        "李经理",
        entry["approved_sha256"],
        entry["approved_at"],
    )
    index_sha = hashlib.sha256((folder / "notices" / "index.json").read_bytes()).hexdigest()
    assert last["index_sha256"] == index_sha
    assert (folder / "SHA256SUMS").read_text(encoding="utf-8") == (
        f"{index_sha}  notices/index.json\n{hashlib.sha256(TEXT).hexdigest()}  notices/c003.zh-CN.md\n"
    )
    # Approving the same text again records nothing.
    lines = (folder / "timeline.jsonl").read_text(encoding="utf-8")
    code, out, _err = run(folder, capsys, "approve", "c003.confirmed.zh-CN", "--by", "王总")
    assert code == 0 and out.endswith("(same text); nothing recorded\n")
    assert (folder / "timeline.jsonl").read_text(encoding="utf-8") == lines
    code, out, _err = run(folder, capsys, "list")
    assert "c003.confirmed.zh-CN         approved, approved by 李经理" in out and "to: chen@example.cn" in out
    # --all-approved leaves out (and names) an approved notice without a mail recipient; nothing else to send: exit 2.
    index = folder / "notices" / "index.json"
    doc = json.loads(index.read_text(encoding="utf-8"))
    doc["notices"][0]["recipients"] = [{"name": "陈会计", "phone": "13700000000", "mail": ""}]
    index.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code, out, err = run(folder, capsys, "send", "--all-approved")
    assert (code, out) == (2, "") and err.startswith(
        "ledgerguard notices: notice c003.confirmed.zh-CN has no mail recipient: add contacts with a mail address"
    )
    doc["notices"][0]["recipients"] = [{"name": "陈会计", "mail": "chen@example.cn"}]
    index.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    # The text a person edited and approved replaces the report's draft in SHA256SUMS (the approval records its hash).
    (folder / "notices" / "c003.zh-CN.md").write_bytes(TEXT + "另：请回复。\n".encode())
    code, out, _err = run(folder, capsys, "approve", "c003.confirmed.zh-CN", "--by", "李经理")
    edited = hashlib.sha256(TEXT + "另：请回复。\n".encode()).hexdigest()
    assert f"{edited}  notices/c003.zh-CN.md\n" in (folder / "SHA256SUMS").read_text(encoding="utf-8")
    (folder / "notices" / "c003.zh-CN.md").write_bytes(TEXT + b"\n")
    code, out, _err = run(folder, capsys, "show", "c003.confirmed.zh-CN")
    assert "(NOT the text shown: approve again)" in out and out.endswith(TEXT.decode() + "\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no SMTP settings; give --smtp-config FILE or set LEDGERGUARD_SMTP_CONFIG"),
        ("host: h\nfrom: a@b.cn\npassword: x\n", "holds a 'password': put it in a 0600 file named by password_file"),
        ("host: h\n", "needs 'host' (the SMTP server) and 'from' (the sender address)"),
        ("host: h\nfrom: a@b.cn\nsecurity: tls\n", "security 'tls' must be starttls, ssl or none"),
        ("host: h\nfrom: a@b.cn\nusername: u\n", "has a username but no password: set password_file"),
        ("host: h\nfrom: a@b.cn\nuser: u\n", "unknown keys user; allowed: host, port, security, from"),
    ],
)
def test_smtp_settings_are_checked(tmp_path, monkeypatch, content, message):
    monkeypatch.delenv(lgn.SMTP_CONFIG_ENV, raising=False)
    monkeypatch.delenv(lgn.SMTP_PASSWORD_ENV, raising=False)
    path = None
    if content is not None:
        path = tmp_path / "smtp.yml"
        path.write_text(content, encoding="utf-8")
    with pytest.raises(lgn.BadInput) as err:
        lgn.smtp_settings(str(path) if path else None)
    assert message in str(err.value)


def test_smtp_password_comes_from_a_0600_file(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    cfg = tmp_path / "smtp.yml"
    cfg.write_text(f"host: h\nfrom: a@b.cn\nusername: u\npassword_file: {secret}\nsecurity: ssl\n", encoding="utf-8")
    monkeypatch.setenv(lgn.SMTP_CONFIG_ENV, str(cfg))
    with pytest.raises(lgn.BadInput, match="has mode 0644: it holds a secret"):
        lgn.smtp_settings(None)
    os.chmod(secret, 0o600)
    settings = lgn.smtp_settings(None)
    assert (settings["password"], settings["port"], settings["security"]) == ("s3cret", 465, "ssl")
