# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit of the S3 bucket behind a restic repository (pure functions over a boto3-like client).

Each check returns ``{"status": OK|WARN|FAIL|UNSUPPORTED, "reason": str, "details": dict}``. A call the store does
not implement (HTTP 501, ``NotImplemented``, ``MethodNotAllowed``, or an HTTP 500 on a read-only configuration call,
which is how several S3-compatible stores and moto answer) gives ``UNSUPPORTED``, never FAIL: the operator learns
the store cannot say, not that the bucket is wrong.

Missing protections that the caller lists in ``required`` are FAIL; otherwise they are WARN. Two findings are always
FAIL because they destroy backups: versioning that is not enabled when required, and a lifecycle rule that expires
or archives (transitions to a cold class restic cannot read) the repository's objects.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

CHECKS = ("versioning", "object_lock", "encryption", "public_access_block", "lifecycle", "tls_policy")
DEFAULT_REQUIRED = ("versioning", "lifecycle")
UNSUPPORTED_CODES = {
    "NotImplemented",
    "NotImplementedError",
    "MethodNotAllowed",
    "XNotImplemented",
    "UnsupportedOperation",
    "InternalError",
}
NOT_CONFIGURED_CODES = {
    "object_lock": {"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"},
    "encryption": {"ServerSideEncryptionConfigurationNotFoundError"},
    "public_access_block": {"NoSuchPublicAccessBlockConfiguration"},
    "lifecycle": {"NoSuchLifecycleConfiguration"},
    "tls_policy": {"NoSuchBucketPolicy"},
}
COLD_CLASSES = {"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR_NOT_READABLE"}


class RepositoryURLError(ValueError):
    """The repository is not an ``s3:`` restic URL."""


def parse_s3_repository(repository: str) -> dict[str, str]:
    """Split a restic ``s3:`` URL into ``{endpoint_url, bucket, prefix}``.

    ``s3:http://127.0.0.1:9000/bucket/some/prefix`` and ``s3:s3.amazonaws.com/bucket`` (restic's default scheme is
    https) are both accepted.
    """
    if not repository or not repository.startswith("s3:"):
        raise RepositoryURLError(
            f"repository '{repository}' is not an S3 repository (expected s3:https://host/bucket[/prefix]); "
            "the storage audit applies to S3 repositories only"
        )
    rest = repository[3:]
    if not re.match(r"^https?://", rest):
        rest = "https://" + rest
    parts = urlsplit(rest)
    path = parts.path.strip("/")
    if not parts.netloc or not path:
        raise RepositoryURLError(f"repository '{repository}' names no bucket: expected s3:https://host/bucket[/prefix]")
    bucket, _sep, prefix = path.partition("/")
    return {"endpoint_url": f"{parts.scheme}://{parts.netloc}", "bucket": bucket, "prefix": prefix}


def _error_code(exc: Exception) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    err = response.get("Error", {}) or {}
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return str(err.get("Code") or ""), status


def _is_unsupported(code: str, status: int) -> bool:
    return code in UNSUPPORTED_CODES or status in (500, 501)


def _result(status: str, reason: str, **details: Any) -> dict[str, Any]:
    return {"status": status, "reason": reason, "details": details}


def _missing(check: str, required: tuple[str, ...] | list[str], reason: str, **details: Any) -> dict[str, Any]:
    return _result("FAIL" if check in required else "WARN", reason, **details)


def _call(client: Any, method: str, check: str, **kwargs: Any) -> tuple[str, Any]:
    """Call ``client.<method>``: returns ("ok", answer), ("absent", code), ("unsupported", code) or raises."""
    try:
        return "ok", getattr(client, method)(**kwargs)
    except Exception as exc:  # noqa: BLE001 - botocore ClientError and friends, classified by code below
        code, status = _error_code(exc)
        if code in NOT_CONFIGURED_CODES.get(check, set()):
            return "absent", code
        if code and _is_unsupported(code, status):
            return "unsupported", f"{code} (HTTP {status})"
        if not code:
            raise
        return "error", f"{code} (HTTP {status}): {exc}"


