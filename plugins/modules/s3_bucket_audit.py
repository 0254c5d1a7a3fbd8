#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ledgerguard engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_bucket_audit
short_description: Audit the S3 bucket behind a restic repository
version_added: 0.1.0
description:
  - Reads the configuration of the bucket that holds a restic C(s3:) repository with boto3 and judges it as backup
    storage. Checks bucket versioning, Object Lock (mode and default retention; the lock state of the repository's
    C(config) object is read with HeadObject), default encryption, the public-access block, lifecycle rules that could
    expire or archive restic's objects, and a bucket policy that refuses plain HTTP.
  - Works against AWS S3 and S3-compatible stores. A call the store does not implement is reported as
    C(UNSUPPORTED), not as a failure.
  - Each check is C(OK), C(WARN), C(FAIL) or C(UNSUPPORTED). Checks listed in O(required) are C(FAIL) when the
    protection is missing, the others C(WARN); a required check the store cannot answer is C(WARN), not
    C(UNSUPPORTED). A lifecycle rule that expires or archives restic objects is always C(FAIL).
  - The module only reads. The task does not fail on findings; look at RV(status). It fails when its input is
    unusable (not an C(s3:) repository, boto3 missing).
  - The same-named action plugin resolves O(repository) and O(env) on the controller like the restic modules do
    (task argument, then C(ledgerguard_repository) / C(ledgerguard_s3_credentials_file), then the controller's
    C(RESTIC_REPOSITORY) and C(AWS_*) environment). Delegate it to C(localhost) when managed hosts lack boto3.
author:
  - ledgerguard engineers (@ledgerguard)
requirements:
  - boto3
options:
  repository:
    description:
      - The restic repository URL, for example C(s3:https://s3.example.com/bucket/prefix).
      - The endpoint, bucket and prefix are taken from it unless O(endpoint_url), O(bucket) or O(prefix) are given.
    type: str
  env:
    description:
      - Backend credentials as environment-style keys C(AWS_ACCESS_KEY_ID), C(AWS_SECRET_ACCESS_KEY),
        C(AWS_SESSION_TOKEN), C(AWS_DEFAULT_REGION). Filled by the action plugin.
      - When empty, boto3's default credential chain on the executing host is used.
    type: dict
    default: {}
  endpoint_url:
    description: The S3 endpoint. Overrides the one in O(repository).
    type: str
  bucket:
    description: The bucket. Overrides the one in O(repository).
    type: str
  prefix:
    description: The key prefix of the repository inside the bucket. Overrides the one in O(repository).
    type: str
  region:
    description: Region for request signing. Defaults to C(AWS_DEFAULT_REGION) from O(env), then C(us-east-1).
    type: str
  checks:
    description: Which checks to run.
    type: list
    elements: str
    choices: [versioning, object_lock, encryption, public_access_block, lifecycle, tls_policy]
    default: [versioning, object_lock, encryption, public_access_block, lifecycle, tls_policy]
  required:
    description: Checks whose missing protection is C(FAIL) instead of C(WARN).
    type: list
    elements: str
    choices: [versioning, object_lock, encryption, public_access_block, lifecycle, tls_policy]
    default: [versioning, lifecycle]
  min_retention_days:
    description: With Object Lock, the shortest acceptable default retention in days (0 = any).
    type: int
    default: 0
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Connect and read timeout for each S3 call, in seconds.
    type: int
    default: 20
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same audit.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
"""

EXAMPLES = r"""
- name: Audit the repository's bucket (repository and keys come from inventory)
  ledgerguard.recovery.s3_bucket_audit:
  delegate_to: localhost
  register: audit

- name: Require Object Lock of at least 30 days as well
  ledgerguard.recovery.s3_bucket_audit:
    repository: s3:https://s3.example.com/backups/restic
    required: [versioning, lifecycle, object_lock]
    min_retention_days: 30
"""

RETURN = r"""
status:
  description:
    - The worst result of all checks (C(OK), C(WARN) or C(FAIL)). A check in O(required) that the store cannot answer
      is C(WARN) ("required, but not checked"); the other C(UNSUPPORTED) checks do not count, and the RV(reason) of a
      passing audit says how many checks passed and which the store could not answer.
  returned: always
  type: str
  sample: FAIL
reason:
  description: The findings behind RV(status), one per check with that status.
  returned: always
  type: str
  sample: "versioning: versioning is Disabled: ..."
bucket:
  description: The audited bucket.
  returned: always
  type: str
prefix:
  description: The repository's key prefix inside the bucket.
  returned: always
  type: str
endpoint_url:
  description: The S3 endpoint used (no credentials).
  returned: always
  type: str
checks:
  description: One entry per check, each with C(status), C(reason) and C(details).
  returned: always
  type: dict
  sample:
    versioning: {status: OK, reason: versioning is enabled, details: {state: Enabled, mfa_delete: Disabled}}
    lifecycle: {status: FAIL, reason: "lifecycle can destroy restic objects under 'restic': ...", details: {}}
"""

import traceback  # noqa: E402 - after the documentation blocks, as Ansible modules do

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    import boto3
    from botocore.config import Config

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.ledgerguard.recovery.plugins.module_utils.s3audit import (  # noqa: E402
    CHECKS,
    RepositoryURLError,
    audit_bucket,
    parse_s3_repository,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "str"},
            "env": {"type": "dict", "default": {}, "no_log": True},
            "endpoint_url": {"type": "str"},
            "bucket": {"type": "str"},
            "prefix": {"type": "str"},
            "region": {"type": "str"},
            "checks": {"type": "list", "elements": "str", "choices": list(CHECKS), "default": list(CHECKS)},
            "required": {
                "type": "list",
                "elements": "str",
                "choices": list(CHECKS),
                "default": ["versioning", "lifecycle"],
            },
            "min_retention_days": {"type": "int", "default": 0},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 20},
        },
        required_one_of=[["repository", "bucket"]],
        supports_check_mode=True,
    )
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)

    p = module.params
    target = {"endpoint_url": None, "bucket": None, "prefix": ""}
    if p["repository"]:
        try:
            target = parse_s3_repository(p["repository"])
        except RepositoryURLError as exc:
            module.fail_json(msg=str(exc))
    for key in ("endpoint_url", "bucket", "prefix"):
        if p[key] is not None:
            target[key] = p[key]

    env = p["env"] or {}
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=p["region"] or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
    )
    client = session.client(
        "s3",
        endpoint_url=target["endpoint_url"],
        verify=p["validate_certs"],
        config=Config(
            connect_timeout=p["timeout"],
            read_timeout=p["timeout"],
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )
    try:
        result = audit_bucket(
            client,
            target["bucket"],
            target["prefix"] or "",
            checks=p["checks"],
            required=p["required"],
            min_retention_days=p["min_retention_days"],
        )
    except Exception as exc:  # noqa: BLE001 - unexpected boto/network errors become one clear failure
        module.fail_json(
            msg=f"auditing bucket '{target['bucket']}' at {target['endpoint_url'] or 'the default AWS endpoint'} "
            f"failed: {exc}. Check the endpoint and credentials.",
            exception=traceback.format_exc(),
        )
    module.exit_json(
        changed=False,
        bucket=target["bucket"],
        prefix=target["prefix"] or "",
        endpoint_url=target["endpoint_url"] or "",
        **result,
    )


if __name__ == "__main__":
    main()
