"""The ledgerguard command line (filled in by the CLI work)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("ledgerguard: no subcommands yet", file=sys.stderr)
    return 2
