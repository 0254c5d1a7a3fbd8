#!/usr/bin/env python3
"""Generate the reference docs from the collection's own documentation (issue 19, "Docs from the source").

Writes, relative to ``--out`` (default: the checkout):

- ``docs/modules.md``: every module under ``plugins/modules/``, from its DOCUMENTATION, EXAMPLES and RETURN as
  ``ansible-doc`` loads them (doc fragments merged): options, attributes, notes, examples, return values. The
  hand-written text above the generated marker of the committed file (the shared restic engine) is kept.
- ``docs/filters.md``: every filter of ``plugins/filter/``, from the documentation ``ansible-doc -t filter`` shows
  (the filter's sidecar ``plugins/filter/<name>.yml``, or the DOCUMENTATION of a one-filter file).
- ``roles/<role>/README.md``: each role's entry points and options from ``meta/argument_specs.yml``, below the
  generated marker; the hand-written introduction above it is kept.

``make docs`` runs it; ``tests/unit/test_docs_generated.py`` regenerates into a temporary folder and fails when the
committed files differ. ``--check`` does the same from the command line (exit 1 and a diff on drift).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "ledgerguard.recovery"
MARKER = "<!-- Generated below this line by scripts/gen-docs.py (make docs); edit the source, not this text. -->"

os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
os.environ.setdefault("ANSIBLE_HOME", str(ROOT / ".cache" / "ansible-home"))

import yaml  # noqa: E402 (the Ansible environment above must be set before Ansible is imported)
from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.list import list_plugins  # noqa: E402
from ansible.plugins.loader import filter_loader, fragment_loader, init_plugin_loader, module_loader  # noqa: E402
from ansible.utils.plugin_docs import get_plugin_docs  # noqa: E402

# Ansible's documentation markup -> Markdown.
_MARKUP = re.compile(r"\b(L|U|I|B|C|M|O|V|RV|E|P)\(((?:[^()\\]|\\.)*)\)|HORIZONTALLINE")


def _markup_one(match: re.Match) -> str:
    cmd, text = match.group(1), match.group(2)
    if cmd is None:
        return "---"
    text = re.sub(r"\\(.)", r"\1", text)
    if cmd == "B":
        return f"**{text}**"
    if cmd == "I":
        return f"*{text}*"
    if cmd == "U":
        return f"<{text}>"
    if cmd == "L":
        label, _, url = text.rpartition(",")
        return f"[{label.strip()}]({url.strip()})"
    if cmd == "P":
        return f"`{text.split('#', 1)[0]}`"
    return f"`{text}`"


def markup(text: Any) -> str:
    """One paragraph of Ansible markup as Markdown."""
    return _MARKUP.sub(_markup_one, str(text).strip())


def paragraphs(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    items = value if isinstance(value, list) else [value]
    return [markup(v) for v in items]


def cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plain(value: Any) -> Any:
    """Ansible's tagged containers and strings as plain JSON-able Python."""
    return json.loads(json.dumps(value, default=str))


