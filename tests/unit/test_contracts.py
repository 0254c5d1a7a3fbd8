"""The contracts between roles (issue 19, docs/contracts.md), checked by reading the source.

Rules:
- A role's private variables are named ``__<role>_...`` (the longest role name wins: ``__backup_verify_x`` belongs to
  backup_verify, not backup). A role's tasks, handlers, vars and templates use no other role's private variables; they
  read other roles only through published results (``restore_results``, ``incident_record``, ...) declared as options
  in their meta/argument_specs.yml. Names with no role prefix (``__fmt``) are loop or task locals and not checked.
- Playbooks only sequence roles: no ``set_fact`` and no role's private variable.
- No Python under src/ or plugins/ manipulates ``sys.path`` (or adds site dirs): the collection and the CLI import each
  other as installed packages.
- Shared argument specs are generated (scripts/gen-argspecs) and in sync; no argument_specs.yml repeats a block.
Comments are not code: YAML ``#`` comment lines and Jinja ``{# #}`` comments are ignored.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir())
PRIVATE = re.compile(r"(?<![A-Za-z0-9_])__([a-z][a-z0-9_]*)")
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
SET_FACT = re.compile(r"^\s*(-\s+)?(ansible\.builtin\.|ansible\.legacy\.)?set_fact\s*:", re.M)
SYS_PATH = re.compile(
    r"\bsys\.path\s*(\.\s*(insert|append|extend|remove|pop|clear)\s*\(|\[[^\]]*\]\s*=|[+]?=(?!=))"
    r"|\bfrom\s+sys\s+import\s+path\b|\bsite\.addsitedir\s*\("
)
WINDOW = 6  # identical consecutive lines that count as a repeated block


def owner(name: str) -> str | None:
    """The role whose private variable ``__<name>`` is, or None for an unprefixed local."""
    candidates = [role for role in ROLES if name.startswith(role + "_")]
    return max(candidates, key=len) if candidates else None


def code_text(path: Path) -> str:
    """The file with YAML comment lines and Jinja comments blanked (line numbers kept)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yml", ".yaml"):
        text = "\n".join("" if line.lstrip().startswith("#") else line for line in text.splitlines())
    return JINJA_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def foreign_reads(role: str) -> list[str]:
    found = []
    base = REPO / "roles" / role
    files = [
        p for d in ("tasks", "handlers", "vars", "templates") for p in sorted((base / d).rglob("*")) if p.is_file()
    ]
    for path in files:
        for number, line in enumerate(code_text(path).splitlines(), 1):
            for name in PRIVATE.findall(line):
                other = owner(name)
                if other is not None and other != role:
                    found.append(f"{path.relative_to(REPO)}:{number}: __{name} (private to role {other})")
    return found


def test_the_rule_knows_each_roles_prefix():
    assert owner("backup_verify_report") == "backup_verify"
    assert owner("backup_made") == "backup"
    assert owner("incident_record") == "incident"
    assert owner("fmt") is None
    assert PRIVATE.findall("{{ hostvars[h].__incident_frozen_at | default('') }} x__no") == ["incident_frozen_at"]


@pytest.mark.parametrize("role", ROLES)
def test_role_reads_no_other_roles_private_variables(role):
    found = foreign_reads(role)
    assert not found, f"role {role} reads other roles' private variables:\n" + "\n".join(found)


def test_playbooks_only_sequence_roles():
    found = []
    for path in sorted((REPO / "playbooks").glob("*.yml")):
        text = code_text(path)
        for number, line in enumerate(text.splitlines(), 1):
            if SET_FACT.match(line):
                found.append(f"{path.relative_to(REPO)}:{number}: set_fact (move it into the role that owns it)")
            for name in PRIVATE.findall(line):
                if owner(name):
                    found.append(f"{path.relative_to(REPO)}:{number}: __{name} (private to role {owner(name)})")
    assert not found, "playbooks do more than sequence roles:\n" + "\n".join(found)