def check_versioning(client: Any, bucket: str, required: tuple[str, ...] | list[str]) -> dict[str, Any]:
    kind, ans = _call(client, "get_bucket_versioning", "versioning", Bucket=bucket)
    if kind == "unsupported":
        return _result("UNSUPPORTED", f"the store does not support GetBucketVersioning: {ans}")
    if kind != "ok":
        return _result("FAIL", f"GetBucketVersioning failed: {ans}")
    state = ans.get("Status") or "Disabled"
    details = {"state": state, "mfa_delete": ans.get("MFADelete") or "Disabled"}
    if state == "Enabled":
        return _result("OK", "versioning is enabled: deleted or overwritten objects keep their old versions", **details)
    return _missing(
        "versioning",
        required,
        f"versioning is {state}: a deleted or overwritten restic object cannot be recovered from the bucket; "
        "enable versioning on the bucket",
        **details,
    )


def check_object_lock(
    client: Any, bucket: str, prefix: str, required: tuple[str, ...] | list[str], min_retention_days: int = 0
) -> dict[str, Any]:
    kind, ans = _call(client, "get_object_lock_configuration", "object_lock", Bucket=bucket)
    if kind == "unsupported":
        return _result("UNSUPPORTED", f"the store does not support GetObjectLockConfiguration: {ans}")
    if kind == "absent":
        return _missing("object_lock", required, "Object Lock is not configured on the bucket", enabled=False)
    if kind != "ok":
        return _result("FAIL", f"GetObjectLockConfiguration failed: {ans}")
    conf = ans.get("ObjectLockConfiguration") or {}
    enabled = conf.get("ObjectLockEnabled") == "Enabled"
    rule = (conf.get("Rule") or {}).get("DefaultRetention") or {}
    mode = rule.get("Mode")
    days = int(rule.get("Days") or 0) or int(rule.get("Years") or 0) * 365
    details: dict[str, Any] = {"enabled": enabled, "default_mode": mode, "default_retention_days": days or None}
    # Object Lock state of a real object: read with HeadObject (moto answers GetObjectRetention with HTTP 500).
    key = f"{prefix.strip('/')}/config".lstrip("/")
    okind, head = _call(client, "head_object", "object_lock", Bucket=bucket, Key=key)
    if okind == "ok":
        until = head.get("ObjectLockRetainUntilDate")
        details["sample_object"] = {
            "key": key,
            "mode": head.get("ObjectLockMode"),
            "retain_until": until.isoformat() if hasattr(until, "isoformat") else until,
            "legal_hold": head.get("ObjectLockLegalHoldStatus"),
        }
    if not enabled:
        return _missing("object_lock", required, "Object Lock is not enabled on the bucket", **details)
    if not mode:
        return _missing(
            "object_lock",
            required,
            "Object Lock is enabled but has no default retention: new restic objects are not locked",
            **details,
        )
    if min_retention_days and days < min_retention_days:
        return _missing(
            "object_lock",
            required,
            f"default retention {mode} {days} days is shorter than the required {min_retention_days} days",
            **details,
        )
    note = "" if mode == "COMPLIANCE" else " (GOVERNANCE: a user with s3:BypassGovernanceRetention can still delete)"
    return _result("OK", f"Object Lock default retention {mode} {days} days{note}", **details)


