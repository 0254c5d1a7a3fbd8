"""Fixtures shared by unit and integration tests: a real moto S3 server, restic repositories, playbook runs."""

from __future__ import annotations

import errno
import fcntl
import gzip
import io
import json
import os
import pwd
import py_compile
import resource
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))
# Unit tests import the collection as ansible_collections.ledgerguard.recovery from the checkout's link.
sys.path.insert(0, str(REPO_ROOT / ".collections"))

from ledgerguard.embedded_s3 import EmbeddedS3  # noqa: E402
from ledgerguard.runner import PlaybookRun, run_playbook  # noqa: E402

# tests/bin/restic runs the real restic but makes new keys with a cheaper key derivation (its header says why and how):
# every test, fixture, module and playbook run finds it first on PATH.
TEST_BIN = REPO_ROOT / "tests" / "bin"
if os.environ.get("PATH", "").split(os.pathsep)[0] != str(TEST_BIN):
    os.environ["PATH"] = os.pathsep.join([str(TEST_BIN), os.environ.get("PATH", "/usr/bin:/bin")])
# tests/pyboot/sitecustomize.py keeps the bytecode of what Ansible's modules import from their zipped payload, and the
# module_utils part of each module's payload that ansible-playbook builds (its header says why and how): every Python
# process the tests start finds it on PYTHONPATH. Set a variable empty to run without that cache.
PYBOOT = REPO_ROOT / "tests" / "pyboot"
os.environ.setdefault("LEDGERGUARD_TEST_MODULE_BYTECODE", str(REPO_ROOT / ".cache" / "module-bytecode"))
os.environ.setdefault("LEDGERGUARD_TEST_MODULE_PAYLOADS", str(REPO_ROOT / ".cache" / "module-payloads"))
if str(PYBOOT) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PYBOOT), os.environ.get("PYTHONPATH", "")) if p)
# Ansible's modules on the tests' local hosts go to their Python on standard input (pipelining): one process per module
# run instead of about twenty (the shells and `sleep 0`s that make, fill, chmod and remove the remote temporary
# folder). A Python started with PYTHONUNBUFFERED (these machines set it; a fresh Debian does not) reads a script on
# standard input one byte per read(2): 180,000 system calls, about 0.14 s of CPU, for each module's payload. So no
# process the tests start gets it (pytest's own output was set up before this runs). docs/testing.md has the figures.
os.environ.pop("PYTHONUNBUFFERED", None)
os.environ.setdefault("ANSIBLE_PIPELINING", "True")
# Its bytecode written once here: where PYTHONDONTWRITEBYTECODE is set (these machines), each of the thousands of
# processes would otherwise compile it again at start-up (3 ms each on a loaded 2-core machine). Python still reads
# bytecode that is there, and checks it against the source's time and size.
py_compile.compile(str(PYBOOT / "sitecustomize.py"), doraise=False)


def cli_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the ``ledgerguard`` CLI as an operator's shell has it: no AWS_ or RESTIC_ variables of the
    test run (the CLI must take its credentials from its options), then ``extra``; the CLI's package from this
    checkout's src, and the harness's caches (above) still on PYTHONPATH for the playbooks it runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RESTIC_"))}
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(PYBOOT)])
    return env


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A moto S3 server on a free 127.0.0.1 port for the whole session."""
    server = EmbeddedS3(log_path=tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    CPU_WATCHED.append(server)
    yield server
    CPU_WATCHED.remove(server)
    _CPU_RETIRED.append(_server_cpu(server))  # once stopped, the server counts among this process's children
    server.stop()


def lose_mkdir_race(monkeypatch, shared: Path) -> None:
    """Make ``os.mkdir(shared)`` lose a race: the folder is made (by "another host or worker") and the call raises
    EEXIST, as when several hosts of one run create a shared parent at once."""
    real_mkdir = os.mkdir

    def racing_mkdir(path, *args, **kwargs):
        if path == str(shared):
            real_mkdir(path, *args, **kwargs)  # the other one's
            raise FileExistsError(17, "File exists", path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)


def state_bundle_bytes() -> bytes:
    """A small gzipped state bundle (one file, mounts.txt, with a Chinese mount point), as state_capture returns.

    The same bytes on every call: the gzip header's time is fixed (tarfile's "w:gz" writes the current second, so two
    calls a second apart differed and a test comparing them failed in CI).
    """
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        data = "挂载 /srv/账套\n".encode()
        info = tarfile.TarInfo("mounts.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def read_proc(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def proc_stat(pid: int | str) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name, from the state on: index 1 is the parent's PID, 11 and
    12 the user and system CPU in clock ticks, 21 the RSS in pages (proc(5) numbers them 3, 4, 14, 15 and 24)."""
    return read_proc(f"/proc/{pid}/stat").rsplit(b")", 1)[1].split()


