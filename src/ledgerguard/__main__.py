"""python -m ledgerguard: the ledgerguard command line."""

import sys

from ledgerguard.cli import main

sys.exit(main())
