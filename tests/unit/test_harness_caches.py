"""The test harness's caches (tests/pyboot/sitecustomize.py), each in its own Python process as the tests start them:
what a cache holds is what is then used, a hit gives the same result as a build without it, and a changed source is a
new key."""

from __future__ import annotations

import ast
import hashlib
import json
import marshal
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import PYBOOT, REPO_ROOT

BUILD_PAYLOAD = Path(__file__).parent / "fixtures" / "harness" / "build_payload.py"
MODULE = "ledgerguard.recovery.restic_backup"
COLLECTION_UTILS = "ansible_collections/ledgerguard/recovery/plugins/module_utils/"


def run_python(args: list[str], **caches: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PYBOOT), "LEDGERGUARD_TEST_MODULE_BYTECODE": "",
           "LEDGERGUARD_TEST_MODULE_PAYLOADS": "", **caches}  # fmt: skip
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False, timeout=300)


def build(collections: Path, cache: Path | None) -> dict:
    caches = {"LEDGERGUARD_TEST_MODULE_PAYLOADS": str(cache)} if cache else {}
    res = run_python([str(BUILD_PAYLOAD), MODULE, str(collections)], **caches)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def cached(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


def payloads(cache: Path) -> list[Path]:
    """The payload cache's entries (the folder also keeps the routing metadata, under runtime-meta)."""
    return [p for p in cached(cache) if p.relative_to(cache).parts[0] != "runtime-meta"]


def test_payload_cache_gives_what_ansible_builds_and_a_changed_module_utils_is_a_new_key(tmp_path):
    collection = tmp_path / "collections" / "ansible_collections" / "ledgerguard" / "recovery"
    (collection / "plugins" / "modules").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "plugins" / "module_utils", collection / "plugins" / "module_utils")
    shutil.copy2(REPO_ROOT / "plugins" / "modules" / "restic_backup.py", collection / "plugins" / "modules")
    shutil.copytree(REPO_ROOT / "meta", collection / "meta")
    shutil.copy2(REPO_ROOT / "galaxy.yml", collection)
    collections, cache = tmp_path / "collections", tmp_path / "cache"

    plain = build(collections, None)
    assert plain["module"] == str(collection / "plugins" / "modules" / "restic_backup.py")
    # the collection's own module_utils files in the zip (not the package inits Ansible adds)
    ours = sorted(
        name
        for name in plain["entries"]
        if name.startswith(COLLECTION_UTILS) and (collection / "plugins" / name.split("/plugins/")[1]).is_file()
    )
    assert ours and "ansible/module_utils/basic.py" in plain["entries"]

    first = build(collections, cache)
    assert first == plain
    [entry] = payloads(cache)
    with entry.open("rb") as handle:
        files, metadata = pickle.load(handle)
    assert [name for name, _data in files] == list(plain["entries"])
    assert repr(metadata) == plain["metadata"]

    # What the cache holds is what a later build writes: a marker put into the entry comes out in the zip.
    with entry.open("wb") as handle:
        pickle.dump(([*files, ("ledgerguard-marker.txt", b"from the cache")], metadata), handle)
    hit = build(collections, cache)
    marker = hit["entries"].pop("ledgerguard-marker.txt")
    assert marker == hashlib.sha256(b"from the cache").hexdigest()
    assert hit == plain and payloads(cache) == [entry]

    # A module_utils file of the collection changed: a new key, the new content in the zip, no marker.
    edited = collection / "plugins" / ours[0].split("/plugins/")[1]
    edited.write_bytes(edited.read_bytes() + "\n# 已修改\n".encode())
    after = build(collections, cache)
    assert "ledgerguard-marker.txt" not in after["entries"] and len(payloads(cache)) == 2
    assert after["entries"] == build(collections, None)["entries"]
    assert after["entries"][ours[0]] != plain["entries"][ours[0]]


def zip_source_name() -> str:
    """sitecustomize.ZIP_SOURCE_NAME, read from the file (importing it here would install its hooks in pytest)."""
    tree = ast.parse((PYBOOT / "sitecustomize.py").read_text(encoding="utf-8"))
    [value] = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ZIP_SOURCE_NAME"]
    return value