PF_KTHREAD = 0x00200000


class UserPids:
    """The PIDs of /proc that are not kernel threads, for watches that sample /proc many times a second.

    A kernel thread never executes a program, so its command line, environment and RSS stay empty: each one's
    /proc/<pid>/stat is read once (its flags) and the PID is skipped from then on, until a listing no longer shows it
    (the kernel gives a PID again only after going through the others, not within the 0.02 to 0.2 s between two
    listings of these watches). On the quiet machine it was measured on (102 processes, 62 of them kernel threads)
    that leaves 39 of the 101 reads per sample."""

    def __init__(self) -> None:
        self.kernel: set[str] = set()
        self.user: set[str] = set()
        self.me = str(os.getpid())

    def __call__(self) -> list[str]:
        listed = [name for name in os.listdir("/proc") if name.isdigit() and name != self.me]
        self.kernel.intersection_update(listed)
        pids = []
        for pid in listed:
            if pid in self.kernel:
                continue
            if pid not in self.user:
                try:
                    flags = int(proc_stat(pid)[6])
                except (OSError, IndexError, ValueError):
                    continue  # gone, or not readable yet: looked at again in the next listing
                if flags & PF_KTHREAD:
                    self.kernel.add(pid)
                    continue
            pids.append(pid)
        self.user = set(pids)
        return pids


class ExecEvents:
    """The processes that execute a program, as the kernel reports them: its process-events connector (netlink,
    proc_connector), which needs root (CAP_NET_ADMIN); OSError when it cannot be had, for the caller to fall back on
    sampling /proc.

    ``wait`` returns the PIDs whose exec was reported within ``timeout`` seconds, or None when the kernel dropped
    events (the socket's buffer overflowed): then nothing says which processes were missed."""

    NETLINK_CONNECTOR, CN_IDX_PROC, CN_VAL_PROC = 11, 1, 1
    PROC_CN_MCAST_LISTEN, PROC_EVENT_EXEC = 1, 0x00000002
    NLMSG_DONE = 3
    HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
    CN_MSG = struct.Struct("=IIIIHH")  # struct cn_msg: cb_id (idx, val), seq, ack, len, flags
    EVENT = struct.Struct("=IIQii")  # struct proc_event: what, cpu, timestamp_ns, then exec's process_pid, _tgid

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.NETLINK_CONNECTOR)
        try:
            try:  # room for a burst of execs while the reading thread waits for the GIL
                self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self.sock.bind((0, self.CN_IDX_PROC))
            payload = struct.pack("=I", self.PROC_CN_MCAST_LISTEN)
            cn_msg = self.CN_MSG.pack(self.CN_IDX_PROC, self.CN_VAL_PROC, 0, 0, len(payload), 0) + payload
            self.sock.send(self.HEADER.pack(self.HEADER.size + len(cn_msg), self.NLMSG_DONE, 0, 0, 0) + cn_msg)
        except OSError:
            self.sock.close()
            raise

    def wait(self, timeout: float) -> list[int] | None:
        pids: list[int] = []
        ready = select.select([self.sock], [], [], timeout)[0]
        while ready:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    return None
                raise
            offset = 0
            while offset + self.HEADER.size <= len(data):
                length = self.HEADER.unpack_from(data, offset)[0]
                event = offset + self.HEADER.size + self.CN_MSG.size
                if length < self.HEADER.size or event + self.EVENT.size > len(data):
                    break
                what, _cpu, _ns, _pid, tgid = self.EVENT.unpack_from(data, event)
                if what == self.PROC_EVENT_EXEC:
                    pids.append(tgid)
                offset += (length + 3) & ~3
        return pids

    def close(self) -> None:
        self.sock.close()


