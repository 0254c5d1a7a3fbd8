"""Test harness only: work that every Ansible run of the tests repeats, kept across runs (five caches, below).

tests/conftest.py puts this folder on PYTHONPATH and names the cache folders in LEDGERGUARD_TEST_MODULE_BYTECODE and
LEDGERGUARD_TEST_MODULE_PAYLOADS for every pytest run (scripts/molecule.sh names the second for Molecule's
controller), so the Python processes they start import this at start-up (site.py imports ``sitecustomize``). Set a
variable empty to run without that cache.

1. The bytecode of the Python that Ansible's modules import from their zipped payload (module processes).

Why: an Ansible module runs as ``python AnsiballZ_<name>.py``, which imports ansible.module_utils.basic, its
imports and the collection's module_utils from a zip file. zipimport never writes bytecode, so every module process
compiles all of that source (about 410 KB of Ansible's, up to 240 KB of ours) again, and Python 3.11's
``zipimporter.get_filename`` compiles each module a second time just to name its file. The integration tests start
thousands of module processes: compiling was about half of their CPU (py-spy over the 20-host incident).

What it does: it wraps ``zipimport._compile_source`` (the one place zipimport compiles). The code object of a source
text is kept in the cache folder under the SHA-256 of Python's bytecode magic number and the source bytes, and a later
compile of the same text loads it (marshal) and gives it the file name of this import (the code is kept compiled
under a fixed name, ZIP_SOURCE_NAME, and that name's bytes in marshal's data are replaced by the import's path before
loading: the one string every nested code object refers to). A changed source is a new key,
so it is compiled as before; the module code that runs is the same. Nothing changes when the variable is unset, and a
cache that cannot be read or written is skipped (the source is compiled, as without it). Modules in the Molecule
containers, and the product outside the tests, run as Ansible runs them.

2. The module_utils part of each module's payload (ansible-playbook and its workers).

Why: before Ansible first sends a module in a run, ``module_common.recursive_finder`` parses the module and every
module_utils file it imports, transitively (54 files for ``ansible.builtin.stat``, 73 for ``restic_backup``), to
find what goes into the payload's zip: 0.27 to 0.65 CPU s per module on this machine under load. Ansible keeps the
result in a folder of that run only, and the tests start hundreds of runs of the same modules.

What it does: it wraps ``recursive_finder``. Its result (the files it put in the zip, and the module's metadata) is
kept under the SHA-256 of the module's source and name, Ansible's version and installation, the module_utils folders
Ansible searches, and the content of every collection's module_utils outside this Python's installation (this
checkout's among them); a later build with the same key writes the same files into the zip and returns the same
metadata. Any change to a module or a module_utils file of the checkout is a new key. Runs with the debugger or
coverage extensions are built as without it. Nothing changes when the variable is unset; a cache that cannot be read
or written is skipped.

3. The collections' routing metadata (every Ansible command: ansible-playbook, ansible-doc, ansible-lint's syntax
checks), in the same folder as 2, under ``runtime-meta``.

Why: each Ansible process parses ansible.builtin's ``config/ansible_builtin_runtime.yml`` (376 KB of redirects) when
its collection loader first routes a name, and each collection's ``meta/runtime.yml`` when it is first used: 98 ms of
CPU for the builtin one with libyaml on this machine, about a tenth of ansible-playbook's start.

What it does: it wraps the collection loader's ``_meta_yml_to_dict`` (Ansible's hook for this, which its docstring
says other tools may replace to cache): the dict parsed from a file's bytes is kept under their SHA-256 and loaded with
marshal (2.3 ms for the builtin one). Changed bytes are a new key.

4. The type hints of Ansible's serializable dataclasses, once per class and process (every Python process the tests
start, with either variable set).

Why: Ansible's ``AnsibleSerializableDataclass._from_dict`` asks ``typing.get_type_hints`` for the class at every call
(its source marks it "optimize this"), which compiles every string annotation of the class and its bases again:
0.4 ms a call, 18 calls in each module process (two per class), and in the controller's workers for every module
result that carries Ansible's tagged objects (13 % of ansible-playbook's CPU in a py-spy profile of the 20-host
incident).

What it does: the ``t`` (typing) that module uses is replaced by a copy of it whose ``get_type_hints(cls)`` keeps its
answer per class; every other name is typing's own. A dataclass's annotations do not change once it is defined.

5. The bytecode of the collections' controller code (ansible-playbook's workers), in the same folder as 2, under
``collection-code``.

Why: Ansible's collection loader compiles a collection's Python from source at every import and writes no bytecode,
and each task runs in a new worker forked from ansible-playbook, which imports the action plugin it runs, the filter
plugins its templates use and what they import (plugin_utils, module_utils) again: compiling this collection's
action plugins, plugin_utils and filters takes 146 ms of CPU, its module_utils 179 ms, and the incident's workers run
one of its action plugins in about half of their tasks (3 % of the samples of a py-spy profile of test_incident.py were
that compile).

What it does: the loader's ``compile`` (a name the loader module looks up at each import) is replaced by one that
keeps the code object of an exec-mode compile of a source text under the SHA-256 of Python's bytecode magic number,
the file name and the source bytes. The file name is the source's real path, the same at every import, so the kept
code is the compiled one. A changed source is a new key.
"""