def literal(value: Any) -> str:
    if value is None:
        return ""
    value = plain(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`" if text != "" else '`""`'


def option_rows(options: dict[str, Any], prefix: str = "") -> list[str]:
    """Table rows for options (and their suboptions, named parent.child), sorted by name."""
    rows = []
    for name in sorted(options or {}):
        spec = options[name] or {}
        full = f"{prefix}{name}"
        kind = spec.get("type", "str")
        if spec.get("elements"):
            kind = f"{kind} of {spec['elements']}"
        notes = paragraphs(spec.get("description"))
        if spec.get("aliases"):
            notes.append("Aliases: " + ", ".join(f"`{a}`" for a in spec["aliases"]) + ".")
        choices = spec.get("choices")
        if isinstance(choices, dict):  # documented choices: {value: meaning}
            choices = list(choices)
        row = [
            f"`{full}`",
            kind,
            "yes" if spec.get("required") else "",
            literal(spec.get("default")),
            ", ".join(literal(c) for c in choices or []),
            " ".join(notes),
        ]
        rows.append("| " + " | ".join(cell(c) for c in row) + " |")
        sub = spec.get("suboptions") or spec.get("options")
        if sub:
            rows.extend(option_rows(sub, full + "."))
    return rows


def options_table(options: dict[str, Any]) -> list[str]:
    if not options:
        return ["None."]
    return [
        "| option | type | required | default | choices | description |",
        "|---|---|---|---|---|---|",
        *option_rows(options),
    ]


def return_rows(values: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for name in sorted(values or {}):
        spec = values[name] or {}
        full = f"{prefix}{name}"
        kind = spec.get("type", "")
        if spec.get("elements"):
            kind = f"{kind} of {spec['elements']}"
        text = " ".join(paragraphs(spec.get("description")))
        sample = spec.get("sample")
        if sample is not None and not isinstance(sample, (dict, list)):
            text += f" Example: {literal(sample)}."
        rows.append("| " + " | ".join(cell(c) for c in (f"`{full}`", kind, spec.get("returned", ""), text)) + " |")
        if spec.get("contains"):
            rows.extend(return_rows(spec["contains"], full + "."))
    return rows


def return_table(values: dict[str, Any] | None) -> list[str]:
    if not values:
        return []
    return ["| key | type | returned | description |", "|---|---|---|---|", *return_rows(values)]


def code_block(text: str | None) -> list[str]:
    text = (text or "").strip("\n")
    if not text.strip():
        return []
    return ["```yaml", text.rstrip(), "```"]


def _tidy(lines: list[str]) -> str:
    """The lines as one text: no run of blank lines outside code blocks, one newline at the end."""
    out: list[str] = []
    in_code = False
    for line in "\n".join(lines).split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and not line.strip() and out and not out[-1].strip():
            continue
        out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


def load_docs(kind: str, fqcn: str) -> tuple[dict, str, dict]:
    loader = module_loader if kind == "module" else filter_loader
    doc, examples, returns, _metadata = get_plugin_docs(fqcn, kind, loader, fragment_loader, False)
    return plain(doc or {}), str(examples or ""), plain(returns or {})


def collection_plugins(kind: str) -> list[str]:
    """Short names of the collection's plugins of one kind that live in this checkout."""
    found = list_plugins(kind, COLLECTION)
    plugin_dir = (ROOT / "plugins" / ("modules" if kind == "module" else kind)).resolve()
    names = []
    for fqcn, (path, _obj) in found.items():
        if Path(os.fsdecode(path)).resolve().parent == plugin_dir:
            names.append(fqcn.rsplit(".", 1)[1])
    return sorted(names)


def hand_part(path: Path, default: str) -> str:
    """The hand-written text above the marker of a committed file (or ``default`` for a new file)."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if MARKER in text:
            return text.split(MARKER, 1)[0].rstrip("\n") + "\n"
        return text.rstrip("\n") + "\n"
    return default


def render_modules(errors: list[str]) -> str:
    names = collection_plugins("module")
    hand = hand_part(
        ROOT / "docs" / "modules.md",
        f"# Module reference\n\nThe modules of `{COLLECTION}`.\n",
    )
    out = [hand, MARKER, "", "## Modules", "", "| module | what it does |", "|---|---|"]
    docs = {}
    for name in names:
        try:
            docs[name] = load_docs("module", f"{COLLECTION}.{name}")
        except AnsibleError as exc:
            errors.append(f"module {name}: its documentation does not load: {' '.join(str(exc).split())}")
            docs[name] = ({"short_description": "(documentation does not load)"}, "", {})
        out.append(f"| [`{name}`](#{name}) | {cell(markup(docs[name][0].get('short_description', '')))} |")
    for name in names:
        doc, examples, returns = docs[name]
        out += ["", f"## {name}", "", f"`{COLLECTION}.{name}`: {markup(doc.get('short_description', ''))}", ""]
        for para in paragraphs(doc.get("description")):
            out += [para, ""]
        if doc.get("requirements"):
            out += ["Requirements: " + "; ".join(paragraphs(doc["requirements"])) + ".", ""]
        out += ["### Options", "", *options_table(doc.get("options") or {}), ""]
        attributes = doc.get("attributes") or {}
        if attributes:
            out += ["### Attributes", "", "| attribute | support | description |", "|---|---|---|"]
            for attr in sorted(attributes):
                spec = attributes[attr] or {}
                row = (f"`{attr}`", spec.get("support", ""), " ".join(paragraphs(spec.get("description"))))
                out.append("| " + " | ".join(cell(c) for c in row) + " |")
            out.append("")
        notes = paragraphs(doc.get("notes"))
        if notes:
            out += ["### Notes", "", *[f"- {n}" for n in notes], ""]
        if examples.strip():
            out += ["### Examples", "", *code_block(examples), ""]
        if returns:
            out += ["### Return values", "", *return_table(returns), ""]
    return _tidy(out)


def filter_docs(name: str) -> tuple[dict, str, dict, str]:
    """A filter's documentation as ansible-doc shows it, and where it comes from.

    A file holding several filters with one in-file DOCUMENTATION shows that one for each of its filters; then the
    filter's own sidecar (``plugins/filter/<name>.yml``) is read directly and the difference is reported.
    """
    try:
        doc, examples, returns = load_docs("filter", f"{COLLECTION}.{name}")
    except AnsibleError:  # no documentation at all
        doc, examples, returns = {}, "", {}
    if doc.get("name") == name:
        return doc, examples, returns, ""
    sidecar = ROOT / "plugins" / "filter" / f"{name}.yml"
    if sidecar.exists():
        data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
        doc = data.get("DOCUMENTATION") or {}
        returns = data.get("RETURN") or {}
        examples = data.get("EXAMPLES") or ""
        if isinstance(doc, str):
            doc = yaml.safe_load(doc) or {}
        if isinstance(returns, str):
            returns = yaml.safe_load(returns) or {}
        shown = "no documentation" if not doc else "another filter's documentation"
        return doc, examples, returns, f"ansible-doc shows {shown} for {name}: sidecar {sidecar.name} is shadowed"
    return {}, "", {}, f"{name} has no documentation of its own (add plugins/filter/{name}.yml)"


def render_filters(problems: list[str]) -> str:
    names = collection_plugins("filter")
    out = [
        "# Filter reference",
        "",
        f"The filters of `{COLLECTION}` (`plugins/filter/`), from their own documentation: "
        f"`ansible-doc -t filter {COLLECTION}.<name>` shows the same.",
        "",
        MARKER,
        "",
        "| filter | what it does | file |",
        "|---|---|---|",
    ]
    docs = {}
    for name in names:
        docs[name] = filter_docs(name)
        if docs[name][3]:
            problems.append(docs[name][3])
        source = _filter_file(name)
        out.append(f"| [`{name}`](#{name}) | {cell(markup(docs[name][0].get('short_description', '')))} | `{source}` |")
    for name in names:
        doc, examples, returns, problem = docs[name]
        out += ["", f"## {name}", "", f"`{COLLECTION}.{name}`: {markup(doc.get('short_description', ''))}", ""]
        if "is shadowed" in problem:
            out += [
                f"*`ansible-doc` does not show this text yet: the DOCUMENTATION inside `{_filter_file(name)}` takes "
                f"precedence over the sidecar `plugins/filter/{name}.yml`.*",
                "",
            ]
        for para in paragraphs(doc.get("description")):
            out += [para, ""]
        if doc.get("positional"):
            out += [f"Positional arguments: `{doc['positional']}`.", ""]
        options = doc.get("options") or {}
        out += ["### Input and arguments", "", *options_table(options), ""]
        if examples.strip():
            out += ["### Examples", "", *code_block(examples), ""]
        if returns:
            out += ["### Returns", "", *return_table(returns), ""]
    return _tidy(out)


_FILTER_FILES: dict[str, str] = {}


def _filter_file(name: str) -> str:
    if not _FILTER_FILES:
        for fqcn, (path, _obj) in list_plugins("filter", COLLECTION).items():
            _FILTER_FILES[fqcn.rsplit(".", 1)[1]] = "plugins/filter/" + Path(os.fsdecode(path)).name
    return _FILTER_FILES.get(name, "")


def render_role(role: Path) -> str:
    spec_path = role / "meta" / "argument_specs.yml"
    specs = (yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}).get("argument_specs") or {}
    hand = hand_part(role / "README.md", f"# {COLLECTION}.{role.name}\n")
    out = [hand, MARKER, "", "## Entry points", ""]
    entry_names = sorted(specs, key=lambda n: (n != "main", n))
    out += [f"- [`{n}`](#entry-point-{n}): {markup(specs[n].get('short_description', ''))}" for n in entry_names]
    for name in entry_names:
        entry = specs[name] or {}
        out += ["", f"### Entry point `{name}`", ""]
        if name == "main":
            out += [f"Role `{COLLECTION}.{role.name}`.", ""]
        else:
            out += [f"Role `{COLLECTION}.{role.name}` with `tasks_from: {name}`.", ""]
        for para in paragraphs(entry.get("description")):
            out += [para, ""]
        out += ["| option | type | required | default | choices | description |", "|---|---|---|---|---|---|"]
        rows = option_rows(entry.get("options") or {})
        out += rows if rows else ["| (none) | | | | | |"]
    return _tidy(out)


def generate(out_root: Path) -> tuple[dict[Path, str], list[str], list[str]]:
    """Render every generated file; returns {path relative to the checkout: text}, the problems and the errors.

    Problems are filters whose documentation ansible-doc does not show; errors are documentation that does not load.
    """
    problems: list[str] = []
    errors: list[str] = []
    files = {Path("docs/modules.md"): render_modules(errors), Path("docs/filters.md"): render_filters(problems)}
    for role in sorted((ROOT / "roles").iterdir()):
        if (role / "meta" / "argument_specs.yml").exists():
            files[Path("roles") / role.name / "README.md"] = render_role(role)
    for rel, text in files.items():
        target = out_root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return files, problems, errors


def drift(files: dict[Path, str]) -> list[str]:
    """Unified diffs between the committed files and freshly generated text (empty when in step)."""
    diffs = []
    for rel, text in files.items():
        committed = ROOT / rel
        old = committed.read_text(encoding="utf-8") if committed.exists() else ""
        if old != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{rel} (committed)",
                        f"{rel} (generated)",
                        n=1,
                    )
                )
                or f"{rel}: missing\n"
            )
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, help="write under this folder instead of the checkout")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff when docs drifted")
    args = parser.parse_args(argv)
    init_plugin_loader()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            files, problems, errors = generate(Path(tmp))
        diffs = drift(files)
        for problem in problems:
            print(f"gen-docs: warning: {problem}", file=sys.stderr)
        for error in errors:
            print(f"gen-docs: error: {error}", file=sys.stderr)
        if errors:
            return 1
        if diffs:
            sys.stdout.write("".join(diffs))
            print("gen-docs: the generated docs differ from the sources; run `make docs` and commit", file=sys.stderr)
            return 1
        return 0
    files, problems, errors = generate(args.out or ROOT)
    for problem in problems:
        print(f"gen-docs: warning: {problem}", file=sys.stderr)
    print(f"gen-docs: wrote {len(files)} files under {args.out or ROOT}")
    for error in errors:
        print(f"gen-docs: error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
