"""restic's JSON-lines output parsed one object at a time (module_utils/restic.py; damage.py consumes the iterator)."""

from __future__ import annotations

import json
import types


from ansible_collections.ledgerguard.recovery.plugins.module_utils import damage, restic

# "\x85" (NEL) and "\u2028" are line breaks for str.splitlines; restic's JSON leaves NEL unescaped in file names
ODD = "/srv/books/c001/凭证\x85二月\u2028.csv"
LS = "\n".join(
    [
        json.dumps(
            {
                "struct_type": "snapshot",
                "id": "a" * 64,
                "time": "2026-11-26T10:00:00Z",
                "tree": "t",
                "paths": ["/srv/books"],
                "hostname": "books01",
            }
        ),
        "restic: some warning that is not JSON",
        json.dumps({"struct_type": "node", "path": "/srv/books/c001", "type": "dir"}),
        json.dumps({"struct_type": "node", "path": ODD, "type": "file", "size": 12}, ensure_ascii=False),
        "{not json",
        json.dumps({"struct_type": "node", "path": "/srv/books/c001/a.csv", "type": "file", "size": 30}) + "\r",
    ]
)


def test_iter_json_lines_is_lazy_and_keeps_odd_names_whole():
    items = restic.iter_json_lines(LS)
    assert isinstance(items, types.GeneratorType)
    parsed = list(items)
    assert [i.get("path") for i in parsed] == [None, "/srv/books/c001", ODD, "/srv/books/c001/a.csv"]
    assert restic.parse_json_lines(LS) == parsed


def test_iter_json_lines_empty():
    assert list(restic.iter_json_lines("")) == []
    assert list(restic.iter_json_lines("\n\n")) == []


def test_parse_ls_from_lines():
    listing = restic.parse_ls(LS)
    assert listing.snapshot.id == "a" * 64
    assert [(n.path, n.size) for n in listing.files] == [(ODD, 12), ("/srv/books/c001/a.csv", 30)]


def test_ls_summary_takes_an_iterator():
    summary = damage.ls_summary(restic.iter_json_lines(LS), ["/srv/books/c001"])
    assert (summary["files"], summary["bytes"], summary["dirs"]) == (2, 42, 1)
    assert set(summary["listing"]) == {ODD, "/srv/books/c001/a.csv"}