from __future__ import annotations

import os

_CACHE = os.environ.get("LEDGERGUARD_TEST_MODULE_BYTECODE", "")
_PAYLOADS = os.environ.get("LEDGERGUARD_TEST_MODULE_PAYLOADS", "")


def _store(path: str, dump, value) -> None:
    """Write value to path with dump(value, handle) through a temporary file (readers never see half of it); a value
    dump cannot write (marshal's ValueError) or a folder that cannot be written leaves nothing."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as handle:
            dump(value, handle)
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _kept(folder: str, key: bytes, build):
    """The value kept in folder under the SHA-256 of key (marshal), else build()'s, kept there for the next process."""
    import hashlib
    import marshal

    digest = hashlib.sha256(key).hexdigest()
    path = os.path.join(folder, digest[:2], digest)
    try:
        with open(path, "rb") as handle:
            return marshal.load(handle)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    value = build()
    _store(path, marshal.dump, value)
    return value


# The file name the cached code is compiled under (the header, 1.): each module process unzips its payload into a new
# temporary folder, so the same source is imported under a new path every time.
ZIP_SOURCE_NAME = "<ledgerguard-test-zipped-source>"


def _install(cache: str) -> None:
    # Only what the interpreter has loaded already, or builtins: this runs at the start of every Python process the
    # tests start, most of them module processes (hashlib is imported at the first compile, which basic.py's imports
    # bring about, and basic.py imports hashlib anyway).
    import marshal
    import zipimport
    from _frozen_importlib_external import MAGIC_NUMBER

    compile_source = zipimport._compile_source
    code_type = type(_install.__code__)
    seen: dict[bytes, object] = {}  # this process: get_filename's compile, then get_code's, of the same module
    short = len(ZIP_SOURCE_NAME).to_bytes(1, "little") + ZIP_SOURCE_NAME.encode()
    # marshal's types of a short ASCII string, plain and interned, each also with its reference flag (0x80).
    kinds = (b"z", b"Z", bytes([ord("z") | 0x80]), bytes([ord("Z") | 0x80]))

    def renamed(code, filename: str):
        consts = tuple(renamed(c, filename) if isinstance(c, code_type) else c for c in code.co_consts)
        return code.replace(co_filename=filename, co_consts=consts)

    def named(blob: bytes, filename: str):
        """The code in blob (marshal's bytes of code compiled as ZIP_SOURCE_NAME) as compiled from filename. The
        name is one string object that every nested code object refers to (marshal writes it once, then references
        by index), so giving its bytes the new name renames them all: one replace instead of a copy of each of the
        module's code objects (about 7 ms of the CPU of each module process)."""
        if filename.isascii() and len(filename) < 256:
            new = len(filename).to_bytes(1, "little") + filename.encode()
            for kind in kinds:
                blob = blob.replace(kind + short, kind + new)
            code = marshal.loads(blob)
            if code.co_filename == filename:
                return code
        return renamed(marshal.loads(blob), filename)

    def cached_compile(pathname, source):
        key = MAGIC_NUMBER + bytes(source)
        code = seen.get(key)
        if code is None or code.co_filename != pathname:
            blob = _kept(cache, b"named\0" + key, lambda: marshal.dumps(compile_source(ZIP_SOURCE_NAME, source)))
            if not isinstance(blob, bytes):  # not what this harness keeps: compiled as without the cache
                blob = marshal.dumps(compile_source(ZIP_SOURCE_NAME, source))
            code = seen[key] = named(blob, pathname)
        return code

    zipimport._compile_source = cached_compile