class ProcessWatch(threading.Thread):
    """Reads the command line (and, for ``env_needles``, the environment) of every process but this one and the
    kernel threads, looking for secrets, until ``stop`` is set; ``found`` says where each one was.

    Both are set by exec (a fork keeps its parent's), so with root the watch reads every process once when it starts,
    then each process as the kernel reports its exec (ExecEvents): a process is read within about a millisecond of
    its exec instead of within the 20 ms of a sample, and a quiet machine costs nothing. Without root, or when the
    kernel dropped events, it samples /proc every 20 ms (UserPids), reading a process's environment again only when
    its command line changed. ``samples`` counts the sweeps of /proc, ``seen`` the reads of a process ``seen`` picks
    (its argv): proof that the watch met the runs it is there for."""

    def __init__(
        self,
        needles: dict[str, bytes],
        env_needles: dict[str, bytes] | None = None,
        seen: Callable[[list[bytes]], bool] = lambda argv: False,
    ):
        super().__init__(daemon=True)
        self.needles = needles
        self.env_needles = env_needles or {}
        self.is_seen = seen
        self.stop = threading.Event()
        self.found: list[str] = []
        self.samples = 0
        self.seen = 0
        self.events_used = False
        self.environ_read_for: dict[str, bytes] = {}  # PID -> the command line its environment was read with

    def check(self, pid: str) -> None:
        try:
            cmdline = read_proc(f"/proc/{pid}/cmdline")
            environ = b""
            if self.env_needles and self.environ_read_for.get(pid) != cmdline:
                environ = read_proc(f"/proc/{pid}/environ")
                self.environ_read_for[pid] = cmdline
        except OSError:
            return
        if self.is_seen(cmdline.split(b"\0")):
            self.seen += 1
        for what, value in self.needles.items():
            if value in cmdline:
                self.found.append(f"{what} in the command line of PID {pid}: {cmdline[:200]!r}")
        for what, value in self.env_needles.items():
            if value in environ:
                self.found.append(f"{what} in the environment of PID {pid}: {cmdline[:200]!r}")

    def sweep(self, user_pids: UserPids) -> None:
        for pid in user_pids():
            self.check(pid)
        self.samples += 1

    def run(self) -> None:
        user_pids = UserPids()
        try:
            events = ExecEvents()
        except OSError:
            events = None
        if events is None:
            while not self.stop.is_set():
                self.sweep(user_pids)
                time.sleep(0.02)
            return
        self.events_used = True
        try:
            self.sweep(user_pids)  # after subscribing: a process exec'd in between is read twice, never missed
            me = os.getpid()
            while not self.stop.is_set():
                pids = events.wait(0.1)
                if pids is None:
                    self.sweep(user_pids)
                    continue
                for pid in pids:
                    if pid != me:
                        self.environ_read_for.pop(str(pid), None)  # a new program: its environment is new too
                        self.check(str(pid))
        finally:
            events.close()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the session's S3 server."""
    name = "lg-" + secrets.token_hex(6)
    s3_server.create_bucket(name)
    return name


