# Copyright (c) ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine: one repository, one binary, one password (the Restic class): snapshots, listings, the mapping of a
live path into a snapshot's tree (layout, map_path, covering), stale-lock removal. ``run`` is injected so tests can
replay captured output."""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.errors import (
    NO_SNAPSHOT_RE,
    PathNotInSnapshot,
    ResticError,
    classify_error,
    parse_lock_holder,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.parsers import (
    Listing,
    Snapshot,
    TreeNode,
    filter_snapshots,
    go_duration_seconds,
    is_manifest_snapshot,
    lock_age_seconds,
    parse_config,
    parse_find,
    parse_ls,
    parse_snapshots,
    snapshot_from_json,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.run import (
    ResticFeatures,
    ResticResult,
    RunFunc,
    build_env,
    detect_features,
    probe_backend,
    probe_sftp,
    safe_args,
    gives_up_on_gone,
    subprocess_run,
    validate_snapshot_id,
    watched_run,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic.url import (
    backend_of,
    redact_repository,
    sftp_ssh_argv,
)
from ansible_collections.ledgerguard.recovery.plugins.module_utils.timeutil import format_utc


def pid_alive(pid: int) -> bool:
    """True unless the process is provably gone on this host (a PID we may not signal counts as alive)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def norm_path(path: str) -> str:
    """An absolute, cleaned path ("/" for the root)."""
    text = str(path or "").strip("/")
    return os.path.normpath("/" + text).replace("//", "/") if text else "/"


def snapshot_pins(value) -> dict[str, str]:
    """The ``snapshot_paths`` option of the modules (``ledgerguard_clients[].snapshot_path``) as {live path: path
    inside the snapshot}, both absolute and normalised; anything else is refused naming the entry."""
    pins = {}
    for live, pinned in (value or {}).items():
        if not str(live).startswith("/") or not str(pinned or "").startswith("/"):
            raise ValueError(
                f"snapshot_paths entry {live!r}: {pinned!r} must map an absolute live path to an absolute path "
                "inside the snapshot, e.g. /srv/ledgers/C001: /ledgers/C001"
            )
        pins[norm_path(live)] = norm_path(pinned)
    return pins


def path_parts(path: str) -> list[str]:
    return [p for p in norm_path(path).split("/") if p]


def path_suffixes(path: str) -> list[str]:
    """``/a/b/c`` -> ["/a/b/c", "/b/c", "/c", "/"]: every place restic may have stored it."""
    parts = path_parts(path)
    return ["/" + "/".join(parts[k:]) for k in range(len(parts))] + ["/"]


def path_under(path: str, root: str) -> str | None:
    """The part of ``path`` below ``root`` ("" when equal), or None when it is not under it."""
    path, root = norm_path(path), norm_path(root)
    if path == root:
        return ""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def path_join(root: str, rest: str) -> str:
    return norm_path(root.rstrip("/") + "/" + rest) if rest else norm_path(root)


def _real(path: str) -> str:
    """The path with the symlinks of THIS host resolved (the path itself when nothing resolves)."""
    try:
        return norm_path(os.path.realpath(norm_path(path)))
    except (OSError, ValueError):
        return norm_path(path)


@dataclass
class SnapshotRoot:
    """One recorded path of a snapshot and where its tree is stored (``stored`` "" when the tree does not hold it)."""

    recorded: str
    stored: str
    type: str = ""
    linktarget: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"recorded": self.recorded, "snapshot_path": self.stored, "type": self.type}
        if self.linktarget:
            out["linktarget"] = self.linktarget
        return out


