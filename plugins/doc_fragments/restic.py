# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options every ledgerguard.recovery.restic_* module shares (argspec: module_utils/restic/module.py
    # restic_argument_spec).
    DOCUMENTATION = r"""
attributes:
  diff_mode:
    support: none
    description: No diff is produced.
  platform:
    support: full
    platforms: posix
    description: Runs restic on the managed host (Linux, BSD, macOS).
options:
  repository:
    description:
      - The restic repository, as restic writes it, for example C(/srv/restic-repo) or
        C(s3:https://s3.example.com/bucket/prefix).
      - "Resolved on the controller by the action plugin in this order: this option, the variable
        C(ledgerguard_repository), the controller's environment variable E(RESTIC_REPOSITORY)."
      - A URL that embeds credentials (C(s3:https://key:secret@host/bucket)) is refused; give backend credentials
        through O(env) or the variable C(ledgerguard_s3_credentials_file) instead.
    type: str
  password:
    description:
      - The repository password. Handed to restic only through a 0600 temporary file that is removed afterwards;
        never on the command line, never logged, never returned.
      - "When neither O(password) nor O(password_file) is set, the action plugin reads the controller file named by the
        variable C(ledgerguard_password_file) (it must not be readable by group or others), then the controller's
        E(RESTIC_PASSWORD_FILE), and passes its content as O(password)."
      - Mutually exclusive with O(password_file).
    type: str
  password_file:
    description:
      - Path, on the managed host, of a file holding the repository password (restic reads it itself).
      - Mutually exclusive with O(password).
    type: path
  env:
    description:
      - Backend credentials and settings for restic's environment, for example E(AWS_ACCESS_KEY_ID),
        E(AWS_SECRET_ACCESS_KEY), E(AWS_DEFAULT_REGION). Not logged, not returned.
      - "When not set, the action plugin builds it from the AWS shared-credentials file (INI, profile C(default) or
        the variable C(ledgerguard_s3_profile)) named by the variable C(ledgerguard_s3_credentials_file) on the
        controller, else from the controller's E(AWS_ACCESS_KEY_ID), E(AWS_SECRET_ACCESS_KEY), E(AWS_SESSION_TOKEN)
        and E(AWS_DEFAULT_REGION)."
      - May not set E(RESTIC_REPOSITORY) or any E(RESTIC_PASSWORD*) variable.
    type: dict
    default: {}
  restic_binary:
    description:
      - Path of the restic binary on the managed host. Default is C(restic) found on E(PATH).
      - Versions 0.14 (Debian 12) to 0.18 are supported; features are detected from the binary itself.
    type: path
  cache_dir:
    description:
      - restic's cache directory (C(--cache-dir)). Default is restic's own (C(~/.cache/restic)).
    type: path
  timeout:
    description:
      - Seconds each restic command may run before it is stopped (TERM, then KILL after 15 s), and the task fails
        with a timeout message. V(0) means no limit.
    type: int
    default: 0
  stale_lock_age:
    description:
      - "When restic finds the repository locked, the lock is removed (C(restic unlock), which removes only stale
        locks) and the command retried once, but only when the lock is provably stale - its holder is a process on
        this host that no longer exists - and the lock is older than this many seconds. Each removal is returned in
        C(stale_locks_removed) and shown as a warning. Live locks and locks of other hosts are never removed: the
        task fails and names the holder. V(0) never removes a lock."
    type: int
    default: 1800
  sftp_identity_file:
    description:
      - "For an C(sftp:) repository (a NAS over SSH, e.g. C(sftp://backup@nas.lan:22//volume1/restic)): path, on the
        managed host, of the SSH private key file (mode 0600, no passphrase). restic's ssh gets it with C(-i); the
        key itself is never read, copied or logged. Default: the variable C(ledgerguard_sftp_identity_file), else
        ssh's own configuration."
    type: path
  sftp_known_hosts_file:
    description:
      - "For an C(sftp:) repository: path, on the managed host, of the known_hosts file holding the NAS's host key;
        ssh then runs with C(StrictHostKeyChecking=yes) against it (an unknown or changed host key fails the task
        with error_kind C(sftp_host_key)). Default: the variable C(ledgerguard_sftp_known_hosts_file), else ssh's own
        configuration."
      - Before restic runs, the same ssh command opens (and closes) one SFTP session, so an unreachable server, an
        unknown or changed host key and a refused login are reported at once and by name.
    type: path
notes:
  - Every restic command runs with the C locale and a clean environment (only E(PATH), E(HOME), E(TMPDIR), proxy and
    CA settings are inherited), so no stray E(RESTIC_PASSWORD) or AWS variable of the managed host leaks in.
  - "Failures are classified, and the message names the repository and what to do: wrong password, repository
    missing, repository locked (who holds the lock and since when), backend unreachable (host and port), snapshot not
    found, permission denied, out of space, timeout. The class is returned as C(error_kind)."
requirements:
  - restic >= 0.14 on the managed host
"""
