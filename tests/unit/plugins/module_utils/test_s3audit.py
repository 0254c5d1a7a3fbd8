"""s3audit against moto's in-process S3 (mock_aws): each finding from real boto3 answers."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from ansible_collections.ledgerguard.recovery.plugins.module_utils import s3audit


@pytest.fixture
def client():
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def _bucket(client, name="bkt", lock=False):
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    client.put_object(Bucket=name, Key="restic/config", Body=b"x")
    return name


TLS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyPlainHTTP",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def _harden(client, bucket="bkt"):
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(TLS_POLICY))


@pytest.mark.parametrize(
    "repo,expected",
    [
        (
            "s3:http://127.0.0.1:9000/bkt/restic",
            {"endpoint_url": "http://127.0.0.1:9000", "bucket": "bkt", "prefix": "restic"},
        ),
        ("s3:s3.amazonaws.com/bkt", {"endpoint_url": "https://s3.amazonaws.com", "bucket": "bkt", "prefix": ""}),
        ("s3:https://h/bkt/a/b/", {"endpoint_url": "https://h", "bucket": "bkt", "prefix": "a/b"}),
    ],
)
def test_parse_s3_repository(repo, expected):
    assert s3audit.parse_s3_repository(repo) == expected


@pytest.mark.parametrize("repo", ["/srv/restic", "sftp:host:/x", "s3:http://host/"])
def test_parse_s3_repository_rejects(repo):
    with pytest.raises(s3audit.RepositoryURLError, match="s3:https://host/bucket"):
        s3audit.parse_s3_repository(repo)


def test_plain_bucket_fails_versioning_and_warns_rest(client):
    _bucket(client)
    res = s3audit.audit_bucket(client, "bkt", "restic")
    checks = res["checks"]
    assert res["status"] == "FAIL"
    assert checks["versioning"]["status"] == "FAIL"
    assert checks["versioning"]["details"]["state"] == "Disabled"
    assert "versioning is Disabled" in res["reason"]
    assert checks["lifecycle"] == {
        "status": "OK",
        "reason": "no lifecycle rules",
        "details": {"rules": 0, "findings": []},
    }
    assert checks["object_lock"]["status"] == "WARN"
    assert checks["public_access_block"]["status"] == "WARN"
    assert checks["tls_policy"]["status"] == "WARN"


def test_suspended_versioning_fails(client):
    _bucket(client)
    client.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Suspended"})
    res = s3audit.check_versioning(client, "bkt", ["versioning"])
    assert res["status"] == "FAIL"
    assert res["details"]["state"] == "Suspended"


def test_hardened_bucket_passes(client):
    _bucket(client)
    _harden(client)
    res = s3audit.audit_bucket(client, "bkt", "restic", required=list(s3audit.CHECKS[:1]))
    statuses = {k: v["status"] for k, v in res["checks"].items()}
    assert statuses == {
        "versioning": "OK",
        "object_lock": "WARN",
        "encryption": "OK",
        "public_access_block": "OK",
        "lifecycle": "OK",
        "tls_policy": "OK",
    }
    assert res["checks"]["tls_policy"]["details"]["statements"] == ["DenyPlainHTTP"]
    assert res["checks"]["encryption"]["details"]["algorithms"] == ["AES256"]


def test_object_lock_read_with_head_object(client):
    client.create_bucket(Bucket="lkt", ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket="lkt",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 45}},
        },
    )
    client.put_object(Bucket="lkt", Key="repo/config", Body=b"x")
    res = s3audit.check_object_lock(client, "lkt", "repo", ["object_lock"], min_retention_days=30)
    assert res["status"] == "OK", res
    assert res["reason"] == "Object Lock default retention COMPLIANCE 45 days"
    assert res["details"]["sample_object"]["mode"] == "COMPLIANCE"
    assert res["details"]["sample_object"]["retain_until"]
    short = s3audit.check_object_lock(client, "lkt", "repo", ["object_lock"], min_retention_days=90)
    assert short["status"] == "FAIL"
    assert "shorter than the required 90 days" in short["reason"]


def test_expiring_lifecycle_rule_fails(client):
    _bucket(client)
    client.put_bucket_lifecycle_configuration(
        Bucket="bkt",
        LifecycleConfiguration={
            "Rules": [
                {"ID": "tidy-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}},
                {"ID": "expire-all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 90}},
            ]
        },
    )
    res = s3audit.check_lifecycle(client, "bkt", "restic", [])
    assert res["status"] == "FAIL"
    assert [f["id"] for f in res["details"]["findings"]] == ["expire-all"]
    assert "rule 'expire-all' expires current objects after 90 days" in res["reason"]
    # a repository at the bucket's root (s3:host/bkt): a rule on data/ expires its packs
    client.put_bucket_lifecycle_configuration(
        Bucket="bkt",
        LifecycleConfiguration={
            "Rules": [
                {"ID": "数据过期", "Status": "Enabled", "Filter": {"Prefix": "data/"}, "Expiration": {"Days": 30}}
            ]
        },
    )
    root = s3audit.check_lifecycle(client, "bkt", "", [])
    assert root["status"] == "FAIL" and [f["id"] for f in root["details"]["findings"]] == ["数据过期"]
    assert s3audit.check_lifecycle(client, "bkt", "restic", [])["status"] == "OK"  # another prefix: not reached


def test_lifecycle_noncurrent_and_transition():
    rules = [
        {
            "ID": "old-versions",
            "Status": "Enabled",
            "Filter": {"Prefix": "restic/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        },
        {
            "ID": "cold",
            "Status": "Enabled",
            "Prefix": "restic/data/",
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
        },
        {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "t", "Value": "v"}}, "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
        {"ID": "other", "Status": "Enabled", "Filter": {"Prefix": "resticother/"}, "Expiration": {"Days": 1}},
    ]
    found = s3audit.lifecycle_findings(rules, "restic")
    assert [(f["id"], f["severity"]) for f in found] == [("old-versions", "WARN"), ("cold", "FAIL")]


class _Err(Exception):
    def __init__(self, code, status):
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class _Unsupporting:
    """A store that implements HeadBucket and versioning only (like many S3-compatible stores)."""

    def head_bucket(self, Bucket):
        return {}

    def get_bucket_versioning(self, Bucket):
        return {"Status": "Enabled"}

    def __getattr__(self, name):
        def fail(**kw):
            raise _Err("NotImplemented", 501)

        return fail


def test_unsupported_calls_are_not_failures_nor_a_pass_of_a_required_check():
    res = s3audit.audit_bucket(_Unsupporting(), "bkt", "restic")
    assert res["checks"]["versioning"]["status"] == "OK"
    for name in ("object_lock", "encryption", "public_access_block", "tls_policy"):
        assert res["checks"][name]["status"] == "UNSUPPORTED"
        assert "NotImplemented (HTTP 501)" in res["checks"][name]["reason"]
    # lifecycle is required (by default): the store cannot say, so the bucket is not reported as passing it
    assert res["checks"]["lifecycle"]["status"] == "WARN" and res["status"] == "WARN"
    assert res["reason"].startswith("lifecycle: required, but not checked: the store does not support ")
    # not required: the audit passes, and says how many checks it could not run
    only = s3audit.audit_bucket(_Unsupporting(), "bkt", "restic", required=("versioning",))
    assert only["status"] == "OK"
    assert only["reason"] == (
        "bucket 'bkt' passed 1 of 6 storage checks (object_lock, encryption, public_access_block, lifecycle, "
        "tls_policy: the store cannot say)"
    )


def test_missing_bucket_fails_without_checks(client):
    res = s3audit.audit_bucket(client, "nope", "restic")
    assert res["status"] == "FAIL"
    assert res["checks"] == {}
    assert res["reason"].startswith("bucket 'nope' cannot be reached: 404")