def _module_utils_digest(module_common, prefix: str) -> bytes:
    """What a payload's module_utils part depends on besides the module itself: Ansible's version and installation,
    the module_utils folders Ansible searches, and the content of every collection's module_utils folder outside this
    Python's installation (files under it change only with a new install, which changes its folder's time)."""
    import hashlib

    import ansible
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    digest = hashlib.sha256()
    site = os.path.dirname(os.path.dirname(ansible.__file__))
    digest.update(f"{ansible.__version__}\0{site}\0{os.stat(site).st_mtime_ns}\0".encode())
    folders = [p for p in module_common.module_utils_loader._get_paths(subdirs=False) if os.path.isdir(p)]
    for root in AnsibleCollectionConfig.collection_paths or ():
        base = os.path.join(root, "ansible_collections")
        if os.path.realpath(base).startswith(prefix) or not os.path.isdir(base):
            folders.append(base)
            continue
        for namespace in sorted(os.listdir(base)):
            for name in sorted(os.listdir(os.path.join(base, namespace))):
                folders.append(os.path.join(base, namespace, name, "plugins", "module_utils"))
    for folder in folders:
        digest.update(f"{folder}\0".encode())
        if os.path.realpath(folder).startswith(prefix):
            continue
        for here, dirs, files in os.walk(folder):
            dirs.sort()
            for file in sorted(files):
                if file.endswith(".py"):
                    with open(os.path.join(here, file), "rb") as handle:
                        digest.update(f"{here}/{file}\0".encode() + handle.read() + b"\0")
    return digest.digest()


def _cache_payloads(module_common, cache: str) -> None:
    """Wrap module_common.recursive_finder: its zip entries and metadata kept across runs (the header says why)."""
    import hashlib
    import pickle
    import sys

    finder = module_common.recursive_finder
    prefix = os.path.realpath(sys.prefix) + os.sep

    class Recording:
        """The payload's zip, seen through: the entries written into it are kept in order."""

        def __init__(self, zf):
            self._zf = zf
            self.entries: list[tuple[str, bytes]] = []

        def writestr(self, zinfo, data, *args, **kwargs):
            self.entries.append((zinfo.filename, data.encode() if isinstance(data, str) else bytes(data)))
            return self._zf.writestr(zinfo, data, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._zf, name)

    def cached_finder(name, module_fqn, module_data, zf, date_time, extension_manager):
        if extension_manager.extension_names:
            return finder(name, module_fqn, module_data, zf, date_time, extension_manager)
        source = module_data.encode() if isinstance(module_data, str) else bytes(module_data)
        try:
            world = _module_utils_digest(module_common, prefix)
        except (OSError, ImportError, AttributeError):  # what it depends on cannot be told: built as without it
            return finder(name, module_fqn, module_data, zf, date_time, extension_manager)
        key = hashlib.sha256(f"{name}\0{module_fqn}\0".encode() + world + source).hexdigest()
        path = os.path.join(cache, key[:2], key)
        try:
            with open(path, "rb") as handle:
                entries, metadata = pickle.load(handle)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError, ImportError):
            recording = Recording(zf)
            metadata = finder(name, module_fqn, module_data, recording, date_time, extension_manager)
            _store(path, pickle.dump, (recording.entries, metadata))
            return metadata
        for filename, data in entries:
            zf.writestr(module_common._make_zinfo(filename, date_time, zf=zf), data)
        return metadata

    module_common.recursive_finder = cached_finder


