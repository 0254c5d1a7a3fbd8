"""Signed evidence packs: sign, verify, and every kind of tampering named (real ed25519, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.ledgerguard.recovery.plugins.module_utils import timeline

from ledgerguard import evidence

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key(tmp_path):
    out = evidence.keygen(tmp_path / "keys" / "firm.key")
    return Path(out["key"])


@pytest.fixture
def pack(tmp_path):
    """An evidence folder like the incident path writes: timeline, reports, a host bundle, a Chinese notice."""
    folder = tmp_path / "evidence" / "INC-20261126-001"
    (folder / "hosts" / "web1").mkdir(parents=True)
    (folder / "notices").mkdir()
    for i in range(5):
        timeline.append(
            str(folder / "timeline.jsonl"),
            {"time": f"2026-11-26T15:3{i}:00Z", "host": "web1", "task": f"step {i}", "status": "ok"},
        )
    (folder / "report.json").write_text(json.dumps({"incident": "INC-20261126-001", "restored": 42}))
    (folder / "report.html").write_text("<html><body>报告</body></html>", encoding="utf-8")
    (folder / "hosts" / "web1" / "mounts.txt").write_text("/dev/sda1 / ext4 rw 0 0\n")
    (folder / "notices" / "C001.zh-CN.md").write_text("尊敬的客户:张三会计师事务所\n", encoding="utf-8")
    return folder


def _kinds(report):
    return [(p.kind, p.path) for p in report.problems]


def test_keygen_writes_private_0600_and_public(tmp_path):
    out = evidence.keygen(tmp_path / "k" / "firm.key")
    priv, pub = Path(out["key"]), Path(out["public_key"])
    assert priv.stat().st_mode & 0o777 == 0o600
    assert priv.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert out["key_id"] == evidence.key_id(evidence.load_public_key(pub))
    assert len(out["key_id"]) == 16


def test_keygen_refuses_to_overwrite(tmp_path, key):
    with pytest.raises(evidence.EvidenceKeyError, match="already exists; refusing to overwrite"):
        evidence.keygen(key)


def test_signed_pack_verifies(pack, key):
    out = evidence.sign(pack, key, signer="auditor")
    assert out["files"] == 5 and out["timelines"] == 1
    manifest = json.loads((pack / evidence.MANIFEST_NAME).read_text())
    assert [f["path"] for f in manifest["files"]] == [
        "hosts/web1/mounts.txt",
        "notices/C001.zh-CN.md",
        "report.html",
        "report.json",
        "timeline.jsonl",
    ]
    import hashlib

    assert manifest["files"][2]["sha256"] == hashlib.sha256((pack / "report.html").read_bytes()).hexdigest()
    assert manifest["timelines"] == [
        {"path": "timeline.jsonl", "lines": 5, "last_sha256": timeline.last_line_hash(str(pack / "timeline.jsonl"))[0]}
    ]
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert report.ok, report.problems
    assert report.files_checked == 5 and report.timelines_checked == 1
    assert report.signer == "auditor"


@pytest.mark.parametrize(
    "rel", ["report.json", "report.html", "hosts/web1/mounts.txt", "notices/C001.zh-CN.md", "timeline.jsonl"]
)
def test_one_changed_byte_in_any_file_is_named(pack, key, rel):
    evidence.sign(pack, key)
    path = pack / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert not report.ok
    assert ("file-changed", rel) in _kinds(report)
    changed = [p for p in report.problems if p.kind == "file-changed"]
    assert len(changed) == 1 and changed[0].path == rel


def test_one_timeline_line_edited_is_named_by_line(pack, key):
    evidence.sign(pack, key)
    path = pack / "timeline.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["status"] = "skipped"  # an edit that stays valid JSON, without recomputing the hash
    lines[2] = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert ("file-changed", "timeline.jsonl") in _kinds(report)
    broken = [p for p in report.problems if p.kind == "timeline-broken"]
    assert len(broken) == 1
    assert broken[0].path == "timeline.jsonl"
    assert broken[0].detail.startswith("line 3: ")


def test_timeline_line_rewritten_with_recomputed_hash_is_still_named(pack, key):
    evidence.sign(pack, key)
    path = pack / "timeline.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["task"] = "harmless"
    lines[1] = timeline.seal(rec, rec["prev_sha256"])
    path.write_text("\n".join(lines) + "\n")
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    broken = [p for p in report.problems if p.kind == "timeline-broken"]
    assert broken and broken[0].detail.startswith("line 2: ")


def test_truncated_timeline_is_caught_by_the_signed_anchor(pack, key):
    evidence.sign(pack, key)
    path = pack / "timeline.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")  # the chain of the first 4 lines is still intact
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    broken = [p for p in report.problems if p.kind == "timeline-broken"]
    assert broken and "differs from the anchor" in broken[0].detail


def test_missing_and_added_files_are_named(pack, key):
    evidence.sign(pack, key)
    (pack / "hosts" / "web1" / "mounts.txt").unlink()
    (pack / "extra.txt").write_text("planted")
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert sorted(_kinds(report)) == [("file-added", "extra.txt"), ("file-missing", "hosts/web1/mounts.txt")]


def test_manifest_edit_breaks_the_signature(pack, key):
    evidence.sign(pack, key)
    # Forge: change a file and patch its hash in the manifest; only the signature can catch this.
    (pack / "report.json").write_text('{"incident": "INC-20261126-001", "restored": 43}')
    manifest = json.loads((pack / evidence.MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        if entry["path"] == "report.json":
            entry["sha256"], entry["size"] = evidence.sha256_file(pack / "report.json")
    (pack / evidence.MANIFEST_NAME).write_bytes(evidence.canonical_bytes(manifest))
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert _kinds(report) == [("signature-invalid", evidence.MANIFEST_NAME)]
    assert "does not match the manifest" in report.problems[0].detail


def test_pack_resigned_with_another_key_is_refused(pack, key, tmp_path):
    other = evidence.keygen(tmp_path / "other.key")
    evidence.sign(pack, other["key"])
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert [p.kind for p in report.problems] == ["signature-invalid"]
    assert f"signed with key {other['key_id']}" in report.problems[0].detail


def test_missing_signature_file(pack, key):
    evidence.sign(pack, key)
    (pack / evidence.SIGNATURE_NAME).unlink()
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert _kinds(report) == [("signature-missing", evidence.SIGNATURE_NAME)]


def test_missing_signing_key_gives_a_clear_error(pack, tmp_path):
    missing = tmp_path / "nowhere" / "firm.key"
    with pytest.raises(evidence.EvidenceKeyError) as err:
        evidence.sign(pack, missing)
    assert str(err.value) == (
        f"signing key {missing} does not exist: create one with `ledgerguard evidence keygen --key {missing}` "
        f"(it also writes {missing}.pub)"
    )
    assert not (pack / evidence.MANIFEST_NAME).exists()


def test_loose_key_permissions_are_refused(pack, key):
    os.chmod(key, 0o644)
    with pytest.raises(evidence.EvidenceKeyError, match=r"accessible by group or others \(mode 0644\); run `chmod 600"):
        evidence.sign(pack, key)


def test_garbage_key_is_refused(pack, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    with pytest.raises(evidence.EvidenceKeyError, match="is not an unencrypted PEM private key"):
        evidence.sign(pack, bad)


def test_tampered_timeline_is_refused_at_signing(pack, key):
    path = pack / "timeline.jsonl"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("step 0", "step X")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(evidence.EvidenceError, match="timeline hash chain is broken at line 1"):
        evidence.sign(pack, key)


def test_symlink_in_pack_is_refused(pack, key, tmp_path):
    (tmp_path / "outside").write_text("x")
    (pack / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(evidence.EvidenceError, match="symlinks or special files.*: link;"):
        evidence.sign(pack, key)


def _cli(*args, env=None):
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO_ROOT / "src")
    return subprocess.run(
        [sys.executable, "-m", "ledgerguard.evidence", *args], capture_output=True, text=True, env=full_env, check=False
    )


def test_cli_keygen_sign_verify_and_exit_codes(pack, tmp_path):
    key = tmp_path / "cli" / "firm.key"
    res = _cli("evidence", "keygen", "--key", str(key))
    assert res.returncode == 0, res.stderr
    assert "key id:" in res.stdout
    res = _cli("evidence", "sign", str(pack), "--key", str(key), "--signer", "张会计")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"signed {pack}: 5 files, 1 timeline(s)")
    res = _cli("evidence", "verify", str(pack), "--key", str(key))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith(f"OK {pack}: signature valid")
    (pack / "report.json").write_text("{}")
    res = _cli("evidence", "verify", str(pack), "--public-key", f"{key}.pub")
    assert res.returncode == 1
    assert f"FAILED {pack}: 1 problem(s)" in res.stdout
    assert "file-changed: report.json: sha256 " in res.stdout
    res = _cli("evidence", "verify", str(pack), "--public-key", f"{key}.pub", "--json")
    out = json.loads(res.stdout)
    assert out[0]["ok"] is False
    assert out[0]["problems"][0].startswith("file-changed: report.json: sha256 ")


def test_cli_missing_key_exit_2_without_traceback(pack, tmp_path):
    res = _cli("evidence", "sign", str(pack), env={evidence.KEY_ENV: str(tmp_path / "absent.key")})
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"ledgerguard evidence: signing key {tmp_path / 'absent.key'} does not exist: create one with "
        f"`ledgerguard evidence keygen --key {tmp_path / 'absent.key'}` (it also writes {tmp_path / 'absent.key'}.pub)"
    )
    assert "Traceback" not in res.stderr


def _plant_beyond_path_max(folder):
    """A folder whose path is longer than PATH_MAX (made with directory fds): listing it fails even for root
    (ENAMETOOLONG), which is what a chmod 000 folder does for other users."""
    name = "d" * 250
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _level in range(18):
            os.mkdir(name, 0o700, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        planted = os.open("planted.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
        os.write(planted, b"added after signing")
        os.close(planted)
    finally:
        os.close(fd)


def test_unreadable_folder_fails_verify_and_sign_naming_it(pack, key):
    evidence.sign(pack, key)
    _plant_beyond_path_max(pack / "hosts")
    report = evidence.verify(pack, evidence.public_key_path_for(key))
    assert not report.ok
    unreadable = [p for p in report.problems if p.kind == "folder-unreadable"]
    assert unreadable and unreadable[0].path.startswith("hosts/ddd")
    assert "cannot be listed" in str(unreadable[0])
    with pytest.raises(evidence.EvidenceError, match=r"cannot be read completely: hosts/ddd"):
        evidence.sign(pack, key)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder")
def test_chmod_000_folder_fails_verify(pack, key):
    evidence.sign(pack, key)
    locked = pack / "hosts" / "locked"
    locked.mkdir()
    (locked / "planted.txt").write_text("x")
    locked.chmod(0)
    try:
        report = evidence.verify(pack, evidence.public_key_path_for(key))
    finally:
        locked.chmod(0o700)
    assert ("folder-unreadable", "hosts/locked") in _kinds(report)
