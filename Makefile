# ledgerguard — the two commands in README.md are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_HOME := $(CURDIR)/.cache/ansible-home
PYTEST_ARGS ?=

.PHONY: setup demo test check lint sanity unit smoke integration restic-newer molecule bench docs clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m ledgerguard.demo

# scripts/test.sh runs the setup itself (the Molecule images are prepared beside its pip install).
test:
	@bash scripts/test.sh

# The edit loop (under 5 minutes on 2 cores): lint, sanity, unit, and one small incident for one client.
check:
	@bash scripts/test.sh check

lint: setup
	ruff check src plugins tests bench molecule scripts
	ruff format --check src plugins tests bench molecule scripts
	yamllint -s .
	ansible-lint

sanity: setup
	bash scripts/sanity.sh

unit: setup
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

smoke: setup
	$(PY) -m pytest -q tests/smoke $(PYTEST_ARGS)

integration: setup
	$(PY) -m pytest -q -n 4 --dist loadfile tests/integration $(PYTEST_ARGS)

# The restic modules, the incident path and the repository faults again with the newest restic Debian ships
# (scripts/fetch-restic.sh: trixie's 0.18), first on PATH. Debian 12's 0.14 runs everything else.
RESTIC_NEWER_TESTS ?= tests/integration/test_restic_modules.py tests/integration/test_incident.py \
	tests/integration/test_reliability_repository.py tests/integration/test_layouts_playbook.py \
	tests/integration/test_backup_progress.py
# pytest workers: 3 alone; `make test` runs it with 1 beside the integration layer, whose length it does not reach.
RESTIC_NEWER_WORKERS ?= 3
restic-newer: setup
	newer=$$(bash scripts/fetch-restic.sh) && PATH="$$(dirname "$$newer"):$$PATH" && restic version && \
	$(PY) -m pytest -q -n $(RESTIC_NEWER_WORKERS) --dist loadfile $(RESTIC_NEWER_TESTS) $(PYTEST_ARGS)

molecule: setup
	bash scripts/molecule.sh

bench: setup
	$(PY) -m bench

# The module and filter reference (docs/modules.md, docs/filters.md) and the role READMEs, from the modules'
# DOCUMENTATION, the filters' docs and meta/argument_specs.yml. tests/unit/test_docs_generated.py fails on drift.
docs: setup
	$(PY) scripts/gen-docs.py

clean:
	rm -rf .cache tests/output .pytest_cache