def test_the_patterns_catch_what_they_must():
    assert SET_FACT.match("    - ansible.builtin.set_fact:") and SET_FACT.match("  set_fact:")
    assert not SET_FACT.match("    - name: no set_fact: here")
    for bad in (
        "sys.path.insert(0, str(ROOT))",
        "sys.path.append(x)",
        "sys.path[:0] = [x]",
        "sys.path = [x]",
        "sys.path += [x]",
        "from sys import path",
        "site.addsitedir(x)",
    ):
        assert SYS_PATH.search(bad), bad
    assert not SYS_PATH.search("if sys.path == x: print(sys.path[0])")


def test_no_python_manipulates_sys_path():
    found = []
    for top in ("src", "plugins"):
        for path in sorted((REPO / top).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.lstrip().startswith("#") and SYS_PATH.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "sys.path manipulated (import the installed collection/package instead):\n" + "\n".join(found)


def test_no_play_points_python_at_the_checkout():
    """A role or playbook that sets PYTHONPATH to a folder of this checkout works only from the checkout, never from
    the installed collection (issue 19): the code it needs belongs in the collection or in the installed CLI."""
    found = []
    for top in ("roles", "playbooks"):
        for path in sorted((REPO / top).rglob("*.yml")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "PYTHONPATH" in line and not line.lstrip().startswith("#"):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "PYTHONPATH set by a play:\n" + "\n".join(found)


def test_shared_argument_specs_are_generated_and_in_sync():
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-argspecs"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("role", ROLES)
def test_ledgerguard_clients_is_declared_only_through_the_shared_spec(role):
    path = REPO / "roles" / role / "meta" / "argument_specs.yml"
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s*ledgerguard_clients:\s*(&\w+)?\s*$", line):
            assert "# BEGIN generated ledgerguard_clients" in lines[number - 1], (
                f"{path.relative_to(REPO)}:{number + 1}: ledgerguard_clients written by hand; put the markers "
                "'# BEGIN generated ledgerguard_clients' / '# END generated ledgerguard_clients' there and run "
                "scripts/gen-argspecs"
            )


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_repeat_no_block(role):
    path = REPO / "roles" / role / "meta" / "argument_specs.yml"
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    seen: dict[tuple[str, ...], int] = {}
    repeated = []
    for start in range(len(lines) - WINDOW + 1):
        window = tuple(lines[start : start + WINDOW])
        if any(not line or line.startswith("#") for line in window):
            continue
        first = seen.setdefault(window, start)
        if first != start and start >= first + WINDOW and not (repeated and repeated[-1][1] == start - 1):
            repeated.append((first, start))
        elif repeated and repeated[-1][1] == start - 1 and first != start:
            repeated[-1] = (repeated[-1][0], start)
    assert not repeated, f"{path.relative_to(REPO)} repeats blocks (use an anchor and alias):\n" + "\n".join(
        f"line {start + 1} repeats line {first + 1}: {lines[start]} ..." for first, start in repeated
    )


def ledgerguard_imports(path: Path) -> set[str]:
    """The ledgerguard.* modules a CLI module imports, at any depth of its code (imports inside functions count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ledgerguard":
            if node.module == "ledgerguard":
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ledgerguard."))
    return found


def test_cli_modules_import_each_other_without_a_cycle():
    """The CLI's modules form no import cycle (issue 19: cli and schedule, then cli and survey, imported each other)."""
    folder = REPO / "src" / "ledgerguard"
    graph = {p.stem: ledgerguard_imports(p) & {q.stem for q in folder.glob("*.py")} for p in folder.glob("*.py")}
    assert "survey" in graph["cli"] and "backup" in graph["cli"]  # the walk sees the subcommands cli registers

    def cycle_from(module: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in sorted(graph.get(module, ())):
            if nxt in path:
                return (*path[path.index(nxt) :], nxt)
            found = cycle_from(nxt, (*path, nxt))
            if found:
                return found
        return None

    cycles = {" -> ".join(c) for m in graph if (c := cycle_from(m, (m,)))}
    assert not cycles, "import cycles among src/ledgerguard modules: " + "; ".join(sorted(cycles))
