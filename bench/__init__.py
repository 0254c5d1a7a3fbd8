"""ledgerguard benchmarks (``make bench`` = ``python -m bench``); not tests.

Results go to bench/results and docs/benchmarks.md.
"""