def test_bytecode_cache_is_used_for_zipped_imports_and_keyed_by_the_source(tmp_path):
    cache = tmp_path / "bytecode"

    def run(value: str, archive: Path) -> subprocess.CompletedProcess:
        script = f"import sys; sys.path.insert(0, {str(archive)!r}); import lgmod; print(lgmod.VALUE); lgmod.boom()"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("lgmod.py", f"VALUE = {value}\n\n\ndef boom():\n    raise RuntimeError('boom')\n")
        return run_python(["-c", script], LEDGERGUARD_TEST_MODULE_BYTECODE=str(cache))

    first = run("'一'", tmp_path / "lib.zip")
    assert first.stdout == "一\n" and f'File "{tmp_path}/lib.zip/lgmod.py", line 5, in boom' in first.stderr
    [entry] = cached(cache)

    # The same source under another path (each module process has its own payload folder): the kept code, named
    # after this path down to the nested function's frame; an ASCII path by marshal's bytes, another by a copy.
    elsewhere = run("'一'", tmp_path / "other.zip")
    assert elsewhere.stdout == "一\n" and f'File "{tmp_path}/other.zip/lgmod.py", line 5, in boom' in elsewhere.stderr
    (tmp_path / "其他").mkdir()
    again = run("'一'", tmp_path / "其他" / "lib.zip")
    assert again.stdout == "一\n" and f'File "{tmp_path}/其他/lib.zip/lgmod.py", line 5, in boom' in again.stderr
    assert cached(cache) == [entry]

    planted = compile("VALUE = 'from the cache'\n\n\ndef boom():\n    raise KeyError(7)\n", zip_source_name(), "exec")
    entry.write_bytes(marshal.dumps(marshal.dumps(planted)))
    from_cache = run("'一'", tmp_path / "lib.zip")
    assert from_cache.stdout == "from the cache\n"
    assert (
        f'File "{tmp_path}/lib.zip/lgmod.py", line 5, in boom' in from_cache.stderr
        and "KeyError: 7" in from_cache.stderr
    )

    changed = run("'二'", tmp_path / "lib.zip")
    assert changed.stdout == "二\n" and f'File "{tmp_path}/lib.zip/lgmod.py", line 5, in boom' in changed.stderr
    assert len(cached(cache)) == 2


ROUTING = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader(sys.argv[1:])
from ansible.utils.collection_loader._collection_finder import _get_collection_metadata
print(json.dumps({name: _get_collection_metadata(name) for name in ("ansible.builtin", "lgtest.routing")}))
"""


def test_runtime_metadata_cache_gives_what_ansible_parses_and_a_changed_file_is_a_new_key(tmp_path):
    import ansible
    import yaml

    collection = tmp_path / "collections" / "ansible_collections" / "lgtest" / "routing"
    (collection / "meta").mkdir(parents=True)
    runtime = collection / "meta" / "runtime.yml"
    runtime.write_text(
        "requires_ansible: '>=2.19'\nplugin_routing:\n  modules:\n    旧名: {redirect: lgtest.routing.new}\n"
    )
    cache = tmp_path / "cache"

    def routing(with_cache: bool) -> dict:
        res = run_python(
            ["-c", ROUTING, str(tmp_path / "collections")],
            LEDGERGUARD_TEST_MODULE_PAYLOADS=str(cache) if with_cache else "",
        )
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    plain = routing(False)
    assert plain["lgtest.routing"]["plugin_routing"]["modules"]["旧名"] == {"redirect": "lgtest.routing.new"}
    assert routing(True) == plain
    builtin = (Path(ansible.__file__).parent / "config" / "ansible_builtin_runtime.yml").read_bytes()
    entry = cache / "runtime-meta" / hashlib.sha256(builtin).hexdigest()[:2] / hashlib.sha256(builtin).hexdigest()
    with entry.open("rb") as handle:
        assert marshal.load(handle) == yaml.load(builtin, Loader=yaml.CBaseLoader)
    assert len(cached(cache / "runtime-meta")) == 2

    # What the cache holds is what Ansible then routes with: a marker put into the entry comes out.
    kept = marshal.loads(entry.read_bytes())
    kept["plugin_routing"]["modules"]["lg_marker"] = {"redirect": "ansible.builtin.ping"}
    entry.write_bytes(marshal.dumps(kept))
    hit = routing(True)
    assert hit["ansible.builtin"]["plugin_routing"]["modules"].pop("lg_marker") == {"redirect": "ansible.builtin.ping"}
    assert hit == plain

    # A changed runtime.yml: a new key, and its new routing.
    runtime.write_text(runtime.read_text(encoding="utf-8").replace("lgtest.routing.new", "lgtest.routing.newer"))
    after = routing(True)
    assert after["lgtest.routing"]["plugin_routing"]["modules"]["旧名"] == {"redirect": "lgtest.routing.newer"}
    assert len(cached(cache / "runtime-meta")) == 3


COLLECTION_CODE = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader(sys.argv[1:])
from ansible_collections.lgtest.code.plugins.plugin_utils import lgcode
try:
    lgcode.boom()
except RuntimeError as exc:
    print(json.dumps({"value": lgcode.VALUE, "file": exc.__traceback__.tb_next.tb_frame.f_code.co_filename}))
"""


