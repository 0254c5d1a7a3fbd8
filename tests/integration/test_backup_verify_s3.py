"""backup_verify against restic repositories on a moto S3 server (127.0.0.1): restic check over S3, and the storage
audit of each bucket: no versioning, an expiring lifecycle rule, and a hardened bucket with Object Lock."""

from __future__ import annotations

import json
import secrets

from conftest import failed_messages, restic


def _repo(s3_server, pw, bucket: str, lock: bool = False) -> str:
    client = s3_server.client()
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=lock)
    repo = s3_server.restic_url(bucket, "restic")
    restic(repo, pw, "init", env=s3_server.env())
    return repo


def test_storage_audit_on_moto(
    tmp_path, s3_server, restic_password_file, s3_credentials_file, localhost_inventory, playbook
):
    pw = restic_password_file
    client = s3_server.client()
    suffix = secrets.token_hex(4)
    plain, expiring, hardened = f"plain-{suffix}", f"expiring-{suffix}", f"hardened-{suffix}"

    repos = {"plain": _repo(s3_server, pw, plain)}
    repos["expiring"] = _repo(s3_server, pw, expiring)
    client.put_bucket_versioning(Bucket=expiring, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_lifecycle_configuration(
        Bucket=expiring,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "tidy-after-90-days", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 90}}
            ]
        },
    )
    client.create_bucket(Bucket=hardened, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=hardened,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}},
        },
    )
    client.put_bucket_encryption(
        Bucket=hardened,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    client.put_public_access_block(
        Bucket=hardened,
        PublicAccessBlockConfiguration={
            k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        },
    )
    # A TLS-only policy would make moto (like AWS) refuse restic's plain-HTTP requests to this loopback endpoint, so
    # it is left out here: the policy check itself is covered in tests/unit/plugins/module_utils/test_s3audit.py.
    repos["hardened"] = s3_server.restic_url(hardened, "restic")
    restic(repos["hardened"], pw, "init", env=s3_server.env())

    hosts = {}
    for name, repo in repos.items():
        hosts[name] = {
            "ledgerguard_repository": repo,
            "ledgerguard_password_file": str(pw),
            "ledgerguard_s3_credentials_file": str(s3_credentials_file),
            "ledgerguard_evidence_dir": str(tmp_path / "evidence"),
            "ledgerguard_clients": [],
            "backup_verify_data_mode": "percent",
            "backup_verify_data_subset": "100%",
            "backup_verify_storage_required": ["versioning", "lifecycle", "object_lock"],
            "backup_verify_freshness_enabled": False,
            "backup_verify_coverage_enabled": False,
            "backup_verify_damage_enabled": False,
            "backup_verify_spot_check_enabled": False,
            "backup_verify_retention_enabled": False,
        }
    runner = playbook("backup_verify.yml", inventory=localhost_inventory(hosts=hosts))
    assert runner.rc != 0
    assert any(m.startswith("Backup verification FAILED") for m in failed_messages(runner))

    run_dir = sorted((tmp_path / "evidence" / "backup_verify").iterdir())[-1]
    report = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    by_repo = {r["repository"]: {c["check"]: c for c in r["checks"]} for r in report["repositories"]}
    assert set(by_repo) == set(repos.values())

    plain_checks = by_repo[repos["plain"]]
    assert plain_checks["data"]["status"] == "OK"
    assert plain_checks["data"]["reason"].startswith("restic check --read-data-subset=100%: no errors")
    assert plain_checks["storage_versioning"]["status"] == "FAIL"
    assert plain_checks["storage_versioning"]["subject"] == plain
    assert plain_checks["storage_versioning"]["reason"].startswith("versioning is Disabled")
    assert plain_checks["storage_lifecycle"]["status"] == "OK"
    assert plain_checks["storage_object_lock"]["status"] == "FAIL"
    assert plain_checks["storage_tls_policy"]["status"] == "WARN"

    exp = by_repo[repos["expiring"]]
    assert exp["storage_versioning"]["status"] == "OK"
    assert exp["storage_lifecycle"]["status"] == "FAIL"
    assert "rule 'tidy-after-90-days' expires current objects after 90 days" in exp["storage_lifecycle"]["reason"]

    hard = by_repo[repos["hardened"]]
    assert {k: v["status"] for k, v in hard.items() if k.startswith("storage_")} == {
        "storage_versioning": "OK",
        "storage_object_lock": "OK",
        "storage_encryption": "OK",
        "storage_public_access_block": "OK",
        "storage_lifecycle": "OK",
        "storage_tls_policy": "WARN",
    }
    assert hard["storage_tls_policy"]["reason"] == "no bucket policy, so plain-HTTP requests are not refused"
    lock = hard["storage_object_lock"]["details"]
    assert lock["default_mode"] == "COMPLIANCE" and lock["default_retention_days"] == 30
    # Read with HeadObject from restic's own config object (moto answers GetObjectRetention with 500).
    assert lock["sample_object"]["key"] == "restic/config"
    assert lock["sample_object"]["mode"] == "COMPLIANCE"

    prom = (tmp_path / "evidence" / "metrics" / "ledgerguard_backup_verify.prom").read_text(encoding="utf-8")
    assert "ledgerguard_backup_verify_status 2\n" in prom
    line = (
        f'ledgerguard_backup_verify_check_status{{scope="repository",target="{repos["plain"]}",'
        f'check="storage_versioning",subject="{plain}"}} 2'
    )
    assert line in prom
    # The credentials never reach an event.
    events = json.dumps(list(runner.events))
    assert s3_server.env()["AWS_SECRET_ACCESS_KEY"] not in events
