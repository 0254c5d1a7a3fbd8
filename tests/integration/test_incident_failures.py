"""The incident path when things go wrong: bad input, a locked host, the S3 server gone in the middle of a restore."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import threading
from pathlib import Path

import pytest
from test_incident import Site, evidence_dir, failed_msgs, sha, tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the incident path freezes with bind mounts (root)")


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 server, so a test can take S3 away and bring it back."""

    def __init__(self, target_port: int, port: int = 0):
        self.target = ("127.0.0.1", target_port)
        self.port = port
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> Proxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return self

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _peer = sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self.listener:
            self.listener.close()
            self.listener = None
        with self.lock:
            for conn in self.conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self.conns = []


@pytest.fixture
def site(tmp_path, s3_server):
    bucket = "lg-incf-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    site = Site(tmp_path, s3_server, bucket)
    site.restic("init")
    return site


@pytest.fixture(scope="module")
def refusing_site(tmp_path_factory, s3_server):
    """One site for every refused input of a module (each case asserts that its run touched nothing, so the next case
    starts from the same state): the books and the repository are made once instead of once per case."""
    bucket = "lg-refused-" + secrets.token_hex(4)
    s3_server.create_bucket(bucket)
    made = Site(tmp_path_factory.mktemp("refused"), s3_server, bucket)
    made.restic("init")
    return made


# ----------------------------------------------------------------------------------------------------------------------
# Bad input: refused before anything is touched, with the exact reason
# ----------------------------------------------------------------------------------------------------------------------

LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

BAD_INPUT = [
    (
        {"incident_clients": ["c009"]},
        "unknown client 'c009' on host localhost: declared clients are c001, c002, c003 (ledgerguard_clients)",
    ),
    (
        {"incident_clients": ["c001"], "incident_paths": ["/etc/passwd"]},
        "path /etc/passwd is outside the declared paths of the selected clients on host localhost (c001: {c001})",
    ),
    (
        {"incident_clients": ["../c001"]},
        "client id '../c001' is not valid: '/', '..' and other path characters are refused",
    ),
    (
        {"ledgerguard_incident_id": "../../etc"},
        "incident id '../../etc' is not valid: use INC-YYYYMMDD-NNN (e.g. INC-20261126-001); it names folders, so "
        "'/', '..' and other characters are refused",
    ),
    (
        {"incident_loss_started": "2026-11-20 08:00:00"},
        "incident_loss_started '2026-11-20 08:00:00' has no timezone, so it is ambiguous; add one, e.g. "
        "2026-11-20T08:00:00+08:00 or 2026-11-20T08:00:00Z",
    ),
    ({"incident_loss_started": LATER}, f"incident_loss_started {LATER} is in the future"),
    (
        {"incident_hosts": ["books-nowhere"]},
        "host 'books-nowhere' is not in the inventory (known hosts: localhost)",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUT, ids=[case[1][:30] for case in BAD_INPUT])
def test_bad_input_refused_before_anything_is_touched(refusing_site, extra, message):
    site = refusing_site
    before = {cid: tree(site.root(cid)) for cid in ("c001", "c002", "c003")}
    runner = site.run(**extra)
    assert runner.rc != 0
    message = message.replace("{c001}", str(site.root("c001")))
    msgs = failed_msgs(runner)
    assert any(message in m and "nothing was touched" in m for m in msgs), msgs
    assert not site.evidence.exists() or not any(site.evidence.iterdir())
    assert not (site.state / "incident.lock").exists()
    assert {cid: tree(site.root(cid)) for cid in ("c001", "c002", "c003")} == before


# ----------------------------------------------------------------------------------------------------------------------
# S3 gone mid-restore: fails clearly, thaws, keeps the lock (a second incident is refused), a re-run completes
# ----------------------------------------------------------------------------------------------------------------------


def test_s3_lost_mid_restore_then_locked_then_rerun(site, s3_server):
    proxy = Proxy(s3_server.port).start()
    site.repo = f"s3:http://127.0.0.1:{proxy.port}/{site.repo.split('/', 3)[3]}"
    now = dt.datetime.now()
    site.backup(now - dt.timedelta(days=1))
    clean = tree(site.root("c001"))
    victim = site.root("c001") / "凭证" / "2026-09.csv"
    victim.unlink()

    def cut_s3_at_restore(event: dict) -> bool:
        task = event.get("event_data", {}).get("task", "")
        if event.get("event") == "playbook_on_task_start" and task.startswith(
            "Restore the chosen snapshot into staging"
        ):
            proxy.stop()
        return True

    first = site.run(handler=cut_s3_at_restore, incident_clients=["c001"], incident_cause="deleted")
    assert first.rc != 0
    msgs = " | ".join(failed_msgs(first))
    assert "Cannot reach the backend of restic repository" in msgs and f"127.0.0.1:{proxy.port}" in msgs, msgs
    ev = evidence_dir(site)
    incident_id = ev.name
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"
    assert report["summary"]["all_thawed"] is True
    assert report["clients"][0]["status"] == "failed"
    assert "Cannot reach the backend" in report["clients"][0]["msg"]
    assert str(site.books) not in os.fsdecode(Path("/proc/self/mountinfo").read_bytes())  # thawed
    assert not victim.exists()  # nothing was swapped
    lock = json.loads((site.state / "incident.lock").read_text())
    assert lock["incident_id"] == incident_id

    # A second incident on the locked host is refused and names the holder.
    proxy = Proxy(s3_server.port, port=proxy.port).start()
    second = site.run(incident_clients=["c002"], ledgerguard_incident_id="INC-20991231-001")
    assert second.rc != 0
    msgs = " | ".join(failed_msgs(second))
    assert f"Host localhost is locked by incident {incident_id} (operator pytest, since {lock['created']}" in msgs, msgs
    assert "Nothing was changed by INC-20991231-001 on this host" in msgs

    # The re-run of the first incident (S3 back) completes.
    again = site.run(incident_clients=["c001"], incident_cause="deleted", ledgerguard_incident_id=incident_id)
    assert again.rc == 0, failed_msgs(again)
    assert tree(site.root("c001")) == clean
    assert sha(victim)
    report = json.loads((ev / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "restored"
    assert len(report["incident"]["runs"]) == 2
    assert len(site.snapshots(incident_id, "pre-restore")) == 1  # the damaged state was kept once, not overwritten
    assert not (site.state / "incident.lock").exists()
    proxy.stop()