def test_collection_code_cache_gives_what_the_loader_compiles_and_a_changed_source_is_a_new_key(tmp_path):
    folder = tmp_path / "collections" / "ansible_collections" / "lgtest" / "code" / "plugins" / "plugin_utils"
    folder.mkdir(parents=True)
    source = folder / "lgcode.py"
    cache = tmp_path / "cache"

    def load(value: str, with_cache: bool = True) -> dict:
        source.write_text(f"VALUE = {value}\n\n\ndef boom():\n    raise RuntimeError('boom')\n", encoding="utf-8")
        res = run_python(
            ["-c", COLLECTION_CODE, str(tmp_path / "collections")],
            LEDGERGUARD_TEST_MODULE_PAYLOADS=str(cache) if with_cache else "",
        )
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    plain = load("'账套'", with_cache=False)
    assert plain == {"value": "账套", "file": str(source)}
    assert load("'账套'") == plain
    [entry] = cached(cache / "collection-code")

    # What the cache holds is what the loader then runs.
    entry.write_bytes(
        marshal.dumps(compile("VALUE = 'kept'\ndef boom():\n    raise RuntimeError\n", str(source), "exec"))
    )
    assert load("'账套'") == {"value": "kept", "file": str(source)}

    # A changed source: a new key, and its new code.
    assert load("'凭证'") == {"value": "凭证", "file": str(source)}
    assert len(cached(cache / "collection-code")) == 2


TYPE_HINTS = """
import json, typing
calls = []
real = typing.get_type_hints
typing.get_type_hints = lambda obj, *a, **k: calls.append(obj.__name__) or real(obj, *a, **k)
from ansible.module_utils._internal import _datatag, _messages
calls.clear()  # the classes' definitions asked too (their validation); from here on, the deserialization's
info = _messages.PluginInfo(resolved_name="ledgerguard.recovery.restic_backup", type=_messages.PluginType.MODULE)
first = _messages.PluginInfo._from_dict(info._as_dict())
second = _messages.PluginInfo._from_dict(info._as_dict())
hints = sorted(_datatag.t.get_type_hints(_messages.PluginInfo))
out = {"view": type(_datatag.t).__name__, "kept": _datatag.t.__name__.endswith(".kept_type_hints"),
       "same": first == second == info, "calls": calls, "hints": hints}
print(json.dumps({**out, "cast": _datatag.t.cast is typing.cast}))
"""


def test_type_hints_of_ansibles_serializable_dataclasses_are_asked_once_per_class():
    def run(**caches: str) -> dict:
        res = run_python(["-c", TYPE_HINTS], **caches)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    plain = run()
    assert plain["view"] == "module" and not plain["kept"] and plain["same"] is True
    assert plain["calls"] == ["PluginInfo", "PluginInfo", "PluginInfo"]  # at every _from_dict, as Ansible does
    kept = run(LEDGERGUARD_TEST_MODULE_BYTECODE="/nonexistent/lg-bytecode")
    assert kept["view"] == "module" and kept["kept"] and kept["same"] is True and kept["cast"] is True
    assert kept["calls"] == ["PluginInfo"]  # once, then from the view's own answer
    assert kept["hints"] == plain["hints"] and {"resolved_name", "type"} <= set(plain["hints"])