@dataclass
class SnapshotLayout:
    """What the top of one snapshot's tree holds, and the stored root of each recorded path."""

    snapshot: Snapshot
    nodes: dict[str, TreeNode] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)
    roots: list[SnapshotRoot] = field(default_factory=list)

    @property
    def top(self) -> list[str]:
        """The entries at the top of the tree: ``ledgers/``, ``books.csv``, ``tmp/`` ..."""
        return [
            path[1:] + ("/" if node.type == "dir" else "")
            for path, node in sorted(self.nodes.items())
            if path != "/" and path.count("/") == 1
        ]

    @property
    def stdin(self) -> bool:
        """A ``restic backup --stdin`` snapshot: one recorded path, stored as the single file at the top."""
        paths = self.snapshot.paths
        node = self.nodes.get(norm_path(paths[0])) if len(paths) == 1 else None
        return node is not None and node.type == "file" and len(self.top) == 1 and norm_path(paths[0]).count("/") == 1

    def compute_roots(self) -> None:
        roots = []
        for recorded in dict.fromkeys(norm_path(p) for p in self.snapshot.paths):
            stored, node = "", None
            for candidate in path_suffixes(recorded)[:-1]:
                if candidate in self.nodes:
                    stored, node = candidate, self.nodes[candidate]
                    break
            if not stored and self._root_holds_contents(recorded):
                stored = "/"
            kind = node.type if node else ("dir" if stored == "/" else "")
            roots.append(SnapshotRoot(recorded, stored, kind, node.linktarget if node else ""))
        self.roots = roots

    def _root_holds_contents(self, recorded: str) -> bool:
        """``restic backup .``: the top of the tree holds the recorded folder's contents (no suffix of any other
        recorded path is in the tree)."""
        others = [r for r in (norm_path(p) for p in self.snapshot.paths) if r != recorded]
        return bool(self.top) and not any(any(c in self.nodes for c in path_suffixes(o)[:-1]) for o in others)

    def describe(self) -> str:
        snap = self.snapshot
        top = ", ".join(self.top[:12]) + (f" and {len(self.top) - 12} more" if len(self.top) > 12 else "")
        what = f"snapshot {snap.short_id} (host {snap.hostname}, {snap.raw_time}) of {', '.join(snap.paths)}"
        if self.stdin:
            return f"{what}, a 'restic backup --stdin' snapshot holding one file ({self.top[0]}) and no folders"
        return f"{what}, which holds at the top of its tree: {top or 'nothing'}"

    def as_dict(self) -> dict[str, Any]:
        return {"top": self.top, "roots": [r.as_dict() for r in self.roots], "stdin": self.stdin}


PIN_HINT = (
    "If the books are in the snapshot under another path, pin it: set snapshot_path of this client in "
    "ledgerguard_clients (the path inside the snapshot, as 'restic ls {sid}' shows it, e.g. {example})."
)


