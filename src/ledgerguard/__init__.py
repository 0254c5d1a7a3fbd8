"""ledgerguard: run the ledgerguard.recovery playbooks through ansible-runner the way AWX does."""

__version__ = "0.1.0"