def check_encryption(client: Any, bucket: str, required: tuple[str, ...] | list[str]) -> dict[str, Any]:
    kind, ans = _call(client, "get_bucket_encryption", "encryption", Bucket=bucket)
    if kind == "unsupported":
        return _result("UNSUPPORTED", f"the store does not support GetBucketEncryption: {ans}")
    if kind == "absent":
        return _missing(
            "encryption",
            required,
            "no default server-side encryption (restic data is still encrypted client-side)",
            algorithms=[],
        )
    if kind != "ok":
        return _result("FAIL", f"GetBucketEncryption failed: {ans}")
    rules = (ans.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
    algos = [
        (r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        for r in rules
        if r.get("ApplyServerSideEncryptionByDefault")
    ]
    if not algos:
        return _missing("encryption", required, "encryption configuration has no default algorithm", algorithms=[])
    return _result("OK", f"default encryption {', '.join(algos)}", algorithms=algos)


def check_public_access_block(client: Any, bucket: str, required: tuple[str, ...] | list[str]) -> dict[str, Any]:
    kind, ans = _call(client, "get_public_access_block", "public_access_block", Bucket=bucket)
    if kind == "unsupported":
        return _result("UNSUPPORTED", f"the store does not support GetPublicAccessBlock: {ans}")
    if kind == "absent":
        return _missing("public_access_block", required, "no public-access block is configured on the bucket")
    if kind != "ok":
        return _result("FAIL", f"GetPublicAccessBlock failed: {ans}")
    conf = ans.get("PublicAccessBlockConfiguration") or {}
    names = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    off = [n for n in names if not conf.get(n)]
    if off:
        return _missing(
            "public_access_block", required, "public-access block is incomplete: off " + ", ".join(off), settings=conf
        )
    return _result("OK", "all four public-access block settings are on", settings=conf)


def _rule_prefix(rule: dict[str, Any]) -> tuple[str | None, bool]:
    """The key prefix a lifecycle rule applies to, and whether it needs object tags (restic objects have none)."""
    if "Prefix" in rule and "Filter" not in rule:
        return rule.get("Prefix") or "", False
    filt = rule.get("Filter") or {}
    if "Tag" in filt:
        return None, True
    if "And" in filt:
        and_ = filt["And"] or {}
        return and_.get("Prefix") or "", bool(and_.get("Tags"))
    return filt.get("Prefix") or "", False


def lifecycle_findings(rules: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The rules that can remove or archive objects under ``prefix``: ``[{id, severity, what}]``."""
    repo = prefix.strip("/")
    findings: list[dict[str, Any]] = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        rprefix, needs_tags = _rule_prefix(rule)
        if needs_tags:
            continue
        rprefix = (rprefix or "").lstrip("/")
        # a repository at the bucket's root: every rule reaches its objects (data/, index/, snapshots/, ...)
        inside = repo.startswith(rprefix) or rprefix == repo or rprefix.startswith(repo + "/")
        applies = not (repo and rprefix) or inside
        if not applies:
            continue
        rid = rule.get("ID") or "(no id)"
        exp = rule.get("Expiration") or {}
        if exp.get("Days") or exp.get("Date"):
            when = f"after {exp['Days']} days" if exp.get("Days") else f"on {exp['Date']}"
            findings.append({"id": rid, "severity": "FAIL", "what": f"expires current objects {when}"})
        for tr in rule.get("Transitions") or []:
            if tr.get("StorageClass") in COLD_CLASSES:
                findings.append(
                    {
                        "id": rid,
                        "severity": "FAIL",
                        "what": f"moves objects to {tr['StorageClass']}, which restic cannot read",
                    }
                )
        nve = rule.get("NoncurrentVersionExpiration") or {}
        if nve.get("NoncurrentDays"):
            findings.append(
                {
                    "id": rid,
                    "severity": "WARN",
                    "what": f"deletes old versions after {nve['NoncurrentDays']} days (overwritten or deleted "
                    "objects are recoverable only that long)",
                }
            )
    return findings


def check_lifecycle(client: Any, bucket: str, prefix: str, required: tuple[str, ...] | list[str]) -> dict[str, Any]:
    kind, ans = _call(client, "get_bucket_lifecycle_configuration", "lifecycle", Bucket=bucket)
    if kind == "unsupported":
        return _result("UNSUPPORTED", f"the store does not support GetBucketLifecycleConfiguration: {ans}")
    if kind == "absent":
        return _result("OK", "no lifecycle rules", rules=0, findings=[])
    if kind != "ok":
        return _result("FAIL", f"GetBucketLifecycleConfiguration failed: {ans}")
    rules = ans.get("Rules") or []
    findings = lifecycle_findings(rules, prefix)
    details = {"rules": len(rules), "findings": findings}
    fails = [f for f in findings if f["severity"] == "FAIL"]
    if fails:
        text = "; ".join(f"rule '{f['id']}' {f['what']}" for f in fails)
        return _result("FAIL", f"lifecycle can destroy restic objects under '{prefix or '/'}': {text}", **details)
    if findings:
        text = "; ".join(f"rule '{f['id']}' {f['what']}" for f in findings)
        return _result("WARN", text, **details)
    return _result("OK", f"{len(rules)} lifecycle rule(s), none expires or archives restic objects", **details)


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    cond = statement.get("Condition") or {}
    for op in ("Bool", "BoolIfExists"):
        value = (cond.get(op) or {}).get("aws:SecureTransport")
        values = value if isinstance(value, list) else [value]
        if any(str(v).lower() == "false" for v in values if v is not None):
            actions = statement.get("Action") or []
            actions = actions if isinstance(actions, list) else [actions]
            return any(a in ("s3:*", "*") for a in actions)
    return False


def check_tls_policy(client: Any, bucket: str, required: tuple[str, ...] | list[str]) -> dict[str, Any]:
    kind, ans = _call(client, "get_bucket_policy", "tls_policy", Bucket=bucket)
    if kind == "unsupported":
        return _result("UNSUPPORTED", f"the store does not support GetBucketPolicy: {ans}")
    if kind == "absent":
        return _missing("tls_policy", required, "no bucket policy, so plain-HTTP requests are not refused")
    if kind != "ok":
        return _result("FAIL", f"GetBucketPolicy failed: {ans}")
    try:
        policy = json.loads(ans.get("Policy") or "{}")
    except ValueError:
        return _result("FAIL", "the bucket policy is not valid JSON")
    statements = policy.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    sids = [s.get("Sid") or "(no sid)" for s in statements if _denies_plain_http(s)]
    if sids:
        return _result(
            "OK", "the bucket policy denies requests without TLS (aws:SecureTransport false)", statements=sids
        )
    return _missing(
        "tls_policy",
        required,
        "the bucket policy has no Deny s3:* on aws:SecureTransport=false; plain-HTTP requests are allowed",
        statements=[],
    )


def audit_bucket(
    client: Any,
    bucket: str,
    prefix: str = "",
    checks: tuple[str, ...] | list[str] = CHECKS,
    required: tuple[str, ...] | list[str] = DEFAULT_REQUIRED,
    min_retention_days: int = 0,
) -> dict[str, Any]:
    """Run the selected checks; returns ``{status, reason, checks: {name: result}}``.

    The bucket is probed first with HeadBucket; if that fails, the audit is FAIL with the reason and no check runs.
    """
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 - report any failure to reach the bucket as the audit's reason
        code, status = _error_code(exc)
        reason = f"bucket '{bucket}' cannot be reached: {code or type(exc).__name__} (HTTP {status}): {exc}"
        return {"status": "FAIL", "reason": reason, "checks": {}}
    results: dict[str, dict[str, Any]] = {}
    for name in checks:
        if name == "versioning":
            results[name] = check_versioning(client, bucket, required)
        elif name == "object_lock":
            results[name] = check_object_lock(client, bucket, prefix, required, min_retention_days)
        elif name == "encryption":
            results[name] = check_encryption(client, bucket, required)
        elif name == "public_access_block":
            results[name] = check_public_access_block(client, bucket, required)
        elif name == "lifecycle":
            results[name] = check_lifecycle(client, bucket, prefix, required)
        elif name == "tls_policy":
            results[name] = check_tls_policy(client, bucket, required)
    # a required check the store cannot answer is not a failure of the bucket, but no pass either: WARN
    for name, res in results.items():
        if res["status"] == "UNSUPPORTED" and name in required:
            results[name] = dict(res, status="WARN", reason=f"required, but not checked: {res['reason']}")
    worst = "OK"
    for res in results.values():
        if res["status"] == "FAIL" or (res["status"] == "WARN" and worst == "OK"):
            worst = res["status"]
    bad = [f"{n}: {r['reason']}" for n, r in results.items() if r["status"] == worst and worst != "OK"]
    passed = [n for n, r in results.items() if r["status"] == "OK"]
    unchecked = [n for n, r in results.items() if r["status"] == "UNSUPPORTED"]
    reason = "; ".join(bad) if bad else f"bucket '{bucket}' passed {len(passed)} of {len(results)} storage checks"
    if not bad and unchecked:
        reason += f" ({', '.join(unchecked)}: the store cannot say)"
    return {"status": worst, "reason": reason, "checks": results}
