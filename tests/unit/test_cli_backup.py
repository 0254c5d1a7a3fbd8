"""``ledgerguard backup``: its options become the backup role's variables, and the job artifact becomes one line per
client (the integration test runs it for real: tests/integration/test_backup_ops.py)."""

from __future__ import annotations

import pytest

from ledgerguard import backup, cli


def parse(*argv: str):
    return cli.build_parser().parse_args(["backup", *argv])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {}),
        (["--clients", "c001, 客户乙"], {"backup_client_ids": ["c001", "客户乙"]}),
        (["--prune"], {"backup_entry": "prune", "backup_prune_mode": "apply"}),
        (
            ["--forget", "--metrics-dir", "/var/lib/tf"],
            {"backup_forget_mode": "apply", "backup_metrics_dir": "/var/lib/tf"},
        ),
    ],
)
def test_options_become_role_variables(argv, expected):
    assert backup.backup_vars(parse(*argv)) == expected


def test_prune_and_forget_exclude_each_other(capsys):
    assert cli.main(["backup", "--prune", "--forget"]) == 2
    assert "argument --forget: not allowed with argument --prune" in capsys.readouterr().err


OUTCOME = {
    "hosts": {
        "books-a": {
            "failed": False,
            "results": [
                {
                    "client": "c001",
                    "name": "杭州示例贸易有限公司",
                    "files_new": "12",
                    "files_changed": "1",
                    "bytes_added": "90521",
                    "seconds": "0.62",
                    "snapshot_id": "4f2a91c0aa",
                    "manifest_snapshot_id": "9b2f5c1abb",
                    "ledgers": [{"path": "/srv/books/c001/账簿/ledger.sqlite"}],
                },
                {
                    "client": "c001",
                    "database": "postgresql/ledger",
                    "bytes_added": 1024,
                    "seconds": 2,
                    "snapshot_id": "77aa00bb11",
                },
            ],
            "retention": {
                "preview": [
                    {
                        "client": "c001",
                        "keep": [
                            {"short_id": "4f2a91c0", "time": "2026-12-05T01:00:00Z", "reasons": ["daily snapshot"]},
                            {"id": "77aa00bb11", "time": "2025-12-31T15:00:00Z", "reasons": ["has tags [permanent]"]},
                        ],
                        "remove": [{"short_id": "0badcafe", "time": "2025-01-02T03:04:05Z"}],
                    }
                ],
                "forgotten": [],
            },
            "copy": [{"client": "c001", "newest": "4f2a91c0aa", "in_copy": True}],
            "copy_retention": {
                "preview": [{"client": "c001", "keep": [{"short_id": "9e9e9e9e", "time": "2026-12-05T01:00:00Z"}]}],
                "forgotten": [],
            },
            "status": [{"client": "c001", "late": False, "failed": False}],
        },
        "books-b": {
            "failed": True,
            "error": "Incident INC-20261205-001 holds this host",
            "results": [],
            "status": [
                {"client": "c002", "late": True, "failed": True, "last_success_utc": ""},
                {"client": "c003", "late": True, "failed": False, "last_success_utc": "2026-12-01T15:30:00+00:00"},
            ],
        },
    }
}


def test_one_line_per_client_then_retention_per_repository_copy_and_late_clients():
    assert backup.render(OUTCOME, check=False, prune=False) == [
        "books-a c001 (杭州示例贸易有限公司): 12 new, 1 changed, 88.4 KiB added, 0.62 s, snapshot 4f2a91c0, manifest "
        "9b2f5c1a, 1 SQLite ledger(s) consistent",
        "books-a postgresql/ledger (client c001): dump streamed, 1.0 KiB added, 2.00 s, snapshot 77aa00bb",
        "books-a c001: retention in the repository keeps 2, would forget 1",
        "  keep   4f2a91c0 2026-12-05T01:00:00Z (daily snapshot)",
        "  keep   77aa00bb 2025-12-31T15:00:00Z (has tags [permanent])",
        "  forget 0badcafe 2025-01-02T03:04:05Z (no rule of the policy keeps it)",
        "books-a c001: newest snapshot 4f2a91c0 in the copy",
        "books-a c001: retention in the off-site copy keeps 1, would forget 0",
        "books-b: FAILED: Incident INC-20261205-001 holds this host",
        "books-b c003: LATE: newest successful backup 2026-12-01T15:30:00+00:00",
    ]


def test_check_mode_and_prune_lines():
    planned = {"hosts": {"h": {"results": [{"client": "c1", "files_new": 3, "bytes_added": 0, "seconds": 0.1}]}}}
    assert backup.render(planned, check=True, prune=False) == [
        "h c1: 3 new, 0 changed, 0 B added, 0.10 s, snapshot (check mode), manifest none"
    ]
    forgot = {"hosts": {"h": {"retention": {"preview": [{"client": "c1", "keep": [], "remove": [{"id": "abcdef0123"}]}],
                                            "forgotten": [{"client": "c1", "removed": True}]}}}}  # fmt: skip
    assert backup.render(forgot, check=False, prune=False) == [
        "h c1: retention in the repository keeps 0, forgot 1",
        "  forget abcdef01  (no rule of the policy keeps it)",
    ]
    # the --check preview lists every snapshot, also for a client with nothing to forget (one line otherwise)
    snap = {"short_id": "0a0b0c0d", "time": "2026-11-30T10:00:00Z", "reasons": ["daily snapshot", "monthly snapshot"]}
    kept = {"hosts": {"h": {"copy_retention": {"preview": [{"client": "c1", "keep": [snap]}]}}}}
    assert backup.render(kept, check=False, prune=False) == [
        "h c1: retention in the off-site copy keeps 1, would forget 0"
    ]
    assert backup.render(kept, check=True, prune=False) == [
        "h c1: retention in the off-site copy keeps 1, would forget 0",
        "  keep   0a0b0c0d 2026-11-30T10:00:00Z (daily snapshot, monthly snapshot)",
    ]
    pruned = {
        "hosts": {"h": {"prune": "to delete: 3 blobs / 1.2 KiB\n\ndone", "copy_prune": "to delete: 1 blobs\ndone"}}
    }
    assert backup.render(pruned, check=False, prune=True) == [
        "h: prune of the repository (restic's last lines):",
        "  to delete: 3 blobs / 1.2 KiB",
        "  done",
        "h: prune of the off-site copy (restic's last lines):",
        "  to delete: 1 blobs",
        "  done",
    ]
    # no off-site copy: only the repository's lines; a refused prune: the error, no prune lines
    only = {"hosts": {"h": {"prune": "done", "copy_prune": ""}}}
    assert backup.render(only, check=False, prune=True) == [
        "h: prune of the repository (restic's last lines):",
        "  done",
    ]
    refused = {
        "hosts": {"h": {"failed": True, "error": "Incident INC-1 holds this host", "prune": "", "copy_prune": ""}}
    }
    assert backup.render(refused, check=False, prune=True) == ["h: FAILED: Incident INC-1 holds this host"]


@pytest.mark.parametrize(("value", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB")])
def test_human_bytes(value, text):
    assert backup.human_bytes(value) == text
