"""The error classifier as a table (module_utils/restic/errors.py ERROR_RULES): every rule is exercised by restic's
or ssh's real output (captured from restic 0.14 / 0.18 and OpenSSH, fixtures/restic/), the first rule that applies
wins, and message + hint compose the text operators read."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (
    ERROR_RULES,
    SSH_RULES,
    classify_error,
    classify_ssh,
    clue_of,
    first_rule,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import ResticFeatures, ResticResult

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "restic"
REPO = "/WORK/repo"
SFTP = "sftp://root@127.0.0.1:2299//srv/备份"
V014 = ResticFeatures((0, 14, 0))
V018 = ResticFeatures((0, 18, 0))


def captured(name: str) -> ResticResult:
    return ResticResult(
        ["restic"],
        int((FIX / f"{name}.rc").read_text()),
        (FIX / f"{name}.stdout").read_text(),
        (FIX / f"{name}.stderr").read_text(),
    )


def text(stderr: str, rc: int = 1) -> ResticResult:
    return ResticResult(["restic"], rc, "", stderr)


# restic 0.18.0 (captured: a backup --stdin held the lock while prune ran, TZ=Asia/Shanghai)
LOCKED_018 = (
    "repo already locked, waiting up to 0s for the lock\n"
    "unable to create lock in backend: repository is already locked by PID 26178 on vm by root (UID 0, GID 0)\n"
    "lock was created at 2026-12-05 05:39:38 (3.095642683s ago)\nstorage ID ae51c4ae\n"
    "the `unlock` command can be used to remove stale locks\n"
)
# OpenSSH 9 (captured: ssh-keygen -y on a 0644 key prints what ssh prints before it gives up on the key)
KEY_0644 = (
    "subprocess ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "subprocess ssh: @         WARNING: UNPROTECTED PRIVATE KEY FILE!          @\n"
    "subprocess ssh: Permissions 0644 for '/root/.ssh/nas_key' are too open.\n"
    'subprocess ssh: Load key "/root/.ssh/nas_key": bad permissions\n'
    "subprocess ssh: root@127.0.0.1: Permission denied (publickey).\n"
    "Fatal: unable to open repository at sftp://root@127.0.0.1:2299//srv/备份: unable to start the sftp session, "
    "error: EOF\n"
)
HOSTKEY_CHANGED = (
    "subprocess ssh: @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
    "subprocess ssh: IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
    "subprocess ssh: Host key for [127.0.0.1]:2299 has changed and you have requested strict checking.\n"
    "subprocess ssh: Host key verification failed.\nFatal: unable to open repository at ...: error: EOF\n"
)
HOSTKEY_UNKNOWN = (
    "subprocess ssh: No ED25519 host key is known for [127.0.0.1]:2299 and you have requested strict checking.\n"
    "subprocess ssh: Host key verification failed.\nFatal: unable to open repository at ...: error: EOF\n"
)

# (case, result, repository, features, classify_error keywords, index of the rule expected to apply, its kind)
CASES = [
    ("timeout", ResticResult(["restic"], -15, "", "", 30.2, True), REPO, V014, {}, "timeout"),
    ("wrong password 0.14", captured("err_wrong_password"), REPO, V014, {}, "wrong_password"),
    ("exit 12 of 0.18", text("Fatal: something\n", 12), REPO, V018, {}, "wrong_password"),
    ("key file 0644", text(KEY_0644), SFTP, V014, {}, "sftp_key_file"),
    ("host key changed", text(HOSTKEY_CHANGED), SFTP, V014, {}, "sftp_host_key"),
    ("host key unknown", text(HOSTKEY_UNKNOWN), SFTP, V014, {}, "sftp_host_key"),
    (
        "login refused",
        text("subprocess ssh: root@127.0.0.1: Permission denied (publickey).\n"),
        SFTP,
        V014,
        {},
        "sftp_auth_failed",
    ),  # fmt: skip
    (
        "ssh refused",
        text("subprocess ssh: ssh: connect to host 127.0.0.1 port 2399: Connection refused\n"),
        SFTP,
        V014,
        {},
        "unreachable",
    ),  # fmt: skip
    (
        "ssh lookup",
        text("ssh: Could not resolve hostname nas.invalid: Name or service not known\n"),
        "sftp:root@nas.invalid:/srv/备份",
        V014,
        {},
        "unreachable",
    ),  # fmt: skip
    ("locked 0.14", captured("err_locked"), REPO, V014, {}, "locked"),
    ("locked 0.18", text(LOCKED_018, 11), REPO, V018, {}, "locked"),
    ("s3 unreachable", captured("err_s3_unreachable"), "s3:http://127.0.0.1:9/b", V014, {}, "unreachable"),
    ("repo missing", captured("err_repo_missing"), "/WORK/nope", V014, {}, "repo_missing"),
    ("snapshot missing", captured("err_snapshot_missing"), REPO, V014, {}, "snapshot_not_found"),
    ("no space", captured("err_no_space"), REPO, V014, {"target": "/WORK/small", "action": "restore"}, "no_space"),
    (
        "restore, data pack lost",
        captured("restore_lost_data_pack"),
        REPO,
        V014,
        {"target": "/WORK/out", "snapshot": "ad807ca474f6", "action": "restore"},
        "repository_damaged",
    ),  # fmt: skip
    (
        # restic 0.14 stopped at its first retry of the gone pack (run.watched_run adds the notice without its retry)
        "restore stopped on a gone pack",
        text(
            "restoring <Snapshot ad807ca4 of [/srv/books] at 2026-11-26 by root@books01> to /WORK/out\n"
            "Load(<data/16455c0e52>, 3000201, 0) returned error, retrying after 552.330144ms: open /WORK/repo/data/16/"
            + "16455c0e52"
            + "0" * 54
            + ": no such file or directory\n"
            "Load(<data/16455c0e52>, 3000201, 0) returned error: open /WORK/repo/data/16/"
            + "16455c0e52"
            + "0" * 54
            + ": no such file or directory\n",
            -15,
        ),
        REPO,
        V014,
        {"target": "/WORK/out", "snapshot": "ad807ca474f6", "action": "restore"},
        "repository_damaged",
    ),  # fmt: skip
    (
        "ls, tree pack lost",
        captured("ls_lost_tree_pack"),
        REPO,
        V014,
        {"snapshot": "ad807ca474f6", "action": "list the snapshot's files"},
        "repository_damaged",
    ),  # fmt: skip
    (
        "denied on target",
        captured("err_permission_denied"),
        REPO,
        V014,
        {"target": "/WORK/immutable/t", "action": "restore"},
        "permission_denied",
    ),  # fmt: skip
    (
        "denied elsewhere",
        text("Fatal: open /srv/repo/keys: permission denied\n"),
        REPO,
        V014,
        {"target": "/restore/客户", "action": "restore"},
        "permission_denied",
    ),  # fmt: skip
    ("unclassified", text("Fatal: invalid pattern\n"), REPO, V014, {}, "failed"),
]


def rule_for(result, repository, features, kwargs):
    rule, _fields = first_rule(ERROR_RULES, clue_of(result, repository, features, **kwargs))
    return rule


@pytest.mark.parametrize(("result", "repository", "features", "kwargs", "kind"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_case_is_classified_by_a_rule_of_its_kind(result, repository, features, kwargs, kind):
    err = classify_error(result, repository, features, **kwargs)
    assert err.kind == kind == rule_for(result, repository, features, kwargs).kind, err.message
    assert err.result is result
    assert err.message.endswith(err.hint) and err.message != err.hint if err.hint else kind == "failed"


def test_every_rule_of_the_table_has_a_case():
    """A rule added to ERROR_RULES without real output that reaches it fails here."""
    used = {id(rule_for(*c[1:5])) for c in CASES}
    assert [r.kind for r in ERROR_RULES if id(r) not in used] == []


def test_first_rule_wins_in_table_order():
    # the key file line comes with "Permission denied (publickey)": the key is the cause, not the login
    assert classify_error(text(KEY_0644), SFTP, V014).kind == "sftp_key_file"
    # "permission denied" of ssh is a login refusal on an sftp repository, never a file permission problem
    assert classify_error(text("subprocess ssh: u@h: Permission denied (publickey).\n"), SFTP).kind == (
        "sftp_auth_failed"
    )
    # ssh rules read ssh's words only for sftp repositories (or restic quoting ssh)
    assert classify_error(text("ssh: Could not resolve hostname nas: Name or service not known\n"), REPO).kind == (
        "failed"
    )
    # restic 0.14 exits 1 for everything: exit codes count from 0.17 on
    assert classify_error(text("Fatal: something\n", 11), REPO, V014).kind == "failed"
    assert classify_error(text("Fatal: something\n", 11), REPO, V018).kind == "locked"
    assert classify_error(text("Fatal: something\n", 10), REPO, V018).kind == "repo_missing"


def test_messages_are_message_then_hint_with_the_facts():
    err = classify_error(captured("err_wrong_password"), "s3:https://AKIA:topsecret@h/b", V014)
    assert err.hint == (
        "Check that ledgerguard_password_file (or password / password_file) holds this repository's password. "
        "Nothing was changed."
    )
    assert err.message == (
        "Wrong password for restic repository s3:https://***@h/b: no key in the repository opens with the password "
        "given. " + err.hint
    )
    assert err.details == {}
    locked = classify_error(text(LOCKED_018, 11), REPO, V018)
    assert locked.message.startswith(
        "Restic repository /WORK/repo is locked by restic PID 26178 on host vm (user root), lock created at "
        "2026-12-05 05:39:38 (3.095642683s ago), lock ID ae51c4ae. Wait for that process to finish;"
    )
    assert locked.details["lock"]["storage_id"] == "ae51c4ae" and locked.details["lock"]["pid"] == 26178
    bare = classify_error(text("Fatal: something\n", 11), REPO, V018)
    assert "locked by another restic process (restic did not say which)" in bare.message
    assert bare.details == {"lock": {}}
    elsewhere = classify_error(
        text("Fatal: open /srv/repo/keys: permission denied\n"), REPO, V014, target="/restore/客户"
    )
    assert elsewhere.details == {"path": "/srv/repo/keys"}
    assert elsewhere.message == (
        "Permission denied (/srv/repo/keys: permission denied) while trying to run restic with restic repository "
        "/WORK/repo. Check the file permissions of that path for the user running the task."
    )


def test_ssh_rules_read_ssh_output_directly():
    """probe_sftp gives classify_ssh what ssh printed (no 'subprocess ssh:' prefix)."""
    err = classify_ssh(KEY_0644.replace("subprocess ssh: ", ""), SFTP)
    assert err.kind == "sftp_key_file" and err.details == {"server": "127.0.0.1:2299"}
    assert err.message.startswith(
        "ssh cannot use the key file for restic repository sftp://root@127.0.0.1:2299//srv/备份 (Load key "
        '"/root/.ssh/nas_key": bad permissions). Give sftp_identity_file'
    )
    changed = classify_ssh(HOSTKEY_CHANGED.replace("subprocess ssh: ", ""), SFTP)
    assert changed.kind == "sftp_host_key" and changed.details == {"server": "127.0.0.1:2299", "changed": True}
    assert "has CHANGED since it was recorded" in changed.message and "attack or a reinstalled NAS" in changed.hint
    unknown = classify_ssh(HOSTKEY_UNKNOWN, SFTP)
    assert unknown.details == {"server": "127.0.0.1:2299", "changed": False}
    assert "is not in the known_hosts file given" in unknown.message
    lookup = classify_ssh(
        "ssh: Could not resolve hostname nas.invalid: Name or service not known", "sftp:nas.invalid:/r"
    )
    assert lookup.details == {"host": "nas.invalid", "port": "22", "reason": "Name or service not known"}
    assert classify_ssh("Fatal: wrong password or no key found\n", SFTP) is None
    assert all(rule.ssh for rule in SSH_RULES)