def _cache_runtime_meta(collection_finder, cache: str) -> None:
    """Wrap the collection loader's _meta_yml_to_dict: the dict of a runtime.yml kept across runs (the header says
    why)."""
    parse = collection_finder._meta_yml_to_dict
    if parse is None:  # Ansible could not import it, and says so when it is needed
        return
    folder = os.path.join(cache, "runtime-meta")

    def cached_parse(yaml_string_data, content_id):
        # libyaml's BaseLoader gives dicts, lists and strings, which marshal keeps (anything else is not kept)
        data = yaml_string_data.encode() if isinstance(yaml_string_data, str) else bytes(yaml_string_data)
        return _kept(folder, data, lambda: parse(yaml_string_data, content_id))

    collection_finder._meta_yml_to_dict = cached_parse


def _cache_collection_code(collection_finder, cache: str) -> None:
    """Give the collection loader a compile that keeps what it compiles across processes (the header, 5., says why)."""
    import builtins

    from _frozen_importlib_external import MAGIC_NUMBER

    folder = os.path.join(cache, "collection-code")
    real = builtins.compile

    def compile(source, filename, mode, flags=0, dont_inherit=False, optimize=-1):  # noqa: A001 (the loader's name)
        # Only the loader's own call (exec, no flags, inheriting nothing from the caller) is kept; anything else is
        # compiled as asked.
        if mode != "exec" or flags or not dont_inherit or optimize != -1 or not isinstance(source, (str, bytes)):
            return real(source, filename, mode, flags, dont_inherit, optimize)
        data = source.encode() if isinstance(source, str) else bytes(source)
        key = MAGIC_NUMBER + f"{filename}\0".encode() + data
        return _kept(folder, key, lambda: real(source, filename, mode, flags, dont_inherit, optimize))

    collection_finder.compile = compile


def _memo_type_hints(datatag) -> None:
    """Give the datatag module a copy of its typing module whose get_type_hints(cls) is kept per class (the header
    says why). A copy of the module's names, not a proxy: the module reads t.cast and others in its hot paths, and a
    module's attribute costs no more than before."""
    import types
    import typing

    own = getattr(datatag, "t", None)  # Ansible's compat.typing, which is typing's names
    if getattr(own, "get_type_hints", None) is not typing.get_type_hints:
        return
    hints: dict[type, dict] = {}

    def get_type_hints(obj, *args, **kwargs):
        if args or kwargs or not isinstance(obj, type):
            return typing.get_type_hints(obj, *args, **kwargs)
        found = hints.get(obj)
        if found is None:
            found = hints[obj] = typing.get_type_hints(obj)
        return dict(found)

    view = types.ModuleType(f"{own.__name__}.kept_type_hints")
    view.__dict__.update({k: v for k, v in vars(own).items() if not k.startswith("__")})
    view.get_type_hints = get_type_hints
    datatag.t = view


def _on_import(fullname: str, patch) -> None:
    """Run patch(module) once the module fullname has been imported (by whoever imports it first).

    The hook is a plain finder (sys.meta_path asks only for find_spec): importlib.abc imports importlib.resources,
    pathlib, tempfile and inspect, and this runs at the start of every Python process the tests start. `python -c
    pass` with the harness on took 46 to 52 ms of CPU with it, 14 ms without (13 ms with the harness off). Module
    processes import most of that anyway: test_incident.py used the same CPU either way."""
    import sys

    class Hook:
        def find_spec(self, name, path, target=None):
            if name != fullname:
                return None
            import importlib.util

            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                patch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hook())


if _CACHE:
    _install(_CACHE)
if _CACHE or _PAYLOADS:
    _on_import("ansible.module_utils._internal._datatag", _memo_type_hints)
if _PAYLOADS:
    _on_import("ansible.executor.module_common", lambda module: _cache_payloads(module, _PAYLOADS))
    _on_import(
        "ansible.utils.collection_loader._collection_finder",
        lambda module: (_cache_runtime_meta(module, _PAYLOADS), _cache_collection_code(module, _PAYLOADS)),
    )
