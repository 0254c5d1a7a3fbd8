"""``ledgerguard evidence keygen|sign|verify``: the command line of the collection's signed evidence packs.

The packs themselves -- a manifest of every file in an evidence folder (sha256, size), signed with ed25519 -- are
made and checked by the collection's controller code (``plugins/plugin_utils/evidence_pack.py``), the same code the
``ledgerguard.recovery.evidence_pack`` action runs in playbooks; this module only parses arguments and prints. Its
names (``sign``, ``verify``, ``keygen``, ``EvidenceError`` ...) are re-exported for Python callers.

Exit codes of the commands: 0 verified / done, 1 verification failed, 2 bad input (missing or unreadable key, no
such folder, a pack that cannot be signed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ledgerguard import collection

# Re-exported from the collection, looked up on first use (PEP 562), so that importing this module (the CLI builds its
# parser with it) works before the collection is found, and a missing collection is one line from the CLI.
EXPORTS = frozenset(
    {
        "MANIFEST_NAME", "SIGNATURE_NAME", "KEY_ENV", "PUBKEY_ENV", "DEFAULT_KEY", "EvidenceError", "EvidenceKeyError",
        "VerifyReport", "keygen", "sign", "verify", "key_id", "load_private_key", "load_public_key",
        "public_key_path_for", "canonical_bytes", "sha256_file", "walk_pack", "default_evidence_root",
    }
)  # fmt: skip


def _pack() -> ModuleType:
    return collection.module("plugins.plugin_utils.evidence_pack")


def __getattr__(name: str) -> Any:
    if name in EXPORTS:
        return getattr(_pack(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


# ------------------------------------------------------------------------------------------------------------ CLI


def _guard(func: Any) -> Any:
    """Make a command self-contained: bad input prints one line to stderr and returns 2 (no traceback)."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except _pack().EvidenceError as exc:
            print(f"ledgerguard evidence: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@_guard
def _cmd_keygen(args: argparse.Namespace) -> int:
    out = _pack().keygen(args.key, force=args.force)
    print(f"signing key: {out['key']} (0600, keep it secret and backed up offline)")
    print(f"public key:  {out['public_key']} (give it to whoever verifies the packs)")
    print(f"key id:      {out['key_id']}")
    return EXIT_OK


@_guard
def _cmd_sign(args: argparse.Namespace) -> int:
    out = _pack().sign(args.folder, args.key, signer=args.signer, kind=args.kind)
    print(
        f"signed {out['pack']}: {out['files']} files, {out['timelines']} timeline(s), key {out['key_id']}, "
        f"manifest sha256 {out['manifest_sha256']}"
    )
    return EXIT_OK


@_guard
def _cmd_verify(args: argparse.Namespace) -> int:
    pub = args.public_key
    if pub is None and args.key is not None:
        pub = _pack().public_key_path_for(Path(args.key).expanduser())
    worst = EXIT_OK
    results = []
    for folder in args.folders:
        report = _pack().verify(folder, pub)
        results.append(report.as_dict())
        if not args.json:
            if report.ok:
                print(
                    f"OK {report.pack}: signature valid (key {report.key_id}, signer {report.signer}, "
                    f"signed {report.created_at}), {report.files_checked} files, "
                    f"{report.timelines_checked} timeline chain(s) intact"
                )
            else:
                print(f"FAILED {report.pack}: {len(report.problems)} problem(s)")
                for problem in report.problems:
                    print(f"  {problem}")
        if not report.ok:
            worst = EXIT_FAILED
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
    return worst


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evidence keygen|sign|verify`` on an argparse subparsers object; each sets ``func``."""
    parser = subparsers.add_parser("evidence", help="sign and verify evidence packs (ed25519)")
    sub = parser.add_subparsers(dest="evidence_command", required=True)
    try:
        pack = _pack()
        key_help = f"signing key (default ${pack.KEY_ENV} or {pack.DEFAULT_KEY})"
        pub_help = f"trusted public key (default ${pack.PUBKEY_ENV} or <signing key>.pub)"
    except collection.CollectionNotFound:  # the command itself will say so
        key_help, pub_help = "signing key", "trusted public key"

    p = sub.add_parser("keygen", help="create the firm's ed25519 signing key and its .pub")
    p.add_argument("--key", help=key_help)
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser("sign", help="write evidence-pack.json and evidence-pack.sig into an evidence folder")
    p.add_argument("folder", help="evidence folder, e.g. evidence/INC-20261126-001")
    p.add_argument("--key", help=key_help)
    p.add_argument("--signer", help="name recorded in the manifest (default: the current user)")
    p.add_argument("--kind", default="incident", choices=("incident", "drill", "verify", "compliance", "other"))
    p.set_defaults(func=_cmd_sign)

    p = sub.add_parser("verify", help="check signature, hashes, missing/added files and timeline chains")
    p.add_argument("folders", nargs="+", help="one or more evidence folders")
    p.add_argument("--public-key", help=pub_help)
    p.add_argument("--key", help="signing key whose .pub to trust (alternative to --public-key)")
    p.add_argument("--json", action="store_true", help="print the results as a JSON list, one object per folder")
    p.set_defaults(func=_cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ledgerguard")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