def write_password_file(path: Path) -> Path:
    """A fresh restic password in ``path`` (0600); for module-scoped fixtures, which cannot take the one below."""
    path.write_text("correct horse battery staple " + secrets.token_hex(8) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def restic_password_file(tmp_path):
    return write_password_file(tmp_path / "restic-password")


def write_s3_credentials(path: Path, s3_server) -> Path:
    """An AWS shared-credentials file (0600) for the moto server in ``path``; for module-scoped fixtures, which
    cannot take the one below."""
    env = s3_server.env()
    path.write_text(
        "[default]\n"
        f"aws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def s3_credentials_file(tmp_path, s3_server):
    return write_s3_credentials(tmp_path / "s3-credentials", s3_server)


def restic(repo: str, password_file: Path, *args: str, env: dict | None = None, check=True, cwd=None):
    """Run the real restic binary directly (for test set-up and cross-checks)."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": os.environ.get("HOME", "/root")}
    full_env.update(env or {})
    full_env.update({"RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD_FILE": str(password_file)})
    return subprocess.run(["restic", *args], env=full_env, capture_output=True, text=True, check=check, cwd=cwd)


def damage_pack(pack: Path, fault: str) -> None:
    """Damage a repository's pack file the way a lost or rotten object is: ``deleted`` removes it, ``corrupted``
    flips one byte in its middle (same size, so only its hash tells)."""
    if fault == "deleted":
        pack.unlink()
        return
    if fault != "corrupted":
        raise ValueError(f"damage_pack: fault must be 'deleted' or 'corrupted', not {fault!r}")
    pack.chmod(0o644)  # restic writes packs read-only
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    pack.write_bytes(bytes(raw))


@pytest.fixture
def restic_cmd():
    return restic


@pytest.fixture
def local_repo(tmp_path, restic_password_file):
    """An initialised restic repository in a local directory."""
    repo = str(tmp_path / "repo")
    restic(repo, restic_password_file, "init")
    return repo


@pytest.fixture
def s3_repo(s3_server, s3_bucket, restic_password_file):
    """An initialised restic repository in a fresh bucket on the moto server."""
    repo = s3_server.restic_url(s3_bucket, "restic")
    restic(repo, restic_password_file, "init", env=s3_server.env())
    return repo


def write_inventory(path: Path, hostvars: dict | None = None, hosts: dict | None = None) -> Path:
    """An inventory in ``path`` of local hosts run by this interpreter (``hosts``: name -> its own vars, by default
    just localhost), each also with ``hostvars``."""
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    all_hosts = hosts or {"localhost": {}}
    inv = {"all": {"hosts": {h: {**base, **(v or {}), **(hostvars or {})} for h, v in all_hosts.items()}}}
    path.write_text(json.dumps(inv))
    return path


def role_tasks_playbook(path: Path, role: str, tasks_from: str, name: str) -> Path:
    """A playbook in ``path`` whose one task, ``name``, runs ``tasks_from`` of ``ledgerguard.recovery.<role>`` on
    localhost: a role's own step driven alone through ansible-playbook."""
    path.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - name: {name}\n"
        "      ansible.builtin.include_role:\n"
        f"        name: ledgerguard.recovery.{role}\n"
        f"        tasks_from: {tasks_from}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def localhost_inventory(tmp_path):
    """Write a localhost inventory using this interpreter; returns a function taking extra host vars."""

    def make(hostvars: dict | None = None, hosts: dict | None = None) -> Path:
        return write_inventory(tmp_path / "inventory.json", hostvars, hosts)

    return make


@pytest.fixture
def playbook(tmp_path):
    """Run a playbook through ansible-runner; returns the Runner.

    Usage: playbook('x.yml', inventory=..., extravars=...).
    """

    def go(name: str, **kw):
        run = PlaybookRun(playbook=name, private_data_dir=kw.pop("private_data_dir", tmp_path / "runner"), **kw)
        return run_playbook(run)

    return go


def failed_messages(runner) -> list[str]:
    """The msg of every failed task event in a runner's events."""
    out = []
    for ev in runner.events:
        if ev.get("event") in ("runner_on_failed", "runner_item_on_failed"):
            res = ev.get("event_data", {}).get("res", {})
            out.append(str(res.get("msg", "")))
    return out


def task_result(runner, task: str) -> dict:
    """The result of the task named ``task`` in a runner's events (ok or failed)."""
    for ev in runner.events:
        data = ev.get("event_data", {})
        if ev.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task") == task:
            return data["res"]
    raise AssertionError(f"no result for task {task!r}")


class ModuleActionStub:
    """Mixed into an action plugin's ActionModule in its unit tests (``class Stub(ModuleActionStub, ActionModule)``):
    no Ansible task behind it, and the module run replaced: each run's arguments are kept in ``sent`` and answered with
    ``answer``. ``FQCN`` names the module the action runs."""

    FQCN = ""

    def __init__(self, args: dict, answer: dict, check: bool = False):  # noqa: D107 - no Ansible machinery needed
        self._task = SimpleNamespace(
            args=args, check_mode=check, resolved_action=self.FQCN, action=self.FQCN.rsplit(".", 1)[-1], async_val=0
        )
        self._templar = SimpleNamespace(template=lambda value: value)
        self.answer = answer
        self.sent: list[dict] = []

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **_kwargs):
        self.sent.append(dict(module_args))
        return dict(self.answer)


@pytest.fixture
def no_action_base_run(monkeypatch):
    """ActionBase.run only checks the task's options against a real task; an action's stub has none to check."""
    from ansible.plugins.action import ActionBase  # noqa: PLC0415

    monkeypatch.setattr(ActionBase, "run", lambda _self, _tmp=None, _task_vars=None: {})


def flock_free(path) -> bool:
    """Whether another process could take an exclusive flock on ``path`` now (the backup lock's test, done here
    without the collection's own code)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def module_result(main, args: dict, capsys, check_mode: bool = False) -> dict:
    """Run a module's ``main`` in this process with ``args`` (as Ansible would pass them) and return its JSON result."""
    from ansible.module_utils.testing import patch_module_args  # noqa: PLC0415 (only unit tests of modules need it)

    if check_mode:
        args = {**args, "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------------------------- PostgreSQL

PG_INITDB = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
AS_POSTGRES = ["runuser", "-u", "postgres", "--"]


@dataclass
class PgCluster:
    """A scratch PostgreSQL cluster run by the postgres user, reachable only on a socket in its own folder."""

    bindir: Path
    root: Path
    data: Path
    sock: Path
    port: int = 5432  # names the socket file only (no TCP), so every cluster can use it
    opts: str = field(init=False)

    def __post_init__(self) -> None:
        self.opts = f"-p {self.port} -k {self.sock} -c listen_addresses=''"

    @property
    def as_pg(self) -> list[str]:
        return list(AS_POSTGRES)

    @property
    def pg_ctl(self) -> list[str]:
        """pg_ctl for this cluster, as the postgres user; add start / stop / restart."""
        log = str(self.root / "server.log")
        return [*AS_POSTGRES, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", self.opts, "-l", log, "-w"]

    @property
    def psql_argv(self) -> list[str]:
        """psql on database postgres, as the postgres user (add -c SQL, or feed stdin)."""
        where = ["-h", str(self.sock), "-p", str(self.port), "-d", "postgres"]
        return [*AS_POSTGRES, "psql", "-X", "-q", "-A", "-t", *where]

    @property
    def conn(self) -> dict[str, str]:
        """Connection settings as the collection's database options take them."""
        return {"host": str(self.sock), "port": str(self.port), "user": "postgres"}

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run one SQL statement (as the postgres role) and return its unaligned, tuples-only output."""
        return self._psql([sql], db)

    def _psql(self, statements: list[str], db: str = "postgres", writable: bool = False) -> str:
        """Statements each in its own transaction; ``writable``: in a read-write session even while the cluster is
        frozen read-only (for the clean-up)."""
        argv = ["psql", "-X", "-h", str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", db, "-tA"]
        argv += [arg for statement in statements for arg in ("-c", statement)]
        env = {**os.environ, "PGOPTIONS": "-c default_transaction_read_only=off"} if writable else None
        return subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout.strip()

    def running(self) -> bool:
        status = subprocess.run([*AS_POSTGRES, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
                                capture_output=True, check=False)  # fmt: skip
        return status.returncode == 0

    def start(self) -> None:
        subprocess.run([*self.pg_ctl, "start"], check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)

    def reset(self) -> None:
        """Back to a fresh cluster's state: running, no ALTER SYSTEM settings, no other sessions, no user objects."""
        if not self.running():
            self.start()
        others = self._psql([
            "ALTER SYSTEM RESET ALL",
            "SELECT pg_reload_conf()",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
            "SELECT 'db:' || datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')",
        ])  # fmt: skip
        drops = [f'DROP DATABASE "{line[3:]}" WITH (FORCE)' for line in others.splitlines() if line.startswith("db:")]
        self._psql([*drops, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"], writable=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """One scratch PostgreSQL cluster per test process (initdb is the slow part: 2 s idle, 10 s and more on a
    loaded machine). Use it through ``postgres``, which puts it back to a fresh state after each test."""
    if not PG_INITDB or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    owner = pwd.getpwnam("postgres")
    # pytest's tmp_path is private to root; the cluster lives in a folder the postgres user can reach.
    root = Path(tempfile.mkdtemp(prefix="ledgerguard-pg-"))
    root.chmod(0o755)
    os.chown(root, owner.pw_uid, owner.pw_gid)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    os.chown(sock, owner.pw_uid, owner.pw_gid)
    bindir = PG_INITDB[-1].parent
    subprocess.run([*AS_POSTGRES, str(bindir / "initdb"), "-N", "-D", str(data), "-A", "trust", "-E", "UTF8",
                    "--locale=C.UTF-8"], check=True, capture_output=True)  # fmt: skip
    cluster = PgCluster(bindir=bindir, root=root, data=data, sock=sock)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres(pg_cluster):
    """The process's scratch PostgreSQL cluster, running; reset after the test (settings, sessions, databases)."""
    if not pg_cluster.running():
        pg_cluster.start()
    try:
        yield pg_cluster
    finally:
        pg_cluster.reset()


# ---------------------------------------------------------------------------------------------- CPU per test

# Long-lived servers a test's requests make work for (the session's moto server): their CPU is read from /proc around
# each test, since they are only waited for (and counted among the children) when the session ends.
CPU_WATCHED: list[EmbeddedS3] = []
_CPU_RETIRED: list[float] = []  # the watched servers' CPU seconds when they were stopped


def _server_cpu(server: EmbeddedS3) -> float:
    try:
        fields = proc_stat(server.process.pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (AttributeError, OSError, IndexError, ValueError):
        return 0.0


def _cpu_now() -> tuple[float, float]:
    """The CPU seconds of this process and of the children it waited for (the stopped servers left out), and those
    of the watched servers (the stopped ones included)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    retired = sum(_CPU_RETIRED)
    servers = retired + sum(_server_cpu(server) for server in CPU_WATCHED)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime - retired, servers


_CPU_AT_START: dict[str, tuple[float, float]] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _CPU_AT_START[item.nodeid] = _cpu_now()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Record the CPU seconds of each test (set-up and teardown included, so a module fixture counts in the first test
    that uses it) on its teardown report, which JUnit XML writes as the properties ``cpu_s`` (this process and the
    processes it ran and waited for) and ``server_cpu_s`` (the moto server): scripts/test-timings.py sums them per
    file."""
    outcome = yield
    before = _CPU_AT_START.pop(item.nodeid, None) if call.when == "teardown" else None
    if before is not None:
        after = _cpu_now()
        report = outcome.get_result()
        report.user_properties.append(("cpu_s", round(after[0] - before[0], 2)))
        report.user_properties.append(("server_cpu_s", round(after[1] - before[1], 2)))


# ---------------------------------------------------------------------------------------------- test order

TIMINGS = REPO_ROOT / "tests" / "integration" / "timings.json"


def pytest_collection_modifyitems(session, config, items):
    """Slowest files first (seconds measured per file in tests/integration/timings.json, refreshed with
    scripts/test-timings.py): with ``-n N --dist loadfile`` each worker takes the next file when it is free, so a long
    file that started last would keep one worker busy while the others idle. Tests keep their order inside a file;
    files without a figure run last, in collection order."""
    try:
        seconds = json.loads(TIMINGS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.nodeid.split("::")[0], index)

    def key(item):
        path = item.nodeid.split("::")[0]
        return (-seconds.get(path, 0), first[path])

    items.sort(key=key)
