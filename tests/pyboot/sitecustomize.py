"""Test harness only: a bytecode cache for the Python that Ansible's modules import from their zipped payload.

tests/conftest.py puts this folder on PYTHONPATH and names a cache folder in LEDGERGUARD_TEST_MODULE_BYTECODE for
every pytest run, so the Python processes the tests start import this at start-up (site.py imports ``sitecustomize``).

Why: an Ansible module runs as ``python AnsiballZ_<name>.py``, which imports ansible.module_utils.basic, its
imports and the collection's module_utils from a zip file. zipimport never writes bytecode, so every module process
compiles all of that source (about 410 KB of Ansible's, up to 240 KB of ours) again, and Python 3.11's
``zipimporter.get_filename`` compiles each module a second time just to name its file. The integration tests start
thousands of module processes: compiling was about half of their CPU (py-spy over the 20-host incident).

What it does: it wraps ``zipimport._compile_source`` (the one place zipimport compiles). The code object of a source
text is kept in the cache folder under the SHA-256 of Python's bytecode magic number and the source bytes, and a later
compile of the same text loads it (marshal) and gives it the file name of this import. A changed source is a new key,
so it is compiled as before; the module code that runs is the same. Nothing changes when the variable is unset, and a
cache that cannot be read or written is skipped (the source is compiled, as without it). Modules in the Molecule
containers, and the product outside the tests, run as Ansible runs them.
"""

from __future__ import annotations

import os

_CACHE = os.environ.get("LEDGERGUARD_TEST_MODULE_BYTECODE", "")


def _install(cache: str) -> None:
    import hashlib
    import importlib.util
    import marshal
    import zipimport

    compile_source = zipimport._compile_source
    code_type = type(_install.__code__)
    seen: dict[str, object] = {}  # this process: get_filename's compile, then get_code's, of the same module

    def renamed(code, filename: str):
        consts = tuple(renamed(c, filename) if isinstance(c, code_type) else c for c in code.co_consts)
        return code.replace(co_filename=filename, co_consts=consts)

    def cached_compile(pathname, source):
        key = hashlib.sha256(importlib.util.MAGIC_NUMBER + bytes(source)).hexdigest()
        code = seen.get(key)
        if code is None:
            path = os.path.join(cache, key[:2], key)
            try:
                with open(path, "rb") as handle:
                    code = marshal.load(handle)
            except (OSError, EOFError, ValueError, TypeError):
                code = compile_source(pathname, source)
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    tmp = f"{path}.{os.getpid()}.tmp"
                    with open(tmp, "wb") as handle:
                        marshal.dump(code, handle)
                    os.replace(tmp, path)
                except OSError:
                    pass
            seen[key] = code
        return code if code.co_filename == pathname else renamed(code, pathname)

    zipimport._compile_source = cached_compile


if _CACHE:
    _install(_CACHE)