class Restic:
    """One repository, one binary, one password; runs restic and classifies its failures.

    ``run`` is injected (default: subprocess_run) so tests can replay captured output. Features are detected once per
    instance (one module run = one process) and cached on it.
    """

    def __init__(
        self,
        binary: str,
        repository: str,
        password_file: str,
        env: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        timeout: int = 0,
        run: RunFunc = subprocess_run,
        base_env: Mapping[str, str] | None = None,
        stale_lock_age: int = 1800,
        sftp_identity_file: str | None = None,
        sftp_known_hosts_file: str | None = None,
    ):
        self.binary = binary
        self.stale_lock_age = stale_lock_age
        self.removed_locks: list[dict[str, Any]] = []
        self._backend_probed = False
        self.repository = repository
        self.cache_dir = cache_dir
        self.timeout = timeout or None
        self._run = run
        self.env = build_env(repository, password_file, env, base_env)
        if cache_dir:
            self.env["RESTIC_CACHE_DIR"] = cache_dir
        self._features: ResticFeatures | None = None
        # global options the engine itself sets (sftp.command); never taken from a positional
        self.global_options: list[str] = []
        self.sftp_identity_file = sftp_identity_file
        self.sftp_known_hosts_file = sftp_known_hosts_file
        if backend_of(repository) == "sftp" and (sftp_identity_file or sftp_known_hosts_file):
            command = " ".join(sftp_ssh_argv(repository, sftp_identity_file, sftp_known_hosts_file))
            self.global_options = ["-o", f"sftp.command={command}"]
        self._layouts: dict[str, Any] = {}
        # listings kept by an earlier module run on this host (load_listing): {full id: (listed roots, ls stdout)}
        self._kept: dict[str, tuple[list[str], str]] = {}
        # name of this repository's folder in restic's cache, once new_snapshot_id found a snapshot there
        self._snapshot_cache = ""

    @property
    def features(self) -> ResticFeatures:
        if self._features is None:
            self._features = detect_features(self._run, self.binary, self.env)
        return self._features

    def argv(self, *args: str) -> list[str]:
        """The full argv of one restic run: global options, then ``safe_args(args)`` (options, ``--``,
        positionals), so no snapshot ID or path can ever be read as a restic option."""
        argv = [self.binary]
        if self.cache_dir:
            argv += ["--cache-dir", self.cache_dir]
        argv += self.global_options
        return argv + safe_args(args)

    def run(
        self,
        *args: str,
        timeout: int | None = None,
        cwd: str | None = None,
        stdin: Any = None,
        env: Mapping[str, str] | None = None,
        give_up_on_gone: bool | None = None,
    ) -> ResticResult:
        """Run restic once (twice when a provably stale lock was removed). ``stdin``: an open, seekable binary file.
        ``env``: variables added to the engine's environment for this run only (``backup_env``).
        ``give_up_on_gone``: stop restic at its first retry of a pack file that is gone (``run.watched_run``); by
        default by its subcommand (``run.gives_up_on_gone``).

        The first run of an engine probes the backend's endpoint (``probe_backend``) and raises the ``unreachable``
        ResticError at once when nothing answers, instead of waiting out newer restic's minutes of retries."""
        self._probe()
        extra = {} if stdin is None else {"stdin": stdin}
        if gives_up_on_gone(args, give_up_on_gone):
            extra["give_up_on_gone"] = True
        child = {**self.env, **env} if env else self.env
        result = self._run(self.argv(*args), env=child, timeout=timeout or self.timeout, cwd=cwd, **extra)
        if self._stale_lock_removed(args, result):
            if stdin is not None:
                stdin.seek(0)
            result = self._run(self.argv(*args), env=child, timeout=timeout or self.timeout, cwd=cwd, **extra)
        return result

    def stream(
        self, *args: str, consume: Callable[[Any], Any], env: Mapping[str, str] | None = None
    ) -> tuple[Any, ResticResult]:
        """``run`` with restic's stdout handed to ``consume`` (a binary stream) while restic runs (``watched_run``):
        the same probe, environment and stale-lock retry (``consume`` then reads the second run from its start).
        Returns (consume's value, the result; its ``stdout`` is empty, the consumer had it)."""
        self._probe()
        child = {**self.env, **env} if env else self.env
        give_up = gives_up_on_gone(args)
        value, result = watched_run(self.argv(*args), child, consume, self.timeout, give_up_on_gone=give_up)
        if self._stale_lock_removed(args, result):
            value, result = watched_run(self.argv(*args), child, consume, self.timeout, give_up_on_gone=give_up)
        return value, result

    def _probe(self) -> None:
        """Before the engine's first run: raise ``unreachable`` when the backend's endpoint does not answer."""
        if self._backend_probed:
            return
        self._backend_probed = True
        unreachable = probe_backend(self.repository, self.env)
        if unreachable is None and backend_of(self.repository) == "sftp" and self._run is subprocess_run:
            unreachable = probe_sftp(
                self.repository, self.env, self.sftp_identity_file, self.sftp_known_hosts_file, self.timeout or 30
            )
        if unreachable is not None:
            raise unreachable

    def _stale_lock_removed(self, args: tuple[str, ...], result: ResticResult) -> bool:
        """Whether ``result`` failed on a lock that was provably stale and is now removed (run again)."""
        if result.rc == 0 or result.timed_out or not args or args[0] == "unlock":
            return False
        holder = parse_lock_holder(result.stderr + "\n" + result.stdout)
        return bool(holder) and self._remove_stale_lock(holder)

    def _remove_stale_lock(self, holder: dict[str, Any]) -> bool:
        """Remove a lock only when it is provably stale: held by a process of THIS host that no longer exists, and
        older than ``stale_lock_age`` seconds. Live locks, locks of other hosts and young locks are never touched.
        ``restic unlock`` (without --remove-all) removes only locks restic itself also judges stale."""
        age = go_duration_seconds(holder.get("age", ""))
        if age is None:
            age = lock_age_seconds(holder.get("created", ""))
        if (
            self.stale_lock_age <= 0
            or holder.get("host") != socket.gethostname()
            or pid_alive(int(holder["pid"]))
            or age is None
            or age < self.stale_lock_age
        ):
            return False
        res = self._run(self.argv("unlock"), env=self.env, timeout=self.timeout)
        if res.rc != 0:
            return False
        self.removed_locks.append(
            {
                "pid": holder["pid"],
                "host": holder["host"],
                "user": holder.get("user", ""),
                "created": holder.get("created", ""),
                "age_seconds": int(age),
                "storage_id": holder.get("storage_id", ""),
                "removed_at": format_utc(),
                "why": f"holder PID {holder['pid']} no longer runs on {holder['host']} and the lock is "
                f"{int(age)} s old (threshold {self.stale_lock_age} s)",
            }
        )
        return True

    def must(
        self,
        *args: str,
        action: str,
        target: str | None = None,
        snapshot: str | None = None,
        ok_rcs=(0,),
        give_up_on_gone: bool | None = None,
    ) -> ResticResult:
        """Run and raise a classified ResticError unless the exit code is in ok_rcs."""
        result = self.run(*args, give_up_on_gone=give_up_on_gone)
        if result.rc not in ok_rcs or result.timed_out:
            raise classify_error(
                result, self.repository, self.features, target=target, snapshot=snapshot, action=action
            )
        return result

    # -- operations used by several modules ---------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return parse_config(self.must("cat", "config", action="read the repository config").stdout)

    def snapshots(self, manifests: bool = False, hosts: Iterable[str] = (), tags: Iterable[str] = ()) -> list[Snapshot]:
        """The repository's snapshots, oldest first. Backup-time manifest snapshots (``is_manifest_snapshot``) are
        left out unless ``manifests`` is true: they are never restore points, freshness or coverage evidence.
        ``hosts``, ``tags``: restic's own filters (``--host`` each, ``--tag`` each: a snapshot of any of the hosts
        that holds every tag of any one ``tags`` entry, ``a,b`` meaning both)."""
        args = ["snapshots", "--json"]
        for host in hosts:
            args += ["--host", host]
        for tag in tags:
            args += ["--tag", tag]
        snaps = parse_snapshots(self.must(*args, action="list snapshots").stdout)
        return snaps if manifests else [s for s in snaps if not is_manifest_snapshot(s.tags)]

    def cache_root(self) -> str | None:
        """The folder restic keeps its per-repository caches in, as restic finds it: --cache-dir, RESTIC_CACHE_DIR,
        $XDG_CACHE_HOME/restic, ~/.cache/restic (None when none can be named)."""
        if self.cache_dir:
            return self.cache_dir
        if self.env.get("RESTIC_CACHE_DIR"):
            return self.env["RESTIC_CACHE_DIR"]
        base = self.env.get("XDG_CACHE_HOME") or (
            os.path.join(self.env["HOME"], ".cache") if self.env.get("HOME") else ""
        )
        return os.path.join(base, "restic") if base else None

    def new_snapshot_id(self, short: str, since: float, listing: bool = True) -> str:
        """The full ID of the snapshot this engine just saved, of which restic printed ``short`` (restic 0.14's
        ``backup --json`` prints 8 hex digits). restic writes each snapshot it saves into its cache
        (``<cache>/<repository id>/snapshots/<2 hex>/<full id>``) and touches that repository's cache folder when
        it opens the repository, so the ID is read there without opening the repository again (another key
        derivation and listing: most of a small backup's cost). Only cache folders touched since ``since`` (epoch
        seconds, taken before the backup started) count; anything but exactly one match falls back to listing the
        snapshots (``snapshot_id_from_cache``).

        The folder where the ID was found is this repository's cache: the next backup of the same engine (the next
        client of a run) looks there first, one folder listed instead of every repository cache on the host (a test
        or bench machine has hundreds; each scan stats every one of them). ``listing`` false: no listing either,
        ``short`` when the cache does not tell."""
        if len(short) == 64:
            return short
        root = self.cache_root()
        found = snapshot_in_cache(root, short, since, self._snapshot_cache) if root and self._snapshot_cache else None
        if found is None and root:
            found = snapshot_in_cache(root, short, since)
        if found:
            self._snapshot_cache = found[1]
            return found[0]
        if not listing:
            return short
        return next((s.id for s in self.snapshots(manifests=True) if short and s.id.startswith(short)), short)

    def resolve_snapshot(self, wanted: str, hosts: Iterable[str] = (), tags: Iterable[str] = ()) -> Snapshot:
        """The one snapshot meant by an ID (or unique prefix) or 'latest' (optionally of some hosts / with tags)."""
        wanted = validate_snapshot_id(wanted)
        snaps = self.snapshots()
        if wanted == "latest":
            chosen = filter_snapshots(snaps, hosts=hosts, tags=tags)
            if chosen:
                return chosen[-1]
        else:
            matches = [s for s in snaps if s.id.startswith(wanted.lower())]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ResticError(
                    "snapshot_ambiguous",
                    f"Snapshot ID prefix '{wanted}' matches {len(matches)} snapshots in restic repository "
                    f"{redact_repository(self.repository)}; give more characters of the ID.",
                    {"snapshot": wanted},
                )
        filters = ""
        if wanted == "latest" and (list(hosts) or list(tags)):
            filters = f" (filters: hosts={list(hosts)}, tags={list(tags)})"
        raise ResticError(
            "snapshot_not_found",
            f"Snapshot '{wanted}'{filters} was not found in restic repository {redact_repository(self.repository)} "
            f"({len(snaps)} snapshots there). List them with ledgerguard.recovery.restic_snapshots and pass an "
            "existing snapshot ID (or 'latest' with filters that match a snapshot).",
            {"snapshot": wanted, "snapshots_in_repository": len(snaps)},
        )

    def ls(
        self, snapshot_id: str, paths: Iterable[str] = (), hosts: Iterable[str] = (), tags: Iterable[str] = ()
    ) -> Listing:
        """``restic ls --json`` of one snapshot (an ID, a unique prefix, or 'latest' of some hosts / with tags),
        optionally only under ``paths``. Raises snapshot_not_found when restic matched no snapshot."""
        snapshot_id = validate_snapshot_id(snapshot_id)
        args = ["ls", "--json"]
        paths = list(paths)
        if paths and snapshot_id in self._kept:
            listing = self._kept_listing(snapshot_id, paths)
            if listing is not None:
                return listing
        if paths:
            args.append("--recursive")  # without it, a directory filter lists only the directory's own entries
        if snapshot_id == "latest":
            for host in hosts:
                args += ["--host", host]
            if tags:
                args += ["--tag", ",".join(tags)]
        res = self.must(*args, "--", snapshot_id, *paths, action="list the snapshot's files", snapshot=snapshot_id)
        listing = parse_ls(res.stdout)
        if snapshot_id == "latest" and listing.snapshot is not None and is_manifest_snapshot(listing.snapshot.tags):
            # restic's own 'latest' does not know manifest snapshots: take the newest data snapshot instead.
            chosen = self.resolve_snapshot("latest", hosts, tags)
            return self.ls(chosen.id, paths)
        if listing.snapshot is None:
            stderr = (
                res.stderr
                if NO_SNAPSHOT_RE.search(res.stderr or "")
                else f'no matching ID found for prefix "{snapshot_id}"'
            )
            raise classify_error(
                ResticResult(res.argv, 1, res.stdout, stderr),
                self.repository,
                self.features,
                snapshot=snapshot_id,
                action="list the snapshot's files",
            )
        return listing

    # -- listings kept for the next module run on this host (issue 19) ----------------------------------------

    def keep_listing(self, folder: str, snapshot_id: str, roots: Iterable[str], text: str) -> str:
        """Keep in ``folder`` (module_utils/restic/kept) what this run read of a snapshot named by its full ID: the
        top of its tree as ``layout`` holds it, and ``text``, the stdout of ``restic ls --json --recursive`` of
        ``roots``. Returns the file's path; raises OSError or ValueError when it cannot be kept."""
        layout = self._layouts.get(snapshot_id)
        data: dict[str, Any] = {"roots": [norm_path(r) for r in roots], "ls": text}
        if layout is not None:
            data["layout"] = {
                "snapshot": layout.snapshot.as_dict(),
                "nodes": [asdict(node) for node in layout.nodes.values()],
                "asked": sorted(layout.asked),
            }
        from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import kept  # only runs that keep one

        return kept.save(folder, self.repository, snapshot_id, data)

    def load_listing(self, folder: str, snapshot_id: str) -> bool:
        """Take up the listing an earlier run kept of ``snapshot_id`` (a full ID) in ``folder``: ``layout`` and
        ``ls`` of paths under the kept roots then answer without restic. False (and nothing taken up) when there is
        no kept listing that can be trusted (kept.load) or it does not read as one."""
        from ansible_collections.ledgerguard.recovery.plugins.module_utils.restic import kept  # only runs that read one

        data = kept.load(folder, self.repository, snapshot_id)
        if data is None:
            return False
        try:
            roots = [norm_path(str(r)) for r in data["roots"]]
            text = data["ls"]
            if not isinstance(text, str):
                return False
            layout = None
            if data.get("layout"):
                snap = snapshot_from_json(data["layout"]["snapshot"])
                if snap.id != snapshot_id:
                    return False
                nodes = {norm_path(n["path"]): TreeNode(**n) for n in data["layout"]["nodes"]}
                layout = SnapshotLayout(snap, nodes, {norm_path(str(a)) for a in data["layout"]["asked"]})
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        if layout is not None and snapshot_id not in self._layouts:
            self._layouts[snapshot_id] = layout
        self._kept[snapshot_id] = (roots, text)
        return True

    def _kept_listing(self, snapshot_id: str, paths: list[str]) -> Listing | None:
        """``restic ls --json --recursive`` of ``paths`` as restic would print it, from the kept listing (the nodes
        under those paths, in restic's order) when every path is under a kept root; else None."""
        roots, text = self._kept[snapshot_id]
        wanted = [norm_path(p) for p in paths]
        if not all(any(path_under(w, r) is not None for r in roots) for w in wanted):
            return None
        listing = parse_ls(text)
        if listing.snapshot is None or listing.snapshot.id != snapshot_id:
            return None
        nodes = [n for n in listing.nodes if any(path_under(n.path, w) is not None for w in wanted)]
        return Listing(listing.snapshot, nodes)

    # -- snapshot layout (issue 17) ---------------------------------------------------------------------------

    def layout(self, snapshot: Snapshot | str, live_paths: Iterable[str] = ()) -> SnapshotLayout:
        """The top levels of a snapshot's tree (``restic ls`` of the candidate roots, not recursive), cached per
        snapshot: every suffix of each recorded path and of each live path (and of their real paths on this host).
        ``snapshot``: a Snapshot, or a full/short ID (resolved by the same listing)."""
        snap_id = snapshot.id if isinstance(snapshot, Snapshot) else validate_snapshot_id(snapshot)
        cached = self._layouts.get(snap_id)
        if cached is None and not isinstance(snapshot, Snapshot) and snap_id != "latest":
            cached = next((v for k, v in self._layouts.items() if k.startswith(snap_id)), None)
        wanted: list[str] = ["/"]
        for live in live_paths:
            for form in dict.fromkeys((norm_path(live), _real(live))):
                wanted += path_suffixes(form)
        snap = cached.snapshot if cached else (snapshot if isinstance(snapshot, Snapshot) else None)
        if snap is not None:
            for recorded in snap.paths:
                for form in dict.fromkeys((norm_path(recorded), _real(recorded))):
                    wanted += path_suffixes(form)
        wanted = list(dict.fromkeys(wanted))
        if cached is not None and set(wanted) <= cached.asked:
            if not cached.roots:
                cached.compute_roots()
            return cached
        asked = [w for w in wanted if cached is None or w not in cached.asked]
        res = self.must(
            "ls", "--json", "--", snap.id if snap else snap_id, *asked,
            action="list the top of the snapshot's tree", snapshot=snap_id,
        )  # fmt: skip
        listing = parse_ls(res.stdout)
        if listing.snapshot is None:
            raise classify_error(
                ResticResult(res.argv, 1, res.stdout, f'no matching ID found for prefix "{snap_id}"'),
                self.repository,
                self.features,
                snapshot=snap_id,
                action="list the snapshot's files",
            )
        if cached is None:
            cached = SnapshotLayout(listing.snapshot)
            self._layouts[listing.snapshot.id] = cached
        cached.asked.update(asked)
        for node in listing.nodes:
            cached.nodes[norm_path(node.path)] = node
        if snap is None:  # the recorded paths were not known before this listing: ask for their suffixes too
            return self.layout(cached.snapshot, live_paths)
        cached.compute_roots()
        return cached

    def map_path(self, snapshot: Snapshot | str, live_path: str, pinned: str | None = None) -> str:
        """THE mapping of a live path (as on the client's host, e.g. /srv/ledgers/C001) to the path inside a
        snapshot's tree (e.g. /ledgers/C001 for ``cd /srv && restic backup ledgers``). Every module that selects,
        restores, compares, assesses damage or checks coverage uses it.

        ``pinned``: the client's ``snapshot_path`` (used as is once the snapshot is seen to hold it). Raises
        PathNotInSnapshot (a ValueError) naming what the snapshot holds at its top and how to pin the path."""
        layout = self.layout(snapshot, [live_path] if not pinned else [pinned])
        snap = layout.snapshot
        example = "/" + (layout.top[0].rstrip("/") if layout.top else "ledgers")
        hint = PIN_HINT.format(sid=snap.short_id, example=example)
        if pinned:
            pin = norm_path(pinned)
            if pin in layout.nodes or pin == "/":
                return pin
            raise PathNotInSnapshot(
                f"snapshot_path {pinned} (pinned for {live_path}) is not in {layout.describe()}. {hint}"
            )
        live = norm_path(live_path)
        mapped = self._map_through_roots(layout, live, depth=0)
        if mapped is not None:
            return mapped
        raise PathNotInSnapshot(self._unmapped_message(layout, live, hint))

    def live_path(
        self,
        snapshot: Snapshot | str,
        stored_path: str,
        live_roots: Iterable[str],
        pins: Mapping[str, str] | None = None,
    ) -> str | None:
        """The reverse of ``map_path`` for a path read from the snapshot (``restic ls``/``diff``/``find`` output):
        the live path it belongs to under one of ``live_roots`` (e.g. /ledgers/C001/a.csv -> /srv/ledgers/C001/a.csv),
        or None when it is under none of them. ``pins``: live root -> pinned snapshot_path."""
        for live in live_roots:
            try:
                inside = self.map_path(snapshot, live, (pins or {}).get(live))
            except PathNotInSnapshot:
                continue
            rest = path_under(stored_path, inside)
            if rest is not None:
                return path_join(norm_path(live), rest)
        return None

    def _map_through_roots(self, layout: SnapshotLayout, live: str, depth: int) -> str | None:
        forms = list(dict.fromkeys((live, _real(live))))
        for form in forms:
            for root in layout.roots:
                for recorded in dict.fromkeys((root.recorded, _real(root.recorded))):
                    rest = path_under(form, recorded)
                    if rest is not None and root.stored:
                        if root.type == "symlink":
                            target = root.linktarget
                            if depth < 4 and target.startswith("/"):
                                through = self._map_through_roots(layout, path_join(target, rest), depth + 1)
                                if through is not None:
                                    return through
                            continue
                        return path_join(root.stored, rest)
                    # the live path is a parent of recorded paths (a folder holding many clients)
                    below = path_under(recorded, form)
                    if below and root.stored and root.type != "symlink":
                        extra = path_parts(below)
                        stored = path_parts(root.stored)
                        if len(stored) >= len(extra) and stored[len(stored) - len(extra) :] == extra:
                            return "/" + "/".join(stored[: len(stored) - len(extra)])
        return None

    def _unmapped_message(self, layout: SnapshotLayout, live: str, hint: str) -> str:
        for root in layout.roots:
            if root.type == "symlink" and any(
                path_under(f, r) is not None for f in (live, _real(live)) for r in (root.recorded, _real(root.recorded))
            ):
                target = root.linktarget or (os.path.realpath(root.recorded) if os.path.islink(root.recorded) else "")
                return (
                    f"{live} cannot be read from snapshot {layout.snapshot.short_id}: the snapshot stored "
                    f"{root.recorded} as a symbolic link{f' (to {target})' if target else ''}, not the files behind "
                    "it (restic does not follow a symlink given on its command line). Back up the real folder"
                    + (f" ({target})" if target else "")
                    + f" from now on; this snapshot holds no copy of {live}. {hint}"
                )
        if layout.stdin:
            return f"{live} is not in {layout.describe()} (a stream, not the client's folder). {hint}"
        lost = [r.recorded for r in layout.roots if not r.stored]
        extra = f" ({', '.join(lost)} could not be found in its tree)" if lost else ""
        return f"{live} is not in {layout.describe()}{extra}. {hint}"

    def covering(
        self, snapshots: Iterable[Snapshot], live_path: str, pinned: str | None = None, give_up_on_gone: bool = False
    ) -> dict[str, str]:
        """{snapshot id: path inside it} for each snapshot whose tree holds ``live_path`` (or the pin), with ONE
        ``restic find`` over all of them: the batched form of ``map_path``. Candidates are the places the mapping
        rule allows (every suffix of the live path and of its real path on this host, beneath a recorded path of the
        snapshot); of those the snapshot holds, the longest wins, as in ``map_path``. A live folder that is a parent
        of a snapshot's recorded paths is mapped with ``map_path`` (one listing of that snapshot)."""
        return self.covering_many(snapshots, [(live_path, pinned)], give_up_on_gone)[0]

    def covering_many(
        self, snapshots: Iterable[Snapshot], lives: list[tuple[str, str | None]], give_up_on_gone: bool = False
    ) -> list[dict[str, str]]:
        """``covering`` for several (live path, pin) pairs at once, in order, with ONE ``restic find`` for all of them
        (the patterns of every pair over every snapshot a pair may be in): several clients' paths cost one
        repository open. Each pair keeps only its own candidates, so its answer is the one ``covering`` gives.
        ``give_up_on_gone``: the search fails (``repository_damaged``) at restic's first retry of a pack file that
        is gone, for a caller that then maps each snapshot alone, instead of restic 0.14 retrying every tree of the
        lost pack for about 44 s each."""
        snaps = list(snapshots)
        plans: list[tuple[str, str | None, dict[str, list[str]], list[Snapshot]]] = []
        for live_path, pinned in lives:
            live = norm_path(live_path)
            forms = list(dict.fromkeys((live, _real(live))))
            candidates: dict[str, list[str]] = {}
            parents: list[Snapshot] = []
            for snap in snaps:
                if pinned:
                    if norm_path(pinned) == "/":
                        parents.append(snap)  # the top of the tree (a --stdin snapshot's): no node restic find matches
                    else:
                        candidates[snap.id] = [norm_path(pinned)]
                    continue
                recorded = [f for p in snap.paths for f in dict.fromkeys((norm_path(p), _real(p)))]
                under = [f for f in forms for r in recorded if path_under(f, r) is not None]
                if under:
                    candidates[snap.id] = list(dict.fromkeys(s for f in under for s in path_suffixes(f)[:-1]))
                    if any(path_under(f, r) == "" for f in forms for r in recorded):
                        parents.append(snap)  # the live path IS a recorded path: '.' backups store it as "/"
                elif any(path_under(r, f) for f in forms for r in recorded):
                    parents.append(snap)
            plans.append((live, pinned, candidates, parents))
        held: dict[str, list[str]] = {}
        sids = list(dict.fromkeys(sid for plan in plans for sid in plan[2]))
        patterns = sorted({c for plan in plans for cands in plan[2].values() for c in cands})
        if sids and patterns:
            what = ", ".join(dict.fromkeys(plan[0] for plan in plans))
            args = ["find", "--json"]
            for sid in sids:
                args += ["--snapshot", sid]
            res = self.must(
                *args,
                "--",
                *(restic_pattern(p) for p in patterns),
                action=f"search for {what}",
                give_up_on_gone=give_up_on_gone,
            )
            try:
                held = parse_find(res.stdout)
            except ValueError as exc:
                # restic 0.14 stops its JSON mid-array when a tree it must read is in a lost pack (and still exits 0)
                said = (res.stderr or "").strip().splitlines()
                raise ResticError(
                    "repository_damaged",
                    f"restic find could not finish its search for {what} in {redact_repository(self.repository)} "
                    f"({exc}){': ' + said[-1] if said else ''}; run restic check to locate lost data",
                    {},
                    res,
                ) from None
        out = []
        for live, pinned, candidates, parents in plans:
            found: dict[str, str] = {}
            for sid, cands in candidates.items():
                paths = {norm_path(p) for p in held.get(sid, [])}
                match = next((c for c in cands if c in paths), None)
                if match:
                    found[sid] = match
            for snap in parents:
                if snap.id in found:
                    continue
                try:
                    mapped = self.map_path(snap, live, pinned)
                except PathNotInSnapshot:
                    continue
                layout = self.layout(snap, [live])
                if mapped == "/" and layout.top or mapped in layout.nodes:
                    found[snap.id] = mapped
            out.append(found)
        return out

    def survey(self, snapshots: list[Snapshot], clients: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Per client path: which snapshots hold it, under which host and tags, at which path inside each snapshot (the
        same mapping the restore uses), so an operator sees before the bad day whether the incident path will find
        each client's books. One restic find per client path over all the snapshots."""
        out = []
        for client in clients:
            paths = client.get("paths") or ([client["path"]] if client.get("path") else [])
            for path in paths:
                if not str(path).startswith("/"):
                    raise ValueError(f"client {client.get('id')!r}: path {path!r} is not absolute")
                pin = client.get("snapshot_path") or None
                found = self.covering(snapshots, str(path), pin) if snapshots else {}
                covering = [
                    {
                        "id": s.id,
                        "short_id": s.short_id,
                        "time": s.raw_time,
                        "hostname": s.hostname,
                        "tags": list(s.tags),
                        "snapshot_path": found[s.id],
                    }
                    for s in snapshots
                    if s.id in found
                ]
                out.append(
                    {
                        "client": client.get("id", ""),
                        "name": client.get("name", ""),
                        "path": str(path),
                        "pinned_snapshot_path": pin or "",
                        "snapshots": len(covering),
                        "hosts": sorted({c["hostname"] for c in covering}),
                        "snapshot_paths": sorted({c["snapshot_path"] for c in covering}),
                        "newest": covering[-1] if covering else None,
                        "covering": covering,
                    }
                )
        return out

    def covers(self, snapshot: Snapshot, live_path: str, pinned: str | None = None) -> str | None:
        """The in-snapshot path of ``live_path`` when the snapshot's tree holds that node, else None."""
        try:
            mapped = self.map_path(snapshot, live_path, pinned)
        except PathNotInSnapshot:
            return None
        layout = self.layout(snapshot, [live_path] if not pinned else [pinned])
        if mapped == "/" or mapped in layout.nodes:
            return mapped
        res = self.run("ls", "--json", "--", snapshot.id, mapped)
        listing = parse_ls(res.stdout) if res.rc == 0 else Listing(None)
        for node in listing.nodes:
            layout.nodes.setdefault(norm_path(node.path), node)
        return mapped if mapped in layout.nodes else None


def snapshot_id_from_cache(root: str, short: str, since: float) -> str | None:
    """The one full snapshot ID starting with ``short`` in the restic cache folder ``root``, looking only at the
    repository caches touched at or after ``since`` (epoch seconds); None when there is no such ID, more than one,
    ``short`` is not at least 8 hex digits, or the cache cannot be read."""
    found = snapshot_in_cache(root, short, since)
    return found[0] if found else None


def snapshot_in_cache(root: str, short: str, since: float, only: str = "") -> tuple[str, str] | None:
    """``snapshot_id_from_cache``, and the name of the repository cache (the folder under ``root``) that holds it;
    with ``only``, that one repository cache is looked at instead of every one."""
    if len(short) < 8 or not re.fullmatch(r"[0-9a-f]+", short):
        return None
    found: dict[str, str] = {}
    try:
        names = [only] if only else os.listdir(root)
    except OSError:
        return None
    for name in names:
        folder = os.path.join(root, name)
        try:
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode) or info.st_mtime < since:
                continue
            held = os.listdir(os.path.join(folder, "snapshots", short[:2]))
        except OSError:
            continue
        for full in held:
            if len(full) == 64 and full.startswith(short) and re.fullmatch(r"[0-9a-f]+", full):
                found[full] = name
    return next(iter(found.items())) if len(found) == 1 else None


def restic_pattern(path: str) -> str:
    """An exact path as a restic include/find pattern: glob characters are escaped."""
    return re.sub(r"([\\*?\[])", r"\\\1", path)
